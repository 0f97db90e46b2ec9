//! The whole stack on one machine, without AWS or Docker: what `template.yaml` deploys, wired
//! the same way.
//!
//! - a real S3-compatible endpoint ([`LocalS3`]) holding the source and output buckets;
//! - the six S3-triggered functions, each a [`Function`] built from the variables the template
//!   gives it ([`function_vars`]), invoked with a real S3 notification event whenever an object
//!   is created under its trigger prefix in the source bucket (the output bucket has no
//!   notifications, as deployed, so no output can re-trigger a function);
//! - the HTTP API ([`LocalApi`]) over the same endpoint.
//!
//! Invocations follow Lambda's asynchronous invocation: one event per object, a time limit
//! ([`FUNCTION_TIMEOUT`]), and up to [`RETRIES`] retries of an invocation that failed
//! (transient S3 errors); an invocation that still fails is logged where deployed it would go
//! to the dead-letter queue.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imgfn_lambda::api::{Api, ApiConfig};
use imgfn_lambda::s3::{ClientOptions, S3Store};
use imgfn_lambda::{Config, ConfigError, Function, OpKind};
use lambda_runtime::tracing::{error, info, warn};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::s3::{Created, LocalS3, ACCESS_KEY, REGION, SECRET_KEY};
use crate::LocalApi;

/// The S3 functions' timeout, as `S3FunctionTimeout` defaults to in the template.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a failed asynchronous invocation (the template's `MaximumRetryAttempts`).
pub const RETRIES: u32 = 2;
/// Invocations running at once.
const CONCURRENCY: usize = 2;

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The endpoint's data: one folder per bucket, objects as plain files.
    pub data_dir: PathBuf,
    /// The S3 endpoint's address (loopback only).
    pub s3_addr: SocketAddr,
    /// The HTTP API's address (loopback only).
    pub api_addr: SocketAddr,
    pub source_bucket: String,
    pub output_bucket: String,
    /// Variables given to every function and to the API on top of the template's
    /// (`IMGFN_MAX_*`, `IMGFN_CORS_ORIGINS`, ...).
    pub vars: Vec<(String, String)>,
    /// Pause before a retry (Lambda waits a minute or more; locally a second is enough).
    pub retry_delay: Duration,
    /// The memory (MB) the functions are told they have (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, as
    /// Lambda sets it): their pixel limits follow it as deployed. Default 1024, the template's.
    pub memory_mb: u64,
}

impl StackConfig {
    /// The defaults: S3 on 127.0.0.1:8014 (the endpoint `[workspace.metadata.lambda.env]`
    /// points the cargo-lambda functions at), the API on 127.0.0.1:8015, data in `.imgfn-local/`.
    pub fn new() -> StackConfig {
        StackConfig {
            data_dir: PathBuf::from(".imgfn-local"),
            s3_addr: SocketAddr::from(([127, 0, 0, 1], 8014)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8015)),
            source_bucket: "imgfn-source".into(),
            output_bucket: "imgfn-output".into(),
            vars: vec![("IMGFN_CORS_ORIGINS".into(), "*".into())],
            retry_delay: Duration::from_secs(1),
            memory_mb: 1024,
        }
    }

    /// The configuration of the function of `op`: the buckets, [`function_vars`], then
    /// [`StackConfig::vars`].
    pub fn function_config(&self, op: OpKind) -> Result<Config, ConfigError> {
        let own = function_vars(op);
        Config::from_lookup(op, |name| self.lookup(&own, name))
    }

    /// The HTTP API's configuration: the buckets, then [`StackConfig::vars`].
    pub fn api_config(&self) -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_lookup(|name| self.lookup(&[], name))
    }

    fn lookup(&self, own: &[(&str, &str)], name: &str) -> Option<String> {
        match name {
            "IMGFN_SOURCE_BUCKET" => Some(self.source_bucket.clone()),
            "IMGFN_OUTPUT_BUCKET" => Some(self.output_bucket.clone()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some(self.memory_mb.to_string()),
            _ => own
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
                .or_else(|| self.vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())),
        }
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig::new()
    }
}

/// The variables `template.yaml` gives the function of `op` besides the buckets, with the
/// template's parameter defaults (`shared/stack-check` keeps the two equal).
pub fn function_vars(op: OpKind) -> Vec<(&'static str, &'static str)> {
    let (params, output) = match op {
        OpKind::Thumbnail => (r#"{"width":256,"height":256}"#, r#"{"format":"webp","quality":80}"#),
        OpKind::Watermark => (r#"{"text":"imgfn","size":"5%"}"#, ""),
        OpKind::RoundCorner => (r#"{"radius":"8%"}"#, r#"{"format":"png"}"#),
        OpKind::QrOverlay => (r#"{"data":"https://example.com/imgfn","size":300}"#, ""),
        OpKind::Convert => (r#"{"format":"webp","quality":80}"#, ""),
        OpKind::Slice => (r#"{"rows":2,"cols":2}"#, ""),
    };
    let mut vars = vec![
        ("IMGFN_TRIGGER_PREFIX", trigger_prefix(op)),
        ("IMGFN_ERROR_PREFIX", "errors/"),
        ("IMGFN_ASSET_PREFIX", "assets/"),
        ("IMGFN_PARAMS", params),
    ];
    if !output.is_empty() {
        vars.push(("IMGFN_OUTPUT", output));
    }
    vars
}

/// The prefix of the source bucket whose objects trigger the function of `op`.
pub fn trigger_prefix(op: OpKind) -> &'static str {
    match op {
        OpKind::Thumbnail => "thumbnail/",
        OpKind::Watermark => "watermark/",
        OpKind::RoundCorner => "round-corner/",
        OpKind::QrOverlay => "qr-overlay/",
        OpKind::Convert => "convert/",
        OpKind::Slice => "slice/",
    }
}

/// Why the stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0} is not a loopback address: the local stack has fixed credentials and honours x-imgfn-local-sub, so it listens on 127.0.0.1 (or ::1) only")]
    NotLoopback(SocketAddr),
    #[error(
        "cannot listen on {addr} ({source}); is another imgfn-local running? Pick another port with --{flag}"
    )]
    Listen { addr: SocketAddr, flag: &'static str, source: std::io::Error },
    #[error("data directory {dir}: {source}")]
    DataDir { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A running stack. [`LocalStack::shutdown`] stops it cleanly.
#[derive(Debug)]
pub struct LocalStack {
    pub s3: LocalS3,
    pub api: LocalApi,
    pub config: StackConfig,
    stop: oneshot::Sender<Duration>,
    dispatcher: JoinHandle<usize>,
}

impl LocalStack {
    /// Starts the endpoint, the functions and the API.
    pub async fn start(config: StackConfig) -> Result<LocalStack, StartError> {
        for addr in [config.s3_addr, config.api_addr] {
            if !addr.ip().is_loopback() {
                return Err(StartError::NotLoopback(addr));
            }
        }
        // Configuration first: a bad variable stops the stack before anything listens.
        let api_config = config.api_config()?;
        let configs = OpKind::ALL
            .into_iter()
            .map(|op| Ok((op, config.function_config(op)?)))
            .collect::<Result<Vec<_>, ConfigError>>()?;

        let data_err = |source| StartError::DataDir { dir: config.data_dir.clone(), source };
        std::fs::create_dir_all(&config.data_dir).map_err(data_err)?;
        let (created_tx, created_rx) = mpsc::unbounded_channel();
        let buckets = [config.source_bucket.as_str(), config.output_bucket.as_str()];
        let s3 =
            LocalS3::start(&config.data_dir, config.s3_addr, &buckets, created_tx).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse
                    || e.kind() == std::io::ErrorKind::PermissionDenied
                {
                    StartError::Listen { addr: config.s3_addr, flag: "s3-addr", source: e }
                } else {
                    data_err(e)
                }
            })?;
        let store = store_for(&s3.url()).await;
        let api = LocalApi::start(Api::new(api_config, store.clone()), config.api_addr)
            .await
            .map_err(|source| StartError::Listen { addr: config.api_addr, flag: "api-addr", source })?;
        let functions = configs
            .into_iter()
            .map(|(op, c)| (op, c.trigger_prefix.clone(), Function::new(c, store.clone())))
            .collect();
        let dispatcher = Dispatcher {
            functions: Arc::new(functions),
            source_bucket: config.source_bucket.clone(),
            store,
            retry_delay: config.retry_delay,
        };
        let (stop, stopped) = oneshot::channel();
        let dispatcher = tokio::spawn(dispatcher.run(created_rx, stopped));
        Ok(LocalStack { s3, api, config, stop, dispatcher })
    }

    /// The functions' trigger prefixes, in documentation order.
    pub fn triggers(&self) -> Vec<(&'static str, OpKind)> {
        OpKind::ALL.iter().map(|&op| (trigger_prefix(op), op)).collect()
    }

    /// Stops the API, stops delivering events, waits up to `grace` for running invocations
    /// (which still need the S3 endpoint), then stops the endpoint. Returns how many
    /// invocations were cut short.
    pub async fn shutdown(self, grace: Duration) -> usize {
        drop(self.api);
        let _ = self.stop.send(grace);
        let unfinished = self.dispatcher.await.unwrap_or(0);
        drop(self.s3);
        unfinished
    }
}

/// An S3 store for the local endpoint with its credentials, whatever the environment holds.
pub async fn store_for(endpoint: &str) -> S3Store {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY,
            SECRET_KEY,
            None,
            None,
            "imgfn-local",
        ))
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .load()
        .await;
    S3Store::new(&sdk, ClientOptions::default())
}

/// Routes created objects to functions, like the source bucket's notification configuration.
struct Dispatcher {
    functions: Arc<Vec<(OpKind, String, Function)>>,
    source_bucket: String,
    store: S3Store,
    retry_delay: Duration,
}

impl Dispatcher {
    /// Delivers events until told to stop, then waits for running invocations (up to the grace
    /// period given with the stop). Returns the number cut short.
    async fn run(
        self,
        mut created: mpsc::UnboundedReceiver<Created>,
        stop: oneshot::Receiver<Duration>,
    ) -> usize {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut running = JoinSet::new();
        let mut stop = std::pin::pin!(stop);
        let grace = loop {
            tokio::select! {
                grace = &mut stop => break grace.unwrap_or(Duration::ZERO),
                next = created.recv() => {
                    let Some(object) = next else { break Duration::ZERO };
                    if let Some(invocation) = self.route(object) {
                        let permits = permits.clone();
                        running.spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            invocation.await;
                        });
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        };
        created.close();
        if !running.is_empty() {
            info!("waiting up to {} s for {} running invocation(s)", grace.as_secs(), running.len());
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let unfinished = running.len();
        running.abort_all();
        unfinished
    }

    /// The invocation an object's creation causes, if a function listens there.
    fn route(&self, object: Created) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let location = format!("s3://{}/{}", object.bucket, object.key);
        if object.bucket != self.source_bucket {
            return None;
        }
        let Some((op, _, function)) =
            self.functions.iter().find(|(_, prefix, _)| object.key.starts_with(prefix.as_str()))
        else {
            info!("stored {location} (no function listens under this prefix)");
            return None;
        };
        let (op, function, store, delay) = (*op, function.clone(), self.store.clone(), self.retry_delay);
        Some(async move {
            info!("{} <- {location} ({})", op, object.event_name);
            // S3 reports the size and ETag of what was stored; a gone object still gets its event.
            let head = store.head(&object.bucket, &object.key).await.ok();
            let (size, etag) = head.map(|h| (h.size, h.etag)).unwrap_or((0, None));
            let payload = notification(&object, size, etag.as_deref());
            for attempt in 0..=RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(delay * attempt).await;
                    warn!("{op}: retry {attempt} of {RETRIES} for {location}");
                }
                let started = Instant::now();
                let mut context = Context::default();
                context.request_id = uuid::Uuid::new_v4().to_string();
                context.invoked_function_arn =
                    format!("arn:aws:lambda:{REGION}:000000000000:function:imgfn-{op}");
                let event = LambdaEvent::new(payload.clone(), context);
                match tokio::time::timeout(FUNCTION_TIMEOUT, function.handle(event)).await {
                    Ok(Ok(())) => {
                        info!("{op}: done with {location} in {} ms", started.elapsed().as_millis());
                        return;
                    }
                    Ok(Err(e)) => error!("{op}: invocation failed for {location}: {e}"),
                    Err(_) => {
                        error!("{op}: task timed out after {} s for {location}", FUNCTION_TIMEOUT.as_secs())
                    }
                }
            }
            error!("{op}: gave up on {location} after {RETRIES} retries (deployed, the event goes to the dead-letter queue)");
        })
    }
}

/// The S3 notification event for `object`, as S3 sends it to Lambda (the key form-URL-encoded).
pub fn notification(object: &Created, size: u64, etag: Option<&str>) -> Value {
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

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time since the Unix epoch (civil-from-days, proleptic
/// Gregorian calendar).
fn humantime_utc(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
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
        let created = Created {
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

    #[test]
    fn every_function_starts_with_the_template_defaults() {
        let stack = StackConfig::new();
        for op in OpKind::ALL {
            let config = stack.function_config(op);
            assert!(config.is_ok(), "{op}: {:?}", config.err());
        }
        assert!(stack.api_config().is_ok());
        // A variable given to the stack reaches every function; a bad one is refused by name.
        let mut limited = StackConfig::new();
        limited.vars.push(("IMGFN_MAX_PIXELS".into(), "1000".into()));
        assert_eq!(limited.function_config(OpKind::Slice).map(|c| c.limits.max_pixels).ok(), Some(1000));
        limited.vars.push(("IMGFN_MAX_PIXELS".into(), "lots".into()));
        assert_eq!(
            limited.function_config(OpKind::Thumbnail).map_err(|e| e.var).err(),
            Some("IMGFN_MAX_PIXELS")
        );
    }
}
