//! The calls to AWS services other than S3 (S3's go to the local S3 endpoint in every other
//! test): Secrets Manager's GetSecretValue (the URL keys) and CloudFront's CreateInvalidation
//! (the refresh function), against servers on 127.0.0.1 that answer as those services do.
//! Every request's signature is checked with the AWS SDK's own signer (`aws-sigv4`), an
//! implementation independent of the one under test.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use imgfn_lambda::aws::{AwsClient, AwsConfig, ClientOptions, Credentials};
use imgfn_lambda::refresh::Refresh;
use imgfn_lambda::url_keys::UrlKeys;
use imgfn_test_support::{api, Server, SOURCE};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEJr//////////session+token=";

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A server on 127.0.0.1 answering each request with the next scripted
/// `(status, content type, body)` and recording what it was sent.
async fn service(script: Vec<(u16, &'static str, String)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, script) = (log.clone(), script.clone());
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let head_end = loop {
                    if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap().split(' ');
                let (method, target) = (first.next().unwrap().to_owned(), first.next().unwrap().to_owned());
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while read.len() < head_end + length {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read.extend_from_slice(&buf[..n]),
                    }
                }
                let body = read[head_end..head_end + length].to_vec();
                log.lock().unwrap().push(Seen { method, target, headers, body });
                let (status, content_type, body) =
                    script.lock().unwrap().pop_front().unwrap_or((500, "text/plain", "unscripted".into()));
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn client(endpoint: &str) -> AwsClient {
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: SECRET.into(),
        session_token: Some(TOKEN.into()),
    };
    let options = ClientOptions { initial_backoff: Duration::from_millis(5), ..ClientOptions::default() };
    AwsClient::new(AwsConfig::new("eu-west-1", credentials, Some(endpoint)), options)
}

/// `20261202T082524Z` as a time.
fn amz_time(stamp: &str) -> SystemTime {
    let n = |r: std::ops::Range<usize>| stamp[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15);
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

/// Checks `seen`'s `Authorization` with the AWS SDK's signer for `service` in `region`.
fn assert_signed(seen: &Seen, origin: &str, service: &str, region: &str) {
    use aws_sigv4::http_request::{
        sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
    };
    let auth = seen.header("authorization").unwrap();
    let signed_list = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
    assert!(
        auth.contains(&format!(
            "Credential=AKIDEXAMPLE/{}/{region}/{service}/aws4_request",
            &seen.header("x-amz-date").unwrap()[..8]
        )),
        "{auth}"
    );
    let headers: Vec<(&str, &str)> = signed_list
        .split(';')
        .filter(|n| !["host", "x-amz-date", "x-amz-security-token"].contains(n))
        .map(|n| (n, seen.header(n).unwrap()))
        .collect();
    let identity =
        aws_credential_types::Credentials::new("AKIDEXAMPLE", SECRET, Some(TOKEN.into()), None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(amz_time(seen.header("x-amz-date").unwrap()))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("{origin}{}", seen.target);
    let request =
        SignableRequest::new(&seen.method, uri, headers.into_iter(), SignableBody::Bytes(&seen.body))
            .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let expected = instructions.headers().find(|(n, _)| *n == "authorization").map(|(_, v)| v.to_owned());
    assert_eq!(Some(auth.to_owned()), expected, "the SDK's signer signs this request the same way");
    assert_eq!(seen.header("x-amz-security-token"), Some(TOKEN));
}

#[tokio::test]
async fn url_keys_are_read_from_secrets_manager() {
    let (a, b) = ("a".repeat(32), "b".repeat(40));
    let answer = json!({"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:k", "Name": "k", "SecretString": format!("{a},{b}")});
    let (endpoint, seen) = service(vec![
        // Throttled first: retried.
        (
            400,
            "application/x-amz-json-1.1",
            json!({"__type": "ThrottlingException", "message": "Rate exceeded"}).to_string(),
        ),
        (200, "application/x-amz-json-1.1", answer.to_string()),
    ])
    .await;
    let keys = UrlKeys::from_secret(&client(&endpoint), "imgfn/url-keys").await.unwrap();
    assert_eq!(keys.current().await, [a.into_bytes(), b.into_bytes()]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one retry after the throttling answer");
    let r = &seen[1];
    assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/"));
    assert_eq!(r.header("x-amz-target"), Some("secretsmanager.GetSecretValue"));
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), json!({"SecretId": "imgfn/url-keys"}));
    assert_signed(r, &endpoint, "secretsmanager", "eu-west-1");
}

#[tokio::test]
async fn a_missing_secret_stops_the_function_with_the_services_message() {
    let missing = json!({"__type": "ResourceNotFoundException", "message": "Secrets Manager can't find the specified secret."});
    let (endpoint, seen) = service(vec![(400, "application/x-amz-json-1.1", missing.to_string())]).await;
    let err = UrlKeys::from_secret(&client(&endpoint), "imgfn/none").await.unwrap_err();
    assert_eq!(err.var, "IMGFN_URL_KEYS_SECRET");
    assert!(err.message.contains("can't find the specified secret"), "{}", err.message);
    assert_eq!(seen.lock().unwrap().len(), 1, "not retried");
    // A secret without a string (binary) is refused by name.
    let binary = json!({"Name": "k", "SecretBinary": "AAAA"});
    let (endpoint, _) = service(vec![(200, "application/x-amz-json-1.1", binary.to_string())]).await;
    let err = UrlKeys::from_secret(&client(&endpoint), "k").await.unwrap_err();
    assert!(err.message.contains("no SecretString"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_trigger_source_is_invalidated_at_cloudfront() {
    let s = Server::start().await;
    let created =
        r#"<?xml version="1.0"?><Invalidation><Id>I1</Id><Status>InProgress</Status></Invalidation>"#;
    let (endpoint, seen) = service(vec![
        (503, "text/xml", "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>".into()),
        (201, "text/xml", created.into()),
        (400, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>TooManyInvalidationsInProgress</Code><Message>Too many</Message></Error></ErrorResponse>".into()),
    ])
    .await;
    let refresh = Refresh::new(&api::config(&[]), s.store.clone()).with_cdn(client(&endpoint), "E2EXAMPLE");
    let key = "thumbnail/a b&c.jpg";
    let event = json!({"detail": {"bucket": {"name": SOURCE}, "object": {"key": key}}});
    let done = refresh.handle(&event).await.unwrap();
    assert_eq!(done.invalidated, ["/o/thumbnail/a%20b%26c*", "/thumbnail/a%20b%26c*"]);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "retried after the 503");
        let r = &seen[1];
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/2020-05-31/distribution/E2EXAMPLE/invalidation")
        );
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(body.contains("<Quantity>2</Quantity>"), "{body}");
        assert!(
            body.contains("<Path>/o/thumbnail/a%20b%26c*</Path><Path>/thumbnail/a%20b%26c*</Path>"),
            "{body}"
        );
        assert!(body.contains("<CallerReference>imgfn-refresh-"), "{body}");
        // CloudFront is global: signed for us-east-1 whatever the function's region.
        assert_signed(r, &endpoint, "cloudfront", "us-east-1");
    }
    // CloudFront refuses: the event fails (Lambda retries it) with CloudFront's message.
    let err = refresh.handle(&event).await.unwrap_err();
    assert!(err.to_string().contains("Too many"), "{err}");
}
