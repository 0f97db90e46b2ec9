//! Round corners.

use serde::{Deserialize, Serialize};

use crate::geometry::{Color, Length};
use crate::Pixels;

/// The registry's one-line summary.
pub const SUMMARY: &str = "Round the corners: transparent, or painted with a background colour.";
/// The registry's params doc.
pub const PARAMS: &str =
    "`radius` (px, or `\"10%\"` of the shorter side, at most 50%), `background` (unset: \
    transparent corners; a format without alpha fills them with `output.background`)";

impl crate::ops::Operation for RoundCornersParams {
    fn apply(&self, image: &mut crate::Image, _cx: &crate::ops::Context<'_>) -> crate::Result<()> {
        round_corners(image, self)
    }
}

/// Params of `round-corner`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
///
/// The radius is resolved against the shorter side and clamped to half of it; a radius that
/// resolves to 0 leaves the image as is. Only the four corner squares (`ceil(radius)` px a side)
/// are touched: pixels on the arc get their exact coverage by 8 x 8 supersampling, pixels fully
/// inside keep their value and pixels fully outside are cut away.
///
/// Without `background` the result is RGBA with transparent corners (alpha is multiplied by the
/// coverage; colours are straight alpha and unchanged). With `background`, the cut-away part is
/// painted with that colour under the image pixel (the pixel, faded by its coverage, is composited
/// over the background); an RGB image stays RGB when the background is opaque.
pub fn round_corners(image: &mut crate::Image, p: &RoundCornersParams) -> crate::Result<()> {
    let (w, h) = (image.width(), image.height());
    let short = w.min(h);
    let radius = f64::from(p.radius.resolve(short)).min(f64::from(short) / 2.0);
    if radius <= 0.0 {
        return Ok(());
    }
    let mask = CornerMask::new(w, h, radius);
    image.try_map_frames(|pixels| {
        mask.apply(pixels, p.background);
        Ok(())
    })
}

/// Samples per axis for pixels on the arc.
const SUPERSAMPLE: u32 = 8;

/// A rectangle of the image and the coverage (0..=255) of each of its pixels, row-major.
#[derive(Debug)]
struct Region {
    x: u32,
    y: u32,
    width: u32,
    coverage: Vec<u8>,
}

/// The coverage of the four (disjoint) corner squares of a rounded rectangle.
#[derive(Debug)]
struct CornerMask {
    regions: Vec<Region>,
}

impl CornerMask {
    fn new(w: u32, h: u32, r: f64) -> Self {
        // Pixels with x in [ceil(r), w - ceil(r)) (or the same for y) lie on a straight side of
        // the rounded rectangle: fully covered. The corner squares are clamped so they never
        // overlap (odd sides with radius = side / 2 share their middle column or row).
        let c = r.ceil() as u32;
        let (cw, ch) = (c.min(w), c.min(h));
        let cols = [(0, cw), (cw.max(w - cw), w)];
        let rows = [(0, ch), (ch.max(h - ch), h)];
        let (wf, hf) = (f64::from(w), f64::from(h));
        // Distance from (x, y) to the inner rectangle the arcs are centred on, minus r:
        // <= 0 inside the rounded rectangle.
        let sd = |x: f64, y: f64| {
            let dx = x - x.clamp(r, wf - r);
            let dy = y - y.clamp(r, hf - r);
            (dx * dx + dy * dy).sqrt() - r
        };
        let n = SUPERSAMPLE;
        let step = 1.0 / f64::from(n);
        let coverage = |px: u32, py: u32| -> u8 {
            let (x0, y0) = (f64::from(px), f64::from(py));
            // sd is 1-Lipschitz: if the centre is further than half a diagonal from the edge,
            // the whole pixel is on one side.
            let d = sd(x0 + 0.5, y0 + 0.5);
            if d <= -std::f64::consts::FRAC_1_SQRT_2 {
                return 255;
            }
            if d >= std::f64::consts::FRAC_1_SQRT_2 {
                return 0;
            }
            let mut inside = 0u32;
            for j in 0..n {
                let y = y0 + (f64::from(j) + 0.5) * step;
                for i in 0..n {
                    if sd(x0 + (f64::from(i) + 0.5) * step, y) <= 0.0 {
                        inside += 1;
                    }
                }
            }
            ((inside * 255 + n * n / 2) / (n * n)) as u8
        };
        let mut regions = Vec::with_capacity(4);
        for &(y_start, y_end) in &rows {
            for &(x_start, x_end) in &cols {
                if x_start >= x_end || y_start >= y_end {
                    continue;
                }
                let mut cov = Vec::with_capacity(((x_end - x_start) * (y_end - y_start)) as usize);
                for py in y_start..y_end {
                    cov.extend((x_start..x_end).map(|px| coverage(px, py)));
                }
                regions.push(Region { x: x_start, y: y_start, width: x_end - x_start, coverage: cov });
            }
        }
        CornerMask { regions }
    }

    /// Calls `f(pixel, coverage)` for every corner pixel not fully covered, in a buffer of
    /// `channels` bytes a pixel and `stride` pixels a row.
    fn for_each_cut(&self, buf: &mut [u8], stride: u32, channels: usize, mut f: impl FnMut(&mut [u8], u8)) {
        let stride = stride as usize;
        for region in &self.regions {
            let width = region.width as usize;
            if width == 0 {
                continue;
            }
            for (row_index, cov_row) in region.coverage.chunks_exact(width).enumerate() {
                let start = ((region.y as usize + row_index) * stride + region.x as usize) * channels;
                let Some(row) = buf.get_mut(start..start + width * channels) else {
                    continue;
                };
                for (px, &cov) in row.chunks_exact_mut(channels).zip(cov_row) {
                    if cov < 255 {
                        f(px, cov);
                    }
                }
            }
        }
    }

    fn apply(&self, pixels: &mut Pixels, background: Option<Color>) {
        let stride = pixels.width();
        match (background, &mut *pixels) {
            (Some(Color([br, bg, bb, 255])), Pixels::Rgb(rgb)) => {
                let bgc = [br, bg, bb];
                self.for_each_cut(rgb, stride, 3, |px, cov| {
                    let (c, inv) = (u32::from(cov), 255 - u32::from(cov));
                    for (v, b) in px.iter_mut().zip(bgc) {
                        *v = ((u32::from(*v) * c + u32::from(b) * inv + 127) / 255) as u8;
                    }
                });
            }
            (None, _) => {
                let rgba = pixels.make_rgba();
                self.for_each_cut(rgba, stride, 4, |px, cov| {
                    px[3] = ((u32::from(px[3]) * u32::from(cov) + 127) / 255) as u8;
                });
            }
            (Some(Color(bgc)), _) => {
                let rgba = pixels.make_rgba();
                let ab = f32::from(bgc[3]) / 255.0;
                self.for_each_cut(rgba, stride, 4, |px, cov| {
                    // The image pixel masked by its coverage, over the background restricted
                    // to the cut-away part.
                    let cov = f32::from(cov) / 255.0;
                    let a_top = f32::from(px[3]) / 255.0 * cov;
                    let a_bottom = ab * (1.0 - cov) * (1.0 - a_top);
                    let a_out = a_top + a_bottom;
                    if a_out <= 0.0 {
                        px.copy_from_slice(&[0, 0, 0, 0]);
                        return;
                    }
                    for (v, b) in px[..3].iter_mut().zip(bgc) {
                        let c = (f32::from(*v) * a_top + f32::from(b) * a_bottom) / a_out;
                        *v = c.round().clamp(0.0, 255.0) as u8;
                    }
                    px[3] = (a_out * 255.0).round().clamp(0.0, 255.0) as u8;
                });
            }
        }
    }
}
