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

/// Peak bytes of memory per input pixel in the worst case, measured with the release CLI
/// (`/usr/bin/time -v`, peak RSS): a 50 MP JPEG re-encoded or watermarked peaks at 457 MB
/// (9.1 B/px: the RGB frame, libjpeg-turbo's buffers, the output); a 40-frame 200 MP animated
/// GIF peaks at 810 MB resized (4 B/px: RGBA frames) and at 1,669 MB converted to animated
/// WebP (8.3 B/px: libwebp keeps an ARGB copy of every frame until it assembles the file).
pub const WORST_BYTES_PER_PIXEL: u64 = 10;

impl Limits {
    /// Checks the size of the asset `name` named by the param `field` against
    /// [`Limits::max_asset_bytes`] (before it is read, where the size is known first).
    pub fn check_asset(&self, field: &str, name: &str, bytes: u64) -> crate::Result<()> {
        if bytes > self.max_asset_bytes {
            return Err(crate::Error::invalid(
                field,
                format!(
                    "asset {name:?} is {bytes} bytes, over the asset limit of {} bytes",
                    self.max_asset_bytes
                ),
            ));
        }
        Ok(())
    }

    /// These limits with the pixel limits lowered, where needed, so that the worst case
    /// ([`WORST_BYTES_PER_PIXEL`] for every pixel of every frame) fits in `bytes`: an input
    /// that passes the header checks can then never exhaust that much memory.
    pub fn fit_memory(self, bytes: u64) -> Limits {
        let pixels = (bytes / WORST_BYTES_PER_PIXEL).max(1);
        Limits {
            max_pixels: self.max_pixels.min(pixels),
            max_total_pixels: self.max_total_pixels.min(pixels),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_memory_only_ever_lowers_the_pixel_limits() {
        let d = Limits::default();
        assert_eq!(d.fit_memory(u64::MAX), d);
        let fitted = d.fit_memory(900 * 1024 * 1024);
        assert_eq!(fitted.max_pixels, d.max_pixels);
        assert_eq!(fitted.max_total_pixels, 900 * 1024 * 1024 / WORST_BYTES_PER_PIXEL);
        assert_eq!(Limits { max_total_pixels: 1000, ..d }.fit_memory(u64::MAX).max_total_pixels, 1000);
        let small = d.fit_memory(300 * 1024 * 1024);
        assert!(small.max_pixels < d.max_pixels && small.max_pixels == small.max_total_pixels);
        assert_eq!(
            (small.max_side, small.max_frames, small.max_input_bytes),
            (d.max_side, d.max_frames, d.max_input_bytes)
        );
    }
}
