//! S3 I/O: the client (timeouts and retries set explicitly), and the four calls the runner
//! makes. Each call maps its SDK error to [`Error`] here; the statuses that mean something for
//! one call (404 on a source, 412 on If-Match) are singled out, everything else stays
//! [`Error::S3`] (transient).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::error::s3_error;
use crate::Error;

/// SDK timeouts and retries. The defaults are what the functions use in production.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP/TLS connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// One attempt of one request, response headers included. Default 20 s (a 25 MB GET at
    /// Lambda's S3 throughput takes well under that).
    pub attempt_timeout: Duration,
    /// One request with all its retries. Default 60 s.
    pub operation_timeout: Duration,
    /// Attempts per request (standard retry mode: 5xx, throttling, timeouts, connection
    /// errors, with exponential backoff and jitter). Default 3.
    pub max_attempts: u32,
    /// First retry backoff. Default 200 ms.
    pub initial_backoff: Duration,
    /// Reading a response body (not covered by the SDK's timeouts once headers arrived).
    /// Default 30 s.
    pub body_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(20),
            operation_timeout: Duration::from_secs(60),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Loads the AWS configuration from the environment (credentials, region, `AWS_ENDPOINT_URL`
/// for a local S3 server) and builds the S3 store with the default [`ClientOptions`].
pub async fn load_from_env() -> S3Store {
    let sdk = crate::sdk::defaults().load().await;
    S3Store::new(&sdk, ClientOptions::default())
}

/// The S3 calls the runner makes.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    body_timeout: Duration,
    /// When the invocation runs out of time: every call ends by then (see
    /// [`S3Store::until`]).
    deadline: Option<Instant>,
}

/// Time kept back from an invocation's deadline for what follows the S3 calls: the error
/// record or the 503 answer, and the runtime's own reply.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// What HeadObject tells about a source object.
#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub etag: Option<String>,
    /// User metadata, keys lower-case without `x-amz-meta-`.
    pub metadata: HashMap<String, String>,
    /// The object's Content-Type.
    pub content_type: Option<String>,
}

impl Head {
    /// Rejects, from the HeadObject answer alone (before anything is downloaded), an object over
    /// the byte limit or an empty one (an empty file is "unsupported or empty", as in image-ops).
    pub(crate) fn check_size(&self, limits: &image_ops::Limits) -> Result<(), Error> {
        if self.size > limits.max_input_bytes {
            return Err(
                image_ops::Error::InputTooLarge { bytes: self.size, limit: limits.max_input_bytes }.into()
            );
        }
        if self.size == 0 {
            return Err(image_ops::Error::UnsupportedFormat("the object is empty".into()).into());
        }
        Ok(())
    }
}

impl S3Store {
    /// A store over a client built from `sdk` with `options`' timeouts and retries. Path-style
    /// addressing is forced when an endpoint URL is configured (local S3 servers).
    pub fn new(sdk: &aws_config::SdkConfig, options: ClientOptions) -> S3Store {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .operation_attempt_timeout(options.attempt_timeout)
            .operation_timeout(options.operation_timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(options.max_attempts)
            .with_initial_backoff(options.initial_backoff);
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .timeout_config(timeouts)
            .retry_config(retries)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        S3Store { client: Client::from_conf(config), body_timeout: options.body_timeout, deadline: None }
    }

    /// This store with every call bounded by the invocation's deadline (`deadline_ms`: ms since
    /// the Unix epoch, as Lambda gives it; 0 = none) less [`DEADLINE_MARGIN`]: slow S3 then ends
    /// as a timeout this code handles (a retry for a trigger, a 503 with `Retry-After` for the
    /// API), never as the function's own timeout. The SDK's timeouts and retries still apply
    /// within it.
    pub fn until(&self, deadline_ms: u64) -> S3Store {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let deadline = (deadline_ms > 0).then(|| {
            let left =
                Duration::from_millis(deadline_ms.saturating_sub(now_ms)).saturating_sub(DEADLINE_MARGIN);
            Instant::now() + left
        });
        S3Store { deadline, ..self.clone() }
    }

    /// `call`, given up when the deadline passes.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.deadline {
            None => call.await,
            Some(deadline) => tokio::time::timeout_at(deadline, call).await.unwrap_or_else(|_| {
                Err(Error::S3 {
                    operation,
                    status: None,
                    code: None,
                    message: "out of time: the invocation's deadline came first".into(),
                })
            }),
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// HeadObject. A missing object is [`Error::SourceNotFound`].
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Head, Error> {
        self.bounded("HeadObject", self.head_unbounded(bucket, key)).await
    }

    async fn head_unbounded(&self, bucket: &str, key: &str) -> Result<Head, Error> {
        let out =
            self.client.head_object().bucket(bucket).key(key).send().await.map_err(|e| {
                match s3_error("HeadObject", e) {
                    Error::S3 { status: Some(404), .. } => not_found(bucket, key),
                    other => other,
                }
            })?;
        Ok(Head {
            size: out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
            etag: out.e_tag().map(str::to_owned),
            metadata: out.metadata().cloned().unwrap_or_default(),
            content_type: out.content_type().map(str::to_owned),
        })
    }

    /// GetObject of at most `max_bytes`, conditional on `if_match` (the ETag HeadObject saw).
    /// A missing object is [`Error::SourceNotFound`], a changed one [`Error::SourceChanged`], a
    /// body over `max_bytes` `InputTooLarge` (read no further).
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Error> {
        self.bounded("GetObject", self.get_unbounded(bucket, key, if_match, max_bytes)).await
    }

    async fn get_unbounded(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Vec<u8>, Error> {
        let out = self.client.get_object().bucket(bucket).key(key).set_if_match(if_match.map(str::to_owned));
        let out = out.send().await.map_err(|e| match s3_error("GetObject", e) {
            Error::S3 { status: Some(404), .. } => not_found(bucket, key),
            Error::S3 { status: Some(412), .. } => {
                Error::SourceChanged { bucket: bucket.to_owned(), key: key.to_owned() }
            }
            other => other,
        })?;
        let too_large =
            |bytes: u64| Error::Image(image_ops::Error::InputTooLarge { bytes, limit: max_bytes });
        let declared = out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        if declared > max_bytes {
            return Err(too_large(declared));
        }
        let mut body = out.body;
        let mut buf = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        let read = async {
            while let Some(chunk) = body.try_next().await.map_err(|e| Error::S3 {
                operation: "GetObject",
                status: None,
                code: None,
                message: format!("reading the body: {e}"),
            })? {
                let total = buf.len() as u64 + chunk.len() as u64;
                if total > max_bytes {
                    return Err(too_large(total));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(())
        };
        tokio::time::timeout(self.body_timeout, read).await.map_err(|_| Error::S3 {
            operation: "GetObject",
            status: None,
            code: None,
            message: "timed out reading the body".into(),
        })??;
        Ok(buf)
    }

    /// PutObject with a content type, a cache control and user metadata (ASCII values).
    /// Returns the stored object's ETag.
    pub async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        cache_control: &str,
        metadata: &HashMap<String, String>,
    ) -> Result<Option<String>, Error> {
        let call = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .cache_control(cache_control)
            .set_metadata(Some(metadata.clone()))
            .send();
        self.bounded("PutObject", async {
            call.await.map(|out| out.e_tag().map(str::to_owned)).map_err(|e| s3_error("PutObject", e))
        })
        .await
    }

    /// The keys under `prefix` (ListObjectsV2, page after page), at most `max`.
    pub async fn list(&self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<String>, Error> {
        self.bounded("ListObjectsV2", async {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| s3_error("ListObjectsV2", e))?;
                keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
                match out.next_continuation_token() {
                    Some(next) if keys.len() < max && out.is_truncated() == Some(true) => {
                        token = Some(next.to_owned())
                    }
                    _ => break,
                }
            }
            keys.truncate(max);
            Ok(keys)
        })
        .await
    }

    /// DeleteObject (succeeds when the object does not exist).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), Error> {
        let call = self.client.delete_object().bucket(bucket).key(key).send();
        self.bounded("DeleteObject", async {
            call.await.map(|_| ()).map_err(|e| s3_error("DeleteObject", e))
        })
        .await
    }
}

fn not_found(bucket: &str, key: &str) -> Error {
    Error::SourceNotFound { bucket: bucket.to_owned(), key: key.to_owned() }
}
