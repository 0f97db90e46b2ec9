//! The demo page in a real browser: headless Chromium (Debian's), driven by Playwright
//! (`tools/local/tests/browser/demo.mjs`), uploads a photo through the page (POST /uploads, a
//! cross-origin PUT to the local S3 endpoint under its CORS rule), and shows signed renditions
//! from the local edge: one `<img>` with `srcset`/`sizes`, and a grid of variants. Checked: the
//! upload landed, the browser picked the width `sizes` asks for, every image decoded in the
//! browser at the size its steps give, `format=auto` gave this browser a modern format, and
//! each rendition was rendered once.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use imgfn_local::{LocalStack, StackConfig};
use imgfn_test_support::tools::{on_path, require, root, scratch};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs node, chromium and `npm ci` in tools/local/tests/browser: .ci/run installs them, then cargo test -- --ignored"]
async fn the_demo_page_uploads_and_shows_renditions_in_chromium() {
    let node = require(on_path("node"), "node", "apt-get install nodejs");
    let chromium = std::env::var_os("CHROMIUM")
        .map(std::path::PathBuf::from)
        .or_else(|| on_path("chromium"))
        .filter(|p| p.exists());
    let chromium = require(chromium, "chromium", "apt-get install chromium (or set CHROMIUM)");
    let dir = root().join("tools/local/tests/browser");
    let playwright = dir.join("node_modules/playwright-core").is_dir().then(|| dir.join("node_modules"));
    require(playwright, "playwright-core", "npm ci --prefix tools/local/tests/browser");

    let data = scratch().join(format!("browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let stack = LocalStack::start(StackConfig::ephemeral(data.clone())).await.unwrap();
    let photo = root().join("samples/photo.jpg");
    let screenshot = data.join("demo.png");

    let edge = stack.edge.url();
    let (node2, dir2, photo2, shot2) = (node.clone(), dir.clone(), photo.clone(), screenshot.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node2)
            .current_dir(&dir2)
            .env("CHROMIUM", chromium)
            .arg("demo.mjs")
            .arg(edge.trim_end_matches('/'))
            .arg(&photo2)
            .arg(&shot2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(output.status.success(), "demo.mjs: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // What the page made render, before this test asks for anything itself.
    let renders = stack.edge.stats.renders.load(Ordering::Relaxed);
    assert_eq!(result["errors"], Value::Array(Vec::new()), "{result:#}");

    // The upload landed in the source bucket, byte for byte.
    let key = result["key"].as_str().unwrap();
    assert!(key.starts_with("thumbnail/demo-page/"), "{key}");
    let stored = std::fs::read(data.join("imgfn-source").join(key)).unwrap();
    assert_eq!(stored, std::fs::read(&photo).unwrap());

    // 800 CSS px at 1x and `sizes` 100vw: the 1024 w candidate (its natural size in the page is
    // 800 px: the browser scales a srcset candidate to `sizes`). Fetched again as Chromium asked
    // for it, it is 1024 px wide and looks like the photo.
    let hero = &result["hero"];
    let src = hero["src"].as_str().unwrap();
    assert!(src.contains("/thumbnail,width=1024;output,format=auto/"), "{hero}");
    assert_eq!(hero["width"], 800, "{hero}");
    // Chromium got AVIF or WebP; the WebP (one this test can decode) is checked for pixels.
    let accept = [("accept", "image/webp".to_owned())];
    let got = imgfn_test_support::api::send("GET", src, &accept, Vec::new()).await;
    assert_eq!(got.header("content-type"), Some("image/webp"));
    let img = image::load_from_memory(&got.body).unwrap();
    let source = image::open(&photo).unwrap();
    let expected_h = (f64::from(source.height()) * 1024.0 / f64::from(source.width())).round() as u32;
    assert_eq!((img.width(), img.height()), (1024, expected_h));
    let small = source.resize_exact(1024, expected_h, image::imageops::FilterType::Triangle).to_rgb8();
    let diff: u64 =
        img.to_rgb8().as_raw().iter().zip(small.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    let mean = diff as f64 / small.as_raw().len() as f64;
    assert!(mean < 6.0, "mean difference {mean}");

    // Every variant loaded and decoded at the size its steps give.
    let grid = result["grid"].as_array().unwrap();
    assert_eq!(grid.len(), imgfn_local::demo::VARIANTS.len() + 1);
    // The trigger function's output, through its stored-output URL: a 256 px WebP.
    let trigger = &grid[0];
    assert_eq!(trigger["label"], "thumbnail function output", "{trigger}");
    assert_eq!(trigger["loaded"], "true", "{trigger}");
    assert!(trigger["src"].as_str().unwrap().contains("/o/thumbnail/demo-page/"), "{trigger}");
    assert_eq!(trigger["width"], 256, "{trigger}");
    assert!(trigger["caption"].as_str().unwrap().contains("image/webp"), "{trigger}");
    let width_of = |label: &str| {
        let g = grid.iter().find(|g| g["label"] == label).unwrap();
        assert_eq!(g["loaded"], "true", "{g}");
        (g["width"].as_u64().unwrap(), g["height"].as_u64().unwrap())
    };
    assert_eq!(width_of("square crop"), (400, 400));
    assert_eq!(width_of("text watermark").0, 640);
    assert_eq!(width_of("round corners").0, 400);
    assert_eq!(width_of("QR code").0, 640);
    assert_eq!(width_of("JPEG at quality 40").0, 640);

    // What the browser was sent: a modern format for format=auto (Chromium accepts AVIF and
    // WebP), JPEG where the URL says so; every image 200.
    let responses = result["responses"].as_array().unwrap();
    for r in responses {
        assert_eq!(r["status"], 200, "{r}");
        let url = r["url"].as_str().unwrap();
        let ty = r["type"].as_str().unwrap();
        if url.contains("format=auto") {
            assert!(ty == "image/avif" || ty == "image/webp", "{url}: {ty}");
        } else if url.contains("/o/") {
            assert_eq!(ty, "image/webp", "{url}");
        } else {
            assert_eq!(ty, "image/jpeg", "{url}");
        }
    }
    // Each rendition the page showed was rendered once (the captions' HEAD requests were hits),
    // and each caption gives the bytes.
    assert_eq!(renders, grid.len(), "the hero and the variants: {result:#}");
    for g in grid {
        let caption = g["caption"].as_str().unwrap();
        assert!(caption.ends_with(" bytes, hit"), "{g}");
    }
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    stack.shutdown(Duration::from_secs(5)).await;
}
