//! Every resource limit in one place. Checked before any pixel buffer is allocated.

use serde::Deserialize;

/// Limits applied to untrusted input. Defaults are documented per field; callers override
/// them from configuration (the plumbing crate reads `IMGFN_MAX_*` variables).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted input, in bytes. Default 25 MB (25 * 1024 * 1024).
    pub max_input_bytes: u64,
    /// Largest accepted frame, in pixels (width * height). Default 50 megapixels.
    pub max_pixels: u64,
    /// Largest accepted width or height, in pixels, of inputs and outputs. Default 16,384.
    pub max_side: u32,
    /// Most frames in an animated input. Default 100.
    pub max_frames: u32,
    /// Most pixels over all frames of an animation (width * height * frames). Default 200 megapixels.
    pub max_total_pixels: u64,
    /// Largest asset (watermark image, font), in bytes. Default 10 MB.
    pub max_asset_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 25 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_side: 16_384,
            max_frames: 100,
            max_total_pixels: 200_000_000,
            max_asset_bytes: 10 * 1024 * 1024,
        }
    }
}
