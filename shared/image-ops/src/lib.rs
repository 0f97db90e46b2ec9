//! imgfn's image operations: pure functions from bytes to bytes, with no knowledge of AWS,
//! async runtimes or HTTP.
//!
//! Every operation is a params type (serde, `deny_unknown_fields`, checked by [`Validate`]
//! before any decoding) and one function over a decoded [`Image`], registered once in
//! [`ops::REGISTRY`]. A [`Pipeline`] is a validated list of them plus the output params; it
//! decodes once, applies them in order and encodes once. Untrusted bytes go through [`decode`],
//! which checks [`Limits`] before it allocates pixels. All failures are one [`Error`] enum of
//! categories.

mod avif;
pub(crate) mod compose;
pub mod decode;
pub mod encode;
pub mod error;
pub mod fonts;
pub mod format;
#[doc(hidden)]
pub mod fuzzing;
pub mod geometry;
pub mod limits;
pub mod metadata;
pub mod ops;
mod parallel;
pub mod pipeline;
pub mod pixels;
pub mod smartcrop;
mod transcode;
mod webp_lossy;

pub use crate::encode::{Encoded, OutputParams, Quality};
pub use crate::error::{Category, Error, Result};
pub use crate::format::{InputFormat, OutputFormat};
pub use crate::geometry::{Color, Gravity, Length};
pub use crate::limits::Limits;
pub use crate::metadata::Metadata;
pub use crate::ops::{Op, OpSpec, Operation, REGISTRY};
pub use crate::pipeline::{Asset, Assets, Output, Pipeline, PipelineSpec, Rendered};
pub use crate::pixels::{Frame, Image, Pixels};

/// Parameter validation, run before any image is decoded. `field` is the path of the value
/// being checked (e.g. `ops[0]`); errors name `field.<name>`.
pub trait Validate {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()>;
}
