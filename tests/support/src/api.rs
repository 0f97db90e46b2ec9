//! The HTTP API under test: a real S3 server ([`crate::s3`]), the API's handlers behind the local
//! hyper server on 127.0.0.1, and a plain hyper client.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use imgfn_lambda::api::{Api, ApiConfig};
use imgfn_lambda::s3::S3Store;
use imgfn_local::LocalApi;
use serde_json::Value;

use crate::{Server, OUTPUT, SOURCE};

/// A real S3 server plus the API served locally over it.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub s3: Server,
    pub api: Api,
    pub http: LocalApi,
}

impl Stack {
    /// The API with `IMGFN_SOURCE_BUCKET`/`IMGFN_OUTPUT_BUCKET` set, opened on purpose
    /// (`IMGFN_API_ACCESS=open`: requests without an identity share one scope, which keeps the
    /// tests short) and `vars` on top. Give `("IMGFN_API_ACCESS", "authorizer")` for the
    /// deployed default.
    pub async fn start(vars: &[(&str, &str)]) -> Stack {
        let s3 = Server::start().await;
        let store = s3.store.clone();
        Stack::with_store(s3, store, vars).await
    }

    /// The same, with the API talking to `store` (a failing or misconfigured endpoint).
    pub async fn with_store(s3: Server, store: S3Store, vars: &[(&str, &str)]) -> Stack {
        // The handlers' logs, when asked for (`RUST_LOG=info cargo test ...`).
        static LOGS: std::sync::Once = std::sync::Once::new();
        if std::env::var_os("RUST_LOG").is_some() {
            LOGS.call_once(imgfn_lambda::init_tracing);
        }
        let api = Api::new(config(vars), store);
        let http = LocalApi::start(api.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        Stack { s3, api, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http.url())
    }

    /// POST `body` (raw) to `path` as `sub` (None: no authorizer identity).
    pub async fn post(&self, path: &str, sub: Option<&str>, body: &str) -> Reply {
        let mut headers = vec![("content-type", "application/json".to_owned())];
        if let Some(sub) = sub {
            headers.push((imgfn_local::SUB_HEADER, sub.to_owned()));
        }
        send("POST", &self.url(path), &headers, body.as_bytes().to_vec()).await
    }

    pub async fn get(&self, path: &str, sub: Option<&str>) -> Reply {
        let headers: Vec<(&str, String)> =
            sub.map(|s| vec![(imgfn_local::SUB_HEADER, s.to_owned())]).unwrap_or_default();
        send("GET", &self.url(path), &headers, Vec::new()).await
    }

    /// POST /uploads for `bytes` of `content_type`, then PUT them to the presigned URL with the
    /// headers the API named. Returns the key.
    pub async fn upload(&self, sub: Option<&str>, content_type: &str, bytes: &[u8]) -> String {
        let body = serde_json::json!({"content_type": content_type, "content_length": bytes.len()});
        let r = self.post("/uploads", sub, &body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text());
        let put = put_presigned(&r.json(), bytes, &[]).await;
        assert_eq!(put.status, 200, "{}", put.text());
        r.json()["key"].as_str().unwrap().to_owned()
    }
}

/// The URL keys of the vector in `cdn/vectors.json` whose request is `request`: the sample
/// delivery events (`events/render.json`) are made of it.
pub fn sample_url_keys(request: &str) -> String {
    let text = std::fs::read_to_string(crate::tools::root().join("cdn/vectors.json")).unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let case = vectors["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["expect"]["request"].as_str() == Some(request))
        .unwrap_or_else(|| panic!("no vector sends {request}"));
    case["keys"].as_str().unwrap().to_owned()
}

/// The API config for the test buckets, open, with `vars` on top.
pub fn config(vars: &[(&str, &str)]) -> ApiConfig {
    let mut map: HashMap<String, String> = HashMap::new();
    map.insert("IMGFN_SOURCE_BUCKET".into(), SOURCE.into());
    map.insert("IMGFN_OUTPUT_BUCKET".into(), OUTPUT.into());
    map.insert("IMGFN_API_ACCESS".into(), "open".into());
    for (k, v) in vars {
        map.insert((*k).into(), (*v).into());
    }
    ApiConfig::from_lookup(|k| map.get(k).cloned()).unwrap()
}

/// PUT `bytes` to the upload described by a `/uploads` answer, with its headers, except the
/// ones `overrides` replaces (a `None` value drops the header). Content-Length is always the
/// real length of `bytes`.
pub async fn put_presigned(upload: &Value, bytes: &[u8], overrides: &[(&str, Option<&str>)]) -> Reply {
    let mut headers: Vec<(String, String)> = upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
        .collect();
    for (name, value) in overrides {
        headers.retain(|(k, _)| k != name);
        if let Some(v) = value {
            headers.push(((*name).to_owned(), (*v).to_owned()));
        }
    }
    let headers: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    send("PUT", upload["upload_url"].as_str().unwrap(), &headers, bytes.to_vec()).await
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts an error response: status, code, and field when given.
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert_eq!(body["error"]["field"].as_str(), field, "{body}");
    }
}

/// One real HTTP/1.1 request.
pub async fn send(method: &str, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, value.as_str());
    }
    let response = client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body }
}
