//! The real `render` binary, run as Lambda runs it behind its Function URL: a runtime API on
//! 127.0.0.1 hands it the sample request CloudFront sends on a miss (`events/render.json`), S3
//! is the local endpoint on 127.0.0.1. What it posts back is the Function URL response Lambda
//! turns into HTTP: an image base64-encoded with `isBase64Encoded`, an error as JSON text, each
//! with its status and headers.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use imgfn_test_support::runtime::RuntimeApi;
use imgfn_test_support::{api, fixtures, tools, Server, OUTPUT, SOURCE};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_function_url_requests() {
    let text = std::fs::read_to_string(tools::root().join("events/render.json")).unwrap();
    let event: Value = serde_json::from_str(&text).unwrap();
    let request = event["headers"]["x-imgfn-request"].as_str().unwrap().to_owned();
    let s = Server::start().await;
    let runtime = RuntimeApi::start(Duration::from_secs(30)).await;

    let mut child = runtime
        .command(env!("CARGO_BIN_EXE_render"), "render", &s)
        .env("IMGFN_URL_KEYS", api::sample_url_keys(&request))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = |id: String| {
        let runtime = runtime.clone();
        async move {
            let outcome = runtime.outcome(&id, Duration::from_secs(60)).await.expect("an answer");
            assert_eq!(outcome.kind, "response", "{outcome:?}");
            outcome.body
        }
    };

    // The source is not there yet: a 404 whose JSON body is text.
    let missing = answer(runtime.invoke(event.clone())).await;
    assert!(runtime.init_error().is_none(), "init failed: {:?}", runtime.init_error());
    assert_eq!(missing["statusCode"], 404, "{missing}");
    assert_eq!(missing["isBase64Encoded"], false, "{missing}");
    assert_eq!(missing["headers"]["content-type"], "application/json");
    assert_eq!(missing["headers"]["cache-control"], "no-store");
    let error: Value = serde_json::from_str(missing["body"].as_str().unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "not_found", "{error}");

    // With the source: the rendition, base64-encoded for Lambda to send as bytes.
    s.put(SOURCE, "originals/alice/beach.jpg", fixtures::photo_small().to_vec(), None).await;
    let done = answer(runtime.invoke(event.clone())).await;
    assert_eq!(done["statusCode"], 200, "{done}");
    assert_eq!(done["isBase64Encoded"], true);
    assert_eq!(done["headers"]["content-type"], "image/webp");
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(done["body"].as_str().unwrap()).expect("base64");
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).unwrap();
    assert_eq!((img.width(), img.height()), (640, 480), "width=800 never enlarges the 640x480 source");
    assert_eq!(s.get(OUTPUT, &s.keys(OUTPUT).await[0]).await.unwrap().body, bytes, "what was stored");

    // A tampered request: 403, JSON text, nothing rendered.
    let mut tampered = event.clone();
    tampered["headers"]["x-imgfn-request"] = Value::from(request.replace("width=800", "width=801"));
    let refused = answer(runtime.invoke(tampered)).await;
    assert_eq!(
        (refused["statusCode"].as_u64(), refused["isBase64Encoded"].as_bool()),
        (Some(403), Some(false))
    );
    let error: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert!(error["error"]["code"].is_string(), "{error}");
    assert_eq!(s.keys(OUTPUT).await.len(), 1);

    child.start_kill().unwrap();
    let _ = child.wait().await;
}
