//! Compositing for the watermark operations: "source over" blending of a straight-alpha source
//! (RGBA pixels, or a coverage mask filled with one colour) onto a frame, with an extra opacity
//! factor, at a signed position, clipped to the frame. Also the placement rules the watermarks
//! share: keeping a block inside the frame and laying out a tiled grid.

use image::{GrayImage, RgbaImage};

use crate::geometry::Gravity;
use crate::ops::{Area, Canvas};
use crate::Pixels;

/// What a [`Layer`] paints.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Straight-alpha RGBA pixels.
    Rgba(&'a RgbaImage),
    /// A coverage mask (0 = untouched, 255 = fully covered) painted in a straight-alpha colour.
    Mask { mask: &'a GrayImage, color: [u8; 4] },
}

/// A source with its opacity folded into a lookup table, ready to be drawn many times.
#[derive(Debug)]
pub(crate) struct Layer<'a> {
    source: Source<'a>,
    /// Effective alpha (0..=255) for each source alpha or coverage value.
    alpha: [u8; 256],
}

impl<'a> Layer<'a> {
    /// `opacity` (clamped to 0..=1) multiplies the source's alpha (and a mask colour's alpha).
    pub(crate) fn new(source: Source<'a>, opacity: f32) -> Self {
        let mut factor = if opacity.is_nan() { 0.0 } else { f64::from(opacity.clamp(0.0, 1.0)) };
        if let Source::Mask { color, .. } = source {
            factor *= f64::from(color[3]) / 255.0;
        }
        let mut alpha = [0u8; 256];
        for (v, a) in alpha.iter_mut().enumerate() {
            *a = (v as f64 * factor).round().clamp(0.0, 255.0) as u8;
        }
        Layer { source, alpha }
    }

    /// True when drawing would change nothing.
    pub(crate) fn is_invisible(&self) -> bool {
        self.alpha[255] == 0
    }

    /// Size of the source in pixels.
    pub(crate) fn dimensions(&self) -> (u32, u32) {
        match self.source {
            Source::Rgba(img) => img.dimensions(),
            Source::Mask { mask, .. } => mask.dimensions(),
        }
    }

    /// Draws the source with its top-left corner at each of `positions` (frame coordinates)
    /// onto every frame of `canvas`.
    pub(crate) fn draw_on(&self, canvas: &mut dyn Canvas, positions: &[(i64, i64)]) -> crate::Result<()> {
        if self.is_invisible() {
            return Ok(());
        }
        let Some(area) = covered(canvas.dimensions(), self.dimensions(), positions) else {
            return Ok(());
        };
        for w in canvas.windows(area)? {
            let (ox, oy) = (i64::from(w.origin.0), i64::from(w.origin.1));
            for &(x, y) in positions {
                self.draw(w.pixels, x - ox, y - oy);
            }
        }
        Ok(())
    }

    /// Blends the source onto `dst` with its top-left corner at (`x`, `y`), which may be
    /// negative or beyond the frame: only the overlap is touched.
    pub(crate) fn draw(&self, dst: &mut Pixels, x: i64, y: i64) {
        if self.is_invisible() {
            return;
        }
        let Some(rect) = clip(dst.dimensions(), self.dimensions(), x, y) else {
            return;
        };
        let lut = &self.alpha;
        match (self.source, dst) {
            (Source::Rgba(src), Pixels::Rgb(d)) => {
                let dw = d.width() as usize;
                blend_rows::<4, 3>(d, dw, src.as_raw(), src.width() as usize, &rect, |s| {
                    ([s[0], s[1], s[2]], lut[usize::from(s[3])])
                });
            }
            (Source::Rgba(src), Pixels::Rgba(d)) => {
                let dw = d.width() as usize;
                blend_rows::<4, 4>(d, dw, src.as_raw(), src.width() as usize, &rect, |s| {
                    ([s[0], s[1], s[2]], lut[usize::from(s[3])])
                });
            }
            (Source::Mask { mask, color }, Pixels::Rgb(d)) => {
                let dw = d.width() as usize;
                let c = [color[0], color[1], color[2]];
                blend_rows::<1, 3>(d, dw, mask.as_raw(), mask.width() as usize, &rect, |s| {
                    (c, lut[usize::from(s[0])])
                });
            }
            (Source::Mask { mask, color }, Pixels::Rgba(d)) => {
                let dw = d.width() as usize;
                let c = [color[0], color[1], color[2]];
                blend_rows::<1, 4>(d, dw, mask.as_raw(), mask.width() as usize, &rect, |s| {
                    (c, lut[usize::from(s[0])])
                });
            }
        }
    }
}

/// The overlap of a source placed at (x, y) with the frame, in both coordinate systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    /// First destination column and row.
    dx: usize,
    dy: usize,
    /// First source column and row.
    sx: usize,
    sy: usize,
    /// Overlap size (both > 0).
    w: usize,
    h: usize,
}

fn clip(frame: (u32, u32), src: (u32, u32), x: i64, y: i64) -> Option<Rect> {
    let axis = |frame: u32, src: u32, pos: i64| -> Option<(usize, usize, usize)> {
        let start = pos.max(0);
        let end = pos.saturating_add(i64::from(src)).min(i64::from(frame));
        if end <= start {
            return None;
        }
        let d = usize::try_from(start).ok()?;
        let s = usize::try_from(start.checked_sub(pos)?).ok()?;
        let len = usize::try_from(end - start).ok()?;
        Some((d, s, len))
    };
    let (dx, sx, w) = axis(frame.0, src.0, x)?;
    let (dy, sy, h) = axis(frame.1, src.1, y)?;
    Some(Rect { dx, dy, sx, sy, w, h })
}

/// The part of a `frame` that a `block` drawn at each of `positions` covers: the union of the
/// clipped rectangles, `None` when nothing is inside the frame.
pub(crate) fn covered(frame: (u32, u32), block: (u32, u32), positions: &[(i64, i64)]) -> Option<Area> {
    positions
        .iter()
        .filter_map(|&(x, y)| clip(frame, block, x, y))
        .map(|r| Area { x: r.dx as u32, y: r.dy as u32, width: r.w as u32, height: r.h as u32 })
        .reduce(Area::union)
}

/// Blends rows of a source with `SC` bytes per pixel onto a destination with `DC` (3 or 4)
/// bytes per pixel. `fetch` turns a source pixel into (straight colour, effective alpha).
fn blend_rows<const SC: usize, const DC: usize>(
    dst: &mut [u8],
    dst_width: usize,
    src: &[u8],
    src_width: usize,
    r: &Rect,
    fetch: impl Fn(&[u8; SC]) -> ([u8; 3], u8),
) {
    let dst_rows = dst.chunks_exact_mut(dst_width * DC).skip(r.dy).take(r.h);
    let src_rows = src.chunks_exact(src_width * SC).skip(r.sy).take(r.h);
    for (drow, srow) in dst_rows.zip(src_rows) {
        let (dpx, _) = drow.as_chunks_mut::<DC>();
        let (spx, _) = srow.as_chunks::<SC>();
        let (Some(dpx), Some(spx)) = (dpx.get_mut(r.dx..r.dx + r.w), spx.get(r.sx..r.sx + r.w)) else {
            continue;
        };
        for (d, s) in dpx.iter_mut().zip(spx) {
            let (c, a) = fetch(s);
            match a {
                0 => {}
                255 => {
                    d[..3].copy_from_slice(&c);
                    if DC == 4 {
                        d[DC - 1] = 255;
                    }
                }
                _ if DC == 3 || d[DC - 1] == 255 => {
                    let a = u32::from(a);
                    let ia = 255 - a;
                    for i in 0..3 {
                        d[i] = div255(u32::from(c[i]) * a + u32::from(d[i]) * ia);
                    }
                }
                _ => {
                    // General "source over" with a translucent destination (straight alpha):
                    // ao = as + ad (1 - as); co = (cs as + cd ad (1 - as)) / ao, in units of 1/65025.
                    let a = u32::from(a);
                    let t = u32::from(d[DC - 1]) * (255 - a);
                    let ao = a * 255 + t;
                    for i in 0..3 {
                        let num = u32::from(c[i]) * a * 255 + u32::from(d[i]) * t;
                        d[i] = ((num + ao / 2) / ao).min(255) as u8;
                    }
                    d[DC - 1] = div255(ao);
                }
            }
        }
    }
}

/// `round(x / 255)` for `x <= 255 * 255`.
#[inline(always)]
fn div255(x: u32) -> u8 {
    let x = x + 128;
    ((x + (x >> 8)) >> 8) as u8
}

/// Largest block (width, height) that can be placed with `gravity` and `offset` and still lie
/// inside the frame: an anchored edge keeps a margin of `offset` on both sides of that axis (a
/// negative offset counts as 0); a centred axis needs room for the block to move by `offset`.
/// May be zero or negative when the offsets leave no room.
pub(crate) fn room(frame: (u32, u32), gravity: Gravity, offset: (i32, i32)) -> (i64, i64) {
    let (hx, vy) = gravity.factors();
    let axis = |dim: u32, factor: u8, d: i32| {
        let m = if factor == 1 { i64::from(d).abs() } else { i64::from(d).max(0) };
        i64::from(dim) - 2 * m
    };
    (axis(frame.0, hx, offset.0), axis(frame.1, vy, offset.1))
}

/// [`room`], or an [`Error::InvalidParams`] on `offset_x`/`offset_y` when the offsets leave no
/// room for the `what` (e.g. "text") on this frame.
pub(crate) fn room_or_error(
    frame: (u32, u32),
    gravity: Gravity,
    offset: (i32, i32),
    what: &str,
) -> crate::Result<(i64, i64)> {
    let room = room(frame, gravity, offset);
    if room.0 < 1 || room.1 < 1 {
        let field = if room.0 < 1 { "offset_x" } else { "offset_y" };
        return Err(crate::Error::invalid(
            field,
            format!("leaves no room for the {what} on a {}x{} image", frame.0, frame.1),
        ));
    }
    Ok(room)
}

/// Top-left corner of a `block` that fits in [`room`], placed by [`Gravity::place`] and then
/// clamped so that it never leaves the frame (nor the margin of an anchored edge).
pub(crate) fn place_inside(
    frame: (u32, u32),
    block: (u32, u32),
    gravity: Gravity,
    offset: (i32, i32),
) -> (i64, i64) {
    let (x, y) = gravity.place(frame, block, offset);
    let (hx, vy) = gravity.factors();
    let axis = |pos: i64, dim: u32, size: u32, factor: u8, d: i32| {
        let m = if factor == 1 { 0 } else { i64::from(d).max(0) };
        let hi = i64::from(dim) - i64::from(size) - m;
        pos.min(hi).max(m)
    };
    (axis(x, frame.0, block.0, hx, offset.0), axis(y, frame.1, block.1, vy, offset.1))
}

/// Most repetitions of a tiled watermark on one frame; beyond it the grid is spread out.
pub(crate) const MAX_TILES: u64 = 10_000;

/// Top-left corners of a tiled watermark: a grid with `spacing` pixels between blocks, starting
/// half a gap from the top-left corner (less when the gap is wider than the frame), every other
/// row shifted by half a step. Blocks at the
/// right and bottom edges (and the shifted rows' first block) are partly outside the frame.
/// At most [`MAX_TILES`] positions: a denser grid is spread out evenly.
pub(crate) fn tile_positions(frame: (u32, u32), block: (u32, u32), spacing: u32) -> Vec<(i64, i64)> {
    let (fw, fh) = (i64::from(frame.0), i64::from(frame.1));
    if fw == 0 || fh == 0 || block.0 == 0 || block.1 == 0 {
        return Vec::new();
    }
    let mut step_x = i64::from(block.0) + i64::from(spacing);
    let mut step_y = i64::from(block.1) + i64::from(spacing);
    // Half a gap from the top-left corner, but never so far that the first block is not seen.
    let start_x = i64::from(spacing / 2).min(((fw - i64::from(block.0)) / 2).max(0));
    let start_y = i64::from(spacing / 2).min(((fh - i64::from(block.1)) / 2).max(0));
    // Columns: one more than fit, for the shifted rows.
    let count = |sx: i64, sy: i64| ((fw - start_x) / sx + 2) as u64 * ((fh - start_y) / sy + 1) as u64;
    let n = count(step_x, step_y);
    if n > MAX_TILES {
        let f = (n as f64 / MAX_TILES as f64).sqrt();
        step_x = ((step_x as f64 * f).ceil() as i64).max(step_x);
        step_y = ((step_y as f64 * f).ceil() as i64).max(step_y);
        while count(step_x, step_y) > MAX_TILES {
            step_x += step_x / 8 + 1;
            step_y += step_y / 8 + 1;
        }
    }
    let mut out = Vec::new();
    let mut y = start_y;
    let mut row = 0u64;
    while y < fh {
        let mut x = if row % 2 == 1 { start_x - step_x / 2 } else { start_x };
        while x < fw {
            out.push((x, y));
            x += step_x;
        }
        y += step_y;
        row += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage, Rgba};

    use super::*;

    #[test]
    fn div255_rounds_exactly() {
        for x in 0..=255 * 255u32 {
            assert_eq!(u32::from(div255(x)), (x + 127) / 255, "x = {x}");
        }
    }

    #[test]
    fn source_over_matches_float_reference() {
        // Every source alpha against translucent and opaque destinations.
        for sa in [0u8, 1, 64, 128, 200, 254, 255] {
            for da in [0u8, 1, 77, 128, 254, 255] {
                let src = RgbaImage::from_pixel(1, 1, Rgba([200, 100, 30, sa]));
                let mut dst = Pixels::Rgba(RgbaImage::from_pixel(1, 1, Rgba([10, 240, 90, da])));
                Layer::new(Source::Rgba(&src), 1.0).draw(&mut dst, 0, 0);
                let Pixels::Rgba(out) = dst else { unreachable!() };
                let (a, b) = (f64::from(sa) / 255.0, f64::from(da) / 255.0);
                let ao = a + b * (1.0 - a);
                let p = out.get_pixel(0, 0);
                assert!((f64::from(p[3]) - ao * 255.0).abs() <= 0.5 + 1e-9, "alpha {sa} over {da}: {p:?}");
                if ao > 0.0 {
                    for (i, (s, d)) in [(200.0, 10.0), (100.0, 240.0), (30.0, 90.0)].into_iter().enumerate() {
                        let want = (s * a + d * b * (1.0 - a)) / ao;
                        assert!((f64::from(p[i]) - want).abs() <= 1.0, "{sa} over {da}: {p:?} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn mask_blends_with_opacity_and_clips() {
        let mask = GrayImage::from_fn(4, 4, |x, _| image::Luma([if x < 2 { 255 } else { 128 }]));
        let mut dst = Pixels::Rgb(RgbImage::from_pixel(3, 3, Rgb([0, 0, 0])));
        let layer = Layer::new(Source::Mask { mask: &mask, color: [255, 255, 255, 255] }, 0.5);
        layer.draw(&mut dst, -1, 1);
        let Pixels::Rgb(out) = dst else { unreachable!() };
        // Row 0 untouched; columns 0 (mask x=1, full) and 1..3 (mask x=2..4, half) at rows 1..3.
        assert_eq!(out.get_pixel(0, 0), &Rgb([0, 0, 0]));
        assert_eq!(out.get_pixel(0, 1), &Rgb([128, 128, 128]));
        assert_eq!(out.get_pixel(1, 2), &Rgb([64, 64, 64]));
        assert_eq!(out.get_pixel(2, 2), &Rgb([64, 64, 64]));
        // Entirely outside: nothing happens, nothing panics.
        let mut dst = Pixels::Rgb(RgbImage::new(3, 3));
        for (x, y) in [(-4, 0), (3, 0), (0, 3), (0, -4), (i64::MIN, i64::MAX), (i64::MAX, i64::MIN)] {
            layer.draw(&mut dst, x, y);
        }
        assert_eq!(dst, Pixels::Rgb(RgbImage::new(3, 3)));
    }

    #[test]
    fn placement_stays_inside() {
        for g in [Gravity::TopLeft, Gravity::Center, Gravity::BottomRight, Gravity::Top, Gravity::Right] {
            for off in [(-30, 5), (0, 0), (12, 40), (45, -45)] {
                let (rw, rh) = room((100, 90), g, off);
                if rw <= 0 || rh <= 0 {
                    continue;
                }
                let block = (rw as u32, rh as u32);
                let (x, y) = place_inside((100, 90), block, g, off);
                assert!(x >= 0 && y >= 0 && x + rw <= 100 && y + rh <= 90, "{g:?} {off:?}");
            }
        }
        assert_eq!(place_inside((100, 100), (10, 10), Gravity::BottomRight, (24, 24)), (66, 66));
        assert_eq!(room((100, 100), Gravity::Center, (-10, 3)), (80, 94));
    }

    #[test]
    fn tiles_are_bounded_and_cover() {
        let t = tile_positions((100, 50), (20, 10), 10);
        assert!(t.contains(&(5, 5)) && t.contains(&(35, 5)) && t.contains(&(-10, 25)));
        assert!(t.iter().all(|&(x, y)| x > -20 && x < 100 && y > -10 && y < 50));
        let dense = tile_positions((16_384, 16_384), (1, 1), 0);
        assert!(dense.len() as u64 <= MAX_TILES && dense.len() > 1000, "{}", dense.len());
    }
}
