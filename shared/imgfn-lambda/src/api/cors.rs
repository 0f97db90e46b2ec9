//! CORS for browsers. Allowed origins come from `IMGFN_CORS_ORIGINS`. Deployed, API
//! Gateway's CORS configuration answers preflight `OPTIONS` requests itself (and sets the
//! headers on responses); the handlers add `Access-Control-Allow-Origin` too, so the local
//! server, function URLs and cargo-lambda's local server behave the same, and [`preflight`] is what
//! the local server answers to `OPTIONS`.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};

/// Methods the API allows.
pub const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a browser may send.
pub const ALLOW_HEADERS: &str = "authorization, content-type";
/// Response headers a browser may read.
pub const EXPOSE_HEADERS: &str = "location, retry-after";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE: &str = "600";

/// The `Access-Control-Allow-Origin` value for `origin`, when it is allowed.
pub fn allowed(origins: &[String], origin: Option<&str>) -> Option<HeaderValue> {
    let origin = origin?;
    if origins.iter().any(|o| o == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let origin = origin.trim_end_matches('/');
    origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
        .then(|| HeaderValue::from_str(origin).ok())
        .flatten()
}

/// Adds the CORS headers for `origin` to `response`.
pub fn apply(response: &mut Response<Body>, origins: &[String], origin: Option<&str>) {
    if origins.is_empty() {
        return;
    }
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(value) = allowed(origins, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
}

/// The answer to a preflight `OPTIONS` request: `204`, with the CORS headers when the origin
/// is allowed (a browser then refuses the actual request otherwise).
pub fn preflight(origins: &[String], origin: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    if let Some(value) = allowed(origins, origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    }
    response.headers_mut().append(header::VARY, HeaderValue::from_static("origin"));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_are_allowed() {
        let origins = vec!["https://app.example".to_owned()];
        assert_eq!(
            allowed(&origins, Some("https://app.example")).as_ref().map(HeaderValue::as_bytes),
            Some(&b"https://app.example"[..])
        );
        assert!(allowed(&origins, Some("https://evil.example")).is_none());
        assert!(allowed(&origins, None).is_none());
        assert_eq!(
            allowed(&["*".to_owned()], Some("https://x.example")),
            Some(HeaderValue::from_static("*"))
        );
        let p = preflight(&origins, Some("https://evil.example"));
        assert_eq!(p.status(), 204);
        assert!(p.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }
}
