//! `GET /images/{key+}`: a redirect to a short-lived presigned GET of an output.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use super::{in_scope, Api};
use crate::Error;

impl Api {
    /// `GET /images/{key+}` → `302` with `Location` a presigned GET of `key` in the output
    /// bucket; `404` when it does not exist or lies outside the caller's scope.
    pub(super) async fn images(&self, scope: &str, req: &Request) -> Result<Response<Body>, Error> {
        let key = image_key(req)?;
        let key = in_scope(&key, &self.output_scopes(scope))?;
        self.s3.head(&self.config.output_bucket, key).await.map_err(|e| match e {
            Error::SourceNotFound { .. } => Error::NotFound(key.to_owned()),
            other => other,
        })?;
        let (url, _) = self.presign_get(key);
        let location = HeaderValue::from_str(&url).map_err(|e| Error::Internal(format!("location: {e}")))?;
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::FOUND;
        response.headers_mut().insert(header::LOCATION, location);
        // The URL expires: never cache the redirect longer than that.
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

/// The key: API Gateway's `{key+}` path parameter, else (function URLs, cargo-lambda's local server)
/// what follows `/images/` in the raw path, percent-decoded.
fn image_key(req: &Request) -> Result<String, Error> {
    if let Some(key) = req.path_parameters_ref().and_then(|p| p.first("key")) {
        return Ok(key.to_owned());
    }
    let raw = req.raw_http_path();
    let path = if raw.is_empty() { req.uri().path() } else { raw };
    let encoded = path.split_once("/images/").map(|(_, k)| k).unwrap_or_default();
    let key = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| Error::NotFound(encoded.to_owned()))?;
    if key.is_empty() {
        return Err(Error::NotFound(String::new()));
    }
    Ok(key.into_owned())
}
