//! AWS Signature Version 4: the `Authorization` header of a request, or the query of a
//! presigned URL. <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>
//!
//! Checked against the AWS documentation's worked examples and, for many generated requests,
//! against the AWS SDK's own signer (`aws-sigv4`, a dev-dependency) in the tests below; the
//! local S3 endpoint verifies every signature the functions send in the workspace's tests.
//!
//! Paths are signed as given: callers pass them URI-encoded once, which is what S3 expects
//! and, for the paths the other services get here (`/`, `/2020-05-31/distribution/<id>/...`,
//! nothing to encode), what double encoding gives too.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// Bytes outside RFC 3986's unreserved set, as SigV4 encodes them (upper-case hex).
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same, keeping `/`: an S3 key in a path.
pub const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a presigned request (the body is not known when signing).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Who signs, for what, and when.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    /// The signing name: `s3`, `secretsmanager`, `cloudfront`.
    pub service: &'a str,
    pub time: SystemTime,
}

/// Never prints the secret or the token.
impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// One request to sign: `path` URI-encoded, `query` and `headers` raw (the signer encodes the
/// query; header names are lower-case and include `host`).
#[derive(Debug)]
pub struct Parts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
}

impl Signer<'_> {
    /// Signs `parts` with `payload_hash` (hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`]):
    /// the headers to add (`x-amz-date`, `x-amz-security-token` when there is a session token,
    /// `authorization`). `parts.headers` must already hold every other header that is sent and
    /// signed, `x-amz-content-sha256` included for S3.
    pub fn sign(&self, parts: &Parts<'_>, payload_hash: &str) -> Vec<(String, String)> {
        let (date, stamp) = timestamps(self.time);
        let mut added = vec![("x-amz-date".to_owned(), stamp.clone())];
        if let Some(token) = self.session_token {
            added.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let headers: Vec<(String, String)> = parts.headers.iter().chain(&added).cloned().collect();
        let (canonical, signed_headers) =
            canonical_request(parts.method, parts.path, parts.query, &headers, payload_hash);
        let signature = self.signature(&date, &stamp, &canonical);
        let scope = self.scope(&date);
        added.push((
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.access_key_id
            ),
        ));
        added
    }

    /// The query of a presigned URL for `parts` valid `expires_secs` seconds: `parts.query`
    /// followed by the `X-Amz-*` parameters, encoded, ready to follow `?`. Every header in
    /// `parts.headers` is signed: the caller must send each with exactly that value.
    pub fn presign(&self, parts: &Parts<'_>, expires_secs: u64) -> String {
        let (date, stamp) = timestamps(self.time);
        let mut headers: Vec<&(String, String)> = parts.headers.iter().collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let signed_headers = headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
        let mut query = parts.query.to_vec();
        query.push(("X-Amz-Algorithm".into(), ALGORITHM.into()));
        query.push(("X-Amz-Credential".into(), format!("{}/{}", self.access_key_id, self.scope(&date))));
        query.push(("X-Amz-Date".into(), stamp.clone()));
        query.push(("X-Amz-Expires".into(), expires_secs.to_string()));
        if let Some(token) = self.session_token {
            query.push(("X-Amz-Security-Token".into(), token.to_owned()));
        }
        query.push(("X-Amz-SignedHeaders".into(), signed_headers));
        let (canonical, _) =
            canonical_request(parts.method, parts.path, &query, parts.headers, UNSIGNED_PAYLOAD);
        let signature = self.signature(&date, &stamp, &canonical);
        format!("{}&X-Amz-Signature={signature}", canonical_query(&query))
    }

    fn scope(&self, date: &str) -> String {
        format!("{date}/{}/{}/aws4_request", self.region, self.service)
    }

    fn signature(&self, date: &str, stamp: &str, canonical: &str) -> String {
        let to_sign = format!(
            "{ALGORITHM}\n{stamp}\n{}\n{}",
            self.scope(date),
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = [date, self.region, self.service, "aws4_request"]
            .iter()
            .fold(format!("AWS4{}", self.secret_access_key).into_bytes(), |key, part| {
                hmac(&key, part.as_bytes())
            });
        hex(&hmac(&key, to_sign.as_bytes()))
    }
}

/// The canonical request and the signed-headers list.
fn canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    payload_hash: &str,
) -> (String, String) {
    // Names lower-case, sorted; values trimmed with inner runs of spaces collapsed; repeated
    // names joined with commas.
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(sorted.len());
    for (name, value) in sorted {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let mut canonical_headers = String::new();
    for (name, value) in &merged {
        let _ = writeln!(canonical_headers, "{name}:{value}");
    }
    let signed = merged.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let path = if path.is_empty() { "/" } else { path };
    let canonical = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        canonical_query(query)
    );
    (canonical, signed)
}

/// `name=value` pairs encoded and sorted by name, then value.
fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> =
        query.iter().map(|(n, v)| (encode(n, UNRESERVED), encode(v, UNRESERVED))).collect();
    pairs.sort();
    pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("&")
}

/// `s` percent-encoded outside `set`.
pub fn encode(s: &str, set: &'static AsciiSet) -> String {
    percent_encoding::utf8_percent_encode(s, set).to_string()
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` for `time` (UTC).
fn timestamps(time: SystemTime) -> (String, String) {
    let (y, mo, d, h, mi, s) = civil(time);
    (format!("{y:04}{mo:02}{d:02}"), format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z"))
}

/// `time` as RFC 3339 in UTC, whole seconds (`2026-12-02T08:25:24Z`).
pub fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Year, month, day, hour, minute, second (UTC) of `time` (the epoch for times before it).
pub fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = (secs % 86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn dates() {
        assert_eq!(timestamps(at(0)), ("19700101".into(), "19700101T000000Z".into()));
        // 2013-05-24T00:00:00Z, 2016-02-29T23:59:59Z, 2100-03-01T12:34:56Z.
        assert_eq!(timestamps(at(1_369_353_600)).1, "20130524T000000Z");
        assert_eq!(rfc3339(at(1_456_790_399)), "2016-02-29T23:59:59Z");
        assert_eq!(rfc3339(at(4_107_587_696)), "2100-03-01T12:34:56Z");
    }

    /// The S3 documentation's examples (Authenticating Requests: AWS Signature Version 4,
    /// "Examples"): examplebucket, 2013-05-24, the documentation's example key.
    const DOC_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn doc_signer() -> Signer<'static> {
        Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE",
            secret_access_key: DOC_KEY,
            session_token: None,
            region: "us-east-1",
            service: "s3",
            time: at(1_369_353_600),
        }
    }

    #[test]
    fn the_s3_documentations_get_object_example() {
        let empty = sha256_hex(b"");
        let headers = owned(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", &empty),
        ]);
        let parts = Parts { method: "GET", path: "/test.txt", query: &[], headers: &headers };
        let added = doc_signer().sign(&parts, &empty);
        assert_eq!(
            added.last().unwrap().1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn the_s3_documentations_presigned_url_example() {
        let headers = owned(&[("host", "examplebucket.s3.amazonaws.com")]);
        let parts = Parts { method: "GET", path: "/test.txt", query: &[], headers: &headers };
        let query = doc_signer().presign(&parts, 86_400);
        assert!(
            query.ends_with(
                "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
            ),
            "{query}"
        );
    }

    /// Many requests signed both here and by the AWS SDK's signer: the same headers and the
    /// same presigned query.
    #[test]
    fn signatures_match_the_aws_sdk_signer() {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{
            sign, PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        };
        use aws_sigv4::sign::v4;
        let keys = ["a.jpg", "uploads/u1/ü x+y.png", "dir/a%20b/c~d_e.webp", "x/(1)!*'.gif", "k"];
        let metas = ["", "{\"width\":300}", "a  b   c "];
        let mut n = 0;
        for (i, key) in keys.iter().enumerate() {
            for (j, meta) in metas.iter().enumerate() {
                for session in [None, Some("FwoGZXIvYXdzEJr//////////token+/=")] {
                    for service in ["s3", "secretsmanager"] {
                        n += 1;
                        let time = at(1_700_000_000 + (i * 977 + j * 31) as u64);
                        let path = format!("/bucket-{i}/{}", encode(key, PATH));
                        let query = owned(&[("prefix", key), ("list-type", "2"), ("encoding-type", "url")]);
                        let body = format!("body {key} {meta}");
                        let hash = sha256_hex(body.as_bytes());
                        let mut headers = owned(&[
                            ("host", "127.0.0.1:8014"),
                            ("content-type", "image/jpeg"),
                            ("x-amz-content-sha256", &hash),
                        ]);
                        if !meta.is_empty() {
                            headers.push(("x-amz-meta-imgfn-params".into(), meta.to_string()));
                        }
                        let ours = Signer {
                            access_key_id: "AKIDEXAMPLE",
                            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            session_token: session,
                            region: "eu-west-1",
                            service,
                            time,
                        };
                        let parts = Parts { method: "PUT", path: &path, query: &query, headers: &headers };
                        let added = ours.sign(&parts, &hash);
                        let presigned = ours.presign(&parts, 300);

                        let identity = Credentials::new(
                            "AKIDEXAMPLE",
                            ours.secret_access_key,
                            session.map(str::to_owned),
                            None,
                            "t",
                        )
                        .into();
                        let sdk = |location, expires: Option<Duration>| {
                            let mut settings = SigningSettings::default();
                            settings.signature_location = location;
                            settings.expires_in = expires;
                            settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
                            // S3's rules: the path as given (no normalisation, no double encoding).
                            settings.percent_encoding_mode =
                                aws_sigv4::http_request::PercentEncodingMode::Single;
                            settings.uri_path_normalization_mode =
                                aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
                            settings.session_token_mode = aws_sigv4::http_request::SessionTokenMode::Include;
                            let params = v4::SigningParams::builder()
                                .identity(&identity)
                                .region("eu-west-1")
                                .name(service)
                                .time(time)
                                .settings(settings)
                                .build()
                                .unwrap()
                                .into();
                            let qs = query
                                .iter()
                                .map(|(k, v)| format!("{}={}", encode(k, UNRESERVED), encode(v, UNRESERVED)));
                            let uri =
                                format!("http://127.0.0.1:8014{path}?{}", qs.collect::<Vec<_>>().join("&"));
                            let body = match location {
                                SignatureLocation::Headers => SignableBody::Precomputed(hash.clone()),
                                _ => SignableBody::UnsignedPayload,
                            };
                            let request = SignableRequest::new(
                                "PUT",
                                uri,
                                headers
                                    .iter()
                                    .filter(|(n, _)| n != "host")
                                    .map(|(n, v)| (n.as_str(), v.as_str())),
                                body,
                            )
                            .unwrap();
                            sign(request, &params).unwrap().into_parts().0
                        };
                        let theirs = sdk(SignatureLocation::Headers, None);
                        let their_headers: Vec<(String, String)> =
                            theirs.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
                        let auth = |h: &[(String, String)]| {
                            h.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.clone())
                        };
                        assert_eq!(auth(&added), auth(&their_headers), "{service} {key} {meta} {session:?}");
                        let theirs = sdk(SignatureLocation::QueryParams, Some(Duration::from_secs(300)));
                        let their_sig = theirs
                            .params()
                            .iter()
                            .find(|(n, _)| *n == "X-Amz-Signature")
                            .map(|(_, v)| v.to_string());
                        let our_sig = presigned.rsplit_once("X-Amz-Signature=").map(|(_, v)| v.to_owned());
                        assert_eq!(our_sig, their_sig, "presigned {service} {key} {meta} {session:?}");
                    }
                }
            }
        }
        assert_eq!(n, 60);
    }
}
