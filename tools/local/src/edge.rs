//! The CDN served locally: what CloudFront does deployed (`template.yaml`'s distribution, its
//! viewer-request function `cdn/viewer-request.js` and its origin group), on 127.0.0.1.
//!
//! For each `GET`/`HEAD`:
//! 1. the viewer-request step, [`imgfn_lambda::rendition::viewer_request`] — the very function
//!    the CloudFront Function mirrors and is tested against: normal form, signature and expiry,
//!    rendition prefixes, `Accept` → format; refusals are answered as the function answers
//!    them (JSON, `Cache-Control: no-store`);
//! 2. the S3 origin: the output bucket at the route's key, through the local S3 endpoint
//!    (`ETag`, `If-None-Match` → `304`, the stored `Cache-Control`); header
//!    `x-imgfn-cache: hit`;
//! 3. on a miss of a rendition, failover to the render function
//!    ([`imgfn_lambda::api::Route::Render`]) with the Function URL event CloudFront would send
//!    (the viewer URL in `x-imgfn-request`): it renders, stores and answers
//!    (`x-imgfn-cache: miss`); its next request is a hit.
//!
//! There is no edge cache: every request goes to S3 (the stored rendition is the cache that
//! matters; a browser's own cache revalidates with `If-None-Match`). What the refresh function
//! does after an overwrite happens here too (the stack hands it every source change), so the
//! next request renders the new image.
//!
//! `GET /` serves the demo page and `/demo/sign` signs its URLs, when a demo is configured
//! ([`EdgeConfig::demo`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use imgfn_lambda::api::render::{etag_matches, now_secs, CACHE_HEADER, REQUEST_HEADER};
use imgfn_lambda::api::{Api, Route};
use imgfn_lambda::rendition::{viewer_request, EdgeRoute};
use imgfn_lambda::s3::S3Store;
use lambda_http::RequestExt as _;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{deadline_ms, API_FUNCTION_TIMEOUT};

/// What the edge serves.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The render function (its config holds the URL keys, buckets and prefixes).
    pub api: Api,
    /// The S3 origin: the output bucket through the local endpoint.
    pub store: S3Store,
    /// The demo page at `/` and its signer at `/demo/sign`, if any.
    pub demo: Option<crate::demo::Demo>,
}

/// How the edge's requests were answered, for tests and the demo.
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Served from the output bucket.
    pub hits: AtomicUsize,
    /// Passed to the render function.
    pub renders: AtomicUsize,
    /// Refused at the viewer-request step.
    pub refused: AtomicUsize,
}

/// A running local edge.
#[derive(Debug)]
pub struct LocalEdge {
    pub addr: SocketAddr,
    pub stats: Arc<EdgeStats>,
    task: JoinHandle<()>,
}

impl LocalEdge {
    /// Serves `config` on `listener` until dropped.
    pub fn start(config: EdgeConfig, listener: TcpListener) -> std::io::Result<LocalEdge> {
        let addr = listener.local_addr()?;
        let stats = Arc::new(EdgeStats::default());
        let task = tokio::spawn(serve(Arc::new(config), listener, stats.clone()));
        Ok(LocalEdge { addr, stats, task })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalEdge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(config: Arc<EdgeConfig>, listener: TcpListener, stats: Arc<EdgeStats>) {
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let Ok((socket, peer)) = listener.accept().await else { continue };
        // Without it a small response waits out the client's 40 ms delayed ACK (measured by
        // tools/local/examples/edge_bench.rs: 42 ms per stored hit, 1.5 ms with it).
        let _ = socket.set_nodelay(true);
        let (config, stats) = (config.clone(), stats.clone());
        let service = hyper::service::service_fn(move |req| {
            let (config, stats) = (config.clone(), stats.clone());
            async move { Ok::<_, Infallible>(handle(&config, &stats, req, peer).await) }
        });
        tokio::spawn(http.serve_connection(TokioIo::new(socket), service).into_owned());
    }
}

/// Answers one viewer request (see the module docs).
pub async fn handle(
    config: &EdgeConfig,
    stats: &EdgeStats,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let head = req.method() == Method::HEAD;
    let mut response = answer(config, stats, &req, peer).await;
    if head {
        *response.body_mut() = Full::new(Bytes::new());
    }
    response
}

async fn answer(
    config: &EdgeConfig,
    stats: &EdgeStats,
    req: &Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "GET or HEAD only", None);
    }
    let path = req.uri().path();
    if let Some((status, content_type, body)) =
        config.demo.as_ref().and_then(|d| d.serve(path, req.uri().query()))
    {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    let api_config = config.api.config();
    let header_str = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let keys = api_config.url_keys.current().await;
    let route = match viewer_request(
        path,
        req.uri().query(),
        header_str(header::ACCEPT),
        &keys,
        now_secs(),
        &api_config.rendition_prefixes,
    ) {
        Ok(route) => route,
        Err(e) => {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, e.code(), &e.to_string(), e.field());
        }
    };
    match origin(config, &route, header_str(header::IF_NONE_MATCH)).await {
        Ok(Some(response)) => {
            stats.hits.fetch_add(1, Ordering::Relaxed);
            response
        }
        Ok(None) => match route {
            EdgeRoute::Rendition(_) => {
                stats.renders.fetch_add(1, Ordering::Relaxed);
                render(config, req, &route.origin_uri(), peer).await
            }
            EdgeRoute::Stored(key) => {
                error(StatusCode::NOT_FOUND, "not_found", &format!("no such object: {key}"), None)
            }
        },
        Err(message) => error(StatusCode::BAD_GATEWAY, "origin", &message, None),
    }
}

/// The S3 origin: the output-bucket object at the route's key; `None` when it is not there.
async fn origin(
    config: &EdgeConfig,
    route: &EdgeRoute,
    if_none_match: Option<&str>,
) -> Result<Option<Response<Full<Bytes>>>, String> {
    let bucket = &config.api.config().output_bucket;
    let key = route.origin_key();
    // CloudFront's S3 origin reads the whole object; the local edge holds it in memory.
    let object = match config.store.get_object(bucket, &key, 1 << 30).await {
        Ok(object) => object,
        Err(
            imgfn_lambda::Error::SourceNotFound { .. } | imgfn_lambda::Error::S3 { status: Some(403), .. },
        ) => return Ok(None),
        Err(e) => return Err(format!("S3 GetObject {key}: {e}")),
    };
    let etag = object.etag.clone();
    let content_type = object.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned());
    let cache_control = object.cache_control.clone();
    let mut response = Response::new(Full::new(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
    if let Some(cc) = cache_control.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::CACHE_CONTROL, cc);
    }
    if let Some(etag) = etag.as_deref() {
        if let Ok(value) = HeaderValue::from_str(etag) {
            headers.insert(header::ETAG, value);
        }
        if if_none_match.is_some_and(|inm| etag_matches(inm, etag)) {
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(Some(response));
        }
    }
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    *response.body_mut() = Full::new(Bytes::from(object.body));
    Ok(Some(response))
}

/// The failover origin: the render function, called with the Function URL event CloudFront
/// sends (the viewer's URL in [`REQUEST_HEADER`], its `Accept` and `If-None-Match`).
async fn render(
    config: &EdgeConfig,
    req: &Request<Incoming>,
    origin_uri: &str,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let viewer = req.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_default();
    let mut headers = Map::new();
    for name in [header::ACCEPT, header::IF_NONE_MATCH, header::USER_AGENT] {
        if let Some(v) = req.headers().get(&name).and_then(|v| v.to_str().ok()) {
            headers.insert(name.as_str().to_owned(), Value::from(v));
        }
    }
    headers.insert(REQUEST_HEADER.to_owned(), Value::from(viewer));
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": origin_uri,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local-render",
            "domainName": "local-render.lambda-url.us-east-1.on.aws",
            "domainPrefix": "local-render",
            "http": {
                "method": "GET",
                "path": origin_uri,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": "Amazon CloudFront",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": false,
    });
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => {
            let mut context = lambda_runtime::Context::default();
            context.request_id = uuid::Uuid::new_v4().to_string();
            context.deadline = deadline_ms(API_FUNCTION_TIMEOUT);
            let response = config.api.handle(Route::Render, request.with_lambda_context(context)).await;
            let (parts, body) = response.into_parts();
            let bytes = match body {
                lambda_http::Body::Empty => Bytes::new(),
                lambda_http::Body::Text(s) => Bytes::from(s),
                lambda_http::Body::Binary(b) => Bytes::from(b),
                _ => Bytes::new(),
            };
            Response::from_parts(parts, Full::new(bytes))
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "origin", &format!("the render event: {e}"), None),
    }
}

/// An error answer as the viewer-request function writes it: JSON, never cached.
fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Response<Full<Bytes>> {
    let mut e = json!({"code": code, "message": message});
    if let Some(field) = field {
        e["field"] = Value::from(field);
    }
    let mut response = Response::new(Full::new(Bytes::from(json!({ "error": e }).to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
