//! The local edge's read path, timed: a stored-rendition hit (viewer check, S3 GET, answer) and
//! a miss (viewer check, S3 miss, render: source GET, decode, pipeline, encode, PutObject,
//! answer), over real HTTP on 127.0.0.1 against the local S3 endpoint. BENCHMARKS.md quotes it.
//!
//! cargo run --release -p imgfn-local --example edge_bench -- [IMAGE ...]
//! (default: the shared bench corpus's photo-1mp.jpg and photo-12mp.jpg in ~/.cache/imgbench)

use std::time::{Duration, Instant};

use imgfn_lambda::rendition::{parse_steps, Rendition};
use imgfn_local::{LocalStack, StackConfig, LOCAL_URL_KEY};

const MISSES: u32 = 12;
const HITS: usize = 400;
const CONCURRENT: usize = 8;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut images: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    if images.is_empty() {
        let corpus = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/imgbench/corpus");
        images = vec![corpus.join("photo-1mp.jpg"), corpus.join("photo-12mp.jpg")];
    }
    let data = std::env::temp_dir().join(format!("imgfn-edge-bench-{}", std::process::id()));
    let stack = LocalStack::start(StackConfig::ephemeral(data.clone())).await.expect("the stack starts");
    let base = stack.edge.url().trim_end_matches('/').to_owned();
    let client = reqwest_like::Client::new();

    println!("| source | request | n | median ms | p90 ms | requests/s |");
    println!("|---|---|---:|---:|---:|---:|");
    for (i, image) in images.iter().enumerate() {
        let bytes = std::fs::read(image).unwrap_or_else(|e| panic!("{}: {e}", image.display()));
        let name = image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let key = format!("originals/bench-{i}.jpg");
        let dir = data.join("imgfn-source/originals");
        std::fs::create_dir_all(&dir).expect("the bucket folder");
        // Through S3, so the object has its metadata as an upload would.
        client.put_s3(&stack.s3.url(), "imgfn-source", &key, bytes).await;
        let url = |width: u32| {
            let steps = parse_steps(&format!("thumbnail,width={width};output,format=webp")).expect("steps");
            let path =
                Rendition { key: key.clone(), steps, expires: None }.signed_path(LOCAL_URL_KEY.as_bytes());
            format!("{base}{path}")
        };

        // Misses: a new width each time, so each request renders and stores.
        let mut times = Vec::new();
        for n in 0..MISSES {
            let u = url(1000 + n);
            let started = Instant::now();
            let (status, cache) = client.get(&u).await;
            times.push(started.elapsed());
            assert_eq!((status, cache.as_deref()), (200, Some("miss")), "{u}");
        }
        row(&name, "miss: render 1000 px WebP + store", &times, None);

        // Hits: the first width again, now stored.
        let u = url(1000);
        let mut times = Vec::new();
        for _ in 0..HITS {
            let started = Instant::now();
            let (status, cache) = client.get(&u).await;
            times.push(started.elapsed());
            assert_eq!((status, cache.as_deref()), (200, Some("hit")));
        }
        row(&name, "hit: stored rendition", &times, None);

        // Hits, CONCURRENT clients at once.
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT {
            let (client, u) = (client.clone(), u.clone());
            tasks.spawn(async move {
                let mut times = Vec::new();
                for _ in 0..HITS / CONCURRENT {
                    let t = Instant::now();
                    assert_eq!(client.get(&u).await.0, 200);
                    times.push(t.elapsed());
                }
                times
            });
        }
        let mut times = Vec::new();
        while let Some(done) = tasks.join_next().await {
            times.extend(done.expect("a client"));
        }
        let wall = started.elapsed();
        row(&name, &format!("hit, {CONCURRENT} clients at once"), &times, Some(wall));
    }
    stack.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&data);
}

fn row(source: &str, request: &str, times: &[Duration], wall: Option<Duration>) {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    let total: f64 = wall.map_or_else(|| ms.iter().sum::<f64>() / 1000.0, |w| w.as_secs_f64());
    let rps = ms.len() as f64 / total;
    println!("| {source} | {request} | {} | {:.1} | {:.1} | {:.0} |", ms.len(), at(0.5), at(0.9), rps);
}

/// A small HTTP client over hyper (the workspace has no reqwest): GET with the response's
/// status and `x-imgfn-cache`, and a SigV4-signed PUT through the AWS SDK.
mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::Client as Hyper;
    use hyper_util::rt::TokioExecutor;

    #[derive(Clone)]
    pub struct Client(Hyper<HttpConnector, Empty<Bytes>>);

    impl Client {
        pub fn new() -> Client {
            Client(Hyper::builder(TokioExecutor::new()).build_http())
        }

        pub async fn get(&self, url: &str) -> (u16, Option<String>) {
            let req = hyper::Request::get(url)
                .header("accept", "image/webp,*/*")
                .body(Empty::new())
                .expect("a request");
            let response = self.0.request(req).await.expect("a response");
            let status = response.status().as_u16();
            let cache =
                response.headers().get("x-imgfn-cache").and_then(|v| v.to_str().ok()).map(str::to_owned);
            response.into_body().collect().await.expect("the body");
            (status, cache)
        }

        pub async fn put_s3(&self, endpoint: &str, bucket: &str, key: &str, body: Vec<u8>) {
            let store =
                imgfn_test_support::s3::sdk_client(endpoint, imgfn_test_support::s3::SECRET_KEY).await;
            let body = aws_sdk_s3::primitives::ByteStream::from(body);
            let put = store.put_object().bucket(bucket).key(key).content_type("image/jpeg");
            put.body(body).send().await.expect("PutObject");
        }
    }
}
