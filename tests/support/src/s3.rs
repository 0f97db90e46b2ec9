//! A REAL S3-compatible server on 127.0.0.1 (the local stack's endpoint: s3s-fs over hyper,
//! SigV4 with a fixed key, as strict as S3 where users would notice), reached by the functions'
//! own client ([`S3Store`]) and, for fixtures and checks, by the AWS SDK's (an independent
//! client), and servers that fail in the ways S3 can.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use imgfn_lambda::aws::{AwsConfig, Credentials};
use imgfn_lambda::s3::{ClientOptions, S3Store};
use imgfn_lambda::Function;
use imgfn_local::s3::LocalS3;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub use imgfn_local::s3::{RequestLog, ACCESS_KEY, SECRET_KEY};
pub const SOURCE: &str = "imgfn-source";
pub const OUTPUT: &str = "imgfn-output";

/// A running local S3 endpoint (`imgfn_local::s3::LocalS3`: s3s-fs behind SigV4, as strict as
/// S3 where users would notice) with the source and output buckets, keeping a request log.
#[allow(missing_debug_implementations)]
pub struct Server {
    pub addr: SocketAddr,
    /// The functions' S3 client.
    pub store: S3Store,
    /// The AWS SDK's S3 client on the same server: fixtures and checks.
    pub sdk: aws_sdk_s3::Client,
    pub log: RequestLog,
    /// Where the buckets live: `<root>/<bucket>/<key>`.
    pub root: PathBuf,
    _endpoint: LocalS3,
    _root: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// Starts a server on a random port of 127.0.0.1 and creates both buckets.
    pub async fn start() -> Server {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = crate::tools::scratch().join(format!("s3s-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let log = RequestLog::default();
        // Nothing listens for created objects: tests invoke the functions themselves.
        let (created, _) = tokio::sync::mpsc::unbounded_channel();
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let endpoint =
            LocalS3::start_logged(&root, addr, &[SOURCE, OUTPUT], created, Some(log.clone())).await.unwrap();
        let store = store_for(&endpoint.url(), fast_options()).await;
        let sdk = sdk_client(&endpoint.url(), SECRET_KEY).await;
        Server {
            addr: endpoint.addr,
            store,
            sdk,
            log,
            root: endpoint.root.clone(),
            _endpoint: endpoint,
            _root: TempDir(root),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The S3-triggered function `name` talking to this server ([`crate::lambda::config`]).
    pub fn function(&self, name: &str, vars: &[(&str, &str)]) -> Function {
        Function::new(crate::lambda::config(name, vars), self.store.clone())
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, params: Option<&str>) {
        let req = self.sdk.put_object().bucket(bucket).key(key).body(ByteStream::from(body));
        let req = match params {
            Some(p) => req.metadata("imgfn-params", p),
            None => req,
        };
        req.send().await.unwrap();
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        let out = self.sdk.get_object().bucket(bucket).key(key).send().await.ok()?;
        let content_type = out.content_type().map(str::to_owned);
        let cache_control = out.cache_control().map(str::to_owned);
        let metadata = out.metadata().cloned().unwrap_or_default();
        let body = out.body.collect().await.unwrap().into_bytes().to_vec();
        Some(Object { body, content_type, cache_control, metadata })
    }

    /// Every key in `bucket`, sorted.
    pub async fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.sdk.list_objects_v2().bucket(bucket).send().await.unwrap();
        let mut keys: Vec<String> =
            out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        keys.sort();
        keys
    }

    /// How many GET requests (GetObject) the server saw for `key` in `bucket`.
    pub fn gets(&self, bucket: &str, key: &str) -> usize {
        let path = format!("/{bucket}/{key}");
        self.log.lock().unwrap().iter().filter(|(m, p)| m == "GET" && *p == path).count()
    }
}

#[derive(Debug)]
pub struct Object {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub metadata: HashMap<String, String>,
}

impl Object {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Short backoff so retry tests stay fast; the retry policy itself is the production one.
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(20),
        initial_backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

/// An S3 store for `endpoint` with the test credentials.
pub async fn store_for(endpoint: &str, options: ClientOptions) -> S3Store {
    store_with_secret(endpoint, SECRET_KEY, options)
}

/// An S3 store for `endpoint` with the test access key and `secret`.
pub fn store_with_secret(endpoint: &str, secret: &str, options: ClientOptions) -> S3Store {
    let credentials = Credentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: secret.into(),
        session_token: None,
    };
    S3Store::new(AwsConfig::new("us-east-1", credentials, Some(endpoint)), options)
}

/// The AWS SDK's S3 client for `endpoint` with the test access key and `secret` (path-style, as
/// for any local endpoint).
pub async fn sdk_client(endpoint: &str, secret: &str) -> aws_sdk_s3::Client {
    let https =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(ACCESS_KEY, secret, None, None, "test"))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A server on 127.0.0.1 that answers every request with `503 Slow Down`; counts requests.
pub async fn failing_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut read = Vec::new();
                // Read the request head, answer, close.
                while !read.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                }
                seen.fetch_add(1, Ordering::SeqCst);
                let body =
                    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                let response = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

/// An endpoint on 127.0.0.1 where nothing listens.
pub async fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
