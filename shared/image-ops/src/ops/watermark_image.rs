//! Image watermark (logo overlay).
//!
//! The overlay is sized once (`scale`, or its natural size), shrunk if needed so that it lies
//! wholly inside the image minus the offsets, resized with Lanczos3 on premultiplied alpha, and
//! blended ("source over", times `opacity`) onto every frame, once or as a tiled grid.

use image::RgbaImage;
use serde::{Deserialize, Serialize};

use crate::compose::{self, Layer, Source};
use crate::geometry::Gravity;
use crate::ops::watermark_text::{default_gravity, default_opacity, validate_common, Tile};
use crate::ops::Canvas;
use crate::{Error, Limits, Pixels, Result};

/// Params of `watermark_image`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageWatermarkParams {
    /// Name of the overlay image asset (PNG/WebP with alpha, or any accepted format).
    pub image: String,
    /// Overlay width as a fraction of the base image width (0 < scale <= 1). Unset = the
    /// overlay's own size, shrunk if it would not fit.
    #[serde(default)]
    pub scale: Option<f32>,
    /// Multiplies the overlay's alpha, 0..=1. Default 0.6.
    #[serde(default = "default_opacity")]
    pub opacity: f32,
    #[serde(default = "default_gravity")]
    pub gravity: Gravity,
    #[serde(default)]
    pub offset_x: i32,
    #[serde(default)]
    pub offset_y: i32,
    /// When set, the overlay repeats across the whole image and gravity/offset are ignored.
    #[serde(default)]
    pub tile: Option<Tile>,
}

impl crate::Validate for ImageWatermarkParams {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        if self.image.trim().is_empty() {
            return Err(Error::invalid(format!("{field}.image"), "asset name must not be empty"));
        }
        if let Some(scale) = self.scale {
            if !(scale > 0.0 && scale <= 1.0) {
                return Err(Error::invalid(
                    format!("{field}.scale"),
                    format!("must be in (0, 1], got {scale}"),
                ));
            }
        }
        validate_common(field, self.opacity, self.offset_x, self.offset_y, self.tile.as_ref(), limits)
    }
}

/// Composites `overlay` onto every frame of `canvas` (an [`crate::Image`], or part of one).
///
/// Errors: `image` for an empty overlay; `offset_x`/`offset_y` when the offsets leave no room
/// on this image.
pub fn watermark_image(canvas: &mut dyn Canvas, p: &ImageWatermarkParams, overlay: &RgbaImage) -> Result<()> {
    let (ow, oh) = overlay.dimensions();
    if ow == 0 || oh == 0 {
        return Err(Error::invalid("image", "the overlay image is empty"));
    }
    let frame = canvas.dimensions();
    if p.opacity.is_nan() || p.opacity <= 0.0 || frame.0 == 0 || frame.1 == 0 {
        return Ok(());
    }
    let offset = if p.tile.is_some() { (0, 0) } else { (p.offset_x, p.offset_y) };
    let room = compose::room_or_error(frame, p.gravity, offset, "overlay")?;
    let (w, h) = target_size((ow, oh), frame.0, p.scale, room);
    let resized;
    let src = if (w, h) == (ow, oh) {
        overlay
    } else {
        resized = resize_overlay(overlay, w, h)?;
        &resized
    };
    let layer = Layer::new(Source::Rgba(src), p.opacity);
    let positions = match &p.tile {
        Some(t) => compose::tile_positions(frame, (w, h), t.spacing),
        None => vec![compose::place_inside(frame, (w, h), p.gravity, offset)],
    };
    layer.draw_on(canvas, &positions)
}

/// The overlay's drawn size: `scale` times the frame width (aspect kept) or its natural size,
/// then shrunk proportionally to fit `room` (both >= 1). Never 0 in either direction.
fn target_size(overlay: (u32, u32), frame_width: u32, scale: Option<f32>, room: (i64, i64)) -> (u32, u32) {
    let (ow, oh) = (f64::from(overlay.0), f64::from(overlay.1));
    let (mut w, mut h) = match scale {
        Some(s) => {
            let w = (f64::from(frame_width) * f64::from(s)).round().max(1.0);
            (w, (oh * w / ow).round().max(1.0))
        }
        None => (ow, oh),
    };
    let (rw, rh) = (room.0 as f64, room.1 as f64);
    if w > rw || h > rh {
        let f = (rw / w).min(rh / h);
        // Keep the side that limits exact, derive the other from the aspect ratio.
        if rw / w <= rh / h {
            (w, h) = (rw, (h * f).round().clamp(1.0, rh));
        } else {
            (w, h) = ((w * f).round().clamp(1.0, rw), rh);
        }
    }
    // Both are within 1..=room (<= the frame's side, so they fit in u32).
    (w.clamp(1.0, f64::from(u32::MAX)) as u32, h.clamp(1.0, f64::from(u32::MAX)) as u32)
}

/// Lanczos3 resize of straight-alpha RGBA, computed on premultiplied alpha so that transparent
/// pixels' colours do not bleed into the edges.
fn resize_overlay(src: &RgbaImage, width: u32, height: u32) -> Result<RgbaImage> {
    let resized = crate::ops::resize::resize_pixels(
        &Pixels::Rgba(src.clone()),
        width,
        height,
        crate::ops::resize::Filter::Lanczos3,
    )?;
    Ok(match resized {
        Pixels::Rgba(img) => img,
        rgb @ Pixels::Rgb(_) => rgb.to_rgba(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_size_scales_and_fits() {
        // Natural size when it fits.
        assert_eq!(target_size((40, 20), 200, None, (152, 152)), (40, 20));
        // Scale is relative to the frame width.
        assert_eq!(target_size((40, 20), 200, Some(0.5), (200, 200)), (100, 50));
        // Too big: shrunk proportionally to the limiting side.
        assert_eq!(target_size((400, 100), 200, None, (152, 152)), (152, 38));
        assert_eq!(target_size((100, 400), 200, Some(1.0), (200, 100)), (25, 100));
        // Extreme aspect ratios never give 0.
        assert_eq!(target_size((10_000, 1), 200, None, (100, 100)), (100, 1));
    }

    #[test]
    fn resize_keeps_transparent_colour_out() {
        // Opaque red square on fully transparent *green*: no green may bleed in.
        let src = RgbaImage::from_fn(40, 40, |x, y| {
            if (10..30).contains(&x) && (10..30).contains(&y) {
                image::Rgba([255, 0, 0, 255])
            } else {
                image::Rgba([0, 255, 0, 0])
            }
        });
        let out = resize_overlay(&src, 13, 13).expect("resizes");
        assert_eq!(out.dimensions(), (13, 13));
        for p in out.pixels().filter(|p| p[3] > 16) {
            assert!(p[1] < 8, "green bled into {p:?}");
        }
        assert_eq!(out.get_pixel(6, 6)[3], 255);
    }
}
