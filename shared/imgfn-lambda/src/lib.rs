//! imgfn's Lambda plumbing: the only crate that does I/O. It reads the configuration, parses S3
//! notification events, decodes object keys, reads sources from and writes outputs to S3, runs
//! an `image_ops::Pipeline` on a blocking thread, and maps every failure to one outcome in one
//! place ([`Error::outcome`]). Each function binary under `functions/` is a few lines:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), imgfn_lambda::BoxError> {
//!     imgfn_lambda::runner::serve(env!("CARGO_PKG_NAME")).await
//! }
//! ```
//!
//! The crate's name is the operation's name in `image_ops::ops::REGISTRY`, which says what the
//! function does, its trigger prefix and its default params.
//!
//! # Configuration (environment variables, read once at init)
//!
//! | variable | meaning |
//! |---|---|
//! | `IMGFN_OUTPUT_BUCKET` | **required**; outputs and error records are written here |
//! | `IMGFN_SOURCE_BUCKET` | optional; records from any other bucket are refused; must differ from the output bucket |
//! | `IMGFN_TRIGGER_PREFIX` | default `<op>/`; the prefix the function listens on, stripped to name outputs; other keys are refused |
//! | `IMGFN_PARAMS` | the operation's default params, a JSON object (default: the registry's; for `convert`, output params); validated at start-up |
//! | `IMGFN_OUTPUT` | default output params (`{"format":"webp","quality":80}`; default: the registry's); unset format = the input's |
//! | `IMGFN_ERROR_PREFIX` | default `errors/` |
//! | `IMGFN_ASSET_PREFIX` | default `assets/`: fonts and overlay images named by params are keys under it in the source bucket |
//! | `IMGFN_MAX_INPUT_BYTES`, `IMGFN_MAX_PIXELS`, `IMGFN_MAX_SIDE`, `IMGFN_MAX_FRAMES`, `IMGFN_MAX_TOTAL_PIXELS`, `IMGFN_MAX_ASSET_BYTES` | optional `image_ops::Limits` overrides (positive integers) |
//! | `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` | set by Lambda; the pixel limits are lowered to fit it ([`image_ops::Limits::fit_memory`], [`config::RESERVED_MEMORY_MB`]) |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` | set by Lambda: the execution role's credentials ([`aws::AwsConfig::from_env`]) |
//! | `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) | a local S3 server (path-style addressing is then used) |
//! | `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` | log format (`JSON`) and level |
//!
//! A missing or malformed variable stops the function at init with a message naming it.
//!
//! The params of each function are those of its operation (`convert`'s are output params).
//!
//! # Per-object params
//!
//! The user metadata `imgfn-params` (header `x-amz-meta-imgfn-params`) may hold a JSON object
//! merged over the defaults (top-level keys replace; an `output` key is merged over the output
//! params), then validated exactly like the defaults. S3 metadata is ASCII: write non-ASCII
//! text with JSON `\u` escapes. See [`params::Request::with_overrides`].
//!
//! # Keys
//!
//! See [`keys`]: `<op>/<stem>.<ext>`; slices `<op>/<stem>/r<row>-c<col>.<ext>` and
//! `<op>/<stem>/manifest.json` (written last); error records `errors/<op>/<rest>.json`; all in
//! the output bucket. Outputs carry `Content-Type`, `Cache-Control: public, max-age=86400`
//! (outputs are overwritten on re-upload, so never `immutable`), and metadata
//! `imgfn-source-key` (URL-encoded like event keys), `imgfn-source-etag`, `imgfn-op`,
//! `imgfn-params-sha256`, `imgfn-width` and `imgfn-height`.
//!
//! # Outcomes
//!
//! Each record is processed on its own ([`runner::Function::handle`]) along the one job path
//! ([`job`]) that `POST /process` takes too:
//! - **processed**: outputs written, a stale error record for the same source deleted.
//! - **permanent** (unsupported/corrupt/empty image, over a limit — an oversized object is
//!   rejected from HeadObject's size without downloading it —, invalid params, source object
//!   deleted, missing asset): no image written, an error record written, one `WARN` line,
//!   and the record counts as a success.
//! - **skipped** (loop guard: a record from the output bucket or under the error or asset
//!   prefix; a key outside the trigger prefix; a foreign bucket; a folder marker; a non
//!   ObjectCreated record; an object overwritten between HeadObject and GetObject, whose
//!   own event processes the new version): nothing written, one `WARN` line, success.
//! - **transient** (S3 5xx, throttling, timeouts, network, S3 4xx meaning misconfiguration,
//!   internal failures): one `ERROR` line; after all records, the handler returns `Err` so
//!   Lambda retries the event. Nothing partial is final: a single image is one PutObject, and
//!   a slice's manifest is written only after all its tiles (a retry overwrites the same tile
//!   keys).

pub mod api;
pub mod aws;
pub mod config;
pub mod error;
pub mod event;
pub mod job;
pub mod keys;
pub mod logging;
pub mod params;
pub mod pipeline;
pub mod refresh;
pub mod rendition;
pub mod runner;
pub mod s3;
pub mod url_keys;

pub use crate::config::{Config, ConfigError};
pub use crate::error::{Error, Outcome};
pub use crate::runner::Function;

/// The error type of a function's `main`.
pub use lambda_runtime::Error as BoxError;

pub use crate::logging::init_tracing;
