//! S3 notification events (`aws_lambda_events::s3::S3Event` records), parsed record by record so
//! that one malformed record never blocks the others, with object keys decoded.

use aws_lambda_events::s3::S3EventRecord;
use serde_json::Value;

use crate::Error;

/// One object named by a record: bucket and the DECODED key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// The ETag the event reports (informational: the runner trusts HeadObject).
    pub etag: Option<String>,
}

/// The records of an S3 notification event, each parsed on its own. `Err` when the payload is
/// not an S3 notification at all (no `Records` array); S3's `s3:TestEvent` yields no records.
pub fn records(payload: &Value) -> Result<Vec<Result<ObjectRef, Error>>, Error> {
    if payload.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    let Some(records) = payload.get("Records").and_then(Value::as_array) else {
        return Err(Error::Refused("not an S3 notification event: no \"Records\" array".into()));
    };
    Ok(records.iter().map(record).collect())
}

fn record(value: &Value) -> Result<ObjectRef, Error> {
    let record: S3EventRecord = serde_json::from_value(value.clone())
        .map_err(|e| Error::Refused(format!("malformed S3 event record: {e}")))?;
    let name = record.event_name.as_deref().unwrap_or_default();
    // S3 sends "ObjectCreated:Put"; EventBridge-style and test tools often add the "s3:" prefix.
    if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
        return Err(Error::Refused(format!("event {name:?} is not an ObjectCreated event")));
    }
    let bucket = record
        .s3
        .bucket
        .name
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::Refused("record has no bucket name".into()))?;
    let raw_key = record.s3.object.key.ok_or_else(|| Error::Refused("record has no object key".into()))?;
    let key = decode_key(&raw_key)?;
    Ok(ObjectRef { bucket, key, etag: record.s3.object.e_tag })
}

/// Decodes an object key as S3 notifications encode it (`application/x-www-form-urlencoded`:
/// `+` is a space, `%XX` are UTF-8 bytes; a literal `+` arrives as `%2B`).
pub fn decode_key(raw: &str) -> Result<String, Error> {
    let spaced = raw.replace('+', " ");
    let key = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map_err(|_| Error::Refused(format!("object key {raw:?} does not decode to UTF-8")))?
        .into_owned();
    if key.is_empty() {
        return Err(Error::Refused("empty object key".into()));
    }
    Ok(key)
}

/// Encodes a key the way S3 notifications do (the inverse of [`decode_key`]; `/` is kept as is,
/// as S3 does). For building test events and samples.
pub fn encode_key(key: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const FORM: &AsciiSet =
        &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_').remove(b'/');
    key.split(' ').map(|part| utf8_percent_encode(part, FORM).to_string()).collect::<Vec<_>>().join("+")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_form_url_encoding() {
        assert_eq!(
            decode_key("thumbnail/my+photo%2B1+%C3%BC+100%25.jpg").unwrap(),
            "thumbnail/my photo+1 ü 100%.jpg"
        );
        assert_eq!(decode_key("a%2Fb").unwrap(), "a/b");
        assert!(decode_key("bad%FF").is_err());
        assert!(decode_key("").is_err());
        // A lone or truncated escape is kept literally (what S3 would never send anyway).
        assert_eq!(decode_key("100%").unwrap(), "100%");
    }

    #[test]
    fn encode_is_the_inverse_of_decode() {
        for key in ["thumbnail/my photo+1 ü 100%.jpg", "a/b c/d&e=f?.png", "日本/写真 (1).jpeg", "x++ y"]
        {
            let encoded = encode_key(key);
            assert!(!encoded.contains(' '), "{encoded}");
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
        assert_eq!(encode_key("thumbnail/my photo+1 ü 100%.jpg"), "thumbnail/my+photo%2B1+%C3%BC+100%25.jpg");
    }

    #[test]
    fn records_are_parsed_one_by_one() {
        let good = serde_json::json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-24T12:00:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "X"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": "src", "arn": "arn:aws:s3:::src"},
            "object": {"key": "thumbnail/a+b.jpg", "size": 3, "eTag": "e", "sequencer": "1"}}
        });
        let mut removed = good.clone();
        removed["eventName"] = "ObjectRemoved:Delete".into();
        let event = serde_json::json!({"Records": [good, {"eventName": "ObjectCreated:Put"}, removed]});
        let parsed = records(&event).unwrap();
        assert_eq!(parsed.len(), 3);
        let first = parsed[0].as_ref().unwrap();
        assert_eq!((first.bucket.as_str(), first.key.as_str()), ("src", "thumbnail/a b.jpg"));
        assert!(parsed[1].is_err() && parsed[2].is_err());
        assert!(records(&serde_json::json!({"foo": 1})).is_err());
        assert!(records(&serde_json::json!({"Event": "s3:TestEvent"})).unwrap().is_empty());
    }
}
