//! The HTTP API (`functions/api-*`): three routes as plain async functions from a
//! `lambda_http::Request` to a `lambda_http::Response`, the same behind API Gateway (HTTP API,
//! payload v2) and behind the local server (`tools/local`).
//!
//! | route | handler | answer |
//! |---|---|---|
//! | `POST /uploads` | [`Route::Uploads`] | `201` `{key, upload_url, method, headers, expires_at}`: a presigned PUT |
//! | `POST /process` | [`Route::Process`] | `200` `{output_key, url, cdn_url?, width, height, format, bytes, cached, ...}` |
//! | `GET /images/{key+}` | [`Route::Images`] | `302` to a presigned GET, `404` when absent |
//! | `GET /v1/{key+}/{steps}/{sig}` | [`Route::Render`] | a signed rendition ([`crate::rendition`]), the CDN's origin on a miss ([`render`]) |
//!
//! Handlers ALWAYS return a response (an `Err` out of a function behind API Gateway becomes an
//! opaque 502). Failures are [`crate::Error`]s answered with [`crate::Error::status`] — the one
//! mapping — as `{"error": {"code", "message", "field"?}}`; 5xx say only "something went
//! wrong" (503 adds `Retry-After`) and are logged once with the request id.
//!
//! # Who may do what
//!
//! With a JWT authorizer in front ([`config::Access::Authorizer`], the default; API Gateway puts
//! the verified claims into `requestContext.authorizer.jwt.claims`), the caller's `sub` claim
//! is its **scope**, and a request without one is refused with `401`. Only an API opened on
//! purpose ([`config::Access::Open`]) lets callers without an identity in, all sharing the
//! scope [`OPEN_SCOPE`]. Renditions are the exception: their URLs are signed by the app
//! ([`crate::rendition`]), so the signature, not a caller identity, says who may fetch them. Every key the API writes or reads carries the scope as its second
//! segment (`uploads/<scope>/…`, `thumbnail/<scope>/…`, `processed/<scope>/…`; error records
//! `errors/<op>/<scope>/…`), and a key outside the caller's scope is answered `404` exactly like
//! a missing one, so existence does not leak. The scope is the `sub` with every byte outside
//! `[A-Za-z0-9_-]` written `~XX` (uppercase hex): keys stay URL-safe, two subs never share a
//! scope, and no `sub` gives [`OPEN_SCOPE`].

pub mod config;
pub mod cors;
mod images;
mod process;
pub mod render;
mod request;
mod uploads;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};
use tracing::{error, info};

pub use self::config::ApiConfig;
use crate::logging::safe;
use crate::s3::S3Store;
use image_ops::ops;

use crate::Error;

/// The scope callers without an identity share when the API is open on purpose. `~` followed
/// by anything but two uppercase hex digits is not something [`encode_scope`] writes, so no
/// `sub` can be given this scope.
pub const OPEN_SCOPE: &str = "~public";

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: &str = "2";

/// One route of the API; each `functions/api-*` binary serves one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /uploads`
    Uploads,
    /// `POST /process`
    Process,
    /// `GET /images/{key+}`
    Images,
    /// `GET /v1/{key+}/{steps}/{sig}`: the rendering function behind the CDN.
    Render,
}

impl Route {
    /// The HTTP method of the route.
    pub fn method(self) -> &'static str {
        match self {
            Route::Uploads | Route::Process => "POST",
            Route::Images | Route::Render => "GET",
        }
    }

    /// The route numbered `n` in declaration order (a const parameter below).
    const fn nth(n: u8) -> Route {
        match n {
            0 => Route::Uploads,
            1 => Route::Process,
            2 => Route::Images,
            _ => Route::Render,
        }
    }

    /// A name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Route::Uploads => "uploads",
            Route::Process => "process",
            Route::Images => "images",
            Route::Render => "render",
        }
    }
}

/// The configured API: its config and S3 store, built once at init.
#[derive(Debug, Clone)]
pub struct Api {
    config: Arc<ApiConfig>,
    s3: S3Store,
}

impl Api {
    pub fn new(config: ApiConfig, s3: S3Store) -> Api {
        Api { config: Arc::new(config), s3 }
    }

    /// Reads [`ApiConfig`] from the environment and builds the S3 store (`AWS_ENDPOINT_URL`
    /// selects a local S3 server); reads the URL keys from their secret when one is named.
    pub async fn from_env() -> Result<Api, crate::ConfigError> {
        let mut config = ApiConfig::from_env()?;
        let client = crate::aws::AwsClient::new(crate::aws::AwsConfig::from_env()?, Default::default());
        if let Some(id) = config.url_keys_secret.clone() {
            config.url_keys = crate::url_keys::UrlKeys::from_secret(&client, &id).await?;
        }
        Ok(Api::new(config, S3Store::with_client(client)))
    }

    /// The configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Serves `route` as a Lambda function behind API Gateway until the runtime stops.
    ///
    /// Inlined, so that a function's `main`, which names its route as a constant, keeps one
    /// arm: each route is served by its own instance of [`Api::serve`] and handled by its own
    /// instance of [`Api::handle_route`], and the link leaves out what other routes use
    /// (`api-uploads` and `api-images` carry no image codec).
    #[inline(always)]
    pub fn run(self, route: Route) -> Pin<Box<dyn Future<Output = Result<(), crate::BoxError>>>> {
        match route {
            Route::Uploads => Box::pin(self.serve::<0>()),
            Route::Process => Box::pin(self.serve::<1>()),
            Route::Images => Box::pin(self.serve::<2>()),
            Route::Render => Box::pin(self.serve::<3>()),
        }
    }

    /// [`Api::run`] for route number `R` ([`Route::nth`]).
    async fn serve<const R: u8>(self) -> Result<(), crate::BoxError> {
        if Route::nth(R) == Route::Render && self.config.url_keys.is_empty() {
            return Err(Box::new(crate::ConfigError {
                var: "IMGFN_URL_KEYS_SECRET",
                message: "the render function needs URL keys (IMGFN_URL_KEYS_SECRET or IMGFN_URL_KEYS)"
                    .into(),
            }));
        }
        lambda_http::run(lambda_http::service_fn(move |req: Request| {
            let api = self.clone();
            async move { Ok::<_, Infallible>(AsIs(api.handle_route::<R>(req).await)) }
        }))
        .await
    }

    /// Handles one request of `route`. Never fails: every failure is an error response.
    pub async fn handle(&self, route: Route, req: Request) -> Response<Body> {
        match route {
            Route::Uploads => self.handle_route::<0>(req).await,
            Route::Process => self.handle_route::<1>(req).await,
            Route::Images => self.handle_route::<2>(req).await,
            Route::Render => self.handle_route::<3>(req).await,
        }
    }

    /// [`Api::handle`] for route number `R`: the route is a constant here, so each instance
    /// calls one handler.
    async fn handle_route<const R: u8>(&self, req: Request) -> Response<Body> {
        let route = const { Route::nth(R) };
        let started = Instant::now();
        let request_id = request_id(&req);
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_owned);
        // Every S3 call of this request ends before the function's deadline.
        let deadline = req.lambda_context_ref().map_or(0, |ctx| ctx.deadline);
        let this = Api { config: self.config.clone(), s3: self.s3.until(deadline) };
        // The render route is signed, not authorized: no caller scope.
        let scope =
            if route == Route::Render { Ok(String::new()) } else { caller_scope(&req, self.config.access) };
        let result = match scope {
            Err(e) => Err(e),
            // The constant itself, not `route`: a local kept across awaits is a load from the
            // future's state, which the optimiser cannot fold.
            Ok(scope) => this.dispatch(const { Route::nth(R) }, &scope, &req).await,
        };
        let ms = started.elapsed().as_millis() as u64;
        let mut response = match result {
            Ok(response) => {
                info!(route = route.name(), status = response.status().as_u16(), ms, request_id = %safe(&request_id), "ok");
                response
            }
            Err(e) => error_response(&e, route, &request_id, ms),
        };
        cors::apply(&mut response, &self.config.cors_origins, origin.as_deref());
        response
    }

    /// The handler of `route`, as a boxed future. A plain function, inlined: where `route` is
    /// a constant ([`Api::handle_route`]) one arm remains, where an `await` on each handler in
    /// one async body would keep every handler's state (and code) in each instance.
    #[inline(always)]
    fn dispatch<'a>(
        &'a self,
        route: Route,
        scope: &'a str,
        req: &'a Request,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send + 'a>> {
        match route {
            Route::Uploads => Box::pin(self.uploads(scope, req)),
            Route::Process => Box::pin(self.process(scope, req)),
            Route::Images => Box::pin(self.images(scope, req)),
            Route::Render => Box::pin(self.render(req)),
        }
    }

    /// A presigned GET of `key` in the output bucket, and when it expires.
    fn presign_get(&self, key: &str) -> (String, String) {
        self.s3.presign(http::Method::GET, &self.config.output_bucket, key, &[], self.config.download_expires)
    }

    /// The stable CDN URL of an output (`<IMGFN_CDN_URL>/o/<key>/<signature>`, no expiry), when
    /// a CDN and URL keys are configured: it can go into an `<img>` tag, a feed or a cache.
    async fn cdn_url(&self, key: &str) -> Option<String> {
        let cdn = self.config.cdn_url.as_deref()?;
        let signing = self.config.url_keys.signing().await?;
        let url = crate::rendition::StoredUrl { key: key.to_owned(), expires: None };
        Some(format!("{cdn}{}", url.signed_path(&signing)))
    }

    /// The prefixes of the output bucket the caller may read: its processed images, its
    /// S3-triggered outputs and their error records.
    fn output_scopes(&self, scope: &str) -> Vec<String> {
        let c = &self.config;
        let mut out = vec![format!("{}{scope}/", c.processed_prefix)];
        for op in ops::triggers() {
            out.push(format!("{}/{scope}/", op.name));
            out.push(format!("{}{}/{scope}/", c.error_prefix, op.name));
        }
        out
    }

    /// The prefixes of the source bucket the caller may process: its uploads.
    fn source_scopes(&self, scope: &str) -> Vec<String> {
        let mut out = vec![format!("{}{scope}/", self.config.upload_prefix)];
        out.extend(ops::triggers().map(|op| format!("{}/{scope}/", op.name)));
        out
    }
}

/// `key` when it lies under one of `scopes` (with something after the prefix), else the
/// same 404 a missing key gets.
fn in_scope<'k>(key: &'k str, scopes: &[String]) -> Result<&'k str, Error> {
    let inside = scopes.iter().any(|p| key.len() > p.len() && key.starts_with(p.as_str()));
    if inside && crate::keys::check(key).is_ok() && !key.ends_with('/') {
        Ok(key)
    } else {
        Err(Error::NotFound(key.to_owned()))
    }
}

/// The caller's scope: the encoded `sub` claim of a JWT authorizer; without claims, 401, or
/// [`OPEN_SCOPE`] where the API is open on purpose.
fn caller_scope(req: &Request, access: config::Access) -> Result<String, Error> {
    let jwt = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let Some(jwt) = jwt else {
        return match access {
            config::Access::Open => Ok(OPEN_SCOPE.to_owned()),
            config::Access::Authorizer => Err(Error::Unauthorized(
                "this API needs a signed-in caller (Authorization: Bearer <JWT>)".into(),
            )),
        };
    };
    match jwt.claims.get("sub").map(String::as_str) {
        Some(sub) if !sub.is_empty() && sub.len() <= 256 => Ok(encode_scope(sub)),
        _ => Err(Error::Unauthorized("the token has no usable sub claim".into())),
    }
}

/// `sub` with every byte outside `[A-Za-z0-9_-]` written `~XX`: URL-safe, injective.
pub fn encode_scope(sub: &str) -> String {
    let mut out = String::with_capacity(sub.len());
    for b in sub.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.lambda_context_ref() {
        if !ctx.request_id.is_empty() {
            return ctx.request_id.clone();
        }
    }
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// A response handed to API Gateway as it is: a [`Body::Text`] as text, a [`Body::Binary`]
/// base64-encoded (`isBase64Encoded`), a [`Body::Empty`] as no body. The handlers pick the kind
/// (JSON is text, images binary). lambda_http's own conversion of a `Response<Body>` collects the
/// body again and decodes every text type by its `charset` through encoding_rs, whose tables for
/// every legacy encoding (about 160 KB of each API function) no response here needs.
struct AsIs(Response<Body>);

impl lambda_http::IntoResponse for AsIs {
    fn into_response(self) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> {
        Box::pin(std::future::ready(self.0))
    }
}

/// A JSON response.
fn json_response(status: u16, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(value.to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The error response for `err`: its status from [`Error::status`]; client errors echo their
/// code, message and field (logged at INFO: they are expected); server errors are logged once
/// at ERROR with the request id and answered without internals.
fn error_response(err: &Error, route: Route, request_id: &str, ms: u64) -> Response<Body> {
    let status = err.status();
    let body = if status >= 500 {
        error!(route = route.name(), status, code = err.code(), error = %safe(err), request_id = %safe(request_id), ms, "request failed");
        let code = if status == 503 { "unavailable" } else { "internal" };
        let message = if status == 503 {
            "the storage service is unavailable, retry later"
        } else {
            "something went wrong"
        };
        json!({"error": {"code": code, "message": message}})
    } else {
        info!(
            route = route.name(), status, code = err.code(), field = err.field().map(safe).map(tracing::field::display),
            error = %safe(err), request_id = %safe(request_id), ms, "refused"
        );
        let mut e = json!({"code": err.code(), "message": err.to_string()});
        if let Some(field) = err.field() {
            e["field"] = Value::from(field);
        }
        json!({ "error": e })
    };
    let mut response = json_response(status, &body);
    if status == 503 {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn no_sub_is_given_the_open_scope() {
        // encode_scope writes `~` only before two uppercase hex digits.
        for sub in ["~public", "public", "~7Epublic", "~", "%7Epublic"] {
            assert_ne!(encode_scope(sub), OPEN_SCOPE, "{sub}");
        }
        let tilde_runs = |s: &str| {
            s.match_indices('~').all(|(i, _)| {
                s.get(i + 1..i + 3)
                    .is_some_and(|h| h.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
            })
        };
        assert!(!tilde_runs(OPEN_SCOPE));
        for sub in ["a~b", "ü", "x y", "../.."] {
            assert!(tilde_runs(&encode_scope(sub)), "{sub}");
        }
    }

    #[test]
    fn scopes_are_url_safe_and_distinct() {
        assert_eq!(encode_scope("8f6c-41ab_x"), "8f6c-41ab_x");
        assert_eq!(encode_scope("auth0|abc"), "auth0~7Cabc");
        assert_eq!(encode_scope("../x"), "~2E~2E~2Fx");
        assert_ne!(encode_scope("a~7C"), encode_scope("a|"));
        assert_eq!(encode_scope("ü"), "~C3~BC");
    }

    #[test]
    fn keys_outside_the_scope_are_not_found() {
        let scopes = vec!["uploads/alice/".to_owned(), "thumbnail/alice/".to_owned()];
        assert!(in_scope("uploads/alice/x.jpg", &scopes).is_ok());
        assert!(in_scope("thumbnail/alice/a/b.jpg", &scopes).is_ok());
        for bad in [
            "uploads/bob/x.jpg",
            "uploads/alice/",
            "uploads/alice/../bob/x.jpg",
            "uploads/alicex/y",
            "uploads/alice//x.jpg",
            "uploads/alice/d/",
            "uploads/alice/x\n.jpg",
        ] {
            let e = in_scope(bad, &scopes).unwrap_err();
            assert_eq!((e.status(), e.code()), (404, "not_found"), "{bad}");
        }
    }
}
