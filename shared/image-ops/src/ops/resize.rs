//! Thumbnail / resize.

use serde::Deserialize;

use crate::geometry::Gravity;
use crate::{Image, Limits, Result};

/// How the image is fitted to the `width` x `height` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Keep the aspect ratio; the result fits inside the box (one side may be smaller).
    #[default]
    Inside,
    /// Keep the aspect ratio; fill the box and crop the overflow, anchored by `gravity`.
    Cover,
    /// Stretch to exactly the box.
    Fill,
}

/// Resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Nearest,
    Bilinear,
    CatmullRom,
    Mitchell,
    #[default]
    Lanczos3,
}

/// Params of `resize` (alias `thumbnail`). At least one of `width`/`height`; with only one,
/// the other follows from the aspect ratio (for `cover`/`fill` both are required).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeParams {
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub fit: Fit,
    /// Which part to keep when `fit` is `cover`. Default `center`.
    #[serde(default)]
    pub gravity: Gravity,
    /// Allow making the image larger than it is. Default false: a smaller image is returned as is.
    #[serde(default)]
    pub upscale: bool,
    #[serde(default)]
    pub filter: Filter,
}

impl crate::Validate for ResizeParams {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        let _ = (field, limits);
        todo!("helper: resize")
    }
}

/// The scale factor `resize` will apply to an upright `width` x `height` image (1.0 when it
/// will not shrink). Used for shrink-on-load.
pub fn scale_factor(p: &ResizeParams, width: u32, height: u32) -> f64 {
    let _ = (p, width, height);
    todo!("helper: resize")
}

/// Resizes every frame.
pub fn resize(image: &mut Image, p: &ResizeParams, limits: &Limits) -> Result<()> {
    let _ = (image, p, limits);
    todo!("helper: resize")
}
