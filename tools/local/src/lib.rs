//! imgfn on one machine, for trying it and for tests: no AWS account, no Docker.
//!
//! - [`stack`]: the whole stack as `template.yaml` wires it, started and stopped as one: a real
//!   S3-compatible endpoint with the source and output buckets, the S3-triggered functions of
//!   the operation registry, and the HTTP API. The `imgfn-local` binary runs it (the README's
//!   "run" command).
//! - [`functions`]: each function's configuration as the template gives it.
//! - [`s3`]: the S3 endpoint (s3s-fs with SigV4 verification) that reports created objects.
//! - [`dispatch`]: created objects to function invocations, as S3 notifications and Lambda's
//!   asynchronous invocation do; [`notification`]: the event each invocation gets.
//! - [`api`]: the HTTP API served over hyper through the Lambda functions' own handlers.
//! - [`edge`]: the CDN (CloudFront, its viewer-request function and its origin group) in front
//!   of the output bucket and the render function; [`demo`]: the page it serves at `/`.
//!
//! Everything here listens on loopback only and is never deployed.

pub mod api;
pub mod demo;
pub mod dispatch;
pub mod edge;
pub mod functions;
pub mod notification;
pub mod s3;
pub mod stack;

pub use crate::api::{LocalApi, SUB_HEADER};
pub use crate::edge::LocalEdge;
pub use crate::stack::{LocalStack, StackConfig, LOCAL_URL_KEY};
