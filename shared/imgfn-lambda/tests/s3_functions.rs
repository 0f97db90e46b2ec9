//! The six S3-triggered functions against a real S3-compatible server (s3s-fs on 127.0.0.1):
//! a 12 MP JPEG through every function, every permanent failure, transient failures, key
//! encoding and multi-record events.
#![allow(clippy::unwrap_used)]

use image::GenericImageView;
use imgfn_test_support::lambda::event;
use imgfn_test_support::s3::Object;
use imgfn_test_support::{fixtures, s3, Server, OUTPUT, SOURCE};

/// Checks the metadata every output carries.
fn assert_output_metadata(obj: &Object, op: &str, source_key: &str, content_type: &str) {
    assert_eq!(obj.content_type.as_deref(), Some(content_type));
    assert_eq!(obj.cache_control.as_deref(), Some("public, max-age=86400"));
    assert_eq!(obj.metadata.get("imgfn-op").map(String::as_str), Some(op));
    let encoded = obj.metadata.get("imgfn-source-key").unwrap();
    assert_eq!(imgfn_lambda::event::decode_key(encoded).unwrap(), source_key);
    let etag = obj.metadata.get("imgfn-source-etag").unwrap();
    assert!(etag.len() >= 32 && !etag.contains('"'), "etag {etag:?}");
    let hash = obj.metadata.get("imgfn-params-sha256").unwrap();
    assert!(hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()), "hash {hash:?}");
}

/// Mean absolute difference per channel over a block of two same-size images.
fn block_diff(a: &image::RgbImage, b: &image::RgbImage, x: u32, y: u32, w: u32, h: u32) -> f64 {
    let mut sum = 0u64;
    for yy in y..y + h {
        for xx in x..x + w {
            let (p, q) = (a.get_pixel(xx, yy), b.get_pixel(xx, yy));
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
        }
    }
    sum as f64 / f64::from(w * h * 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnail_of_a_12mp_jpeg_with_an_awkward_key() {
    let s = Server::start().await;
    let key = "thumbnail/my photo+1 ü 100%.jpg";
    s.put(SOURCE, key, fixtures::photo_12mp().to_vec(), None).await;
    let f = s.function(
        "thumbnail",
        &[("IMGFN_PARAMS", r#"{"width":256,"height":256}"#), ("IMGFN_OUTPUT", r#"{"format":"webp"}"#)],
    );
    f.handle(event("thumbnail", &[(SOURCE, key)])).await.unwrap();

    assert_eq!(s.keys(OUTPUT).await, ["thumbnail/my photo+1 ü 100%.webp"]);
    let out = s.get(OUTPUT, "thumbnail/my photo+1 ü 100%.webp").await.unwrap();
    assert_output_metadata(&out, "thumbnail", key, "image/webp");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::WebP).unwrap();
    assert_eq!(img.dimensions(), (256, 192));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_watermark_on_a_12mp_jpeg() {
    let s = Server::start().await;
    s.put(SOURCE, "watermark/photo.jpg", fixtures::photo_12mp().to_vec(), None).await;
    let params = r##"{"text":"imgfn","size":"8%","opacity":1.0,"color":"#000000"}"##;
    let f = s.function("watermark", &[("IMGFN_PARAMS", params)]);
    f.handle(event("watermark", &[(SOURCE, "watermark/photo.jpg")])).await.unwrap();

    let out = s.get(OUTPUT, "watermark/photo.jpg").await.unwrap();
    assert_output_metadata(&out, "watermark", "watermark/photo.jpg", "image/jpeg");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::Jpeg).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (4000, 3000));
    let src = image::load_from_memory(fixtures::photo_12mp()).unwrap().to_rgb8();
    // The text is in the bottom-right corner; the top-left is only re-encoded.
    let corner = block_diff(&src, &img, 3000, 2500, 1000, 500);
    let untouched = block_diff(&src, &img, 0, 0, 1000, 500);
    assert!(corner > 8.0 && untouched < 3.0, "corner {corner}, untouched {untouched}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_watermark_from_an_asset_chosen_by_object_metadata() {
    let s = Server::start().await;
    s.put(SOURCE, "assets/logo.png", fixtures::logo_png(120, 60), None).await;
    let params = r#"{"image":"assets/logo.png","opacity":1.0}"#;
    s.put(SOURCE, "watermark/small.jpg", fixtures::photo_small().to_vec(), Some(params)).await;
    // The defaults are a text watermark: the object's params switch to the image variant.
    let f = s.function(
        "watermark",
        &[("IMGFN_PARAMS", r#"{"text":"default"}"#), ("IMGFN_OUTPUT", r#"{"format":"png"}"#)],
    );
    f.handle(event("watermark", &[(SOURCE, "watermark/small.jpg")])).await.unwrap();

    let out = s.get(OUTPUT, "watermark/small.png").await.unwrap();
    assert_output_metadata(&out, "watermark", "watermark/small.jpg", "image/png");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (640, 480));
    // Bottom-right, inside the logo: pure red. Top-left: the photo.
    let red = img.get_pixel(640 - 30, 480 - 20);
    assert!(red[0] > 240 && red[1] < 15 && red[2] < 15, "{red:?}");
    let photo = img.get_pixel(10, 10);
    assert!(photo[1] > 40, "{photo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_corners_on_a_12mp_jpeg() {
    let s = Server::start().await;
    s.put(SOURCE, "round-corner/photo.jpg", fixtures::photo_12mp().to_vec(), None).await;
    let f = s.function(
        "round-corner",
        &[("IMGFN_PARAMS", r#"{"radius":"10%"}"#), ("IMGFN_OUTPUT", r#"{"format":"webp","quality":70}"#)],
    );
    f.handle(event("round-corner", &[(SOURCE, "round-corner/photo.jpg")])).await.unwrap();

    let out = s.get(OUTPUT, "round-corner/photo.webp").await.unwrap();
    assert_output_metadata(&out, "round-corner", "round-corner/photo.jpg", "image/webp");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::WebP).unwrap().to_rgba8();
    assert_eq!(img.dimensions(), (4000, 3000));
    for (x, y) in [(0, 0), (3999, 0), (0, 2999), (3999, 2999), (40, 40)] {
        assert_eq!(img.get_pixel(x, y)[3], 0, "corner ({x},{y}) must be transparent");
    }
    for (x, y) in [(2000, 1500), (2000, 0), (0, 1500), (400, 400)] {
        assert_eq!(img.get_pixel(x, y)[3], 255, "({x},{y}) must be opaque");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_overlay_on_a_12mp_jpeg_decodes_back() {
    let s = Server::start().await;
    s.put(SOURCE, "qr-overlay/photo.jpg", fixtures::photo_12mp().to_vec(), None).await;
    let payload = "https://example.com/imgfn?id=42";
    let params = format!(r#"{{"data":"{payload}","size":600,"ec_level":"H"}}"#);
    let f = s.function("qr-overlay", &[("IMGFN_PARAMS", &params), ("IMGFN_OUTPUT", r#"{"quality":90}"#)]);
    f.handle(event("qr-overlay", &[(SOURCE, "qr-overlay/photo.jpg")])).await.unwrap();

    let out = s.get(OUTPUT, "qr-overlay/photo.jpg").await.unwrap();
    assert_output_metadata(&out, "qr-overlay", "qr-overlay/photo.jpg", "image/jpeg");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(img.dimensions(), (4000, 3000));
    // Gravity bottom-right: decode the corner with an independent QR decoder.
    let corner = img.crop_imm(3200, 2200, 800, 800).to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(corner);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().unwrap();
    assert_eq!(content, payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convert_a_12mp_jpeg_to_webp_and_per_object_png() {
    let s = Server::start().await;
    s.put(SOURCE, "convert/photo.jpg", fixtures::photo_12mp().to_vec(), None).await;
    s.put(
        SOURCE,
        "convert/nested/dir/small.jpeg",
        fixtures::photo_small().to_vec(),
        Some(r#"{"format":"png"}"#),
    )
    .await;
    let f = s.function("convert", &[("IMGFN_PARAMS", r#"{"format":"webp","quality":75}"#)]);
    let event = event("convert", &[(SOURCE, "convert/photo.jpg"), (SOURCE, "convert/nested/dir/small.jpeg")]);
    f.handle(event).await.unwrap();

    assert_eq!(s.keys(OUTPUT).await, ["convert/nested/dir/small.png", "convert/photo.webp"]);
    let out = s.get(OUTPUT, "convert/photo.webp").await.unwrap();
    assert_output_metadata(&out, "convert", "convert/photo.jpg", "image/webp");
    let img = image::load_from_memory_with_format(&out.body, image::ImageFormat::WebP).unwrap();
    assert_eq!(img.dimensions(), (4000, 3000));
    let small = s.get(OUTPUT, "convert/nested/dir/small.png").await.unwrap();
    assert_output_metadata(&small, "convert", "convert/nested/dir/small.jpeg", "image/png");
    assert_ne!(small.metadata["imgfn-params-sha256"], out.metadata["imgfn-params-sha256"]);
    let img = image::load_from_memory_with_format(&small.body, image::ImageFormat::Png).unwrap();
    assert_eq!(img.dimensions(), (640, 480));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slice_a_12mp_jpeg_into_tiles_and_a_manifest() {
    let s = Server::start().await;
    s.put(SOURCE, "slice/photo.jpg", fixtures::photo_12mp().to_vec(), None).await;
    let f = s.function("slice", &[("IMGFN_PARAMS", r#"{"rows":2,"cols":3}"#)]);
    f.handle(event("slice", &[(SOURCE, "slice/photo.jpg")])).await.unwrap();

    let mut expected: Vec<String> =
        (0..2).flat_map(|r| (0..3).map(move |c| format!("slice/photo/r{r}-c{c}.jpg"))).collect();
    expected.push("slice/photo/manifest.json".into());
    expected.sort();
    assert_eq!(s.keys(OUTPUT).await, expected);

    let manifest = s.get(OUTPUT, "slice/photo/manifest.json").await.unwrap();
    assert_eq!(manifest.content_type.as_deref(), Some("application/json"));
    let m = manifest.json();
    assert_eq!((m["width"].as_u64(), m["height"].as_u64()), (Some(4000), Some(3000)));
    assert_eq!((m["rows"].as_u64(), m["cols"].as_u64()), (Some(2), Some(3)));
    assert_eq!(m["source"]["key"], "slice/photo.jpg");
    let tiles = m["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 6);
    let mut area = 0u64;
    for t in tiles {
        let key = t["key"].as_str().unwrap();
        let obj = s.get(OUTPUT, key).await.unwrap();
        assert_output_metadata(&obj, "slice", "slice/photo.jpg", "image/jpeg");
        let img = image::load_from_memory_with_format(&obj.body, image::ImageFormat::Jpeg).unwrap();
        let (w, h) = (t["width"].as_u64().unwrap(), t["height"].as_u64().unwrap());
        assert_eq!((u64::from(img.width()), u64::from(img.height())), (w, h), "{key}");
        area += w * h;
    }
    assert_eq!(area, 4000 * 3000, "the tiles cover the image exactly");
}

/// Every trigger function, at its deployed defaults, on a phone's HEIC and on an AVIF: the
/// outputs are where they belong, in the format the defaults say (a HEIC becomes JPEG unless a
/// format is asked for; an AVIF stays AVIF), and decode to the source's size. The convert
/// function also writes each output format a per-object override can ask for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_takes_heic_and_avif_sources() {
    let s = Server::start().await;
    // 256x192 (x265 through heif-enc) and a 2x2 grid of 128x128 (aom through avifenc).
    let sources = [
        ("photo.heic", fixtures::image_ops_fixture("heic/texture_8.heic"), (256, 192), "jpg"),
        ("grid.avif", fixtures::image_ops_fixture("avif/grid_2x2.avif"), (128, 128), "avif"),
    ];
    for op in image_ops::ops::triggers() {
        let t = op.trigger.unwrap();
        // The deployed QR is 300 px: larger than these sources, so smaller here.
        let params = if op.name == "qr-overlay" { r#"{"data":"imgfn","size":100}"# } else { t.params };
        let f = s.function(op.name, &[("IMGFN_PARAMS", params), ("IMGFN_OUTPUT", t.output)]);
        for (name, bytes, (w, h), default_ext) in &sources {
            let key = format!("{}/{name}", op.name);
            s.put(SOURCE, &key, bytes.clone(), None).await;
            f.handle(event(op.name, &[(SOURCE, &key)])).await.unwrap();
            let stem = name.rsplit_once('.').unwrap().0;
            let written: Vec<String> = s
                .keys(OUTPUT)
                .await
                .into_iter()
                .filter(|k| k.starts_with(&format!("{}/{stem}", op.name)))
                .collect();
            assert!(!written.is_empty(), "{key}: nothing written ({:?})", s.keys(OUTPUT).await);
            for out_key in written.iter().filter(|k| !k.ends_with(".json")) {
                let obj = s.get(OUTPUT, out_key).await.unwrap();
                let ext = out_key.rsplit_once('.').unwrap().1;
                let format = image_ops::OutputFormat::from_extension(ext).unwrap();
                assert_output_metadata(&obj, op.name, &key, format.content_type());
                let expected_ext = match (op.name, t.output) {
                    ("thumbnail", _) | ("convert", _) => "webp",
                    (_, out) if out.contains("png") => "png",
                    _ => default_ext,
                };
                assert_eq!(ext, expected_ext, "{out_key}");
                if format == image_ops::OutputFormat::Avif {
                    assert_eq!(obj.body.get(4..12), Some(&b"ftypavif"[..]), "{out_key}");
                    continue;
                }
                let img = image::load_from_memory(&obj.body).unwrap_or_else(|e| panic!("{out_key}: {e}"));
                let (iw, ih) = img.dimensions();
                match op.name {
                    "thumbnail" => {
                        assert!(iw <= 256 && ih <= 256 && iw * h == ih * w, "{out_key}: {iw}x{ih}")
                    }
                    "slice" => assert!(iw <= *w && ih <= *h && iw * 2 >= *w - 1, "{out_key}: {iw}x{ih}"),
                    _ => assert_eq!((iw, ih), (*w, *h), "{out_key}"),
                }
            }
        }
    }
    // A phone's portrait (stored landscape, `irot` 3, Display P3): a portrait thumbnail.
    let f = s.function(
        "thumbnail",
        &[("IMGFN_PARAMS", r#"{"width":32,"height":32}"#), ("IMGFN_OUTPUT", r#"{"format":"webp"}"#)],
    );
    s.put(SOURCE, "thumbnail/IMG_0001.HEIC", fixtures::image_ops_fixture("heic/iphone_style.heic"), None)
        .await;
    f.handle(event("thumbnail", &[(SOURCE, "thumbnail/IMG_0001.HEIC")])).await.unwrap();
    let out = s.get(OUTPUT, "thumbnail/IMG_0001.webp").await.unwrap();
    assert_eq!(image::load_from_memory(&out.body).unwrap().dimensions(), (16, 32), "upright: portrait");
    // Each output format a per-object override asks the convert function for, from the HEIC.
    let f = s.function("convert", &[("IMGFN_PARAMS", r#"{"format":"webp","quality":80}"#)]);
    for format in image_ops::OutputFormat::ALL {
        let key = format!("convert/as-{}.heic", format.name());
        s.put(SOURCE, &key, sources[0].1.clone(), Some(&format!(r#"{{"format":"{}"}}"#, format.name())))
            .await;
        f.handle(event("convert", &[(SOURCE, &key)])).await.unwrap();
        let out_key = format!("convert/as-{}.{}", format.name(), format.extension());
        let obj = s.get(OUTPUT, &out_key).await.unwrap_or_else(|| panic!("{out_key} not written"));
        assert_output_metadata(&obj, "convert", &key, format.content_type());
        if format != image_ops::OutputFormat::Avif {
            assert_eq!(image::load_from_memory(&obj.body).unwrap().dimensions(), (256, 192), "{out_key}");
        }
    }
}

/// Runs the thumbnail function on one object and returns the error record it wrote, after
/// checking that no image was written and the handler returned Ok.
async fn rejected(s: &Server, key: &str, vars: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec![("IMGFN_PARAMS", r#"{"width":64}"#)];
    all.extend_from_slice(vars);
    let f = s.function("thumbnail", &all);
    f.handle(event("thumbnail", &[(SOURCE, key)])).await.unwrap();
    let rest = key.strip_prefix("thumbnail/").unwrap();
    let record_key = format!("errors/thumbnail/{rest}.json");
    assert_eq!(s.keys(OUTPUT).await, std::slice::from_ref(&record_key), "only the error record is written");
    let record = s.get(OUTPUT, &record_key).await.unwrap();
    assert_eq!(record.content_type.as_deref(), Some("application/json"));
    let json = record.json();
    assert_eq!(json["source"]["bucket"], SOURCE);
    assert_eq!(json["source"]["key"], key);
    assert_eq!(json["op"], "thumbnail");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()));
    json
}

#[tokio::test]
async fn corrupt_image_is_a_permanent_failure() {
    let s = Server::start().await;
    let mut corrupt = fixtures::photo_small()[..600].to_vec();
    corrupt.extend_from_slice(&[0x13; 400]);
    s.put(SOURCE, "thumbnail/corrupt.jpg", corrupt, None).await;
    let record = rejected(&s, "thumbnail/corrupt.jpg", &[]).await;
    assert_eq!(record["code"], "corrupt_image");
    assert!(record["source"]["etag"].as_str().is_some());

    s.put(SOURCE, "thumbnail/notes.jpg", b"this is not an image at all".to_vec(), None).await;
    let f = s.function("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]);
    f.handle(event("thumbnail", &[(SOURCE, "thumbnail/notes.jpg")])).await.unwrap();
    let record = s.get(OUTPUT, "errors/thumbnail/notes.jpg.json").await.unwrap().json();
    assert_eq!(record["code"], "unsupported_format");
}

#[tokio::test]
async fn empty_object_is_a_permanent_failure() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/empty.jpg", Vec::new(), None).await;
    let record = rejected(&s, "thumbnail/empty.jpg", &[]).await;
    assert_eq!(record["code"], "unsupported_format");
    assert_eq!(s.gets(SOURCE, "thumbnail/empty.jpg"), 0, "nothing to download");
}

#[tokio::test]
async fn oversized_object_is_rejected_from_head_object_alone() {
    let s = Server::start().await;
    let photo = fixtures::photo_small().to_vec();
    assert!(photo.len() > 5000);
    s.put(SOURCE, "thumbnail/big.jpg", photo, None).await;
    let record = rejected(&s, "thumbnail/big.jpg", &[("IMGFN_MAX_INPUT_BYTES", "5000")]).await;
    assert_eq!(record["code"], "input_too_large");
    assert_eq!(s.gets(SOURCE, "thumbnail/big.jpg"), 0, "the object was never downloaded");
}

#[tokio::test]
async fn bad_metadata_params_are_a_permanent_failure() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/typo.jpg", fixtures::photo_small().to_vec(), Some(r#"{"widht":64}"#)).await;
    let record = rejected(&s, "thumbnail/typo.jpg", &[]).await;
    assert_eq!(record["code"], "invalid_params");
    assert_eq!(record["field"], "params.widht");
    assert_eq!(s.gets(SOURCE, "thumbnail/typo.jpg"), 0, "params are checked before downloading");
}

#[tokio::test]
async fn out_of_range_metadata_params_name_the_field() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/huge.jpg", fixtures::photo_small().to_vec(), Some(r#"{"width":1000000}"#)).await;
    let record = rejected(&s, "thumbnail/huge.jpg", &[]).await;
    assert_eq!(record["code"], "invalid_params");
    assert_eq!(record["field"], "params.width");
}

#[tokio::test]
async fn source_deleted_before_processing_is_a_permanent_failure() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/gone.jpg", fixtures::photo_small().to_vec(), None).await;
    s.sdk.delete_object().bucket(SOURCE).key("thumbnail/gone.jpg").send().await.unwrap();
    let record = rejected(&s, "thumbnail/gone.jpg", &[]).await;
    assert_eq!(record["code"], "source_not_found");
    assert!(record["source"]["etag"].is_null());
}

#[tokio::test]
async fn a_later_success_removes_the_error_record() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/retry.jpg", b"garbage".to_vec(), None).await;
    let f = s.function("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]);
    let event = || event("thumbnail", &[(SOURCE, "thumbnail/retry.jpg")]);
    f.handle(event()).await.unwrap();
    assert_eq!(s.keys(OUTPUT).await, ["errors/thumbnail/retry.jpg.json"]);
    s.put(SOURCE, "thumbnail/retry.jpg", fixtures::photo_small().to_vec(), None).await;
    f.handle(event()).await.unwrap();
    assert_eq!(s.keys(OUTPUT).await, ["thumbnail/retry.webp"], "the default output: WebP");
}

#[tokio::test]
async fn a_bad_record_does_not_block_the_others() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/good.jpg", fixtures::photo_small().to_vec(), None).await;
    s.put(SOURCE, "thumbnail/bad.jpg", b"\xFF\xD8\xFF\xE0 truncated".to_vec(), None).await;
    s.put(OUTPUT, "thumbnail/loop.jpg", fixtures::photo_small().to_vec(), None).await;
    let f = s.function("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]);
    let event = event(
        "thumbnail",
        &[(SOURCE, "thumbnail/bad.jpg"), (OUTPUT, "thumbnail/loop.jpg"), (SOURCE, "thumbnail/good.jpg")],
    );
    f.handle(event).await.unwrap();
    assert_eq!(
        s.keys(OUTPUT).await,
        ["errors/thumbnail/bad.jpg.json", "thumbnail/good.webp", "thumbnail/loop.jpg"],
        "the good record is processed, the bad one recorded, the output-bucket one ignored"
    );
    let img = image::load_from_memory(&s.get(OUTPUT, "thumbnail/good.webp").await.unwrap().body).unwrap();
    assert_eq!(img.dimensions(), (64, 48));
}

#[tokio::test]
async fn loop_guard_and_foreign_records_write_nothing() {
    let s = Server::start().await;
    // (bucket, key, IMGFN_SOURCE_BUCKET): without a source bucket configured, only the loop
    // guard stands between an output-bucket record and an endless loop.
    for (bucket, key, source) in [
        (OUTPUT, "thumbnail/x.jpg", ""),
        (SOURCE, "errors/thumbnail/x.jpg.json", ""),
        (SOURCE, "assets/logo.png", ""),
        (SOURCE, "convert/x.jpg", ""),
        (SOURCE, "thumbnail/", ""),
        ("someone-else", "thumbnail/x.jpg", SOURCE),
    ] {
        // Put a real image there (where possible), so only the guard can stop the processing.
        if bucket != "someone-else" && !key.ends_with('/') {
            s.put(bucket, key, fixtures::photo_small().to_vec(), None).await;
        }
        let f =
            s.function("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#), ("IMGFN_SOURCE_BUCKET", source)]);
        f.handle(event("thumbnail", &[(bucket, key)])).await.unwrap();
        let written: Vec<String> =
            s.keys(OUTPUT).await.into_iter().filter(|k| k.as_str() != "thumbnail/x.jpg").collect();
        assert!(written.is_empty(), "{bucket}/{key} wrote {written:?}");
        assert_eq!(s.gets(bucket, key), 0, "{bucket}/{key} was read");
    }
    assert!(s.log.lock().unwrap().iter().all(|(m, _)| m != "HEAD"), "no record reached S3");
}

#[tokio::test]
async fn endpoint_down_is_transient() {
    let s = Server::start().await;
    let dead = s3::store_for(&s3::dead_endpoint().await, s3::fast_options()).await;
    let f = imgfn_lambda::Function::new(
        imgfn_test_support::lambda::config("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]),
        dead,
    );
    let result = f.handle(event("thumbnail", &[(SOURCE, "thumbnail/photo.jpg")])).await;
    assert!(result.is_err());
    assert!(s.keys(OUTPUT).await.is_empty());
}

#[tokio::test]
async fn endpoint_answering_503_is_transient_after_retries() {
    let (endpoint, requests) = s3::failing_server().await;
    let store = s3::store_for(&endpoint, s3::fast_options()).await;
    let f = imgfn_lambda::Function::new(
        imgfn_test_support::lambda::config("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]),
        store,
    );
    let result = f.handle(event("thumbnail", &[(SOURCE, "thumbnail/photo.jpg")])).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("1 of 1 records failed transiently"), "{err}");
    // Standard retry mode, 3 attempts, for HeadObject; nothing after it (no error record).
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn write_failure_after_processing_is_transient_and_leaves_no_output() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/photo.jpg", fixtures::photo_small().to_vec(), None).await;
    // An output bucket S3 rejects (an invalid name: 400 InvalidBucketName): a misconfiguration,
    // so retried, never recorded as the uploader's fault. (s3s-fs creates missing buckets on
    // PutObject, so a missing bucket cannot stand in for it here.)
    let mut config = imgfn_test_support::lambda::config("thumbnail", &[("IMGFN_PARAMS", r#"{"width":64}"#)]);
    config.output_bucket = "Invalid_Bucket".into();
    let f = imgfn_lambda::Function::new(config, s.store.clone());
    let result = f.handle(event("thumbnail", &[(SOURCE, "thumbnail/photo.jpg")])).await;
    assert!(result.is_err());
    assert_eq!(s.gets(SOURCE, "thumbnail/photo.jpg"), 1, "the failure came after processing");
    assert!(s.keys(OUTPUT).await.is_empty());
}

#[test]
fn every_function_has_a_sample_event() {
    for op in image_ops::ops::triggers() {
        let e = event(op.name, &[("b", "k")]);
        let records = imgfn_lambda::event::records(&e.payload).unwrap();
        assert_eq!(records.len(), 1);
        let r = records[0].as_ref().unwrap();
        assert_eq!((r.bucket.as_str(), r.key.as_str()), ("b", "k"));
        // The unmodified sample targets the function's own trigger prefix.
        let path = imgfn_test_support::tools::root().join(format!("events/s3-{}.json", op.name));
        let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let key = raw["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("{}/", op.name)), "{key}");
    }
}
