//! The HTTP API served locally: a small hyper server on 127.0.0.1 that routes `POST /uploads`,
//! `POST /process` and `GET /images/{key+}` to the SAME handlers the Lambda functions run
//! (`imgfn_lambda::api`). Each request is turned into the API Gateway HTTP API (payload 2.0)
//! event API Gateway would send and parsed by `lambda_http` exactly as in Lambda, so what runs
//! here is what runs deployed.
//!
//! Like API Gateway, the server answers CORS preflight `OPTIONS` requests (origins from the
//! API's config) and `404` for other routes.
//!
//! **Local-only identity header**: [`SUB_HEADER`] (`x-imgfn-local-sub: <sub>`) makes the server
//! put `requestContext.authorizer.jwt.claims.sub = <sub>` into the event, as API Gateway's JWT
//! authorizer does after verifying a token. It lets tests act as different users. The header
//! is honoured by this server alone: the Lambda functions never read it (deployed, identity
//! comes only from the authorizer's verified claims), and this server must never be exposed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use imgfn_lambda::api::{cors, Api, Route};
use lambda_http::RequestExt as _;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The header that sets the caller's `sub` on the local server only (see the crate docs).
pub const SUB_HEADER: &str = "x-imgfn-local-sub";

/// The API functions' timeout, as `ApiFunctionTimeout` defaults to in the template.
pub const API_FUNCTION_TIMEOUT: Duration = Duration::from_secs(29);

/// A Lambda deadline `timeout` from now, in ms since the Unix epoch.
pub fn deadline_ms(timeout: Duration) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now + timeout).as_millis() as u64
}

/// Largest request body accepted (API Gateway accepts up to 10 MB; the API's JSON is small).
const MAX_BODY: usize = 1024 * 1024;

/// A running local server.
#[derive(Debug)]
pub struct LocalApi {
    /// The address it listens on.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LocalApi {
    /// Serves `api` on `addr` (use port 0 for any free port) until dropped.
    pub async fn start(api: Api, addr: SocketAddr) -> std::io::Result<LocalApi> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(serve(api, listener));
        Ok(LocalApi { addr, task })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections on `listener` forever, each served on its own task.
pub async fn serve(api: Api, listener: TcpListener) {
    let http = ConnBuilder::new(TokioExecutor::new());
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => continue,
        };
        // As API Gateway answers: no 40 ms delayed-ACK stall between headers and body.
        let _ = socket.set_nodelay(true);
        let api = api.clone();
        let service = hyper::service::service_fn(move |req| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(handle(&api, req, peer).await) }
        });
        let conn = http.serve_connection(TokioIo::new(socket), service).into_owned();
        tokio::spawn(conn);
    }
}

/// Routes one request like API Gateway, to the API's handlers.
pub async fn handle(api: &Api, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let route = match (method.as_str(), path.as_str()) {
        (_, "/uploads") => Some((Route::Uploads, None)),
        (_, "/process") => Some((Route::Process, None)),
        (_, p) => {
            p.strip_prefix("/images/").filter(|k| !k.is_empty()).map(|k| (Route::Images, Some(k.to_owned())))
        }
    };
    let origin = req.headers().get(hyper::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some((route, key)) = route.filter(|(r, _)| method == r.method() || method == "OPTIONS") else {
        return not_found(&method, &path);
    };
    if method == "OPTIONS" {
        let mut answer = cors::preflight(&api.config().cors_origins, origin.as_deref());
        // This server's own identity header may come from a page too (the demo page sends it).
        if let Some(allowed) =
            answer.headers_mut().get_mut(lambda_http::http::header::ACCESS_CONTROL_ALLOW_HEADERS)
        {
            if let Ok(value) =
                lambda_http::http::HeaderValue::from_str(&format!("{}, {SUB_HEADER}", cors::ALLOW_HEADERS))
            {
                *allowed = value;
            }
        }
        return convert(answer);
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let error = json!({"error": {"code": "input_too_large", "message": "request body over 1 MiB"}});
            return json_response(StatusCode::PAYLOAD_TOO_LARGE, &error);
        }
    };
    let event = event(&parts, &body, route, key.as_deref(), peer);
    match lambda_http::request::from_str(&event.to_string()) {
        Ok(request) => {
            // As Lambda does: the invocation's deadline, the API functions' timeout from now.
            let mut context = lambda_runtime::Context::default();
            context.request_id = uuid::Uuid::new_v4().to_string();
            context.deadline = deadline_ms(API_FUNCTION_TIMEOUT);
            convert(api.handle(route, request.with_lambda_context(context)).await)
        }
        Err(e) => {
            let error = json!({"error": {"code": "malformed_request", "message": format!("{e}")}});
            json_response(StatusCode::BAD_REQUEST, &error)
        }
    }
}

/// The API Gateway HTTP API (payload 2.0) event for a request.
fn event(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    route: Route,
    key: Option<&str>,
    peer: SocketAddr,
) -> Value {
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        headers.insert(name.as_str().to_owned(), Value::from(values.join(",")));
    }
    let route_key = match route {
        Route::Uploads => "POST /uploads",
        Route::Process => "POST /process",
        Route::Images => "GET /images/{key+}",
        // A Function URL's event has the route key `$default`.
        Route::Render => "$default",
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut context = json!({
        "accountId": "local",
        "apiId": "local",
        "domainName": headers.get("host").cloned().unwrap_or_else(|| Value::from("localhost")),
        "domainPrefix": "local",
        "http": {
            "method": parts.method.as_str(),
            "path": parts.uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": peer.ip().to_string(),
            "userAgent": headers.get("user-agent").cloned().unwrap_or_else(|| Value::from("")),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route_key,
        "stage": "$default",
        "timeEpoch": now,
    });
    if let Some(sub) = parts.headers.get(SUB_HEADER).and_then(|v| v.to_str().ok()) {
        context["authorizer"] = json!({"jwt": {"claims": {"sub": sub}, "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.uri.path(),
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": true,
        "body": base64::engine::general_purpose::STANDARD.encode(body),
    });
    if let Some(key) = key {
        // API Gateway passes {key+} decoded.
        let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy().into_owned();
        event["pathParameters"] = json!({ "key": decoded });
    }
    event
}

fn convert(response: lambda_http::Response<lambda_http::Body>) -> Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(s) => Bytes::from(s),
        lambda_http::Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Response::from_parts(parts, Full::new(bytes))
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

/// What API Gateway answers for a route it does not have, in the API's error shape.
fn not_found(method: &str, path: &str) -> Response<Full<Bytes>> {
    let error = json!({"error": {"code": "not_found", "message": format!("no route for {method} {path}")}});
    json_response(StatusCode::NOT_FOUND, &error)
}
