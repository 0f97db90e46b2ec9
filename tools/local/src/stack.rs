//! The whole stack on one machine, without AWS or Docker: what `template.yaml` deploys, wired
//! the same way.
//!
//! - a real S3-compatible endpoint ([`LocalS3`]) holding the source and output buckets;
//! - the S3-triggered functions of the operation registry, each a [`Function`] built from the
//!   variables the template gives it ([`crate::functions`]), invoked ([`crate::dispatch`]) with
//!   a real S3 notification event whenever an object is created under its trigger prefix in the
//!   source bucket (the output bucket has no notifications, as deployed, so no output can
//!   re-trigger a function);
//! - the HTTP API ([`LocalApi`]) over the same endpoint;
//! - the CDN ([`LocalEdge`]): signed rendition and stored-output URLs, served from the output
//!   bucket first and rendered by the render function on a miss, with the refresh function
//!   handed every change in the source bucket (deletes a changed source's renditions).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image_ops::ops::{self, OpSpec};
use imgfn_lambda::api::{Api, ApiConfig};
use imgfn_lambda::s3::{ClientOptions, S3Store};
use imgfn_lambda::{Config, ConfigError, Function};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::dispatch::Dispatcher;
use crate::edge::{EdgeConfig, LocalEdge};
use crate::functions::function_vars;
use crate::s3::{LocalS3, ACCESS_KEY, REGION, SECRET_KEY};
use crate::LocalApi;

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The endpoint's data: one folder per bucket, objects as plain files.
    pub data_dir: PathBuf,
    /// The S3 endpoint's address (loopback only).
    pub s3_addr: SocketAddr,
    /// The HTTP API's address (loopback only).
    pub api_addr: SocketAddr,
    /// The CDN's address (loopback only).
    pub edge_addr: SocketAddr,
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
    /// points the cargo-lambda functions at), the API on 127.0.0.1:8015, the CDN on
    /// 127.0.0.1:8016, data in `.imgfn-local/`, URLs signed with [`LOCAL_URL_KEY`].
    pub fn new() -> StackConfig {
        StackConfig {
            data_dir: PathBuf::from(".imgfn-local"),
            s3_addr: SocketAddr::from(([127, 0, 0, 1], 8014)),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8015)),
            edge_addr: SocketAddr::from(([127, 0, 0, 1], 8016)),
            source_bucket: "imgfn-source".into(),
            output_bucket: "imgfn-output".into(),
            vars: vec![
                ("IMGFN_CORS_ORIGINS".into(), "*".into()),
                ("IMGFN_URL_KEYS".into(), LOCAL_URL_KEY.into()),
            ],
            retry_delay: Duration::from_secs(1),
            memory_mb: 1024,
        }
    }

    /// The defaults with data in `data_dir` and every server on a free port of 127.0.0.1 (the
    /// OS picks it; read the addresses from the started [`LocalStack`]): for tests and
    /// benchmarks that run beside each other.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> StackConfig {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        StackConfig {
            data_dir: data_dir.into(),
            s3_addr: any,
            api_addr: any,
            edge_addr: any,
            ..StackConfig::new()
        }
    }

    /// The configuration of the function of `op`: the buckets, [`function_vars`], then
    /// [`StackConfig::vars`].
    pub fn function_config(&self, op: &'static OpSpec) -> Result<Config, ConfigError> {
        let own = function_vars(op);
        Config::from_lookup(op, |name| self.lookup(&own, name))
    }

    /// The HTTP API's configuration: the buckets, then [`StackConfig::vars`].
    pub fn api_config(&self) -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_lookup(|name| self.lookup(&[], name))
    }

    /// The buckets' CORS rules, as `template.yaml` sets them from `CorsOrigins`
    /// (`IMGFN_CORS_ORIGINS`): browsers PUT presigned uploads to the source bucket and follow
    /// redirects to presigned GETs of the output bucket. None without origins.
    pub fn cors_rules(&self) -> Vec<crate::s3::CorsRule> {
        let origins: Vec<String> = self
            .lookup(&[], "IMGFN_CORS_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if origins.is_empty() {
            return Vec::new();
        }
        let rule = |bucket: &str, methods: Vec<hyper::Method>| crate::s3::CorsRule {
            bucket: bucket.to_owned(),
            methods,
            origins: origins.clone(),
            max_age: 600,
        };
        vec![
            rule(&self.source_bucket, vec![hyper::Method::PUT]),
            rule(&self.output_bucket, vec![hyper::Method::GET, hyper::Method::HEAD]),
        ]
    }

    fn lookup(&self, own: &[(&str, String)], name: &str) -> Option<String> {
        match name {
            "IMGFN_SOURCE_BUCKET" => Some(self.source_bucket.clone()),
            "IMGFN_OUTPUT_BUCKET" => Some(self.output_bucket.clone()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some(self.memory_mb.to_string()),
            _ => own
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| self.vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())),
        }
    }
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig::new()
    }
}

/// The key that signs URLs locally (local use only; printed at start-up, like the S3
/// endpoint's credentials). `--var IMGFN_URL_KEYS=<new>,<old>` replaces it.
pub const LOCAL_URL_KEY: &str = "imgfn-local-url-key-not-a-secret-0123456789";

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
    pub edge: LocalEdge,
    pub config: StackConfig,
    stop: oneshot::Sender<Duration>,
    dispatcher: JoinHandle<usize>,
    tally: Arc<std::sync::Mutex<crate::dispatch::Tally>>,
}

impl LocalStack {
    /// Starts the endpoint, the functions and the API.
    pub async fn start(config: StackConfig) -> Result<LocalStack, StartError> {
        for addr in [config.s3_addr, config.api_addr, config.edge_addr] {
            if !addr.ip().is_loopback() {
                return Err(StartError::NotLoopback(addr));
            }
        }
        // Configuration first: a bad variable stops the stack before anything listens.
        config.api_config()?;
        let configs =
            ops::triggers().map(|op| config.function_config(op)).collect::<Result<Vec<_>, ConfigError>>()?;

        let data_err = |source| StartError::DataDir { dir: config.data_dir.clone(), source };
        std::fs::create_dir_all(&config.data_dir).map_err(data_err)?;
        let (created_tx, created_rx) = mpsc::unbounded_channel();
        let buckets = [config.source_bucket.as_str(), config.output_bucket.as_str()];
        let s3 = LocalS3::start_with_cors(
            &config.data_dir,
            config.s3_addr,
            &buckets,
            created_tx,
            config.cors_rules(),
        )
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse || e.kind() == std::io::ErrorKind::PermissionDenied {
                StartError::Listen { addr: config.s3_addr, flag: "s3-addr", source: e }
            } else {
                data_err(e)
            }
        })?;
        let store = store_for(&s3.url()).await;
        let edge_listener = tokio::net::TcpListener::bind(config.edge_addr)
            .await
            .map_err(|source| StartError::Listen { addr: config.edge_addr, flag: "edge-addr", source })?;
        let edge_err = |source| StartError::Listen { addr: config.edge_addr, flag: "edge-addr", source };
        let edge_url = format!("http://{}", edge_listener.local_addr().map_err(edge_err)?);
        // The API answers stable CDN URLs of its outputs: the local edge's.
        let mut with_cdn = config.clone();
        with_cdn.vars.insert(0, ("IMGFN_CDN_URL".into(), edge_url));
        let api_config = with_cdn.api_config()?;
        let api = Api::new(api_config.clone(), store.clone());
        let refresh = imgfn_lambda::refresh::Refresh::new(&api_config, store.clone());
        let api_server = LocalApi::start(api.clone(), config.api_addr)
            .await
            .map_err(|source| StartError::Listen { addr: config.api_addr, flag: "api-addr", source })?;
        // The demo page signs its URLs with the newest key (standing in for the app's server).
        let demo = api_config
            .url_keys
            .current()
            .await
            .first()
            .map(|key| crate::demo::Demo { api_url: api_server.url(), url_key: key.clone() });
        let edge = EdgeConfig { api: api.clone(), store: store.clone(), demo };
        let edge = LocalEdge::start(edge, edge_listener).map_err(edge_err)?;
        let api = api_server;
        let functions = configs.into_iter().map(|c| Function::new(c, store.clone())).collect();
        let tally = Arc::default();
        let dispatcher = Dispatcher {
            functions: Arc::new(functions),
            source_bucket: config.source_bucket.clone(),
            store,
            retry_delay: config.retry_delay,
            tally: Arc::clone(&tally),
            refresh: Some(refresh),
        };
        let (stop, stopped) = oneshot::channel();
        let dispatcher = tokio::spawn(dispatcher.run(created_rx, stopped));
        Ok(LocalStack { s3, api, edge, config, stop, dispatcher, tally })
    }

    /// What the invocations came to so far.
    pub fn tally(&self) -> crate::dispatch::Tally {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Who may call the API (`--open-api`).
    pub fn api_access(&self) -> imgfn_lambda::api::config::Access {
        self.config.api_config().map(|c| c.access).unwrap_or(imgfn_lambda::api::config::Access::Authorizer)
    }

    /// The functions' trigger prefixes and names, in registry order.
    pub fn triggers(&self) -> Vec<(String, &'static str)> {
        ops::triggers().filter_map(|op| Some((op.trigger_prefix()?, op.name))).collect()
    }

    /// Stops the API, stops delivering events, waits up to `grace` for running invocations
    /// (which still need the S3 endpoint), then stops the endpoint. Returns how many
    /// invocations were cut short.
    pub async fn shutdown(self, grace: Duration) -> usize {
        drop(self.api);
        drop(self.edge);
        let _ = self.stop.send(grace);
        let unfinished = self.dispatcher.await.unwrap_or(0);
        drop(self.s3);
        unfinished
    }
}

/// An S3 store for the local endpoint with its credentials, whatever the environment holds.
pub async fn store_for(endpoint: &str) -> S3Store {
    let credentials = imgfn_lambda::aws::Credentials {
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        session_token: None,
    };
    let config = imgfn_lambda::aws::AwsConfig::new(REGION, credentials, Some(endpoint));
    S3Store::new(config, ClientOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_starts_with_the_template_defaults() {
        let stack = StackConfig::new();
        for op in ops::triggers() {
            let config = stack.function_config(op);
            assert!(config.is_ok(), "{}: {:?}", op.name, config.err());
        }
        assert!(stack.api_config().is_ok());
        // A variable given to the stack reaches every function; a bad one is refused by name.
        let mut limited = StackConfig::new();
        limited.vars.push(("IMGFN_MAX_PIXELS".into(), "1000".into()));
        let slice = ops::find("slice").unwrap_or(&ops::CONVERT);
        assert_eq!(limited.function_config(slice).map(|c| c.limits.max_pixels).ok(), Some(1000));
        limited.vars.push(("IMGFN_MAX_PIXELS".into(), "lots".into()));
        assert_eq!(limited.function_config(slice).map_err(|e| e.var).err(), Some("IMGFN_MAX_PIXELS"));
    }
}
