//! The events S3 sends for an object the local endpoint stored or deleted: the S3 notification
//! a trigger function gets (key form-URL-encoded, as S3 encodes it), and the EventBridge event
//! the refresh function gets.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::s3::{Changed, REGION};

/// The S3 notification event for `object`, as S3 sends it to Lambda (the key form-URL-encoded).
pub fn notification(object: &Changed, size: u64, etag: Option<&str>) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut s3_object = json!({
        "key": imgfn_lambda::event::encode_key(&object.key),
        "size": size,
        "sequencer": format!("{:016X}", now.as_nanos() as u64),
    });
    if let Some(etag) = etag {
        s3_object["eTag"] = Value::from(etag.trim_matches('"'));
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": humantime_utc(now),
        "eventName": object.event_name,
        "userIdentity": {"principalId": "imgfn-local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "imgfn-local", "x-amz-id-2": "imgfn-local"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "imgfn-local",
            "bucket": {
                "name": object.bucket,
                "ownerIdentity": {"principalId": "imgfn-local"},
                "arn": format!("arn:aws:s3:::{}", object.bucket),
            },
            "object": s3_object,
        },
    }]})
}

/// The EventBridge event S3 sends for `object` ("Object Created" or "Object Deleted").
pub fn eventbridge(object: &Changed, size: u64, etag: Option<&str>) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let created = object.is_created();
    let mut detail_object = json!({
        "key": object.key,
        "sequencer": format!("{:016X}", now.as_nanos() as u64),
    });
    if created {
        detail_object["size"] = Value::from(size);
        if let Some(etag) = etag {
            detail_object["etag"] = Value::from(etag.trim_matches('"'));
        }
    }
    let mut detail = json!({
        "version": "0",
        "bucket": {"name": object.bucket},
        "object": detail_object,
        "request-id": "imgfn-local",
        "requester": "000000000000",
        "source-ip-address": "127.0.0.1",
        "reason": if created { "PutObject" } else { "DeleteObject" },
    });
    if !created {
        detail["deletion-type"] = Value::from("Permanently Deleted");
    }
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": if created { "Object Created" } else { "Object Deleted" },
        "source": "aws.s3",
        "account": "000000000000",
        "time": humantime_utc(Duration::from_secs(now.as_secs())).replace(".000Z", "Z"),
        "region": REGION,
        "resources": [format!("arn:aws:s3:::{}", object.bucket)],
        "detail": detail,
    })
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time since the Unix epoch (civil-from-days, proleptic
/// Gregorian calendar).
pub(crate) fn humantime_utc(since_epoch: Duration) -> String {
    let (year, month, day, h, m, sec) = imgfn_lambda::aws::sigv4::civil(std::time::UNIX_EPOCH + since_epoch);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{:03}Z", since_epoch.subsec_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_are_utc_iso8601() {
        assert_eq!(humantime_utc(Duration::ZERO), "1970-01-01T00:00:00.000Z");
        assert_eq!(humantime_utc(Duration::from_millis(951_782_400_123)), "2000-02-29T00:00:00.123Z");
        assert_eq!(humantime_utc(Duration::from_secs(1_795_647_599)), "2026-11-25T22:59:59.000Z");
    }

    #[test]
    fn notifications_parse_as_the_functions_parse_them() {
        let created = Changed {
            bucket: "imgfn-source".into(),
            key: "thumbnail/a b+c ü%.jpg".into(),
            event_name: "ObjectCreated:Put",
        };
        let event = notification(&created, 1234, Some("\"abc\""));
        let records = imgfn_lambda::event::records(&event).map_err(|e| e.to_string());
        let [Ok(object)] = records.as_deref().unwrap_or_default() else { panic!("{records:?}") };
        assert_eq!((object.bucket.as_str(), object.key.as_str()), ("imgfn-source", "thumbnail/a b+c ü%.jpg"));
        assert_eq!(object.etag.as_deref(), Some("abc"));
        assert_eq!(event["Records"][0]["s3"]["object"]["size"], 1234);
    }
}
