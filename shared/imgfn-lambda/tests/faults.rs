//! Faults between the functions and S3, on both ways in, through a fault-injecting proxy on
//! 127.0.0.1 in front of a real S3 endpoint: a 500, a 503 SlowDown, a delay past the
//! invocation's budget, a reset connection, a body cut short.
//!
//! The trigger returns an error (Lambda retries it) and writes nothing partial; the API answers
//! 503 with `Retry-After`; both give up before the invocation's deadline, never run into the
//! function's own timeout; and once the fault clears, a retry writes exactly the right outputs.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imgfn_lambda::api::{Api, Route};
use imgfn_lambda::s3::DEADLINE_MARGIN;
use imgfn_lambda::Function;
use imgfn_test_support::faults::{Fault, FaultProxy, Only};
use imgfn_test_support::{api, fixtures, lambda, s3, Server, OUTPUT, SOURCE};
use lambda_http::RequestExt as _;
use serde_json::{json, Value};

/// How long an invocation may run in these tests.
const BUDGET: Duration = Duration::from_secs(5);

fn deadline_ms(budget: Duration) -> u64 {
    (SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + budget).as_millis() as u64
}

/// Every fault, and which requests it hits.
fn faults() -> Vec<(&'static str, Fault, Only)> {
    vec![
        ("500", Fault::InternalError, Only::All),
        ("503 SlowDown", Fault::SlowDown, Only::All),
        ("reset", Fault::Reset, Only::All),
        ("body cut short", Fault::Truncate, Only::Method("GET")),
        ("delay past the budget", Fault::Delay(BUDGET * 4), Only::All),
        ("PUT fails after it read and processed", Fault::SlowDown, Only::Method("PUT")),
    ]
}

/// The outputs (and error records) in the output bucket, as the real endpoint has them.
async fn outputs(s: &Server) -> Vec<String> {
    s.keys(OUTPUT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_retries_and_writes_nothing_partial() {
    let s = Server::start().await;
    let proxy = FaultProxy::start(s.addr).await;
    let store = s3::store_for(&proxy.url(), s3::fast_options()).await;
    s.put(SOURCE, "thumbnail/photo.jpg", fixtures::photo_small().to_vec(), None).await;
    let f = Function::new(lambda::config("thumbnail", &[]), store);
    let invoke = || {
        let mut event = lambda::event("thumbnail", &[(SOURCE, "thumbnail/photo.jpg")]);
        event.context.deadline = deadline_ms(BUDGET);
        f.handle(event)
    };
    for (name, fault, only) in faults() {
        proxy.set(fault, only);
        let started = Instant::now();
        let result = invoke().await;
        let took = started.elapsed();
        assert!(result.is_err(), "{name}: the invocation must fail so Lambda retries it");
        assert!(took < BUDGET, "{name}: gave up after {took:?}, past the {BUDGET:?} budget");
        assert!(outputs(&s).await.is_empty(), "{name}: wrote {:?}", outputs(&s).await);
        proxy.clear();
        invoke().await.unwrap_or_else(|e| panic!("{name}: the retry failed: {e}"));
        assert_eq!(
            outputs(&s).await,
            ["thumbnail/photo.webp"],
            "{name}: exactly the output, no error record"
        );
        let img =
            image::load_from_memory(&s.get(OUTPUT, "thumbnail/photo.webp").await.unwrap().body).unwrap();
        assert_eq!((img.width(), img.height()), (256, 192), "{name}");
        s.sdk.delete_object().bucket(OUTPUT).key("thumbnail/photo.webp").send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slice_cut_off_half_way_has_no_manifest_until_its_retry() {
    let s = Server::start().await;
    let proxy = FaultProxy::start(s.addr).await;
    let store = s3::store_for(&proxy.url(), s3::fast_options()).await;
    s.put(SOURCE, "slice/photo.jpg", fixtures::photo_small().to_vec(), None).await;
    let f = Function::new(lambda::config("slice", &[("IMGFN_PARAMS", r#"{"rows":3,"cols":3}"#)]), store);
    let event = || lambda::event("slice", &[(SOURCE, "slice/photo.jpg")]);
    // Two tiles go through, then every PUT fails.
    proxy.set(Fault::InternalError, Only::PutsAfter(2));
    assert!(f.handle(event()).await.is_err());
    let written = outputs(&s).await;
    assert!(!written.iter().any(|k| k.ends_with("manifest.json")), "no manifest: {written:?}");
    proxy.clear();
    f.handle(event()).await.unwrap();
    let mut expected: Vec<String> =
        (0..3).flat_map(|r| (0..3).map(move |c| format!("slice/photo/r{r}-c{c}.jpg"))).collect();
    expected.push("slice/photo/manifest.json".into());
    expected.sort();
    assert_eq!(outputs(&s).await, expected, "every tile once, then the manifest");
}

/// A request of `route` as API Gateway would hand it to the function, with a deadline.
fn request(route: &str, body: Value, path_key: Option<&str>) -> lambda_http::Request {
    let text =
        std::fs::read_to_string(imgfn_test_support::tools::root().join(format!("events/{route}.json")))
            .unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["body"] = Value::from(body.to_string());
    event["isBase64Encoded"] = Value::from(false);
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "alice"}, "scopes": null}});
    if let Some(key) = path_key {
        event["pathParameters"] = json!({ "key": key });
    }
    let mut context = lambda_runtime::Context::default();
    context.request_id = "fault-test".into();
    context.deadline = deadline_ms(BUDGET);
    lambda_http::request::from_str(&event.to_string()).unwrap().with_lambda_context(context)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_503_with_retry_after_then_recovers() {
    let s = Server::start().await;
    let proxy = FaultProxy::start(s.addr).await;
    let store = s3::store_for(&proxy.url(), s3::fast_options()).await;
    s.put(SOURCE, "uploads/alice/photo.jpg", fixtures::photo_small().to_vec(), None).await;
    s.put(OUTPUT, "processed/alice/x.webp", b"RIFF".to_vec(), None).await;
    let api = Api::new(api::config(&[]), store);
    let process = json!({"key": "uploads/alice/photo.jpg", "ops": [{"op": "thumbnail", "width": 100}]});
    for (name, fault, only) in faults() {
        proxy.set(fault, only);
        let started = Instant::now();
        let r = api.handle(Route::Process, request("api-process", process.clone(), None)).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "{name}: {:?}", r.body());
        assert_eq!(r.headers()["retry-after"], "2", "{name}");
        assert!(
            took < BUDGET - DEADLINE_MARGIN / 2 + Duration::from_secs(1),
            "{name}: answered after {took:?}"
        );
        let images = api
            .handle(Route::Images, request("api-images", json!(null), Some("processed/alice/x.webp")))
            .await;
        let expected = if only == Only::Method("PUT") || only == Only::Method("GET") { 302 } else { 503 };
        assert_eq!(images.status(), expected, "{name}: GET /images only HEADs");
        let processed: Vec<String> = outputs(&s).await.into_iter().filter(|k| k.ends_with(".jpg")).collect();
        assert!(processed.is_empty(), "{name}: wrote {processed:?}");
        proxy.clear();
        let r = api.handle(Route::Process, request("api-process", process.clone(), None)).await;
        assert_eq!(r.status(), 200, "{name}: {:?}", r.body());
        let answer: Value = serde_json::from_slice(r.body().as_ref()).unwrap();
        assert_eq!(answer["width"], 100, "{name}");
        let key = answer["output_key"].as_str().unwrap().to_owned();
        assert!(s.get(OUTPUT, &key).await.is_some(), "{name}");
        s.sdk.delete_object().bucket(OUTPUT).key(&key).send().await.unwrap();
    }
}
