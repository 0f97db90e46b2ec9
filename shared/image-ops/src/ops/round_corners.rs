//! Round corners.

use serde::Deserialize;

use crate::geometry::{Color, Length};

/// Params of `round_corners`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundCornersParams {
    /// Corner radius in px, or a percentage of the shorter side (`"10%"`, at most 50%).
    pub radius: Length,
    /// Paint the corners with this colour instead of leaving them transparent. When unset the
    /// corners are transparent, and an output format without alpha (JPEG) fills them with the
    /// output's `background`.
    #[serde(default)]
    pub background: Option<Color>,
}

impl crate::Validate for RoundCornersParams {
    fn validate(&self, field: &str, _limits: &crate::Limits) -> crate::Result<()> {
        self.radius.validate(&format!("{field}.radius"), 50.0)
    }
}

/// Rounds the corners of every frame with an anti-aliased edge.
pub fn round_corners(image: &mut crate::Image, p: &RoundCornersParams) -> crate::Result<()> {
    let _ = (image, p);
    todo!("helper: round corners")
}
