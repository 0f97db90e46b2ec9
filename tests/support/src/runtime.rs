//! The Lambda runtime API on 127.0.0.1, enough to run a function's real binary as Lambda runs
//! it: the binary polls `GET /2018-06-01/runtime/invocation/next`, gets each queued event with
//! its request id and deadline, and answers with `POST .../response` or `.../error`.
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::{Server, OUTPUT, SOURCE};

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub request_id: String,
    /// `response` or `error`.
    pub kind: String,
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<(String, Value)>,
    outcomes: Vec<Outcome>,
    /// When the binary first asked for an invocation (its init is done).
    first_poll: Option<Instant>,
    init_error: Option<Value>,
}

/// A runtime API serving queued events.
#[derive(Debug, Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    /// Each invocation's time limit (its deadline is this long after it is handed out).
    timeout: Duration,
}

impl RuntimeApi {
    /// The function binary `bin` as Lambda starts it for function `name`: an empty environment
    /// but for this runtime API, the variables Lambda sets, and S3 at `s3` (the local endpoint,
    /// its keys, the test buckets). Killed when dropped.
    pub fn command(&self, bin: &str, name: &str, s3: &Server) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", self.host())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_ENDPOINT_URL", s3.endpoint())
            .env("AWS_ACCESS_KEY_ID", crate::s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", crate::s3::SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("IMGFN_SOURCE_BUCKET", SOURCE)
            .env("IMGFN_OUTPUT_BUCKET", OUTPUT)
            .kill_on_drop(true);
        cmd
    }

    pub async fn start(timeout: Duration) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = RuntimeApi { addr, state: Arc::default(), changed: Arc::default(), timeout };
        let server = api.clone();
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            while let Ok((socket, _)) = listener.accept().await {
                let api = server.clone();
                let service = hyper::service::service_fn(move |req| {
                    let api = api.clone();
                    async move { Ok::<_, Infallible>(api.serve(req).await) }
                });
                tokio::spawn(http.serve_connection(TokioIo::new(socket), service).into_owned());
            }
        });
        api
    }

    /// `AWS_LAMBDA_RUNTIME_API` for the binary.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let id = uuid_like();
        self.state.lock().unwrap().events.push_back((id.clone(), event));
        self.changed.notify_waiters();
        id
    }

    /// When the binary first polled for work.
    pub fn first_poll(&self) -> Option<Instant> {
        self.state.lock().unwrap().first_poll
    }

    /// The answer to invocation `id`, waiting up to `within`.
    pub async fn outcome(&self, id: &str, within: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.changed.notified();
            if let Some(o) = self.state.lock().unwrap().outcomes.iter().find(|o| o.request_id == id) {
                return Some(o.clone());
            }
            if self.state.lock().unwrap().init_error.is_some() {
                return None;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// The init error the binary reported, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.state.lock().unwrap().init_error.clone()
    }

    async fn serve(&self, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
            return self.next().await;
        }
        if method == hyper::Method::POST && path == "/2018-06-01/runtime/init/error" {
            self.state.lock().unwrap().init_error = Some(body);
            self.changed.notify_waiters();
            return reply(202, Bytes::new(), &[]);
        }
        let rest = path.strip_prefix("/2018-06-01/runtime/invocation/").unwrap_or("");
        if let Some((id, kind)) = rest.split_once('/') {
            let outcome = Outcome { request_id: id.to_owned(), kind: kind.to_owned(), body };
            self.state.lock().unwrap().outcomes.push(outcome);
            self.changed.notify_waiters();
            return reply(202, Bytes::new(), &[]);
        }
        reply(404, Bytes::new(), &[])
    }

    /// The next queued event, waiting for one (as Lambda's long poll does).
    async fn next(&self) -> hyper::Response<Full<Bytes>> {
        loop {
            let changed = self.changed.notified();
            {
                let mut state = self.state.lock().unwrap();
                state.first_poll.get_or_insert_with(Instant::now);
                if let Some((id, event)) = state.events.pop_front() {
                    let deadline =
                        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + self.timeout;
                    let headers = [
                        ("lambda-runtime-aws-request-id", id.clone()),
                        ("lambda-runtime-deadline-ms", deadline.as_millis().to_string()),
                        (
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:000000000000:function:test".into(),
                        ),
                        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".into()),
                    ];
                    return reply(200, Bytes::from(event.to_string()), &headers);
                }
            }
            changed.await;
        }
    }
}

fn reply(status: u16, body: Bytes, headers: &[(&str, String)]) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap();
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("00000000-0000-4000-8000-{:012x}", N.fetch_add(1, Ordering::SeqCst))
}
