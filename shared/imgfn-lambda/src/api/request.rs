//! Reading request bodies: JSON objects whose fields are checked one by one, so every error
//! names the field (`content_length`, `ops[1].width`, `output.quality`) and an unknown field is
//! a 400, never a silent default.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// Largest request body read (JSON requests are small; API Gateway's own cap is 10 MB).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body as a JSON object with only `allowed` fields.
pub(crate) fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Error> {
    if body.len() > MAX_BODY_BYTES {
        return Err(image_ops::Error::InputTooLarge {
            bytes: body.len() as u64,
            limit: MAX_BODY_BYTES as u64,
        }
        .into());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::MalformedRequest("the request body must be a JSON object".into()));
    }
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Error::MalformedRequest("the request body must be a JSON object".into())),
        Err(e) => return Err(Error::MalformedRequest(format!("malformed JSON: {e}"))),
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid(
            unknown.as_str(),
            format!("unknown field, expected one of: {}", allowed.join(", ")),
        ));
    }
    Ok(map)
}

/// Removes `field` from `map` and deserializes it; `null` counts as absent.
pub(crate) fn take<T: DeserializeOwned>(
    map: &mut Map<String, Value>,
    field: &str,
) -> Result<Option<T>, Error> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crate::pipeline::parse(v, field).map(Some),
    }
}

/// Like [`take`], for a required field.
pub(crate) fn require<T: DeserializeOwned>(map: &mut Map<String, Value>, field: &str) -> Result<T, Error> {
    take(map, field)?.ok_or_else(|| Error::invalid(field, "required"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = object(b"{\"a\":1,", &["a"]).unwrap_err();
        assert_eq!((e.status(), e.code()), (400, "malformed_request"));
        assert_eq!(object(b"[1]", &["a"]).unwrap_err().code(), "malformed_request");
        assert_eq!(object(b"  ", &["a"]).unwrap_err().code(), "malformed_request");
        assert_eq!(object(br#"{"b":1}"#, &["a"]).unwrap_err().field(), Some("b"));
        let mut map = object(br#"{"a":"x"}"#, &["a"]).unwrap();
        assert_eq!(take::<u64>(&mut map, "a").unwrap_err().field(), Some("a"));
        let mut map = object(b"{}", &["a"]).unwrap();
        assert_eq!(require::<u64>(&mut map, "a").unwrap_err().field(), Some("a"));
    }
}
