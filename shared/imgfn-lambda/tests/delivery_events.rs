//! The delivery functions' sample events (`events/render.json`, `events/refresh.json`, also
//! used by `cargo lambda invoke`), parsed as Lambda parses them and handled by the real
//! handlers against a real S3-compatible server: the Function URL request CloudFront sends on a
//! miss renders and stores its rendition; the EventBridge event of the source's overwrite
//! deletes it again.
#![allow(clippy::unwrap_used)]

use imgfn_lambda::api::render::{CACHE_HEADER, REQUEST_HEADER};
use imgfn_lambda::api::{Api, Route};
use imgfn_lambda::refresh::Refresh;
use imgfn_test_support::{api, fixtures, tools, Server, OUTPUT, SOURCE};
use serde_json::Value;

fn event(name: &str) -> String {
    std::fs::read_to_string(tools::root().join(format!("events/{name}.json"))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_sample_events_drive_the_handlers() {
    // render.json: a Lambda Function URL request (payload 2.0, IAM-authorised: CloudFront's
    // origin access control), as lambda_http hands it to the handler.
    let text = event("render");
    let raw: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw["version"], "2.0");
    assert_eq!(raw["routeKey"], "$default", "a Function URL, not an API route");
    assert!(raw["requestContext"]["authorizer"]["iam"].is_object(), "signed by origin access control");
    let request = raw["headers"][REQUEST_HEADER].as_str().unwrap().to_owned();
    let uri = raw["rawPath"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("/r/") && request.starts_with("/v1/"), "{uri} for {request}");
    let req = || lambda_http::request::from_str(&text).unwrap();
    assert_eq!(req().uri().path(), uri);

    let s = Server::start().await;
    let source = "originals/alice/beach.jpg";
    assert!(request.starts_with(&format!("/v1/{source}/")), "{request}");
    let api = Api::new(api::config(&[("IMGFN_URL_KEYS", &api::sample_url_keys(&request))]), s.store.clone());

    let r = api.handle(Route::Render, req()).await;
    assert_eq!(r.status(), 404, "the sample's source is not there yet: {:?}", r.body());
    assert_eq!(r.headers()["cache-control"], "no-store");

    s.put(SOURCE, source, fixtures::photo_small().to_vec(), None).await;
    let r = api.handle(Route::Render, req()).await;
    assert_eq!(r.status(), 200, "{:?}", r.body());
    assert_eq!(r.headers()[CACHE_HEADER], "miss");
    assert!(r.headers()["etag"].to_str().unwrap().starts_with('"'));
    let stored: Vec<String> = s.keys(OUTPUT).await;
    // S3 decodes the URI CloudFront asks for into the key.
    let key = percent_encoding::percent_decode_str(uri.trim_start_matches('/')).decode_utf8().unwrap();
    assert_eq!(stored, [key.as_ref()], "stored where CloudFront asks S3 for it");
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert!(r.body().as_ref().starts_with(b"RIFF"), "a WebP");

    // A tampered request never renders.
    let tampered = text.replace(&request, &request.replace("width=800", "width=801"));
    assert_ne!(tampered, text);
    let r = api.handle(Route::Render, lambda_http::request::from_str(&tampered).unwrap()).await;
    assert_eq!(r.status(), 403, "{:?}", r.body());

    // refresh.json: EventBridge's "Object Created" for the same source, handled as the refresh
    // function handles it.
    let refresh: Value = serde_json::from_str(&event("refresh")).unwrap();
    assert_eq!(
        (refresh["source"].as_str(), refresh["detail-type"].as_str()),
        (Some("aws.s3"), Some("Object Created"))
    );
    assert_eq!(refresh["detail"]["bucket"]["name"], SOURCE);
    assert_eq!(refresh["detail"]["object"]["key"], source);
    let f = Refresh::new(&api::config(&[]), s.store.clone());
    let done = f.handle(&refresh).await.unwrap();
    assert_eq!((done.key.as_str(), done.deleted), (source, 1));
    assert!(s.keys(OUTPUT).await.is_empty(), "the stale rendition is gone");
    // The next request renders the new image.
    let r = api.handle(Route::Render, req()).await;
    assert_eq!((r.status().as_u16(), r.headers()[CACHE_HEADER].to_str().unwrap()), (200, "miss"));
}
