//! The CDN's read path over real HTTP, through the local stack (the local edge, S3 endpoint,
//! render and refresh functions, all on 127.0.0.1): signed renditions and stored outputs,
//! what a forged, expired, rotated or malformed URL gets, format by `Accept`, a rendition
//! computed once and served stored after that, revalidation, responses over the Lambda
//! response limit, what errors say to caches, and freshness after a source is overwritten or
//! deleted. Every image is decoded back and compared with the source.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use image::GenericImageView;
use imgfn_lambda::rendition::{self, parse_steps, Rendition, StoredUrl};
use imgfn_local::{LocalStack, StackConfig, LOCAL_URL_KEY};
use imgfn_test_support::api::{send, Reply};
use imgfn_test_support::{fixtures, s3};

const NEW_KEY: &str = "imgfn-edge-test-newest-key-0123456789abcdef";

struct Edge {
    stack: LocalStack,
    /// The AWS SDK's client on the stack's S3 endpoint.
    sdk: aws_sdk_s3::Client,
    base: String,
}

impl Edge {
    async fn start(name: &str, vars: &[(&str, &str)]) -> Edge {
        let data = imgfn_test_support::tools::scratch().join(format!("edge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut config = StackConfig::ephemeral(data);
        config.vars.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let stack = LocalStack::start(config).await.unwrap();
        let sdk = s3::sdk_client(&stack.s3.url(), s3::SECRET_KEY).await;
        let base = stack.edge.url().trim_end_matches('/').to_owned();
        Edge { stack, sdk, base }
    }

    async fn put(&self, bucket: &str, key: &str, content_type: &str, body: Vec<u8>) {
        let body = aws_sdk_s3::primitives::ByteStream::from(body);
        let put = self.sdk.put_object().bucket(bucket).key(key).content_type(content_type);
        put.body(body).send().await.unwrap();
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        send("GET", &format!("{}{path}", self.base), &headers, Vec::new()).await
    }

    fn renders(&self) -> usize {
        self.stack.edge.stats.renders.load(Ordering::Relaxed)
    }

    fn refused(&self) -> usize {
        self.stack.edge.stats.refused.load(Ordering::Relaxed)
    }

    /// Waits until the refresh function has handled `n` source changes in all.
    async fn refreshed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stack.tally().refreshed < n {
            assert!(Instant::now() < deadline, "refresh did not run: {:?}", self.stack.tally());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn signed(key: &str, steps: &str, expires: Option<u64>, signing_key: &str) -> String {
    let r = Rendition { key: key.into(), steps: parse_steps(steps).unwrap(), expires };
    r.signed_path(signing_key.as_bytes())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

fn decode(reply: &Reply, format: image::ImageFormat) -> image::DynamicImage {
    assert_eq!(reply.status, 200, "{}", reply.text());
    image::load_from_memory_with_format(&reply.body, format).unwrap()
}

/// Mean absolute difference per channel between `a` and `b` resized to `a`'s size.
fn mean_diff(a: &image::DynamicImage, b: &image::DynamicImage) -> f64 {
    let b = b.resize_exact(a.width(), a.height(), image::imageops::FilterType::Triangle).to_rgb8();
    let a = a.to_rgb8();
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

/// Files under `dir` (s3s-fs may leave empty folders behind a deleted object).
fn files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| if p.is_dir() { files(&p) } else { 1 })
        .sum()
}

/// Noise that does not compress, `width` x `height` RGB, as a JPEG at quality 85.
fn noise_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let img = image::RgbImage::from_fn(width, height, |_, _| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        };
        image::Rgb([next(), next(), next()])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).unwrap();
    out
}

fn transparent_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            image::Rgba([0, 90, 200, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendition_is_rendered_once_then_served_stored_and_revalidated() {
    let e = Edge::start("once", &[]).await;
    let photo = fixtures::photo_small().to_vec(); // 640x480
    e.put(s3::SOURCE, "originals/alice/beach ü+1.jpg", "image/jpeg", photo.clone()).await;
    let source = image::load_from_memory(&photo).unwrap();

    let path = signed(
        "originals/alice/beach ü+1.jpg",
        "thumbnail,width=320;output,format=webp",
        None,
        LOCAL_URL_KEY,
    );
    assert!(path
        .starts_with("/v1/originals/alice/beach%20%C3%BC%2B1.jpg/thumbnail,width=320;output,format=webp/"));
    let first = e.get(&path, &[]).await;
    assert_eq!(first.header("x-imgfn-cache"), Some("miss"));
    assert_eq!(first.header("content-type"), Some("image/webp"));
    assert_eq!(first.header("cache-control"), Some("public, max-age=3600, s-maxage=31536000"));
    let etag = first.header("etag").unwrap().to_owned();
    let img = decode(&first, image::ImageFormat::WebP);
    assert_eq!(img.dimensions(), (320, 240));
    assert!(mean_diff(&img, &source) < 4.0, "{}", mean_diff(&img, &source));
    assert_eq!(e.renders(), 1);

    // The same rendition again, and equivalent spellings of it (other order, case, an alias, a
    // default spelled out): served from S3, byte for byte, with the same ETag, no new render.
    let second = e.get(&path, &[]).await;
    assert_eq!((second.status, second.header("x-imgfn-cache")), (200, Some("hit")));
    assert_eq!((second.body.clone(), second.header("etag")), (first.body.clone(), Some(etag.as_str())));
    assert_eq!(second.header("cache-control"), Some("public, max-age=3600, s-maxage=31536000"));
    let sig = path.rsplit('/').next().unwrap();
    for spelling in [
        "output,format=webp;thumbnail,width=320",
        "RESIZE,Width=320,fit=inside;OUTPUT,quality=80,format=webp",
    ] {
        let alt = format!("/v1/originals/alice/beach%20%C3%BC%2B1.jpg/{spelling}/{sig}");
        let r = e.get(&alt, &[]).await;
        assert_eq!((r.status, r.header("x-imgfn-cache")), (200, Some("hit")), "{alt}: {}", r.text());
        assert_eq!(r.body, first.body);
    }
    assert_eq!(e.renders(), 1, "equivalent URLs share one stored rendition");

    // Revalidation: If-None-Match with the ETag → 304 without a body.
    let revalidated = e.get(&path, &[("if-none-match", &etag)]).await;
    assert_eq!((revalidated.status, revalidated.body.len()), (304, 0));
    assert_eq!(revalidated.header("etag"), Some(etag.as_str()));
    let other = e.get(&path, &[("if-none-match", "\"something-else\"")]).await;
    assert_eq!(other.status, 200);

    // It is stored where the grammar says.
    let stored = e.stack.config.data_dir.join("imgfn-output/r/originals/alice");
    assert!(stored.exists(), "{stored:?}");

    // A long source key and long steps (a stored key of 300+ bytes, as a JWT `sub` and a
    // watermark make them): stored and served like any other.
    let long_key = format!("originals/{}/{}.jpg", "a".repeat(64), "b".repeat(100));
    e.put(s3::SOURCE, &long_key, "image/jpeg", photo.clone()).await;
    let long = signed(
        &long_key,
        "thumbnail,width=100;watermark,text=imgfn%20long%20key%20test;output,format=png",
        None,
        LOCAL_URL_KEY,
    );
    let r = e.get(&long, &[]).await;
    assert_eq!(r.header("x-imgfn-cache"), Some("miss"), "{}", r.text());
    assert_eq!(decode(&r, image::ImageFormat::Png).width(), 100);
    assert_eq!(e.get(&long, &[]).await.header("x-imgfn-cache"), Some("hit"));

    // HEAD answers the headers only.
    let head = send("HEAD", &format!("{}{path}", e.base), &[], Vec::new()).await;
    assert_eq!((head.status, head.body.len(), head.header("content-type")), (200, 0, Some("image/webp")));
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_before_any_work_and_keys_rotate() {
    // Two keys active: the newest signs, the previous still verifies.
    let keys = format!("{NEW_KEY},{LOCAL_URL_KEY}");
    let e = Edge::start("sig", &[("IMGFN_URL_KEYS", &keys)]).await;
    e.put(s3::SOURCE, "originals/x.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    let steps = "thumbnail,width=64;output,format=png";

    let by_new = signed("originals/x.jpg", steps, None, NEW_KEY);
    let by_old = signed("originals/x.jpg", steps, None, LOCAL_URL_KEY);
    assert_ne!(by_new, by_old);
    for path in [&by_new, &by_old] {
        let r = e.get(path, &[]).await;
        assert_eq!(decode(&r, image::ImageFormat::Png).dimensions(), (64, 48));
    }

    // Forged, tampered, stranger's key, expired, unsigned: 403, never cached, no render.
    let stranger = signed("originals/x.jpg", steps, None, "imgfn-edge-test-stranger-key-0123456789abcdef");
    let tampered = by_new.replace("width=64", "width=65");
    let expired = signed("originals/x.jpg", steps, Some(now() - 1), NEW_KEY);
    let mut flipped = by_new.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let renders = e.renders();
    for (path, code) in
        [(&stranger, "forbidden"), (&tampered, "forbidden"), (&expired, "forbidden"), (&flipped, "forbidden")]
    {
        let r = e.get(path, &[]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], code, "{path}: {}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    assert_eq!(e.renders(), renders, "a refused URL never reaches the render function");

    // A URL that expires later works until then; its expiry is signed (changing it is refused).
    let later = now() + 600;
    let expiring = signed("originals/x.jpg", steps, Some(later), NEW_KEY);
    assert!(expiring.ends_with(&format!("?exp={later}")), "{expiring}");
    assert_eq!(e.get(&expiring, &[]).await.status, 200);
    let extended = expiring.replace(&later.to_string(), &(later + 1000).to_string());
    assert_eq!(e.get(&extended, &[]).await.status, 403);
    e.stack.shutdown(Duration::from_secs(5)).await;

    // After rotation drops the old key, its URLs stop working; the new key's go on.
    let e = Edge::start("sig-rotated", &[("IMGFN_URL_KEYS", NEW_KEY)]).await;
    e.put(s3::SOURCE, "originals/x.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    assert_eq!(e.get(&by_new, &[]).await.status, 200);
    assert_eq!(e.get(&by_old, &[]).await.status, 403);
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_400s_naming_the_field_and_missing_sources_404s_never_cached() {
    let e = Edge::start("bad", &[]).await;
    e.put(s3::SOURCE, "originals/x.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    // Signed as an app would sign them (the grammar's refusals come before the signature is
    // checked, the params' after it: a forged URL learns nothing about params).
    let sign =
        |message: &str| format!("{message}/{}", rendition::signature(LOCAL_URL_KEY.as_bytes(), message));
    for (message, field) in [
        ("/v1/originals/x.jpg/thumbnail,widht=64", "steps[0].widht"),
        ("/v1/originals/x.jpg/slice,rows=2", "steps[0].op"),
        ("/v1/originals/x.jpg/thumbnail,width=64,width=65", "steps[0].width"),
        ("/v1/originals/x.jpg/thumbnail,width=abc", "steps[0].width"),
        ("/v1/originals/x.jpg/thumbnail,width=0", "steps[0].width"),
        ("/v1/originals/../x.jpg/thumbnail,width=64", "key"),
        ("/v1/originals/x.jpg/output,format=tiff", "steps[0].format"),
        ("/v1/originals/x.jpg/watermark,opacity=7,text=hi", "steps[0].opacity"),
    ] {
        let path = sign(message);
        let r = e.get(&path, &[]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let body = r.json();
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    }
    // Signed but wrong: a missing source, a source outside the rendition prefixes (the output
    // bucket's or a private folder's: the same 404), an unknown path.
    let missing = signed("originals/nothing.jpg", "thumbnail,width=64", None, LOCAL_URL_KEY);
    let outside = signed("private/x.jpg", "thumbnail,width=64", None, LOCAL_URL_KEY);
    e.put(s3::SOURCE, "private/x.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    for path in [
        missing.as_str(),
        outside.as_str(),
        "/nothing",
        "/favicon.ico",
        "/r/originals/x.jpg/thumbnail,width=64",
    ] {
        let r = e.get(path, &[]).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    // A source that is not an image: a 4xx naming why, not cached, and nothing stored.
    e.put(s3::SOURCE, "originals/notes.jpg", "image/jpeg", b"not a jpeg at all".to_vec()).await;
    let r = e.get(&signed("originals/notes.jpg", "thumbnail,width=64", None, LOCAL_URL_KEY), &[]).await;
    assert!((400..500).contains(&r.status), "{}: {}", r.status, r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(files(&e.stack.config.data_dir.join("imgfn-output/r/originals/notes.jpg")), 0);
    // Only GET and HEAD.
    let post = send("POST", &format!("{}{missing}", e.base), &[], b"x".to_vec()).await;
    assert_eq!(post.status, 405);
    assert!(e.refused() >= 6);
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_auto_follows_accept_and_each_format_is_cached_once() {
    let e = Edge::start("auto", &[]).await;
    e.put(s3::SOURCE, "originals/photo.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    e.put(s3::SOURCE, "originals/logo.png", "image/png", transparent_png(200, 100)).await;
    let photo = signed("originals/photo.jpg", "thumbnail,width=200;output,format=auto", None, LOCAL_URL_KEY);
    let logo = signed("originals/logo.png", "thumbnail,width=100;output,format=auto", None, LOCAL_URL_KEY);

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const OLD: &str = "image/png,image/*;q=0.8,*/*;q=0.5";
    let webp = e.get(&photo, &[("accept", "image/webp,*/*")]).await;
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    decode(&webp, image::ImageFormat::WebP);
    let legacy = e.get(&photo, &[("accept", OLD)]).await;
    assert_eq!(legacy.header("content-type"), Some("image/jpeg"));
    assert_eq!(decode(&legacy, image::ImageFormat::Jpeg).dimensions(), (200, 150));
    let none = e.get(&photo, &[]).await;
    assert_eq!(
        (none.header("content-type"), none.header("x-imgfn-cache")),
        (Some("image/jpeg"), Some("hit"))
    );
    let chrome = e.get(&photo, &[("accept", CHROME)]).await;
    assert_eq!(chrome.status, 200);
    let best = chrome.header("content-type").unwrap().to_owned();
    assert!(best == "image/avif" || best == "image/webp", "{best}");
    let renders = e.renders();
    // Each format once: asking again in every way is a hit.
    for accept in ["image/webp,*/*", OLD, CHROME] {
        let r = e.get(&photo, &[("accept", accept)]).await;
        assert_eq!(r.header("x-imgfn-cache"), Some("hit"), "{accept}");
    }
    assert_eq!(e.renders(), renders);

    // An image with alpha and no AVIF/WebP support: PNG, transparency kept.
    let png = e.get(&logo, &[("accept", OLD)]).await;
    assert_eq!(png.header("content-type"), Some("image/png"));
    let img = decode(&png, image::ImageFormat::Png).to_rgba8();
    assert_eq!(img.dimensions(), (100, 50));
    assert_eq!(img.get_pixel(95, 25)[3], 0, "the transparent half stays transparent");
    assert_eq!(img.get_pixel(5, 25)[3], 255);
    let webp = e.get(&logo, &[("accept", "image/webp")]).await;
    let img = decode(&webp, image::ImageFormat::WebP).to_rgba8();
    assert_eq!(img.get_pixel(95, 25)[3], 0, "WebP keeps alpha too");
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendition_over_the_lambda_response_limit_is_served_whole() {
    let e = Edge::start("big", &[]).await;
    // 3800x3200 of noise as a JPEG (the source stays under the 25 MB input limit), rendered to
    // PNG: a 30+ MB rendition.
    let noise = noise_jpeg(3800, 3200);
    e.put(s3::SOURCE, "originals/noise.jpg", "image/jpeg", noise.clone()).await;
    let path = signed("originals/noise.jpg", "round-corner,radius=8;output,format=png", None, LOCAL_URL_KEY);
    let first = e.get(&path, &[]).await;
    // Too large for a buffered Lambda response: redirected to itself, not cached, and stored.
    assert_eq!(first.status, 302, "{}", first.text());
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let location = first.header("location").unwrap();
    assert_eq!(location, path);
    // The redirect is followed as a browser would: now served from S3, whole.
    let second = e.get(location, &[]).await;
    assert_eq!(second.header("x-imgfn-cache"), Some("hit"));
    assert!(second.body.len() > 30_000_000, "{} bytes", second.body.len());
    let img = decode(&second, image::ImageFormat::Png).to_rgba8();
    let source = image::load_from_memory(&noise).unwrap().to_rgba8();
    assert_eq!(img.dimensions(), source.dimensions());
    assert_eq!(img.get_pixel(1800, 1600), source.get_pixel(1800, 1600), "lossless away from the corners");
    assert_eq!(img.get_pixel(0, 0)[3], 0, "a rounded corner");
    assert_eq!(e.renders(), 1);
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_or_deleted_source_is_never_served_stale() {
    let e = Edge::start("fresh", &[]).await;
    let red = fixtures::logo_png(300, 200);
    e.put(s3::SOURCE, "originals/logo.png", "image/png", red).await;
    e.refreshed(1).await;
    let path = signed("originals/logo.png", "thumbnail,width=150;output,format=png", None, LOCAL_URL_KEY);
    let before = decode(&e.get(&path, &[]).await, image::ImageFormat::Png).to_rgba8();
    assert_eq!(before.get_pixel(10, 10).0, [255, 0, 0, 255]);
    assert_eq!(e.get(&path, &[]).await.header("x-imgfn-cache"), Some("hit"));

    // Overwritten with a blue image of another size: the next request renders the new one.
    let blue = image::RgbaImage::from_pixel(400, 100, image::Rgba([0, 0, 255, 255]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    blue.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    e.put(s3::SOURCE, "originals/logo.png", "image/png", bytes.into_inner()).await;
    e.refreshed(2).await;
    let after = e.get(&path, &[]).await;
    assert_eq!(after.header("x-imgfn-cache"), Some("miss"), "{}", after.text());
    let after = decode(&after, image::ImageFormat::Png).to_rgba8();
    assert_eq!(after.dimensions(), (150, 38));
    assert_eq!(after.get_pixel(10, 10).0, [0, 0, 255, 255]);

    // Deleted: the stored renditions go too, and the URL answers 404 (not cached).
    e.sdk.delete_object().bucket(s3::SOURCE).key("originals/logo.png").send().await.unwrap();
    e.refreshed(3).await;
    let gone = e.get(&path, &[]).await;
    assert_eq!((gone.status, gone.header("cache-control")), (404, Some("no-store")), "{}", gone.text());
    assert_eq!(files(&e.stack.config.data_dir.join("imgfn-output/r/originals/logo.png")), 0);
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_outputs_get_signed_urls_from_the_api_and_the_trigger() {
    let e = Edge::start("stored", &[]).await;
    // A trigger output: thumbnail/<name> → the output bucket, and its /o/ URL.
    e.put(s3::SOURCE, "thumbnail/cat.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while e.stack.tally().succeeded < 1 {
        assert!(Instant::now() < deadline, "{:?}", e.stack.tally());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out_key = std::fs::read_dir(e.stack.config.data_dir.join("imgfn-output/thumbnail"))
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with('.'))
        .map(|n| format!("thumbnail/{n}"))
        .unwrap();
    let url = StoredUrl { key: out_key.clone(), expires: None }.signed_path(LOCAL_URL_KEY.as_bytes());
    let r = e.get(&url, &[]).await;
    assert_eq!((r.status, r.header("x-imgfn-cache")), (200, Some("hit")), "{url}: {}", r.text());
    let img = image::load_from_memory(&r.body).unwrap();
    assert!(img.width() <= 640 && img.height() <= 480);
    // Tampered: 403; signed but missing: 404; both no-store.
    let other = url.replacen("cat", "dog", 1);
    assert_eq!(e.get(&other, &[]).await.status, 403);
    let missing =
        StoredUrl { key: "thumbnail/none.jpg".into(), expires: None }.signed_path(LOCAL_URL_KEY.as_bytes());
    let r = e.get(&missing, &[]).await;
    assert_eq!((r.status, r.header("cache-control")), (404, Some("no-store")));

    // /process answers a cdn_url, which serves the same bytes as its presigned url.
    let api = e.stack.api.url().trim_end_matches('/').to_owned();
    e.put(s3::SOURCE, "uploads/alice/p.jpg", "image/jpeg", fixtures::photo_small().to_vec()).await;
    let body =
        r#"{"key":"uploads/alice/p.jpg","ops":[{"op":"thumbnail","width":100}],"output":{"format":"webp"}}"#;
    let headers =
        [("content-type", "application/json".to_owned()), (imgfn_local::SUB_HEADER, "alice".to_owned())];
    let processed = send("POST", &format!("{api}/process"), &headers, body.as_bytes().to_vec()).await;
    assert_eq!(processed.status, 200, "{}", processed.text());
    let p = processed.json();
    let cdn = p["cdn_url"].as_str().unwrap();
    assert!(cdn.starts_with(&format!("{}/o/processed/", e.base)), "{cdn}");
    let via_cdn = send("GET", cdn, &[], Vec::new()).await;
    let via_s3 = send("GET", p["url"].as_str().unwrap(), &[], Vec::new()).await;
    assert_eq!((via_cdn.status, via_s3.status), (200, 200));
    assert_eq!(via_cdn.body, via_s3.body);
    assert_eq!(decode(&via_cdn, image::ImageFormat::WebP).width(), 100);
    e.stack.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_answers_browser_preflights_as_the_buckets_cors_rules_say() {
    let e = Edge::start("cors", &[("IMGFN_CORS_ORIGINS", "https://app.example")]).await;
    let s3 = e.stack.s3.url();
    let preflight = |bucket: &str, origin: &str, method: &str| {
        let url = format!("{s3}/{bucket}/uploads/alice/x.jpg");
        let headers = vec![
            ("origin", origin.to_owned()),
            ("access-control-request-method", method.to_owned()),
            ("access-control-request-headers", "content-type,if-none-match".to_owned()),
        ];
        async move { send("OPTIONS", &url, &headers, Vec::new()).await }
    };
    let ok = preflight(s3::SOURCE, "https://app.example", "PUT").await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(ok.header("access-control-allow-headers"), Some("content-type,if-none-match"));
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(preflight(s3::SOURCE, "https://evil.example", "PUT").await.status, 403);
    assert_eq!(preflight(s3::SOURCE, "https://app.example", "DELETE").await.status, 403);
    assert_eq!(preflight(s3::OUTPUT, "https://app.example", "GET").await.status, 200);
    assert_eq!(preflight(s3::OUTPUT, "https://app.example", "PUT").await.status, 403);
    e.stack.shutdown(Duration::from_secs(5)).await;

    // Without CorsOrigins the buckets have no CORS configuration: every preflight is refused.
    let e = Edge::start("no-cors", &[("IMGFN_CORS_ORIGINS", "")]).await;
    let url = format!("{}/{}/uploads/x.jpg", e.stack.s3.url(), s3::SOURCE);
    let headers =
        [("origin", "https://app.example".to_owned()), ("access-control-request-method", "PUT".to_owned())];
    let refused = send("OPTIONS", &url, &headers, Vec::new()).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text().contains("CORS is not enabled for this bucket"), "{}", refused.text());
    e.stack.shutdown(Duration::from_secs(5)).await;
}
