//! Guarded decoding: byte length, magic-byte sniffing against an allowlist, header dimensions
//! and frame count are checked against [`Limits`] before any pixel buffer is allocated. Then the
//! image is decoded, made upright (EXIF orientation), converted to sRGB and to the working
//! format ([`Pixels`]).

use crate::{Image, InputFormat, Limits, Pixels, Result};

/// What the header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: InputFormat,
    /// Stored dimensions (before EXIF orientation is applied).
    pub width: u32,
    pub height: u32,
    pub frames: u32,
}

/// Options for [`decode`].
#[derive(Default)]
pub struct DecodeOptions<'a> {
    /// Decode only the first frame of an animation.
    pub first_frame_only: bool,
    /// Shrink-on-load: given the upright size, the scale factor (<= 1) the first operation will
    /// apply. A JPEG is then decoded at the smallest DCT scale (1/8..1) that stays at least that
    /// large. `None` decodes at full size.
    pub shrink: Option<&'a dyn Fn(u32, u32) -> f64>,
}

impl std::fmt::Debug for DecodeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeOptions")
            .field("first_frame_only", &self.first_frame_only)
            .field("shrink", &self.shrink.is_some())
            .finish()
    }
}

/// Identifies the format from magic bytes (allowlist: JPEG, PNG, WebP, GIF).
pub fn sniff(bytes: &[u8]) -> Result<InputFormat> {
    let _ = bytes;
    todo!("helper: decode")
}

/// Reads format, dimensions and frame count from the header and checks them against `limits`.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    let _ = (bytes, limits);
    todo!("helper: decode")
}

/// Probes, then decodes into an upright sRGB [`Image`].
pub fn decode(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let _ = (bytes, limits, options, Pixels::Rgb(Default::default()));
    todo!("helper: decode")
}
