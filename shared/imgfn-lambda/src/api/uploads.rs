//! `POST /uploads`: a presigned PUT for a key the server chooses.

use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use super::{json_response, request, Api};
use image_ops::ops::{self, OpSpec};
use image_ops::InputFormat;

use crate::params::{Request as OpRequest, PARAMS_METADATA_KEY};
use crate::Error;

/// User metadata holding the client's file name (percent-encoded: metadata is ASCII).
pub const FILENAME_METADATA_KEY: &str = "imgfn-filename";

/// Largest `imgfn-params` value: S3 allows 2 KB of user metadata in all.
const MAX_PARAMS_BYTES: usize = 1536;

impl Api {
    /// `POST /uploads` with `{content_type, content_length, filename?, op?, params?}` → `201`
    /// `{key, upload_url, method: "PUT", headers, expires_at}`. The key is
    /// `<upload prefix><scope>/<uuid>.<ext>`, or `<op>/<scope>/<uuid>.<ext>` when `op` is
    /// given (its S3-triggered function processes the object on arrival). The URL signs the
    /// exact Content-Type, Content-Length and, when given, the params metadata: S3 refuses a
    /// PUT that differs. It also signs `If-None-Match: *`: the URL creates the object once, and
    /// a replay gets `412 Precondition Failed` instead of firing the trigger again.
    pub(super) async fn uploads(&self, scope: &str, req: &Request) -> Result<Response<Body>, Error> {
        let c = &self.config;
        let mut body = request::object(
            req.body().as_ref(),
            &["content_type", "content_length", "filename", "op", "params"],
        )?;
        let content_type: String = request::require(&mut body, "content_type")?;
        let content_length: u64 = request::require(&mut body, "content_length")?;
        let filename: Option<String> = request::take(&mut body, "filename")?;
        let op: Option<String> = request::take(&mut body, "op")?;
        let params: Option<Map<String, Value>> = request::take(&mut body, "params")?;

        // Exactly one of the accepted types, as written (S3 compares the signed header as is).
        let normalized = content_type.trim().to_ascii_lowercase();
        let format = InputFormat::ALL
            .into_iter()
            .find(|f| f.content_types().contains(&normalized.as_str()))
            .ok_or_else(|| {
                let accepted: Vec<&str> =
                    InputFormat::ALL.iter().flat_map(|f| f.content_types().iter().copied()).collect();
                image_ops::Error::UnsupportedFormat(format!(
                    "content type {content_type:?} is not accepted; use one of {}",
                    accepted.join(", ")
                ))
            })?;
        let ext = format.extension();
        if content_length == 0 {
            return Err(image_ops::Error::UnsupportedFormat("an empty upload is not an image".into()).into());
        }
        if content_length > c.max_upload_bytes {
            return Err(
                image_ops::Error::InputTooLarge { bytes: content_length, limit: c.max_upload_bytes }.into()
            );
        }
        if let Some(name) = &filename {
            if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
                return Err(Error::invalid("filename", "1 to 255 characters, no control characters"));
            }
        }
        let op = match op.as_deref() {
            None => None,
            Some(name) => Some(ops::find(name).filter(|o| o.trigger.is_some()).ok_or_else(|| {
                let names: Vec<&str> = ops::triggers().map(|o| o.name).collect();
                Error::invalid(
                    "op",
                    format!("unknown operation {name:?}, expected one of: {}", names.join(", ")),
                )
            })?),
        };
        let params_json = match (params, op) {
            (None, _) => None,
            (Some(_), None) => return Err(Error::invalid("params", "params need an op")),
            (Some(params), Some(op)) => Some(self.check_params(op, params)?),
        };

        let prefix = op.and_then(OpSpec::trigger_prefix).unwrap_or_else(|| c.upload_prefix.clone());
        let key = format!("{prefix}{scope}/{}.{ext}", uuid::Uuid::new_v4());
        // Signed, so the upload must carry them as given: its type, its declared length, no
        // overwrite, and the checked params.
        let mut signed = vec![
            ("content-type".to_owned(), normalized.clone()),
            ("content-length".to_owned(), content_length.to_string()),
            ("if-none-match".to_owned(), "*".to_owned()),
        ];
        if let Some(json) = &params_json {
            signed.push((format!("x-amz-meta-{PARAMS_METADATA_KEY}"), json.clone()));
        }
        if let Some(name) = &filename {
            let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
            signed.push((format!("x-amz-meta-{FILENAME_METADATA_KEY}"), encoded.to_string()));
        }
        let (url, expires_at) =
            self.s3.presign(http::Method::PUT, &c.source_bucket, &key, &signed, c.upload_expires);
        let headers: Map<String, Value> =
            signed.into_iter().map(|(name, value)| (name, Value::from(value))).collect();
        Ok(json_response(
            201,
            &json!({
                "key": key,
                "upload_url": url,
                "method": "PUT",
                "headers": headers,
                "expires_at": expires_at,
            }),
        ))
    }

    /// Validates `params` for `op` as the S3 function will: merged over the operation's default
    /// params (the registry's, which a deployment may override per function) and checked
    /// exactly the same way. Returns the JSON to store in the object's metadata, ASCII-only.
    fn check_params(&self, op: &'static OpSpec, params: Map<String, Value>) -> Result<String, Error> {
        let c = &self.config;
        let raw = Value::Object(params).to_string();
        let name = |e: Error| match e {
            Error::Image(image_ops::Error::InvalidParams { field, message })
                if !field.starts_with("params") =>
            {
                Error::invalid(format!("params.{field}"), message)
            }
            other => other,
        };
        let defaults = op.trigger.map(crate::config::registry_defaults).unwrap_or_default();
        OpRequest::new(op, defaults.0, defaults.1)
            .with_overrides(&raw)?
            .pipeline(&c.limits, &c.asset_prefix)
            .map_err(name)?;
        let ascii = ascii_json(&raw);
        if ascii.len() > MAX_PARAMS_BYTES {
            return Err(Error::invalid("params", format!("at most {MAX_PARAMS_BYTES} bytes of JSON")));
        }
        Ok(ascii)
    }
}

/// JSON text with every non-ASCII character written as a `\u` escape (S3 metadata is ASCII).
/// Non-ASCII characters only occur inside JSON strings, where the escapes mean the same.
fn ascii_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_is_ascii_and_means_the_same() {
        let raw = r#"{"text":"© ACME 😀"}"#;
        let ascii = ascii_json(raw);
        assert!(ascii.is_ascii());
        assert_eq!(
            serde_json::from_str::<Value>(&ascii).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
    }
}
