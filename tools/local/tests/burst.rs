//! A burst through the whole local stack: 1,000 uploads under a trigger prefix at once. Every one
//! is processed exactly once (one event, one successful invocation, one output), nothing is
//! lost, nothing duplicated, no error record. Prints the throughput and the stack's peak memory.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use imgfn_local::{LocalStack, StackConfig};
use imgfn_test_support::{fixtures, s3};
use tokio::task::JoinSet;

const UPLOADS: usize = 1000;
/// Uploads in flight at once.
const CLIENTS: usize = 50;

/// Peak resident memory of this process (the stack runs in it), from /proc.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_uploads_at_once_are_each_processed_exactly_once() {
    let data = imgfn_test_support::tools::scratch().join(format!("burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let stack = LocalStack::start(StackConfig::ephemeral(data.clone())).await.unwrap();
    let store = s3::sdk_client(&stack.s3.url(), s3::SECRET_KEY).await;
    let photo = fixtures::jpeg(320, 240);

    let started = Instant::now();
    let mut uploads = JoinSet::new();
    for client in 0..CLIENTS {
        let (store, photo) = (store.clone(), photo.clone());
        uploads.spawn(async move {
            for i in (client..UPLOADS).step_by(CLIENTS) {
                let key = format!("thumbnail/burst/{i:04}.jpg");
                let body = aws_sdk_s3::primitives::ByteStream::from(photo.clone());
                store.put_object().bucket("imgfn-source").key(key).body(body).send().await.unwrap();
            }
        });
    }
    while let Some(done) = uploads.join_next().await {
        done.unwrap();
    }
    let uploaded = started.elapsed();

    // Wait for every invocation to finish (each output appears once its invocation succeeded).
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let tally = stack.tally();
        if tally.succeeded + tally.gave_up >= UPLOADS {
            break;
        }
        assert!(Instant::now() < deadline, "only {} of {UPLOADS} done: {tally:?}", tally.succeeded);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let processed = started.elapsed();
    let tally = stack.tally();

    assert_eq!(tally.events.len(), UPLOADS, "one event per upload, none lost");
    assert!(tally.events.values().all(|&n| n == 1), "an upload got more than one event");
    assert_eq!((tally.succeeded, tally.failed, tally.gave_up), (UPLOADS, 0, 0), "{tally:?}");
    let out = data.join("imgfn-output");
    let mut outputs: Vec<String> = std::fs::read_dir(out.join("thumbnail/burst"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outputs.sort();
    let expected: Vec<String> = (0..UPLOADS).map(|i| format!("{i:04}.webp")).collect();
    assert_eq!(outputs, expected, "exactly one output per upload");
    assert!(!out.join("errors").exists(), "no error record");

    eprintln!(
        "burst: {UPLOADS} uploads of a 320x240 JPEG ({} bytes) by {CLIENTS} clients in {:.1} s; all processed \
         after {:.1} s ({:.0} images/s end to end, 2 invocations at a time); peak RSS of the stack and the \
         test {:.0} MB",
        photo.len(),
        uploaded.as_secs_f64(),
        processed.as_secs_f64(),
        UPLOADS as f64 / processed.as_secs_f64(),
        peak_rss_mb().unwrap_or(f64::NAN)
    );
    stack.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&data);
}
