//! The two ways in answer the same bad params with the same error: an object dropped under a
//! trigger prefix with the params in its metadata (the function writes an error record) and
//! `POST /process` with the same params as a pipeline step (a 4xx response). Same code, same
//! message, and the same param named, under `params.` in one and `ops[0].` (or `output.`) in
//! the other: errors found while parsing, while validating, while an asset loads and while
//! the operation runs.
#![allow(clippy::unwrap_used)]

use imgfn_test_support::api::Stack;
use imgfn_test_support::lambda::event;
use imgfn_test_support::{fixtures, OUTPUT, SOURCE};
use serde_json::{json, Value};

/// One bad request: the operation, its params, and the code and param both paths must name.
struct Case {
    op: &'static str,
    params: Value,
    code: &'static str,
    /// The param at fault, relative to the operation's params.
    field: &'static str,
}

fn cases() -> Vec<Case> {
    let case = |op, params, code, field| Case { op, params, code, field };
    vec![
        // Parsing.
        case("thumbnail", json!({"widht": 64}), "invalid_params", "widht"),
        case("thumbnail", json!({"width": "wide"}), "invalid_params", "width"),
        case("thumbnail", json!({"width": 64, "fit": "sideways"}), "invalid_params", "fit"),
        case("watermark", json!({"text": "x", "tile": {"gap": 3}}), "invalid_params", "tile"),
        // Validation.
        case("thumbnail", json!({"width": 0}), "invalid_params", "width"),
        case("watermark", json!({"text": "x", "scale": 0.5}), "invalid_params", "scale"),
        case("watermark", json!({"image": "uploads/x.png"}), "invalid_params", "image"),
        case("round-corner", json!({"radius": "80%"}), "invalid_params", "radius"),
        case("slice", json!({"rows": 100, "cols": 2}), "invalid_params", "rows"),
        // Assets.
        case("watermark", json!({"text": "x", "font": "assets/missing.ttf"}), "invalid_params", "font"),
        case("watermark", json!({"text": "x", "font": "assets/not-a-font.ttf"}), "invalid_params", "font"),
        case("watermark", json!({"image": "assets/broken.png"}), "invalid_params", "image"),
        // While the operation runs: a 4000 px QR code does not fit a 640x480 photo.
        case("qr-overlay", json!({"data": "x", "size": 4000}), "invalid_params", "size"),
        // Output params.
        case("convert", json!({"quality": 0}), "invalid_params", "quality"),
        case("convert", json!({"format": "bmp"}), "invalid_params", "format"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_and_the_api_answer_bad_params_alike() {
    let s = Stack::start(&[]).await;
    let photo = fixtures::photo_small();
    s.s3.put(SOURCE, "assets/not-a-font.ttf", b"not a font at all".to_vec(), None).await;
    s.s3.put(SOURCE, "assets/broken.png", b"\x89PNG\r\n\x1a\nbroken".to_vec(), None).await;
    let upload = s.upload(None, "image/jpeg", photo).await;

    for (i, c) in cases().into_iter().enumerate() {
        // The S3 trigger: params in the object's metadata, merged over the function's defaults.
        let key = format!("{}/case-{i}.jpg", c.op);
        s.s3.put(SOURCE, &key, photo.to_vec(), Some(&c.params.to_string())).await;
        s.s3.function(c.op, &[]).handle(event(c.op, &[(SOURCE, &key)])).await.unwrap();
        let record = s.s3.get(OUTPUT, &format!("errors/{key}.json")).await;
        let record = record.unwrap_or_else(|| panic!("{i} {}: no error record", c.op)).json();
        assert!(
            s.s3.get(OUTPUT, &format!("{}/case-{i}.jpg", c.op)).await.is_none(),
            "{i}: an image was written"
        );

        // The API: the same params as a pipeline step (or as the output params, for convert).
        let mut step = c.params.clone();
        let body = if c.op == "convert" {
            json!({"key": upload, "output": step})
        } else {
            step["op"] = Value::from(c.op);
            json!({"key": upload, "ops": [step]})
        };
        let reply = s.post("/process", None, &body.to_string()).await;
        assert_eq!(reply.status, 400, "{i}: {}", reply.text());
        let answer = reply.json()["error"].clone();

        let (s3_prefix, api_prefix) =
            if c.op == "convert" { ("params", "output") } else { ("params", "ops[0]") };
        let (s3_field, api_field) = (format!("{s3_prefix}.{}", c.field), format!("{api_prefix}.{}", c.field));
        assert_eq!(
            (record["code"].as_str(), record["field"].as_str()),
            (Some(c.code), Some(s3_field.as_str())),
            "{i}: {record}"
        );
        assert_eq!(
            (answer["code"].as_str(), answer["field"].as_str()),
            (Some(c.code), Some(api_field.as_str())),
            "{i}: {answer}"
        );
        let s3_message = record["message"].as_str().unwrap().replace(&s3_field, &api_field);
        assert_eq!(answer["message"].as_str(), Some(s3_message.as_str()), "{i}: the messages differ");
    }
}
