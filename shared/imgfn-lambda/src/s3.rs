//! S3 I/O: the store the runner, the API and the refresh function use, over
//! [`crate::aws::AwsClient`] (timeouts and retries set explicitly, SigV4). Each call maps its
//! failure to [`Error`] here; the statuses that mean something for one call (404 on a source,
//! 412 on If-Match) are singled out, everything else stays [`Error::S3`] (transient).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use tokio::time::Instant;

use crate::aws::sigv4::{self, PATH};
use crate::aws::{AwsClient, AwsConfig, BodyError, Request};
use crate::{ConfigError, Error};

pub use crate::aws::ClientOptions;

/// The S3 calls the runner makes.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: AwsClient,
    /// When the invocation runs out of time: every call ends by then (see
    /// [`S3Store::until`]).
    deadline: Option<Instant>,
}

/// An object GetObject read, with the headers the functions and the local CDN use.
#[derive(Debug, Clone)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// User metadata, keys lower-case without `x-amz-meta-`.
    pub metadata: HashMap<String, String>,
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
    /// A store over `config` with `options`' timeouts and retries. Path-style addressing is
    /// used when an endpoint URL is configured (local S3 servers).
    pub fn new(config: AwsConfig, options: ClientOptions) -> S3Store {
        S3Store::with_client(AwsClient::new(config, options))
    }

    /// A store over an existing client (shared with the other services' calls).
    pub fn with_client(client: AwsClient) -> S3Store {
        S3Store { client, deadline: None }
    }

    /// The configuration from the environment (credentials, region, `AWS_ENDPOINT_URL` for a
    /// local S3 server) with the default [`ClientOptions`].
    pub fn from_env() -> Result<S3Store, ConfigError> {
        Ok(S3Store::new(AwsConfig::from_env()?, ClientOptions::default()))
    }

    /// This store with every call bounded by the invocation's deadline (`deadline_ms`: ms since
    /// the Unix epoch, as Lambda gives it; 0 = none) less [`DEADLINE_MARGIN`]: slow S3 then ends
    /// as a timeout this code handles (a retry for a trigger, a 503 with `Retry-After` for the
    /// API), never as the function's own timeout. The client's timeouts and retries still
    /// apply within it.
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

    /// The underlying client (for the other services' calls).
    pub fn client(&self) -> &AwsClient {
        &self.client
    }

    /// Where `bucket` (and `key` in it) is: the origin and the URI-encoded path. Virtual-hosted
    /// at the region's public endpoint (path-style for bucket names that cannot be a host
    /// label: with dots, TLS would not match); path-style at a configured endpoint.
    fn location(&self, bucket: &str, key: &str) -> (String, String) {
        let config = self.client.config();
        let key = sigv4::encode(key, PATH);
        if let Some(endpoint) = config.endpoint_for("s3") {
            return (endpoint.to_owned(), format!("/{bucket}/{key}"));
        }
        let public = format!("s3.{}.{}", config.region, config.dns_suffix());
        let label = bucket.len() <= 63
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if label {
            (format!("https://{bucket}.{public}"), format!("/{key}"))
        } else {
            (format!("https://{public}"), format!("/{bucket}/{key}"))
        }
    }

    fn request(&self, operation: &'static str, method: Method, bucket: &str, key: &str) -> Request {
        let (origin, path) = self.location(bucket, key);
        Request {
            operation,
            service: "s3",
            region: self.client.config().region.clone(),
            method,
            origin,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// HeadObject. A missing object is [`Error::SourceNotFound`].
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Head, Error> {
        self.bounded("HeadObject", self.head_unbounded(bucket, key)).await
    }

    async fn head_unbounded(&self, bucket: &str, key: &str) -> Result<Head, Error> {
        let request = self.request("HeadObject", Method::HEAD, bucket, key);
        let response = self.client.send(&request).await.map_err(|e| match e {
            Error::S3 { status: Some(404), .. } => not_found(bucket, key),
            other => other,
        })?;
        let headers = response.headers();
        Ok(Head {
            size: header(headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
            etag: header(headers, "etag"),
            metadata: metadata(headers),
            content_type: header(headers, "content-type"),
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
        self.bounded("GetObject", self.get_unbounded(bucket, key, if_match, max_bytes)).await.map(|o| o.body)
    }

    /// GetObject of at most `max_bytes` with the object's headers.
    pub async fn get_object(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Object, Error> {
        self.bounded("GetObject", self.get_unbounded(bucket, key, None, max_bytes)).await
    }

    async fn get_unbounded(
        &self,
        bucket: &str,
        key: &str,
        if_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Object, Error> {
        let mut request = self.request("GetObject", Method::GET, bucket, key);
        if let Some(etag) = if_match {
            request.headers.push(("if-match".into(), etag.to_owned()));
        }
        let response = self.client.send(&request).await.map_err(|e| match e {
            Error::S3 { status: Some(404), .. } => not_found(bucket, key),
            Error::S3 { status: Some(412), .. } => {
                Error::SourceChanged { bucket: bucket.to_owned(), key: key.to_owned() }
            }
            other => other,
        })?;
        let headers = response.headers();
        let (etag, content_type, cache_control, metadata) = (
            header(headers, "etag"),
            header(headers, "content-type"),
            header(headers, "cache-control"),
            metadata(headers),
        );
        let body = self.client.body("GetObject", response, max_bytes).await.map_err(|e| match e {
            BodyError::TooLarge(bytes) => {
                Error::Image(image_ops::Error::InputTooLarge { bytes, limit: max_bytes })
            }
            BodyError::Failed(e) => e,
        })?;
        Ok(Object { body, etag, content_type, cache_control, metadata })
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
        let mut request = self.request("PutObject", Method::PUT, bucket, key);
        request.body = Bytes::from(body);
        request.headers.push(("content-type".into(), content_type.to_owned()));
        request.headers.push(("cache-control".into(), cache_control.to_owned()));
        for (name, value) in metadata {
            request.headers.push((format!("x-amz-meta-{}", name.to_ascii_lowercase()), value.clone()));
        }
        self.bounded("PutObject", async {
            let response = self.client.send(&request).await?;
            Ok(header(response.headers(), "etag"))
        })
        .await
    }

    /// The keys under `prefix` (ListObjectsV2, page after page), at most `max`. Keys are asked
    /// URL-encoded (`encoding-type=url`: XML cannot carry every byte a key may hold).
    pub async fn list(&self, bucket: &str, prefix: &str, max: usize) -> Result<Vec<String>, Error> {
        self.bounded("ListObjectsV2", async {
            let mut keys = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut request = self.request("ListObjectsV2", Method::GET, bucket, "");
                request.path = request.path.trim_end_matches('/').to_owned();
                if request.path.is_empty() {
                    request.path.push('/');
                }
                request.query = vec![
                    ("list-type".into(), "2".into()),
                    ("prefix".into(), prefix.to_owned()),
                    ("encoding-type".into(), "url".into()),
                ];
                if let Some(t) = token.take() {
                    request.query.push(("continuation-token".into(), t));
                }
                let response = self.client.send(&request).await?;
                let body =
                    self.client.body("ListObjectsV2", response, 64 << 20).await.map_err(|e| match e {
                        BodyError::TooLarge(n) => Error::S3 {
                            operation: "ListObjectsV2",
                            status: None,
                            code: None,
                            message: format!("a listing page of {n} bytes"),
                        },
                        BodyError::Failed(e) => e,
                    })?;
                let page = ListPage::parse(&String::from_utf8_lossy(&body));
                keys.extend(page.keys);
                match page.next {
                    Some(next) if keys.len() < max && page.truncated => token = Some(next),
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
        let request = self.request("DeleteObject", Method::DELETE, bucket, key);
        self.bounded("DeleteObject", async { self.client.send(&request).await.map(|_| ()) }).await
    }

    /// A presigned URL for `method` on `key` in `bucket`, valid `expires` (at most 7 days, as
    /// S3 allows), and when it expires (RFC 3339, from the signing time). `headers` (lower-case
    /// names) are signed: the caller must send each with exactly that value, and S3 refuses the
    /// request otherwise.
    pub fn presign(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        headers: &[(String, String)],
        expires: Duration,
    ) -> (String, String) {
        let (origin, path) = self.location(bucket, key);
        let mut signed = headers.to_vec();
        signed.push(("host".into(), crate::aws::host_of(&origin).to_owned()));
        let config = self.client.config();
        let signer = self.client.signer("s3", &config.region);
        let parts = sigv4::Parts { method: method.as_str(), path: &path, query: &[], headers: &signed };
        let secs = expires.as_secs().clamp(1, 7 * 24 * 3600);
        let query = signer.presign(&parts, secs);
        let expires_at = sigv4::rfc3339(signer.time + Duration::from_secs(secs));
        (format!("{origin}{path}?{query}"), expires_at)
    }
}

/// One ListObjectsV2 answer.
#[derive(Debug, PartialEq)]
struct ListPage {
    keys: Vec<String>,
    truncated: bool,
    next: Option<String>,
}

impl ListPage {
    /// Keys decoded when the answer says they are URL-encoded (`+` is a space there, as S3
    /// writes them).
    fn parse(doc: &str) -> ListPage {
        use crate::aws::xml;
        let encoded = xml::first(doc, "EncodingType").is_some_and(|e| e.eq_ignore_ascii_case("url"));
        let decode = |k: String| {
            if encoded {
                let plus = k.replace('+', " ");
                percent_encoding::percent_decode_str(&plus).decode_utf8_lossy().into_owned()
            } else {
                k
            }
        };
        ListPage {
            keys: xml::all(doc, "Key").into_iter().map(decode).collect(),
            truncated: xml::first(doc, "IsTruncated").as_deref() == Some("true"),
            next: xml::first(doc, "NextContinuationToken"),
        }
    }
}

/// A response header as text.
fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `x-amz-meta-*` headers, keys lower-case without the prefix.
fn metadata(headers: &http::HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((key.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn not_found(bucket: &str, key: &str) -> Error {
    Error::SourceNotFound { bucket: bucket.to_owned(), key: key.to_owned() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::aws::Credentials;

    fn store(region: &str, endpoint: Option<&str>) -> S3Store {
        let credentials = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        S3Store::new(AwsConfig::new(region, credentials, endpoint), ClientOptions::default())
    }

    #[test]
    fn addressing() {
        let s = store("eu-west-1", None);
        assert_eq!(
            s.location("imgfn-output", "a b/ü+.webp"),
            ("https://imgfn-output.s3.eu-west-1.amazonaws.com".into(), "/a%20b/%C3%BC%2B.webp".into())
        );
        assert_eq!(
            s.location("my.bucket", "k"),
            ("https://s3.eu-west-1.amazonaws.com".into(), "/my.bucket/k".into())
        );
        assert_eq!(
            store("cn-north-1", None).location("b", "k").0,
            "https://b.s3.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            store("us-east-1", Some("http://127.0.0.1:8014/")).location("b", "x/y"),
            ("http://127.0.0.1:8014".into(), "/b/x/y".into())
        );
    }

    #[test]
    fn presigned_urls_carry_what_s3_checks() {
        let s = store("eu-west-1", None);
        let headers = vec![("content-type".to_owned(), "image/jpeg".to_owned())];
        let (url, expires_at) =
            s.presign(Method::PUT, "imgfn-source", "uploads/u/x.jpg", &headers, Duration::from_secs(60));
        assert!(expires_at.ends_with('Z') && expires_at.len() == 20, "{expires_at}");
        assert!(url.starts_with("https://imgfn-source.s3.eu-west-1.amazonaws.com/uploads/u/x.jpg?"), "{url}");
        for part in ["X-Amz-Expires=60", "X-Amz-SignedHeaders=content-type%3Bhost", "X-Amz-Signature="] {
            assert!(url.contains(part), "{part} in {url}");
        }
        let (week, _) = s.presign(Method::GET, "b", "k", &[], Duration::from_secs(30 * 24 * 3600));
        assert!(week.contains("X-Amz-Expires=604800"), "{week}");
    }

    #[test]
    fn listing_pages() {
        let doc = "<ListBucketResult><Name>b</Name><Prefix>out%2F</Prefix><KeyCount>2</KeyCount>\
            <IsTruncated>true</IsTruncated><EncodingType>url</EncodingType>\
            <NextContinuationToken>tok/+=</NextContinuationToken>\
            <Contents><Key>out/a+b%2B.webp</Key><Size>1</Size></Contents>\
            <Contents><Key>out/%C3%BC.webp</Key></Contents></ListBucketResult>";
        assert_eq!(
            ListPage::parse(doc),
            ListPage {
                keys: vec!["out/a b+.webp".into(), "out/ü.webp".into()],
                truncated: true,
                next: Some("tok/+=".into())
            }
        );
        let plain = "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+b&amp;c</Key></Contents></ListBucketResult>";
        assert_eq!(
            ListPage::parse(plain),
            ListPage { keys: vec!["a+b&c".into()], truncated: false, next: None }
        );
    }
}
