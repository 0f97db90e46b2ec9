//! The real `thumbnail` binary, run as Lambda runs it: a runtime API on 127.0.0.1 hands it S3
//! events, S3 is the local endpoint on 127.0.0.1. It starts, processes a photo, skips a key
//! that tries to forge a log line, and logs JSON (`AWS_LAMBDA_LOG_FORMAT=JSON`) in which no
//! value carries a raw control character.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use imgfn_test_support::runtime::RuntimeApi;
use imgfn_test_support::{fixtures, lambda, Server, OUTPUT, SOURCE};
use serde_json::Value;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_under_the_runtime_api_and_logs_json() {
    let s = Server::start().await;
    s.put(SOURCE, "thumbnail/photo.jpg", fixtures::photo_small().to_vec(), None).await;
    let runtime = RuntimeApi::start(Duration::from_secs(30)).await;
    let forged = "thumbnail/x\n\u{1b}[31mERROR forged line.jpg";
    let skipped = runtime.invoke(lambda::event("thumbnail", &[(SOURCE, forged)]).payload);
    let processed = runtime.invoke(lambda::event("thumbnail", &[(SOURCE, "thumbnail/photo.jpg")]).payload);

    let started = Instant::now();
    let mut child = runtime
        .command(env!("CARGO_BIN_EXE_thumbnail"), "thumbnail", &s)
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let done = runtime.outcome(&processed, Duration::from_secs(60)).await;
    let init = runtime.first_poll().map(|t| t.duration_since(started));
    eprintln!("init (spawn to first poll of the runtime API): {init:?}");
    assert!(runtime.init_error().is_none(), "init failed: {:?}", runtime.init_error());
    let skip = runtime.outcome(&skipped, Duration::from_secs(1)).await.unwrap();
    assert_eq!(skip.kind, "response", "a refused key is skipped, not failed: {skip:?}");
    let done = done.unwrap();
    assert_eq!(done.kind, "response", "{done:?}");
    let out = s.get(OUTPUT, "thumbnail/photo.webp").await.expect("the registry's default output: WebP");
    let img = image::load_from_memory(&out.body).unwrap();
    assert_eq!((img.width(), img.height()), (256, 192));

    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut logs = String::new();
    child.stdout.take().unwrap().read_to_string(&mut logs).await.unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
    logs.push_str(&stderr);

    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l:?}")))
        .collect();
    assert!(!logs.contains('\u{1b}'), "a raw escape reached the log:\n{logs}");
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line:\n{logs}"))
    };
    let processed = find("processed");
    assert_eq!(processed["level"], "INFO");
    assert_eq!(processed["fields"]["key"], "thumbnail/photo.jpg");
    assert_eq!(processed["fields"]["output_width"], 256);
    let skipped = find("skipped");
    assert_eq!(skipped["level"], "WARN");
    let key = skipped["fields"]["key"].as_str().unwrap();
    assert_eq!(key, "thumbnail/x\\n\\u{1b}[31mERROR forged line.jpg", "escaped, on one line");
}
