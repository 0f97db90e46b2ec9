//! What the workspace's tests share, in one crate instead of files included by `#[path]`:
//!
//! - [`s3`]: a REAL S3-compatible server (s3s-fs over hyper, SigV4 with a fixed key) on
//!   127.0.0.1 with the source and output buckets, a request log, and servers that fail;
//! - [`faults`]: a proxy that makes S3 fail (500, 503, delays, resets, cut bodies);
//! - [`fixtures`]: photo-like JPEGs and a PNG logo, made on the fly;
//! - [`lambda`]: a function's configuration and its sample event from `events/`;
//! - [`api`]: the HTTP API over the local hyper server, and a plain HTTP client;
//! - [`runtime`]: the Lambda runtime API, to run a function's real binary;
//! - [`tools`]: the outside tools some tests drive (schemathesis, the AWS CLI, curl, jq).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod api;
pub mod faults;
pub mod fixtures;
pub mod lambda;
pub mod runtime;
pub mod s3;
pub mod tools;

pub use crate::s3::{Server, OUTPUT, SOURCE};
