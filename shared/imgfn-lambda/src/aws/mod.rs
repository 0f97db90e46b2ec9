//! The few AWS calls the functions make, over one small HTTPS client instead of the AWS SDK:
//! S3 (in [`crate::s3`]), Secrets Manager's GetSecretValue ([`crate::url_keys`]) and
//! CloudFront's CreateInvalidation ([`crate::refresh`]). Each request is signed with SigV4
//! ([`sigv4`]), bounded by explicit timeouts and retried as the SDK's standard retry mode
//! retries (5xx, throttling, timeouts and connection errors, exponential backoff with full
//! jitter). The SDK carried every operation of three services, its endpoint rules, a
//! credentials chain and an HTTP/2 stack: about 3 MB of every function binary, for five S3
//! calls and two others (BENCHMARKS.md, "Function size and init time").
//!
//! Credentials and region come from the environment, as Lambda provides them
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`);
//! `AWS_ENDPOINT_URL` (or the service's own `AWS_ENDPOINT_URL_S3`, `..._SECRETS_MANAGER`,
//! `..._CLOUDFRONT`) points a service at another endpoint (a local S3 server: path-style
//! addressing is then used).

pub mod sigv4;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{ConfigError, Error};

/// Timeouts and retries. The defaults are what the functions use in production.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP/TLS connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// One attempt of one request, response headers included. Default 20 s (a 25 MB GET at
    /// Lambda's S3 throughput takes well under that).
    pub attempt_timeout: Duration,
    /// One request with all its retries. Default 60 s.
    pub operation_timeout: Duration,
    /// Attempts per request (5xx, throttling, timeouts, connection errors, with exponential
    /// backoff and full jitter). Default 3.
    pub max_attempts: u32,
    /// First retry backoff (the bound of the first random wait; doubled per attempt, at most
    /// 20 s). Default 200 ms.
    pub initial_backoff: Duration,
    /// Reading a response body once its headers arrived. Default 30 s.
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

/// Static credentials (Lambda's: the execution role's, in the environment).
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Never prints the secret or the token.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// Where and as whom requests go.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub region: String,
    pub credentials: Credentials,
    /// `AWS_ENDPOINT_URL`: every service at this endpoint.
    pub endpoint_url: Option<String>,
    /// Service-specific endpoints (`AWS_ENDPOINT_URL_S3` and the like), by signing name.
    pub service_endpoints: Vec<(&'static str, String)>,
}

impl AwsConfig {
    /// Static credentials and a region; `endpoint_url` for a local server.
    pub fn new(region: &str, credentials: Credentials, endpoint_url: Option<&str>) -> AwsConfig {
        AwsConfig {
            region: region.to_owned(),
            credentials,
            endpoint_url: endpoint_url.map(|u| u.trim_end_matches('/').to_owned()),
            service_endpoints: Vec::new(),
        }
    }

    /// From the environment, as Lambda sets it. A missing variable names itself.
    pub fn from_env() -> Result<AwsConfig, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| {
            var(name).ok_or(ConfigError {
                var: name,
                message: "not set (Lambda sets it from the function's execution role)".into(),
            })
        };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or(ConfigError { var: "AWS_REGION", message: "not set (Lambda sets it)".into() })?;
        let credentials = Credentials {
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        };
        let mut config = AwsConfig::new(&region, credentials, var("AWS_ENDPOINT_URL").as_deref());
        for (service, name) in [
            ("s3", "AWS_ENDPOINT_URL_S3"),
            ("secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
            ("cloudfront", "AWS_ENDPOINT_URL_CLOUDFRONT"),
        ] {
            if let Some(url) = var(name) {
                config.service_endpoints.push((service, url.trim_end_matches('/').to_owned()));
            }
        }
        Ok(config)
    }

    /// The endpoint configured for `service`, if any (else the service's public one).
    pub fn endpoint_for(&self, service: &str) -> Option<&str> {
        self.service_endpoints
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, u)| u.as_str())
            .or(self.endpoint_url.as_deref())
    }

    /// The DNS suffix of the region's public endpoints.
    pub fn dns_suffix(&self) -> &'static str {
        if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        }
    }
}

/// One request before signing. `path` is URI-encoded; `query` and `headers` are raw.
#[derive(Debug, Clone)]
pub struct Request {
    /// For errors and logs: `GetObject`, `GetSecretValue`...
    pub operation: &'static str,
    /// The signing name.
    pub service: &'static str,
    /// The signing region.
    pub region: String,
    pub method: Method,
    /// `https://host[:port]` (or `http://` for a local endpoint), no trailing slash.
    pub origin: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Lower-case names; each is sent and signed.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The URL without a query.
    fn url(&self) -> String {
        format!("{}{}", self.origin, self.path)
    }

    /// `host[:port]` of the origin.
    fn host(&self) -> &str {
        host_of(&self.origin)
    }
}

/// `host[:port]` of an origin (`https://host[:port]`): the signed `host` header.
pub(crate) fn host_of(origin: &str) -> &str {
    origin.split_once("://").map_or(origin, |(_, h)| h)
}

/// TLS 1.2/1.3 on ring, trusting the system's root certificates (as the SDK's default client
/// did). Without readable roots every HTTPS call fails with a certificate error; plain-HTTP
/// local endpoints still work.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no system root certificates found: HTTPS calls will fail ({:?})", found.errors);
    }
    // ring implements both protocol versions, so this cannot fail.
    #[allow(clippy::expect_used)]
    let builder =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3");
    builder.with_root_certificates(roots).with_no_client_auth()
}

/// A response whose status was a success; the body is still to be read.
pub type Response = http::Response<Incoming>;

/// The HTTPS client every call goes through, with the configuration it signs with.
#[derive(Clone)]
pub struct AwsClient {
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: Arc<AwsConfig>,
    options: ClientOptions,
}

impl fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsClient").field("config", &self.config).field("options", &self.options).finish()
    }
}

impl AwsClient {
    /// A client for `config` with `options`' timeouts and retries: HTTP/1.1 over rustls (ring)
    /// trusting the system's roots, plain HTTP only where an endpoint URL says so.
    pub fn new(config: AwsConfig, options: ClientOptions) -> AwsClient {
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(options.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls_config());
        let https = https.https_or_http().enable_http1().wrap_connector(connector);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // S3 closes idle connections after about 20 s.
            .pool_idle_timeout(Duration::from_secs(15))
            .build(https);
        AwsClient { http, config: Arc::new(config), options }
    }

    /// The configuration requests are signed with.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// The timeouts and retries.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// A signer for `service` in `region` at the current time.
    pub fn signer<'a>(&'a self, service: &'a str, region: &'a str) -> sigv4::Signer<'a> {
        let c = &self.config.credentials;
        sigv4::Signer {
            access_key_id: &c.access_key_id,
            secret_access_key: &c.secret_access_key,
            session_token: c.session_token.as_deref(),
            region,
            service,
            time: SystemTime::now(),
        }
    }

    /// Sends `request`, signed afresh for each attempt, retrying what may succeed on a retry,
    /// all within the operation timeout. A success status gives the response with its body
    /// unread; any other status an [`Error::S3`] with the status and the service's error code.
    pub async fn send(&self, request: &Request) -> Result<Response, Error> {
        let operation = request.operation;
        // Hashed once: each attempt is signed afresh, over the same body.
        let payload_hash = sigv4::sha256_hex(&request.body);
        let attempts = async {
            let mut attempt = 1;
            loop {
                let outcome = self.attempt(request, &payload_hash).await;
                let retry = match &outcome {
                    Ok(_) => false,
                    Err(Failure { retryable, .. }) => *retryable && attempt < self.options.max_attempts,
                };
                if !retry {
                    return outcome.map_err(|f| f.error);
                }
                tokio::time::sleep(self.backoff(attempt)).await;
                attempt += 1;
            }
        };
        tokio::time::timeout(self.options.operation_timeout, attempts).await.unwrap_or_else(|_| {
            Err(Error::S3 { operation, status: None, code: None, message: "timed out".into() })
        })
    }

    /// Full jitter: a random wait up to `initial_backoff * 2^(attempt-1)`, at most 20 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .options
            .initial_backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(Duration::from_secs(20));
        let random = (uuid::Uuid::new_v4().as_u64_pair().0 >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(random)
    }

    async fn attempt(&self, request: &Request, payload_hash: &str) -> Result<Response, Failure> {
        let operation = request.operation;
        let failure = |retryable, status, code, message| Failure {
            retryable,
            error: Error::S3 { operation, status, code, message },
        };
        let mut headers = request.headers.clone();
        headers.push(("host".into(), request.host().to_owned()));
        if request.service == "s3" {
            // S3 requires it, and checks the body against it.
            headers.push(("x-amz-content-sha256".into(), payload_hash.to_owned()));
        }
        let parts = sigv4::Parts {
            method: request.method.as_str(),
            path: &request.path,
            query: &request.query,
            headers: &headers,
        };
        let signed = self.signer(request.service, &request.region).sign(&parts, payload_hash);
        let mut url = request.url();
        if !request.query.is_empty() {
            url.push('?');
            url.push_str(&query_string(&request.query));
        }
        let mut builder = http::Request::builder().method(request.method.clone()).uri(url);
        for (name, value) in headers.iter().chain(&signed) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http_request = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| failure(false, None, None, format!("building the request: {e}")))?;
        let response =
            match tokio::time::timeout(self.options.attempt_timeout, self.http.request(http_request)).await {
                Err(_) => return Err(failure(true, None, None, "timed out".into())),
                Ok(Err(e)) => return Err(failure(true, None, None, display_chain(&e))),
                Ok(Ok(r)) => r,
            };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        // An error: its body (bounded) names the code.
        let body = read_limited(response.into_body(), 64 * 1024, self.options.body_timeout)
            .await
            .unwrap_or_default();
        let (code, message) = error_details(&body);
        let message = message.unwrap_or_else(|| {
            format!(
                "HTTP {}{}",
                status.as_u16(),
                status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default()
            )
        });
        let retryable = retryable_status(status, code.as_deref());
        Err(failure(retryable, Some(status.as_u16()), code, message))
    }

    /// Reads a success response's body, at most `max` bytes (`Err(Some(n))`: it had at least
    /// `n`) within the body timeout.
    pub async fn body(
        &self,
        operation: &'static str,
        response: Response,
        max: u64,
    ) -> Result<Vec<u8>, BodyError> {
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared.filter(|&n| n > max) {
            return Err(BodyError::TooLarge(n));
        }
        read_limited_sized(response.into_body(), max, declared, self.options.body_timeout).await.map_err(
            |e| match e {
                ReadError::TooLarge(n) => BodyError::TooLarge(n),
                ReadError::Failed(message) => BodyError::Failed(Error::S3 {
                    operation,
                    status: None,
                    code: None,
                    message: format!("reading the body: {message}"),
                }),
            },
        )
    }
}

/// What went wrong reading a response body.
#[derive(Debug)]
pub enum BodyError {
    /// The body is larger than allowed: at least this many bytes.
    TooLarge(u64),
    /// The connection failed or the body timed out.
    Failed(Error),
}

struct Failure {
    retryable: bool,
    error: Error,
}

/// 5xx, 429 and the throttling and timeout codes services send with a 400.
fn retryable_status(status: StatusCode, code: Option<&str>) -> bool {
    const CODES: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
    ];
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || code.is_some_and(|c| CODES.contains(&c))
}

/// The error code and message of an error body: S3's and CloudFront's XML
/// (`<Code>`, `<Message>`), or the JSON protocols' (`__type`, `message`).
fn error_details(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(trimmed).unwrap_or_default();
        let code = json["__type"].as_str().or(json["code"].as_str()).map(|c| {
            // `com.amazonaws...#ResourceNotFoundException` → `ResourceNotFoundException`.
            c.rsplit('#').next().unwrap_or(c).split(':').next().unwrap_or(c).to_owned()
        });
        let message = json["message"].as_str().or(json["Message"].as_str()).map(str::to_owned);
        return (code, message);
    }
    (xml::first(&text, "Code"), xml::first(&text, "Message"))
}

/// Reading a body with a byte limit failed.
enum ReadError {
    TooLarge(u64),
    Failed(String),
}

async fn read_limited(body: Incoming, max: u64, timeout: Duration) -> Option<Vec<u8>> {
    read_limited_sized(body, max, None, timeout).await.ok()
}

async fn read_limited_sized(
    mut body: Incoming,
    max: u64,
    declared: Option<u64>,
    timeout: Duration,
) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n.min(max)) as usize);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ReadError::Failed(display_chain(&e)))?;
            if let Ok(chunk) = frame.into_data() {
                let total = buf.len() as u64 + chunk.len() as u64;
                if total > max {
                    return Err(ReadError::TooLarge(total));
                }
                buf.extend_from_slice(&chunk);
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ReadError::Failed("timed out reading the body".into()))??;
    Ok(buf)
}

/// `query` encoded for a URL (the order kept).
pub fn query_string(query: &[(String, String)]) -> String {
    query
        .iter()
        .map(|(n, v)| {
            format!("{}={}", sigv4::encode(n, sigv4::UNRESERVED), sigv4::encode(v, sigv4::UNRESERVED))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn display_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The little XML the services answer with: text of named elements, entities decoded. Their
/// responses are flat where it is used (no element named twice at different depths).
pub mod xml {
    /// The text of every `<tag>` element, in order.
    pub fn all(doc: &str, tag: &str) -> Vec<String> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut out = Vec::new();
        let mut rest = doc;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            out.push(unescape(&after[..end]));
            rest = &after[end + close.len()..];
        }
        out
    }

    /// The text of the first `<tag>` element.
    pub fn first(doc: &str, tag: &str) -> Option<String> {
        all(doc, tag).into_iter().next()
    }

    /// `s` with XML's five entities and character references decoded.
    pub fn unescape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let Some(semi) = after.find(';') else {
                out.push_str(&rest[amp..]);
                return out;
            };
            let entity = &after[..semi];
            let decoded = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            match decoded {
                Some(c) => {
                    out.push(c);
                    rest = &after[semi + 1..];
                }
                None => {
                    out.push('&');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `s` with the characters XML needs escaped in text.
    pub fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let s3 = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce &amp; retry</Message></Error>";
        assert_eq!(error_details(s3), (Some("SlowDown".into()), Some("Please reduce & retry".into())));
        let json = br#"{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","message":"no such secret"}"#;
        assert_eq!(
            error_details(json),
            (Some("ResourceNotFoundException".into()), Some("no such secret".into()))
        );
        assert_eq!(error_details(b""), (None, None));
        assert!(retryable_status(StatusCode::BAD_REQUEST, Some("RequestTimeout")));
        assert!(retryable_status(StatusCode::SERVICE_UNAVAILABLE, None));
        assert!(!retryable_status(StatusCode::FORBIDDEN, Some("AccessDenied")));
        assert!(!retryable_status(StatusCode::NOT_FOUND, None));
    }

    #[test]
    fn xml_text() {
        let doc = "<R><Key>a&amp;b</Key><Key>&#x3C;&#60;c&gt;</Key><K>x</K><Key>&bogus;</Key></R>";
        assert_eq!(xml::all(doc, "Key"), ["a&b", "<<c>", "&bogus;"]);
        assert_eq!(xml::first(doc, "K").as_deref(), Some("x"));
        assert_eq!(xml::first(doc, "None"), None);
        assert_eq!(xml::unescape(&xml::escape("a<b>&\"c")), "a<b>&\"c");
    }

    #[test]
    fn backoff_is_jittered_and_bounded() {
        let config = AwsConfig::new(
            "us-east-1",
            Credentials { access_key_id: "a".into(), secret_access_key: "s".into(), session_token: None },
            None,
        );
        let client = AwsClient::new(config, ClientOptions::default());
        for attempt in 1..40 {
            let ceiling =
                (Duration::from_millis(200) * (1 << (attempt - 1).min(16))).min(Duration::from_secs(20));
            let waits: Vec<Duration> = (0..20).map(|_| client.backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "{attempt}: {waits:?}");
            assert!(waits.windows(2).any(|w| w[0] != w[1]), "random: {waits:?}");
        }
    }

    #[test]
    fn credentials_never_print_the_secret() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("tok".into()),
        };
        let printed = format!("{c:?}");
        assert!(printed.contains("AKID") && !printed.contains("very-secret") && !printed.contains("tok"));
    }
}
