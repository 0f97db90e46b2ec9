//! `GET /v1/<key>/<steps>/<signature>`: a rendition made on request ([`crate::rendition`]),
//! the CDN's origin on a miss.
//!
//! Deployed, CloudFront's viewer-request function has already checked the signature,
//! normalised the URL, resolved `format=auto` and asked the output bucket for the stored
//! rendition; only when that answered 403/404 does the origin group fail over to this
//! function, with the viewer's URL in [`REQUEST_HEADER`]. The function checks everything
//! again (a request that reaches it some other way gets no further), renders along the one
//! job path ([`crate::job`]), stores the result under its cache key (`r/<key>/<steps>`) so the
//! next miss is served from S3, and answers it:
//!
//! - `200` with the image, [`RENDITION_CACHE_CONTROL`] and the stored object's `ETag`;
//!   `304` when `If-None-Match` names that ETag;
//! - a result over [`INLINE_MAX_BYTES`] (what fits in a buffered Lambda response, base64 and
//!   all) is answered `302` to the same URL with `Cache-Control: no-store`: the second request
//!   finds the stored copy in S3, so no size ever fails;
//! - errors are JSON with `Cache-Control: no-store`, like the API's: a bad URL `400` naming the
//!   field, a bad signature or an expired URL `403`, a source that is missing or outside the
//!   rendition prefixes `404`, S3 trouble `503`.

use std::time::{SystemTime, UNIX_EPOCH};

use image_ops::OutputFormat;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use super::Api;
use crate::job::{self, Destination, Source};
use crate::params::sha256_hex;
use crate::rendition;
use crate::Error;

/// `Cache-Control` of a rendition: an hour in browsers, a year at the CDN (whose copies are
/// invalidated when the source changes: [`crate::refresh`]).
pub const RENDITION_CACHE_CONTROL: &str = "public, max-age=3600, s-maxage=31536000";

/// Largest rendition answered inline (a buffered Lambda response holds 6 MB, and a binary body
/// travels base64-encoded); larger ones are redirected to their stored copy.
pub const INLINE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The header in which the CDN passes the viewer's URL (path and query) to the function.
pub const REQUEST_HEADER: &str = "x-imgfn-request";

/// The header that tells whether the response was rendered now (`miss`) or served stored (`hit`).
pub const CACHE_HEADER: &str = "x-imgfn-cache";

/// The `imgfn-op` metadata of stored renditions.
pub const RENDER_OP: &str = "render";

/// Longest S3 key.
const MAX_KEY_BYTES: usize = 1024;

impl Api {
    /// See the module docs.
    pub(super) async fn render(&self, req: &Request) -> Result<Response<Body>, Error> {
        let c = &self.config;
        let url = viewer_url(req);
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (url.as_str(), None),
        };
        let mut signed = rendition::parse(path, query)?;
        signed.verify(&c.url_keys.current().await, now_secs())?;
        let r = &mut signed.rendition;
        if !c.rendition_prefixes.iter().any(|p| r.key.len() > p.len() && r.key.starts_with(p.as_str())) {
            // As for a key outside the caller's scope in the API: existence does not leak.
            return Err(Error::NotFound(r.key.clone()));
        }
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
        r.negotiate(accept);
        let stored_key = r.stored_key();
        if stored_key.len() > MAX_KEY_BYTES {
            return Err(Error::invalid(
                "steps",
                "the URL is too long: its stored key would pass S3's 1024 bytes",
            ));
        }
        let pipeline = r.pipeline(&c.limits, &c.asset_prefix)?;

        let not_found = |e: Error| match e {
            Error::SourceNotFound { key, .. } => Error::NotFound(key),
            other => other,
        };
        let head = self.s3.head(&c.source_bucket, &r.key).await.map_err(not_found)?;
        head.check_size(&c.limits)?;
        let pipeline = match pipeline.output().format {
            Some(_) => pipeline,
            None => {
                let format = OutputFormat::of_object(head.content_type.as_deref(), &r.key).ok_or_else(|| {
                    image_ops::Error::UnsupportedFormat(
                        "the source's format is unknown (no image Content-Type or extension): give output,format"
                            .into(),
                    )
                })?;
                pipeline.with_format(format)
            }
        };
        let source = Source { bucket: &c.source_bucket, key: &r.key, head: &head };
        let dest = Destination {
            exact: true,
            cache_control: RENDITION_CACHE_CONTROL,
            keep_body: true,
            ..Destination::new(&c.output_bucket, stored_key, RENDER_OP, sha256_hex(&[r.message().as_bytes()]))
        };
        let stored = job::run(&self.s3, &c.source_bucket, source, pipeline, dest).await.map_err(not_found)?;

        let etag = stored.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok());
        let mut response = Response::new(Body::Empty);
        let headers = response.headers_mut();
        headers.insert(CACHE_HEADER, HeaderValue::from_static("miss"));
        let body = stored.body.unwrap_or_default();
        if body.len() > INLINE_MAX_BYTES {
            let location =
                HeaderValue::from_str(&url).map_err(|e| Error::Internal(format!("location: {e}")))?;
            headers.insert(header::LOCATION, location);
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            *response.status_mut() = StatusCode::FOUND;
            return Ok(response);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(RENDITION_CACHE_CONTROL));
        if let Some(etag) = etag {
            let matched = req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| etag_matches(v, etag.to_str().unwrap_or("")));
            headers.insert(header::ETAG, etag);
            if matched {
                *response.status_mut() = StatusCode::NOT_MODIFIED;
                return Ok(response);
            }
        }
        let content_type = HeaderValue::from_static(stored.format.content_type());
        headers.insert(header::CONTENT_TYPE, content_type);
        *response.body_mut() = Body::Binary(body);
        Ok(response)
    }
}

/// The viewer's URL: [`REQUEST_HEADER`] when the CDN sent it, else this request's own.
fn viewer_url(req: &Request) -> String {
    if let Some(url) = req.headers().get(REQUEST_HEADER).and_then(|v| v.to_str().ok()) {
        return url.to_owned();
    }
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    match req.uri().query().filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

/// Whether an `If-None-Match` header names `etag` (or is `*`); weak validators compare equal.
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    if_none_match.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
