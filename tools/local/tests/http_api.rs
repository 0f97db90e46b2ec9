//! The HTTP API over real HTTP against a real S3 server (s3s-fs, SigV4-checking, on
//! 127.0.0.1): the three steps end to end, presigned-URL enforcement by S3 itself, every error
//! code, scoping between users, caching, slicing, CORS, and the API Gateway sample events.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use image::GenericImageView;
use imgfn_lambda::api::{Api, Route};
use imgfn_test_support::api::{put_presigned, send, Stack};
use imgfn_test_support::{fixtures, lambda, s3, OUTPUT, SOURCE};
use serde_json::{json, Value};

fn photo() -> &'static [u8] {
    fixtures::photo_small() // 640x480 JPEG
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_upload_process_download() {
    let s = Stack::start(&[]).await;

    // 1. A signed upload target, then a real PUT of a JPEG straight to S3.
    let body =
        json!({"content_type": "image/jpeg", "content_length": photo().len(), "filename": "beach ü.jpg"});
    let upload = s.post("/uploads", Some("alice"), &body.to_string()).await;
    assert_eq!(upload.status, 201, "{}", upload.text());
    let u = upload.json();
    let key = u["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("uploads/alice/") && key.ends_with(".jpg"), "{key}");
    assert_eq!(u["method"], "PUT");
    let url = u["upload_url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Expires=60"), "{url}");
    let signed = url.split("X-Amz-SignedHeaders=").nth(1).unwrap().split('&').next().unwrap();
    assert!(
        signed.contains("content-length")
            && signed.contains("content-type")
            && signed.contains("if-none-match"),
        "{signed}"
    );
    assert_eq!(u["headers"]["content-type"], "image/jpeg");
    assert!(u["expires_at"].as_str().unwrap().ends_with('Z'));
    let put = put_presigned(&u, photo(), &[]).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let stored = s.s3.get(SOURCE, &key).await.unwrap();
    assert_eq!(stored.body, photo());
    assert_eq!(stored.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(stored.metadata.get("imgfn-filename").map(String::as_str), Some("beach%20%C3%BC%2Ejpg"));

    // 2. Process it.
    let gets_before = s.s3.gets(SOURCE, &key);
    let request = json!({"key": key, "ops": [{"op": "resize", "width": 320, "height": 320}], "output": {"format": "webp"}});
    let processed = s.post("/process", Some("alice"), &request.to_string()).await;
    assert_eq!(processed.status, 200, "{}", processed.text());
    let p = processed.json();
    let output_key = p["output_key"].as_str().unwrap().to_owned();
    assert!(output_key.starts_with("processed/alice/") && output_key.ends_with(".webp"), "{output_key}");
    assert_eq!((p["width"].as_u64(), p["height"].as_u64()), (Some(320), Some(240)));
    assert_eq!((p["format"].as_str(), p["cached"].as_bool()), (Some("webp"), Some(false)));

    // 3. Download from the presigned URL and decode.
    let download = send("GET", p["url"].as_str().unwrap(), &[], Vec::new()).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body.len() as u64, p["bytes"].as_u64().unwrap());
    let img = image::load_from_memory_with_format(&download.body, image::ImageFormat::WebP).unwrap();
    assert_eq!(img.dimensions(), (320, 240));

    // The same request again: the stored result, not recomputed (the source is not read again).
    let gets = s.s3.gets(SOURCE, &key);
    assert_eq!(gets, gets_before + 1, "processing reads the source once");
    let again = s.post("/process", Some("alice"), &request.to_string()).await.json();
    assert_eq!(
        (again["output_key"].as_str(), again["cached"].as_bool()),
        (Some(output_key.as_str()), Some(true))
    );
    assert_eq!((again["width"].as_u64(), again["bytes"].as_u64()), (Some(320), p["bytes"].as_u64()));
    assert_eq!(s.s3.gets(SOURCE, &key), gets, "a repeat must not fetch the source");
    // Same pipeline with keys in another order: same output.
    let reordered = json!({"output": {"format": "webp"}, "ops": [{"height": 320, "width": 320, "op": "resize"}], "key": key});
    assert_eq!(s.post("/process", Some("alice"), &reordered.to_string()).await.json()["cached"], true);

    // GET /images/{key}: a redirect to a presigned GET.
    let redirect = s.get(&format!("/images/{output_key}"), Some("alice")).await;
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let location = redirect.header("location").unwrap().to_owned();
    let followed = send("GET", &location, &[], Vec::new()).await;
    assert_eq!((followed.status, followed.body.clone()), (200, download.body.clone()));

    // Another user can neither process nor download alice's objects: 404, like a missing key.
    let bob = s.post("/process", Some("bob"), &request.to_string()).await;
    bob.assert_error(404, "not_found", None);
    s.get(&format!("/images/{output_key}"), Some("bob")).await.assert_error(404, "not_found", None);
    s.get(&format!("/images/{output_key}"), None).await.assert_error(404, "not_found", None);
    let missing = json!({"key": key.replace("alice", "bob"), "ops": []});
    let missing = s.post("/process", Some("bob"), &missing.to_string()).await;
    missing.assert_error(404, "not_found", None);
    s.get("/images/processed/alice/nothing.webp", Some("alice")).await.assert_error(404, "not_found", None);
    assert_eq!(s.s3.keys(OUTPUT).await, [output_key]);
}

/// A phone's HEIC (under either content type) and an AVIF go through the same three steps:
/// uploaded to a signed URL, processed (to every output format; with none asked, HEIC becomes
/// JPEG and AVIF stays AVIF), downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heic_and_avif_uploads_are_processed_to_every_format() {
    let s = Stack::start(&[]).await;
    let heic = fixtures::image_ops_fixture("heic/texture_8.heic");
    let avif = fixtures::image_ops_fixture("avif/grid_2x2.avif");
    for (content_type, bytes, size, default) in [
        ("image/heic", &heic, (256, 192), "jpeg"),
        ("image/heif", &heic, (256, 192), "jpeg"),
        ("image/avif", &avif, (128, 128), "avif"),
    ] {
        let key = s.upload(Some("dana"), content_type, bytes).await;
        assert!(key.ends_with(if content_type == "image/avif" { ".avif" } else { ".heic" }), "{key}");
        assert_eq!(s.s3.get(SOURCE, &key).await.unwrap().content_type.as_deref(), Some(content_type));
        let formats = image_ops::OutputFormat::ALL.map(|f| Some(f.name())).into_iter().chain([None]);
        for format in formats {
            let output = format.map_or(json!({}), |f| json!({"format": f}));
            let request = json!({"key": key, "ops": [{"op": "resize", "width": 64}], "output": output});
            let r = s.post("/process", Some("dana"), &request.to_string()).await;
            assert_eq!(r.status, 200, "{content_type} to {format:?}: {}", r.text());
            let p = r.json();
            let written = p["format"].as_str().unwrap();
            assert_eq!(written, format.unwrap_or(default), "{content_type}");
            let body = send("GET", p["url"].as_str().unwrap(), &[], Vec::new()).await.body;
            let expected = (64, 64 * size.1 / size.0);
            assert_eq!((p["width"].as_u64(), p["height"].as_u64()), (Some(expected.0), Some(expected.1)));
            if written == "avif" {
                assert_eq!(body.get(4..12), Some(&b"ftypavif"[..]), "{content_type}");
            } else {
                let img = image::load_from_memory(&body)
                    .unwrap_or_else(|e| panic!("{content_type} {written}: {e}"));
                assert_eq!(u64::from(img.width()), expected.0, "{content_type} {written}");
            }
        }
    }
}

/// An iPhone-style HEIC (a grid, turned by `irot`, in Display P3) processed with `keep_icc`:
/// the WebP comes out upright and carries the phone's profile; without it, no profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_photo_keeps_its_display_p3_profile_on_request() {
    let s = Stack::start(&[]).await;
    let heic = fixtures::image_ops_fixture("heic/iphone_style.heic");
    let at = heic.windows(8).position(|w| w == b"colrprof").expect("the fixture has a profile");
    let size = u32::from_be_bytes(heic[at - 4..at].try_into().unwrap()) as usize;
    let profile = heic[at + 8..at - 4 + size].to_vec();
    let key = s.upload(Some("dana"), "image/heic", &heic).await;
    for keep in [true, false] {
        let request = json!({"key": key, "ops": [{"op": "thumbnail", "width": 64}],
                             "output": {"format": "webp", "keep_icc": keep}});
        let r = s.post("/process", Some("dana"), &request.to_string()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let p = r.json();
        assert!(p["height"].as_u64() > p["width"].as_u64(), "upright: {p}");
        let body = send("GET", p["url"].as_str().unwrap(), &[], Vec::new()).await.body;
        let mut decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&body)).unwrap();
        let icc = image::ImageDecoder::icc_profile(&mut decoder).unwrap();
        assert_eq!(icc, keep.then(|| profile.clone()), "keep_icc: {keep}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_puts_that_differ_from_what_was_signed() {
    let s = Stack::start(&[]).await;
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len()});
    let u = s.post("/uploads", None, &body.to_string()).await.json();
    let key = u["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/~public/"), "{key}");

    // Another size (one byte more, one byte less), another content type: 403 from S3.
    let mut longer = photo().to_vec();
    longer.push(0);
    assert_eq!(put_presigned(&u, &longer, &[]).await.status, 403);
    assert_eq!(put_presigned(&u, &photo()[1..], &[]).await.status, 403);
    assert_eq!(put_presigned(&u, photo(), &[("content-type", Some("image/png"))]).await.status, 403);
    assert!(s.s3.get(SOURCE, key).await.is_none());
    assert_eq!(put_presigned(&u, photo(), &[]).await.status, 200);

    // Params for the S3 trigger are signed into the metadata: dropping or changing them is refused.
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len(), "op": "thumbnail",
                      "params": {"width": 64, "height": 64, "output": {"format": "png"}, "text": "ü"}});
    let refused = s.post("/uploads", None, &body.to_string()).await;
    refused.assert_error(400, "invalid_params", Some("params.text"));
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len(), "op": "watermark",
                      "params": {"text": "© ACME"}});
    let u = s.post("/uploads", None, &body.to_string()).await.json();
    let key = u["key"].as_str().unwrap();
    assert!(key.starts_with("watermark/~public/"), "{key}");
    let meta = u["headers"]["x-amz-meta-imgfn-params"].as_str().unwrap();
    assert_eq!(meta, r#"{"text":"\u00a9 ACME"}"#);
    assert_eq!(put_presigned(&u, photo(), &[("x-amz-meta-imgfn-params", None)]).await.status, 403);
    let other = Some(r#"{"text":"other"}"#);
    assert_eq!(put_presigned(&u, photo(), &[("x-amz-meta-imgfn-params", other)]).await.status, 403);
    assert_eq!(put_presigned(&u, photo(), &[]).await.status, 200);
    let stored = s.s3.get(SOURCE, key).await.unwrap();
    assert_eq!(stored.metadata.get("imgfn-params").map(String::as_str), Some(meta));
    // What the watermark function will read back is what was validated.
    let f = s.s3.function("watermark", &[("IMGFN_PARAMS", r#"{"text":"default"}"#)]);
    f.handle(lambda::event("watermark", &[(SOURCE, key)])).await.unwrap();
    let out_key = key.to_owned();
    assert!(s.s3.get(OUTPUT, &out_key).await.is_some(), "{:?}", s.s3.keys(OUTPUT).await);
    // ... and its owner can download that output through the API.
    assert_eq!(s.get(&format!("/images/{out_key}"), None).await.status, 302);
}

/// One upload URL, one object: the URL signs `If-None-Match: *`, so a replay is refused by S3
/// (412) instead of overwriting the object and firing its trigger again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_url_creates_its_object_once() {
    let s = Stack::start(&[]).await;
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len(), "op": "thumbnail"});
    let u = s.post("/uploads", None, &body.to_string()).await.json();
    assert_eq!(u["headers"]["if-none-match"], "*", "{u}");
    assert_eq!(put_presigned(&u, photo(), &[]).await.status, 200);
    let replay = put_presigned(&u, photo(), &[]).await;
    assert_eq!(replay.status, 412, "{}", replay.text());
    // Leaving the condition out breaks the signature.
    assert_eq!(put_presigned(&u, photo(), &[("if-none-match", None)]).await.status, 403);
    let stored = s.s3.get(SOURCE, u["key"].as_str().unwrap()).await.unwrap();
    assert_eq!(stored.body, photo());
}

/// Deployed with an authorizer (the default): a request that reaches a function without
/// claims is refused, never given a shared scope; with claims, the caller's own scope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_identity_the_default_api_answers_401() {
    let s = Stack::start(&[("IMGFN_API_ACCESS", "authorizer")]).await;
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len()}).to_string();
    s.post("/uploads", None, &body).await.assert_error(401, "unauthorized", None);
    s.post("/process", None, &json!({"key": "uploads/~public/x.jpg"}).to_string()).await.assert_error(
        401,
        "unauthorized",
        None,
    );
    s.get("/images/processed/~public/x.webp", None).await.assert_error(401, "unauthorized", None);
    let r = s.post("/uploads", Some("alice"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["key"].as_str().unwrap().starts_with("uploads/alice/"));
    // A sub that spells the open scope gets its own, encoded one.
    let r = s.post("/uploads", Some("~public"), &body).await;
    assert!(r.json()["key"].as_str().unwrap().starts_with("uploads/~7Epublic/"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_upload_url_is_refused() {
    let s = Stack::start(&[("IMGFN_UPLOAD_EXPIRES", "1")]).await;
    let body = json!({"content_type": "image/jpeg", "content_length": photo().len()});
    let u = s.post("/uploads", None, &body.to_string()).await.json();
    assert!(u["upload_url"].as_str().unwrap().contains("X-Amz-Expires=1&"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let put = put_presigned(&u, photo(), &[]).await;
    assert_eq!(put.status, 403, "{}", put.text());
    assert!(s.s3.get(SOURCE, u["key"].as_str().unwrap()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_from_real_requests() {
    let s = Stack::start(&[("IMGFN_MAX_UPLOAD_BYTES", "1000000")]).await;
    let uploads = |body: &str| {
        let body = body.to_owned();
        let s = &s;
        async move { s.post("/uploads", Some("carol"), &body).await }
    };
    uploads(r#"{"content_type": "image/jpeg", "#).await.assert_error(400, "malformed_request", None);
    uploads("").await.assert_error(400, "malformed_request", None);
    uploads("[]").await.assert_error(400, "malformed_request", None);
    uploads(r#"{"content_type":"image/jpeg","content_length":10,"colour":1}"#).await.assert_error(
        400,
        "invalid_params",
        Some("colour"),
    );
    uploads(r#"{"content_type":"image/jpeg"}"#).await.assert_error(
        400,
        "invalid_params",
        Some("content_length"),
    );
    uploads(r#"{"content_type":"image/jpeg","content_length":-1}"#).await.assert_error(
        400,
        "invalid_params",
        Some("content_length"),
    );
    uploads(r#"{"content_type":"image/svg+xml","content_length":10}"#).await.assert_error(
        415,
        "unsupported_format",
        None,
    );
    // TIFF is refused, naming what is accepted (HEIC under both of its names, AVIF).
    let tiff = uploads(r#"{"content_type":"image/tiff","content_length":10}"#).await;
    tiff.assert_error(415, "unsupported_format", None);
    assert!(tiff.text().contains("image/avif, image/heic, image/heif"), "{}", tiff.text());
    uploads(r#"{"content_type":"image/png","content_length":0}"#).await.assert_error(
        415,
        "unsupported_format",
        None,
    );
    uploads(r#"{"content_type":"image/png","content_length":1000001}"#).await.assert_error(
        413,
        "input_too_large",
        None,
    );
    uploads(r#"{"content_type":"image/png","content_length":10,"op":"no-such-op"}"#).await.assert_error(
        400,
        "invalid_params",
        Some("op"),
    );
    uploads(r#"{"content_type":"image/png","content_length":10,"op":"thumbnail","params":{"width":0,"height":10}}"#)
        .await
        .assert_error(400, "invalid_params", Some("params.width"));
    uploads(r#"{"content_type":"image/png","content_length":10,"params":{"width":10}}"#).await.assert_error(
        400,
        "invalid_params",
        Some("params"),
    );

    let jpeg = s.upload(Some("carol"), "image/jpeg", photo()).await;
    let process = |body: Value| {
        let s = &s;
        async move { s.post("/process", Some("carol"), &body.to_string()).await }
    };
    process(json!({"key": jpeg, "ops": [{"op": "no-such-op"}]})).await.assert_error(
        400,
        "invalid_params",
        Some("ops[0].op"),
    );
    process(json!({"key": jpeg, "ops": [{"op": "resize", "widht": 3}]})).await.assert_error(
        400,
        "invalid_params",
        Some("ops[0].widht"),
    );
    process(json!({"key": jpeg, "ops": [{"op": "resize", "width": 0}]})).await.assert_error(
        400,
        "invalid_params",
        Some("ops[0].width"),
    );
    process(json!({"key": jpeg, "output": {"quality": 0}})).await.assert_error(
        400,
        "invalid_params",
        Some("output.quality"),
    );
    process(json!({"key": jpeg, "extra": 1})).await.assert_error(400, "invalid_params", Some("extra"));
    process(json!({"ops": []})).await.assert_error(400, "invalid_params", Some("key"));
    process(json!({"key": 3})).await.assert_error(400, "invalid_params", Some("key"));
    process(json!({"key": "uploads/carol/none.jpg"})).await.assert_error(404, "not_found", None);
    process(json!({"key": "elsewhere/x.jpg"})).await.assert_error(404, "not_found", None);
    // Params are validated before anything is fetched: a bad op on a missing key is a 400.
    process(json!({"key": "uploads/carol/none.jpg", "ops": [{"op": "qr"}]})).await.assert_error(
        400,
        "invalid_params",
        Some("ops[0].data"),
    );

    // A corrupt upload (JPEG content type, not a JPEG) and an unsupported one (SVG bytes).
    let corrupt = s.upload(Some("carol"), "image/jpeg", &photo()[..2000]).await;
    process(json!({"key": corrupt})).await.assert_error(422, "corrupt_image", None);
    let svg = s.upload(Some("carol"), "image/png", b"<svg xmlns='http://www.w3.org/2000/svg'/>").await;
    process(json!({"key": svg})).await.assert_error(415, "unsupported_format", None);
    // An empty object (not uploadable through the API, but S3 allows it).
    s.s3.put(SOURCE, "uploads/carol/empty.jpg", Vec::new(), None).await;
    process(json!({"key": "uploads/carol/empty.jpg"})).await.assert_error(415, "unsupported_format", None);
    // An object over the byte limit is refused from HeadObject alone.
    s.s3.put(SOURCE, "uploads/carol/big.jpg", vec![0xFF; 26 * 1024 * 1024], None).await;
    process(json!({"key": "uploads/carol/big.jpg"})).await.assert_error(413, "input_too_large", None);
    assert_eq!(s.s3.gets(SOURCE, "uploads/carol/big.jpg"), 0);
    // Unknown routes, as API Gateway would.
    s.get("/nowhere", None).await.assert_error(404, "not_found", None);
    s.get("/uploads", None).await.assert_error(404, "not_found", None);
    assert!(s.s3.keys(OUTPUT).await.is_empty());

    // Too many pixels for the configured limit: 422.
    let small = Stack::with_store(
        imgfn_test_support::Server::start().await,
        s.s3.store.clone(),
        &[("IMGFN_MAX_PIXELS", "100000")],
    )
    .await;
    let r = small.post("/process", Some("carol"), &json!({"key": jpeg}).to_string()).await;
    r.assert_error(422, "too_many_pixels", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_failures_are_503_with_retry_after_or_500_without_internals() {
    // S3 answering 503 SlowDown to everything.
    let (endpoint, count) = s3::failing_server().await;
    let store = s3::store_for(&endpoint, s3::fast_options()).await;
    let s = Stack::with_store(imgfn_test_support::Server::start().await, store, &[]).await;
    let r = s.post("/process", None, &json!({"key": "uploads/~public/x.jpg"}).to_string()).await;
    r.assert_error(503, "unavailable", None);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // S3 down: connection refused.
    let store = s3::store_for(&s3::dead_endpoint().await, s3::fast_options()).await;
    let s = Stack::with_store(imgfn_test_support::Server::start().await, store, &[]).await;
    let r = s.get("/images/processed/~public/x.webp", None).await;
    r.assert_error(503, "unavailable", None);

    // Wrong credentials (AccessDenied: our misconfiguration): 500, no internals in the body.
    let server = imgfn_test_support::Server::start().await;
    let store = s3::store_with_secret(&server.endpoint(), "wrong", s3::fast_options());
    let s = Stack::with_store(server, store, &[]).await;
    let r = s.post("/process", None, &json!({"key": "uploads/~public/x.jpg"}).to_string()).await;
    r.assert_error(500, "internal", None);
    assert_eq!(r.json()["error"]["message"], "something went wrong");
    assert!(!r.text().contains("imgfn-source") && !r.text().contains("S3"), "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slicing_returns_tiles_and_the_manifest() {
    let s = Stack::start(&[]).await;
    let key = s.upload(Some("dave"), "image/jpeg", photo()).await;
    let request =
        json!({"key": key, "ops": [{"op": "slice", "rows": 2, "cols": 2}], "output": {"format": "png"}});
    let r = s.post("/process", Some("dave"), &request.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = r.json();
    let manifest_key = p["manifest_key"].as_str().unwrap();
    assert!(manifest_key.starts_with("processed/dave/") && manifest_key.ends_with("/manifest.json"));
    assert_eq!(
        (p["rows"].as_u64(), p["cols"].as_u64(), p["cached"].as_bool()),
        (Some(2), Some(2), Some(false))
    );
    let tiles = p["tiles"].as_array().unwrap();
    assert_eq!(tiles.len(), 4);
    for tile in tiles {
        let got = send("GET", tile["url"].as_str().unwrap(), &[], Vec::new()).await;
        assert_eq!(got.status, 200);
        let img = image::load_from_memory_with_format(&got.body, image::ImageFormat::Png).unwrap();
        assert_eq!(img.dimensions(), (320, 240));
        assert!(tile["key"].as_str().unwrap().starts_with(manifest_key.trim_end_matches("manifest.json")));
    }
    let manifest = send("GET", p["url"].as_str().unwrap(), &[], Vec::new()).await;
    let manifest: Value = serde_json::from_slice(&manifest.body).unwrap();
    assert_eq!(manifest["tiles"].as_array().unwrap().len(), 4);
    let again = s.post("/process", Some("dave"), &request.to_string()).await.json();
    assert_eq!((again["cached"].as_bool(), again["tiles"].as_array().map(Vec::len)), (Some(true), Some(4)));
    assert_eq!(s.s3.gets(SOURCE, &key), 1);

    // A stored manifest whose tile keys point elsewhere (another user's upload) is not
    // believed: its tiles are not presigned; the result is computed and stored again.
    let mut forged = manifest.clone();
    forged["tiles"][0]["key"] = Value::from(key.replace("dave", "erin"));
    s.s3.put(imgfn_test_support::OUTPUT, manifest_key, forged.to_string().into_bytes(), None).await;
    let third = s.post("/process", Some("dave"), &request.to_string()).await.json();
    assert_eq!(third["cached"].as_bool(), Some(false), "{third}");
    let prefix = manifest_key.trim_end_matches("manifest.json");
    assert!(third["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["key"].as_str().unwrap().starts_with(prefix)));
}

/// `.`/`..`/empty segments and control characters in a key or an asset name are refused in one
/// place, on every path, before S3 is asked anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_walk_out_of_their_prefix_are_refused_everywhere() {
    let s = Stack::start(&[]).await;
    let own = s.upload(Some("alice"), "image/jpeg", photo()).await;
    let process = |body: Value| {
        let s = &s;
        async move { s.post("/process", Some("alice"), &body.to_string()).await }
    };
    for key in ["uploads/alice/../bob/x.jpg", "uploads/alice//x.jpg", "uploads/alice/x\n.jpg", "../x.jpg"] {
        process(json!({"key": key})).await.assert_error(400, "invalid_params", Some("key"));
    }
    for asset in ["assets/../uploads/bob/x.jpg", "assets/./logo.png", "assets//logo.png"] {
        let body = json!({"key": own, "ops": [{"op": "watermark", "image": asset}]});
        process(body).await.assert_error(400, "invalid_params", Some("ops[0].image"));
    }
    let font = json!({"key": own, "ops": [{"op": "watermark", "text": "x", "font": "assets/../../imgfn-output/x.ttf"}]});
    process(font).await.assert_error(400, "invalid_params", Some("ops[0].font"));
    for path in [
        "/images/processed/alice/../bob/x.webp",
        "/images/processed/alice//x.webp",
        "/images/processed/alice/%0Ax.webp",
    ] {
        s.get(path, Some("alice")).await.assert_error(404, "not_found", None);
    }
    let before = s.s3.log.lock().unwrap().len();
    // The trigger: a key that would write outside its prefix is skipped; nothing is asked of S3.
    let f = s.s3.function("thumbnail", &[]);
    for key in
        ["thumbnail/../../imgfn-source/watermark/x.jpg", "thumbnail/../../../x.jpg", "thumbnail/a//b.jpg"]
    {
        f.handle(lambda::event("thumbnail", &[(SOURCE, key)])).await.unwrap();
    }
    assert_eq!(s.s3.log.lock().unwrap().len(), before, "no request reached S3");
    assert!(s.s3.keys(imgfn_test_support::OUTPUT).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_allowed_origins_only() {
    let s = Stack::start(&[("IMGFN_CORS_ORIGINS", "https://app.example")]).await;
    let preflight = |origin: &'static str| {
        let url = s.url("/uploads");
        async move {
            let headers =
                [("origin", origin.to_owned()), ("access-control-request-method", "POST".to_owned())];
            send("OPTIONS", &url, &headers, Vec::new()).await
        }
    };
    let ok = preflight("https://app.example").await;
    assert_eq!(ok.status, 204);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(ok.header("access-control-allow-methods").unwrap().contains("POST"));
    let evil = preflight("https://evil.example").await;
    assert_eq!((evil.status, evil.header("access-control-allow-origin")), (204, None));
    let body = json!({"content_type": "image/gif", "content_length": 10}).to_string();
    let headers =
        [("origin", "https://app.example".to_owned()), ("content-type", "application/json".to_owned())];
    let r = send("POST", &s.url("/uploads"), &headers, body.into_bytes()).await;
    assert_eq!((r.status, r.header("access-control-allow-origin")), (201, Some("https://app.example")));
}

/// `events/api-*.json` (API Gateway HTTP API payloads, also used by `cargo lambda invoke`)
/// drive the handlers directly, parsed by lambda_http as in Lambda.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_gateway_sample_events_drive_the_handlers() {
    // As deployed: with an authorizer.
    let s =
        Stack::start(&[("IMGFN_CORS_ORIGINS", "http://localhost:3000"), ("IMGFN_API_ACCESS", "authorizer")])
            .await;
    let api: &Api = &s.api;
    let load = |name: &str| {
        let path = format!("{}/../../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        // The payload is an API Gateway v2 request...
        let typed: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_str(&text).unwrap();
        assert_eq!(typed.version.as_deref(), Some("2.0"));
        // ... and lambda_http turns it into the request the handler gets.
        lambda_http::request::from_str(&text).unwrap()
    };
    let body = |r: &lambda_http::Response<lambda_http::Body>| -> Value {
        serde_json::from_slice(r.body().as_ref()).unwrap()
    };

    // POST /uploads as the JWT subject "sample-user"; CORS for the sample's origin.
    let r = api.handle(Route::Uploads, load("api-uploads")).await;
    assert_eq!(r.status(), 201, "{:?}", r.body());
    assert!(body(&r)["key"].as_str().unwrap().starts_with("uploads/sample-user/"));
    assert_eq!(r.headers()["access-control-allow-origin"], "http://localhost:3000");

    // POST /process as the JWT subject "sample-user", on the key the sample names.
    let r = api.handle(Route::Process, load("api-process")).await;
    assert_eq!(r.status(), 404, "the sample's source is not uploaded yet");
    s.s3.put(SOURCE, "uploads/sample-user/sample.jpg", photo().to_vec(), None).await;
    let r = api.handle(Route::Process, load("api-process")).await;
    assert_eq!(r.status(), 200, "{:?}", r.body());
    let p = body(&r);
    assert!(p["output_key"].as_str().unwrap().starts_with("processed/sample-user/"));
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64(), p["format"].as_str()),
        (Some(320), Some(240), Some("webp"))
    );

    // GET /images/{key+}: 404, then 302 once the object exists.
    let r = api.handle(Route::Images, load("api-images")).await;
    assert_eq!(r.status(), 404);
    s.s3.put(OUTPUT, "processed/sample-user/sample.webp", b"RIFF".to_vec(), None).await;
    let r = api.handle(Route::Images, load("api-images")).await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("/processed/sample-user/sample.webp?"));
}

/// The file's DQT segments (quantisation tables), as written.
fn dqt(jpeg: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if jpeg[i + 1] == 0xDB {
            out.push(&jpeg[i + 4..i + 2 + len]);
        }
        i += 2 + len;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermark_at_the_sources_quality_keeps_its_tables() {
    let s = Stack::start(&[]).await;
    let key = s.upload(Some("dana"), "image/jpeg", photo()).await;
    let request = json!({"key": key, "ops": [{"op": "qr-overlay", "data": "https://example.com/d", "size": 120}],
                         "output": {"quality": "source"}});
    let processed = s.post("/process", Some("dana"), &request.to_string()).await;
    assert_eq!(processed.status, 200, "{}", processed.text());
    let p = processed.json();
    assert_eq!(p["format"], "jpeg");
    let out = s.s3.get(OUTPUT, p["output_key"].as_str().unwrap()).await.unwrap().body;
    assert_eq!(dqt(&out), dqt(photo()), "the source's quantisation tables");
    let img = image::load_from_memory_with_format(&out, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(img.dimensions(), (640, 480));
    // Anything else is refused with the field named.
    let bad = json!({"key": key, "output": {"quality": "best"}});
    s.post("/process", Some("dana"), &bad.to_string()).await.assert_error(
        400,
        "invalid_params",
        Some("output.quality"),
    );
}
