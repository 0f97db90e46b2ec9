//! imgfn on one machine, for trying it and for tests: no AWS account, no Docker.
//!
//! - [`stack`]: the whole stack as `template.yaml` wires it: a real S3-compatible endpoint with
//!   the source and output buckets, the six S3-triggered functions invoked with real
//!   notification events when objects land under their trigger prefixes, and the HTTP API.
//!   The `imgfn-local` binary runs it (the README's "run" command).
//! - [`s3`]: the S3 endpoint (s3s-fs with SigV4 verification) that reports created objects.
//! - [`api`]: the HTTP API served over hyper through the Lambda functions' own handlers.
//!
//! Everything here listens on loopback only and is never deployed.

pub mod api;
pub mod s3;
pub mod stack;

pub use crate::api::{LocalApi, SUB_HEADER};
pub use crate::stack::{LocalStack, StackConfig};
