//! The local S3 endpoint is as strict as S3 where a user would notice: unsigned `x-amz-*`
//! headers on a signed request, listings with `encoding-type=url`, keys it cannot store as S3
//! would, and a folder asked for as an object.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::EncodingType;
use imgfn_test_support::api::send;
use imgfn_test_support::{fixtures, Server, SOURCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_put_with_an_unsigned_amz_header_is_refused() {
    let s = Server::start().await;
    let config = PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let presigned = s
        .sdk
        .put_object()
        .bucket(SOURCE)
        .key("thumbnail/u.jpg")
        .content_type("image/jpeg")
        .presigned(config)
        .await
        .unwrap();
    let url = presigned.uri().to_owned();
    let signed = vec![("content-type", "image/jpeg".to_owned())];
    let mut forged = signed.clone();
    forged.push(("x-amz-meta-imgfn-params", r#"{"width":5000}"#.to_owned()));
    let r = send("PUT", &url, &forged, fixtures::photo_small().to_vec()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("<Code>AccessDenied</Code>"), "{}", r.text());
    assert!(
        r.text().contains("<HeadersNotSigned>x-amz-meta-imgfn-params</HeadersNotSigned>"),
        "{}",
        r.text()
    );
    assert!(s.get(SOURCE, "thumbnail/u.jpg").await.is_none(), "nothing was stored");
    let r = send("PUT", &url, &signed, fixtures::photo_small().to_vec()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_encode_keys_when_asked_as_s3_does() {
    let s = Server::start().await;
    for key in ["out/a+b.webp", "out/a b.webp", "out/ü.webp"] {
        s.put(SOURCE, key, b"x".to_vec(), None).await;
    }
    let list = |encoded: bool| {
        let mut req = s.sdk.list_objects_v2().bucket(SOURCE).prefix("out/");
        if encoded {
            req = req.encoding_type(EncodingType::Url);
        }
        async move {
            let out = req.send().await.unwrap();
            let mut keys: Vec<String> =
                out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            keys.sort();
            keys
        }
    };
    assert_eq!(list(false).await, ["out/a b.webp", "out/a+b.webp", "out/ü.webp"]);
    // Encoded as S3 encodes them (the AWS CLI decodes `+` as a space).
    assert_eq!(list(true).await, ["out/%C3%BC.webp", "out/a%2Bb.webp", "out/a+b.webp"]);
    let v1 = s.sdk.list_objects().bucket(SOURCE).encoding_type(EncodingType::Url).send().await.unwrap();
    let keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert!(keys.contains(&"out/a%2Bb.webp"), "{keys:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_it_cannot_store_as_s3_would_are_refused() {
    let s = Server::start().await;
    for key in ["uploads/x//y.jpg", "uploads/x/../y.jpg", "uploads/./y.jpg", "uploads/d/"] {
        let put = s.sdk.put_object().bucket(SOURCE).key(key).body(b"x".to_vec().into()).send().await;
        let err = put.expect_err(key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        assert_eq!(status, Some(400), "{key}: {err:?}");
        let head = s.sdk.head_object().bucket(SOURCE).key(key).send().await;
        assert_eq!(head.unwrap_err().raw_response().map(|r| r.status().as_u16()), Some(404), "{key}");
    }
    assert!(!s.root.join(SOURCE).join("uploads/x/y.jpg").exists(), "`//` was not stored as `/`");
    assert!(!s.root.join(SOURCE).join("y.jpg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_keys_is_not_an_object() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/x/y.jpg", b"x".to_vec(), None).await;
    for key in ["thumbnail/x", "thumbnail/x/", "thumbnail"] {
        let head = s.sdk.head_object().bucket(SOURCE).key(key).send().await;
        assert_eq!(head.unwrap_err().raw_response().map(|r| r.status().as_u16()), Some(404), "{key}");
        let get = s.sdk.get_object().bucket(SOURCE).key(key).send().await;
        assert_eq!(get.unwrap_err().raw_response().map(|r| r.status().as_u16()), Some(404), "{key}");
    }
    assert!(s.get(SOURCE, "thumbnail/x/y.jpg").await.is_some());
}
