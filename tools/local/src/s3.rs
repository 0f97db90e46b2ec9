//! A real S3-compatible endpoint on 127.0.0.1: s3s-fs (objects are plain files under a data
//! directory, one folder per bucket) behind s3s's SigV4 verification with fixed local
//! credentials, so presigned URLs are checked exactly as S3 checks them.
//!
//! What S3 notifications (and S3's events to EventBridge) do deployed is done here by watching
//! the requests: every request that creates an object (PutObject and CopyObject, a `PUT` on a
//! key without a sub-resource; CompleteMultipartUpload, a `POST` with `uploadId`) or deletes one
//! (DeleteObject, a `DELETE` on a key without a sub-resource) and succeeds is reported as a
//! [`Changed`] on a channel, after the object is stored or removed. The caller decides which
//! function gets it. (DeleteObjects, the batch `POST ?delete`, is not reported.)
//!
//! As strict as S3 where a user would notice, so that what works here works deployed:
//! - a signed request (header or presigned) with an `x-amz-*` header it did not sign is refused
//!   with 403 `AccessDenied` ("There were headers present in the request which were not
//!   signed"), as S3 refuses it: a presigned upload cannot be given other metadata;
//! - listings asked for with `encoding-type=url` (as the AWS CLI asks) encode keys, prefixes and
//!   markers as S3 does (`a+b.webp` lists as `a%2Bb.webp`, a space as `+`);
//! - keys it cannot store faithfully as files are refused when written (400 `InvalidArgument`:
//!   an empty, `.` or `..` segment, a control character, a folder marker, a segment over the
//!   255 bytes a file name holds) and not found when read
//!   (404), and a key that names a folder of other keys is a missing object (404), never a 500;
//! - CORS as the buckets' `CorsConfiguration` in `template.yaml` sets it ([`CorsRule`]): a
//!   preflight `OPTIONS` is answered for an allowed origin and method and refused (403) otherwise,
//!   and a bucket without a rule refuses every preflight, so a browser upload that works here
//!   works deployed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper::body::Incoming;
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::S3Service;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The access key of the local endpoint (local use only; printed at start-up).
pub const ACCESS_KEY: &str = "imgfn-local";
/// The secret key of the local endpoint (local use only; printed at start-up).
pub const SECRET_KEY: &str = "imgfn-local-secret";
/// The region clients sign for.
pub const REGION: &str = "us-east-1";

/// The requests an endpoint saw, when asked to keep them: (method, decoded path).
pub type RequestLog = std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// An object that was created or deleted, as S3 would report it to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    /// `ObjectCreated:Put`, `ObjectCreated:Copy`, `ObjectCreated:CompleteMultipartUpload` or
    /// `ObjectRemoved:Delete`.
    pub event_name: &'static str,
}

impl Changed {
    /// Whether the object was created (else deleted).
    pub fn is_created(&self) -> bool {
        self.event_name.starts_with("ObjectCreated:")
    }
}

/// A running local S3 endpoint. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct LocalS3 {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Where the buckets live on disk.
    pub root: PathBuf,
    task: JoinHandle<()>,
}

impl LocalS3 {
    /// Serves the buckets under `root` on `addr` (port 0: any free port), creating `buckets`
    /// (folders under `root`) when missing. Every object created is sent on `created`.
    pub async fn start(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        created: mpsc::UnboundedSender<Changed>,
    ) -> std::io::Result<LocalS3> {
        LocalS3::start_logged(root, addr, buckets, created, None).await
    }

    /// [`LocalS3::start`] with the buckets' CORS rules (S3 answers no preflight without one).
    pub async fn start_with_cors(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        created: mpsc::UnboundedSender<Changed>,
        cors: Vec<CorsRule>,
    ) -> std::io::Result<LocalS3> {
        LocalS3::serve(root, addr, buckets, created, None, cors).await
    }

    /// [`LocalS3::start`], also keeping every request in `log` (for tests that count them).
    pub async fn start_logged(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        created: mpsc::UnboundedSender<Changed>,
        log: Option<RequestLog>,
    ) -> std::io::Result<LocalS3> {
        LocalS3::serve(root, addr, buckets, created, log, Vec::new()).await
    }

    async fn serve(
        root: &Path,
        addr: SocketAddr,
        buckets: &[&str],
        created: mpsc::UnboundedSender<Changed>,
        log: Option<RequestLog>,
        cors: Vec<CorsRule>,
    ) -> std::io::Result<LocalS3> {
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket))?;
        }
        let root = root.canonicalize()?;
        let fs = s3s_fs::FileSystem::new(&root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let cors = std::sync::Arc::new(cors);
        let service = Notifying { inner: builder.build(), created, root: root.clone(), log, cors };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                // No 40 ms delayed-ACK stall between a response's headers and its body.
                let _ = socket.set_nodelay(true);
                let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                tokio::spawn(conn);
            }
        });
        Ok(LocalS3 { addr, root, task })
    }

    /// `http://<addr>`: the `--endpoint-url` / `AWS_ENDPOINT_URL` of this endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The s3s service, reporting the objects its successful requests created.
#[derive(Clone)]
struct Notifying {
    inner: S3Service,
    created: mpsc::UnboundedSender<Changed>,
    /// Where the buckets live on disk.
    root: PathBuf,
    log: Option<RequestLog>,
    cors: std::sync::Arc<Vec<CorsRule>>,
}

/// A bucket's CORS rule, as a `CorsRules` entry of `template.yaml` (allowed headers `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsRule {
    pub bucket: String,
    /// `AllowedMethods`.
    pub methods: Vec<Method>,
    /// `AllowedOrigins`: exact origins, or `*`.
    pub origins: Vec<String>,
    /// `MaxAge`, seconds.
    pub max_age: u32,
}

impl CorsRule {
    fn allows(&self, origin: &str, method: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
            && self.methods.iter().any(|m| m.as_str() == method)
    }

    /// `Access-Control-Allow-Origin`: `*` for a rule that allows any origin, as S3 answers.
    fn allow_origin(&self, origin: &str) -> String {
        if self.origins.iter().any(|o| o == "*") {
            "*".to_owned()
        } else {
            origin.to_owned()
        }
    }

    fn headers(&self, origin: &str, headers: &mut hyper::HeaderMap) {
        let methods = self.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        for (name, value) in [
            ("access-control-allow-origin", self.allow_origin(origin)),
            ("access-control-allow-methods", methods),
            ("access-control-max-age", self.max_age.to_string()),
            ("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".to_owned()),
        ] {
            if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
}

/// The answer to a CORS preflight, as S3 gives it.
fn preflight(req: &Request<Incoming>, rules: &[CorsRule]) -> S3Response {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(method)) = (header("origin"), header("access-control-request-method")) else {
        return s3_error(
            req.method(),
            400,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
            "",
        );
    };
    let bucket = bucket_and_key(req.uri()).map(|(b, _)| b).unwrap_or_default();
    let mut bucket_rules = rules.iter().filter(|r| r.bucket == bucket).peekable();
    if bucket_rules.peek().is_none() {
        return s3_error(
            req.method(),
            403,
            "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket.",
            "",
        );
    }
    let Some(rule) = bucket_rules.find(|r| r.allows(origin, method)) else {
        return s3_error(
            req.method(),
            403,
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            "",
        );
    };
    let mut response = hyper::Response::new(s3s::Body::empty());
    let headers = response.headers_mut();
    rule.headers(origin, headers);
    if let Some(Ok(requested)) =
        header("access-control-request-headers").map(hyper::header::HeaderValue::from_str)
    {
        headers.insert("access-control-allow-headers", requested);
    }
    response
}

impl hyper::service::Service<Request<Incoming>> for Notifying {
    type Response = <S3Service as hyper::service::Service<Request<Incoming>>>::Response;
    type Error = <S3Service as hyper::service::Service<Request<Incoming>>>::Error;
    type Future = <S3Service as hyper::service::Service<Request<Incoming>>>::Future;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if let Some(log) = &self.log {
            let path =
                percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy().into_owned();
            if let Ok(mut log) = log.lock() {
                log.push((req.method().to_string(), path));
            }
        }
        if req.method() == Method::OPTIONS {
            let answer = preflight(&req, &self.cors);
            return Box::pin(async move { Ok(answer) });
        }
        if let Some(refusal) = refuse(&req, &self.root) {
            return Box::pin(async move { Ok(refusal) });
        }
        // An allowed cross-origin request gets the rule's headers on its response.
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bucket = bucket_and_key(req.uri()).map(|(b, _)| b).unwrap_or_default();
        let cors = origin.and_then(|origin| {
            let rule =
                self.cors.iter().find(|r| r.bucket == bucket && r.allows(&origin, req.method().as_str()))?;
            Some((rule.clone(), origin))
        });
        let copy = req.headers().contains_key("x-amz-copy-source");
        let created = object_created(req.method(), req.uri(), copy);
        let encode_listing = is_url_encoded_listing(req.method(), req.uri());
        let response = hyper::service::Service::call(&self.inner, req);
        let sender = self.created.clone();
        Box::pin(async move {
            let mut response = response.await?;
            if let Some((rule, origin)) = &cors {
                rule.headers(origin, response.headers_mut());
            }
            if let Some(created) = created.filter(|_| response.status().is_success()) {
                // A closed channel means the stack is stopping: the object is stored, unannounced.
                let _ = sender.send(created);
            }
            if encode_listing && response.status().is_success() {
                return Ok(url_encode_listing(response).await);
            }
            Ok(response)
        })
    }
}

type S3Response = <S3Service as hyper::service::Service<Request<Incoming>>>::Response;

/// An S3 error response (XML, as S3 writes it; no body for HEAD).
fn s3_error(method: &Method, status: u16, code: &str, message: &str, extra: &str) -> S3Response {
    let body = if method == Method::HEAD {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>{extra}</Error>"
        )
    };
    let mut response = hyper::Response::new(s3s::Body::from(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_REQUEST);
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/xml"));
    response
}

/// The answer S3 would give instead of this endpoint's, when it differs (see the module docs).
fn refuse(req: &Request<Incoming>, root: &Path) -> Option<S3Response> {
    let method = req.method();
    if let Some(unsigned) = unsigned_amz_headers(req) {
        return Some(s3_error(
            method,
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
            &format!("<HeadersNotSigned>{unsigned}</HeadersNotSigned>"),
        ));
    }
    let (bucket, key) = bucket_and_key(req.uri())?;
    if key.is_empty() {
        return None; // a bucket request
    }
    // A file name holds 255 bytes: a longer segment cannot be a file (S3 takes it, up to 1,024).
    let faithful = imgfn_lambda::keys::check(&key).is_ok()
        && !key.ends_with('/')
        && key.split('/').all(|s| s.len() <= 255);
    let writes = *method == Method::PUT || *method == Method::POST;
    if !faithful && writes {
        return Some(s3_error(
            method,
            400,
            "InvalidArgument",
            "imgfn-local stores objects as files and cannot keep this key as S3 would (an empty, . or .. segment, a control character, a folder marker, or a segment over 255 bytes)",
            "",
        ));
    }
    let reads = *method == Method::GET || *method == Method::HEAD;
    let folder = root.join(&bucket).join(&key).is_dir();
    if reads && !req.uri().query().unwrap_or("").contains("uploadId") && (!faithful || folder) {
        return Some(s3_error(method, 404, "NoSuchKey", "The specified key does not exist.", ""));
    }
    None
}

/// The decoded bucket and key of a path-style request (`/bucket/key`); the key is empty for a
/// bucket request.
fn bucket_and_key(uri: &Uri) -> Option<(String, String)> {
    let path = uri.path().strip_prefix('/')?;
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned());
    Some((decode(bucket)?, decode(key)?))
}

/// The `x-amz-*` headers of a signed request that its signature does not cover (SigV4 in the
/// `Authorization` header or presigned in the query), comma-separated; `None` when all are.
fn unsigned_amz_headers(req: &Request<Incoming>) -> Option<String> {
    let signed: Vec<String> = if let Some(auth) = req.headers().get(hyper::header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        let list = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
        list.split(';').map(str::to_ascii_lowercase).collect()
    } else {
        let query = req.uri().query()?;
        let list = query.split('&').find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))?;
        let list = percent_encoding::percent_decode_str(list).decode_utf8().ok()?;
        list.split(';').map(str::to_ascii_lowercase).collect()
    };
    let unsigned: Vec<&str> = req
        .headers()
        .keys()
        .map(hyper::header::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && !signed.iter().any(|s| s == name))
        .collect();
    (!unsigned.is_empty()).then(|| unsigned.join(","))
}

/// A ListObjects (V1 or V2) request that asks for `encoding-type=url`.
fn is_url_encoded_listing(method: &Method, uri: &Uri) -> bool {
    let key_empty = bucket_and_key(uri).is_some_and(|(_, key)| key.is_empty());
    let query = uri.query().unwrap_or("");
    *method == Method::GET
        && key_empty
        && query.split('&').any(|p| p.eq_ignore_ascii_case("encoding-type=url"))
        && !query
            .split('&')
            .any(|p| ["uploads", "versions", "location"].contains(&p.split('=').next().unwrap_or("")))
}

/// The listing with its keys, prefixes, delimiter and markers URL-encoded, as S3 encodes them
/// for `encoding-type=url` (s3s-fs echoes the encoding type but leaves the values as they are).
async fn url_encode_listing(response: S3Response) -> S3Response {
    use http_body_util::BodyExt as _;
    let (parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return hyper::Response::from_parts(parts, s3s::Body::empty()),
    };
    let xml = String::from_utf8_lossy(&bytes);
    let mut out = xml.into_owned();
    for tag in ["Key", "Prefix", "Delimiter", "StartAfter", "Marker", "NextMarker"] {
        out = encode_elements(&out, tag);
    }
    let mut parts = parts;
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    hyper::Response::from_parts(parts, s3s::Body::from(out))
}

/// Every `<tag>text</tag>` of `xml` with its text (XML-unescaped) form-URL-encoded.
fn encode_elements(xml: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let text_start = start + open.len();
        let Some(len) = rest[text_start..].find(&close) else { break };
        out.push_str(&rest[..text_start]);
        let text = &rest[text_start..text_start + len];
        let raw = text
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&");
        out.push_str(&imgfn_lambda::event::encode_key(&raw));
        rest = &rest[text_start + len..];
    }
    out.push_str(rest);
    out
}

/// Sub-resources whose `PUT` does not create an object (`?tagging`, `?acl`, an UploadPart...).
const NOT_CREATING: [&str; 8] =
    ["partNumber", "uploadId", "tagging", "acl", "retention", "legal-hold", "torrent", "restore"];

/// The object a path-style request creates or deletes when it succeeds, if it is one that does.
fn object_created(method: &Method, uri: &Uri, copy: bool) -> Option<Changed> {
    let params: Vec<&str> =
        uri.query().unwrap_or("").split('&').map(|p| p.split('=').next().unwrap_or("")).collect();
    let has = |name: &str| params.contains(&name);
    let event_name = if method == Method::PUT && !NOT_CREATING.iter().any(|p| has(p)) {
        if copy {
            "ObjectCreated:Copy"
        } else {
            "ObjectCreated:Put"
        }
    } else if method == Method::POST && has("uploadId") {
        "ObjectCreated:CompleteMultipartUpload"
    } else if method == Method::DELETE && !has("uploadId") && !has("tagging") {
        "ObjectRemoved:Delete"
    } else {
        return None;
    };
    let path = uri.path().strip_prefix('/')?;
    let (bucket, key) = path.split_once('/')?;
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|s| s.into_owned());
    let (bucket, key) = (decode(bucket)?, decode(key)?);
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some(Changed { bucket, key, event_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(method: Method, uri: &str, copy: bool) -> Option<(String, String, &'static str)> {
        object_created(&method, &uri.parse().unwrap_or_default(), copy)
            .map(|c| (c.bucket, c.key, c.event_name))
    }

    #[test]
    fn listings_encode_keys_as_s3_does() {
        let xml = "<ListBucketResult><Prefix>a b/</Prefix><Contents><Key>a b/x+y &amp; ü.webp</Key></Contents></ListBucketResult>";
        let encoded = encode_elements(&encode_elements(xml, "Key"), "Prefix");
        assert_eq!(
            encoded,
            "<ListBucketResult><Prefix>a+b/</Prefix><Contents><Key>a+b/x%2By+%26+%C3%BC.webp</Key></Contents></ListBucketResult>"
        );
        let uri = |u: &str| u.parse::<Uri>().unwrap_or_default();
        assert!(is_url_encoded_listing(&Method::GET, &uri("/b?list-type=2&encoding-type=url&prefix=x")));
        assert!(is_url_encoded_listing(&Method::GET, &uri("/b/?encoding-type=url")));
        assert!(!is_url_encoded_listing(&Method::GET, &uri("/b?list-type=2")));
        assert!(!is_url_encoded_listing(&Method::GET, &uri("/b/k.jpg?encoding-type=url")));
    }

    #[test]
    fn recognises_the_requests_that_create_objects() {
        let put = |uri| created(Method::PUT, uri, false);
        assert_eq!(
            put("/src/thumbnail/a%20b.jpg?x-id=PutObject"),
            Some(("src".into(), "thumbnail/a b.jpg".into(), "ObjectCreated:Put"))
        );
        // Presigned PUT: the signature is in the query.
        assert_eq!(
            put("/src/uploads/x.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab").map(|c| c.1),
            Some("uploads/x.jpg".into())
        );
        assert_eq!(created(Method::PUT, "/src/k.jpg", true).map(|c| c.2), Some("ObjectCreated:Copy"));
        assert_eq!(created(Method::DELETE, "/src/k.jpg", false).map(|c| c.2), Some("ObjectRemoved:Delete"));
        assert_eq!(
            created(Method::POST, "/src/big.jpg?uploadId=abc", false).map(|c| c.2),
            Some("ObjectCreated:CompleteMultipartUpload")
        );
        for (method, uri) in [
            (Method::PUT, "/src/big.jpg?partNumber=1&uploadId=abc"),
            (Method::PUT, "/src/k.jpg?tagging"),
            (Method::PUT, "/src"),
            (Method::PUT, "/src/"),
            (Method::POST, "/src/big.jpg?uploads"),
            (Method::GET, "/src/k.jpg"),
            (Method::DELETE, "/src/k.jpg?uploadId=abc"),
            (Method::DELETE, "/src"),
        ] {
            assert_eq!(created(method.clone(), uri, false), None, "{method} {uri}");
        }
    }
}
