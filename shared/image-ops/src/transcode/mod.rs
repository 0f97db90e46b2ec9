//! Overlays on a JPEG that becomes a JPEG, without decoding the image: the watermarks and the
//! QR code touch a small part of a photo, so this path reads the source's quantised DCT
//! coefficients (entropy decoding only: no inverse DCT, upsampling or colour conversion for
//! the whole image), decodes to pixels only the 16x16 blocks (MCUs) around the overlay, paints
//! there exactly as on a decoded image, and writes the change back into those blocks'
//! coefficients. Every other block is only requantised to the output's tables, and when the
//! tables are the source's (`quality: "source"`, or a level whose tables they are) it is copied
//! as it is. The file is then entropy coded as a pixel encode would be (libjpeg-turbo's
//! profile, optimised Huffman tables, 4:2:0); for baseline output the Huffman symbols are
//! counted while requantising ([`huffman`]), which gives libjpeg's tables and bytes without its
//! statistics pass (a second entropy coding of the whole image, half of the time before).
//!
//! The change is written as a difference: a painted pixel's new colour minus its decoded
//! colour, in YCbCr, added to its block's coefficients through a forward DCT (chroma averaged
//! over each 2x2 cell, as the encoder's downsampling does). Pixels the overlay leaves alone add
//! nothing, so the blocks the overlay does not reach are untouched and the ones it does keep
//! the rest of their content without a decode-encode round trip.
//!
//! It applies when the source is an 8-bit YCbCr JPEG with 4:2:0 sampling (what a pixel encode
//! writes), upright (no EXIF rotation), without an Adobe marker or an ICC profile the decode
//! would convert from (one that behaves as sRGB changes nothing; one the output keeps with
//! `keep_icc` is written into the file, the coefficients being in its colour space), complete and
//! free of libjpeg warnings, the output is a JPEG of the same size and every operation is an
//! overlay ([`Overlay`]) that paints at most a quarter of the image. Anything else, and any
//! error on the way, falls back to the full decode, which also reports the errors.

mod decode_mcu;
mod ffi;
mod huffman;
mod slice;
mod thumbnail;

pub(crate) use ffi::PixelEncoder;
pub(crate) use slice::tiles;
pub(crate) use thumbnail::thumbnail;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use image::RgbImage;

use crate::encode::{Encoded, JPEG_MAX_SIDE};
use crate::ops::{Area, Canvas, Context, Overlay, Window};
use crate::{OutputFormat, OutputParams, Pixels, Quality};
use ffi::{Block, Transcoder};

/// Why the transcode did not apply (the pipeline then decodes in full).
pub(crate) type Skip = String;

/// The MCU of 4:2:0: 16x16 pixels, four luma blocks and one block of each chroma component.
const MCU: u32 = 16;

/// Largest share of the image a transcode decodes to pixels: one part in this many. Beyond a
/// quarter, a full decode with libjpeg's SIMD code costs less than our DCTs.
const MAX_WINDOW_PARTS: u64 = 4;

/// Applies `overlays` to the JPEG `input` (`probed`: its size as the probe read it, checked
/// against the limits) and encodes the result as a JPEG with `out`'s
/// quality and progressive setting; see the module docs for when it applies.
pub(crate) fn render(
    input: &[u8],
    probed: (u32, u32),
    overlays: &[&dyn Overlay],
    cx: &Context<'_>,
    out: &OutputParams,
) -> Result<Encoded, Skip> {
    transcode(input, probed, overlays, cx, out, true)
}

/// [`render`]; `huffman`: count the Huffman symbols for baseline output here (false: leave
/// it to libjpeg's statistics pass, which the tests compare with).
fn transcode(
    input: &[u8],
    probed: (u32, u32),
    overlays: &[&dyn Overlay],
    cx: &Context<'_>,
    out: &OutputParams,
    huffman: bool,
) -> Result<Encoded, Skip> {
    let (mut t, kept) = open_plain(input, probed, out.keep_icc)?;
    let (width, height) = probed;
    // The coefficients are read when an overlay first asks for pixels (after it checked its
    // params and the size of what it covers), or below.
    let mut canvas = DctCanvas { t: &mut t, size: (width, height), window: None };
    for overlay in overlays {
        overlay.paint(&mut canvas, cx).map_err(|e| format!("overlay: {e}"))?;
    }
    let window = canvas.window.take();
    t.load()?;
    let components = t.header().components.clone();
    let changes = window.map_or_else(BTreeMap::new, |w| w.changes(&components));
    let quality = match out.quality {
        Quality::Level(q) => Some(q.clamp(1, 100)),
        Quality::Source => None,
    };
    let tables = t.prepare(quality, out.progressive, input.len())?;
    let source: Vec<[u16; 64]> = components.iter().map(|c| c.quant).collect();
    // Baseline output gets its Huffman tables from counts taken while requantising; libjpeg's
    // statistics pass (an entropy coding of the whole image only to count) stays for
    // progressive output, whose scans it counts separately.
    let mut counts = (!out.progressive && huffman).then(huffman::Counts::new);
    requantise(&mut t, &source, &tables, &changes, counts.as_mut())?;
    if let Some(counts) = counts {
        let (dc, ac) = counts.tables()?;
        t.set_huffman(&dc, &ac)?;
    }
    let bytes = t.finish()?;
    // The coefficients stay in the profile's colour space, so the output carries it.
    let bytes = match kept {
        Some(icc) => {
            let meta = crate::Metadata { icc: Some(icc), copyright: None };
            crate::metadata::embed(bytes, OutputFormat::Jpeg, &meta).map_err(|e| e.to_string())?
        }
        None => bytes,
    };
    Ok(Encoded { bytes, format: OutputFormat::Jpeg, width, height, frames: 1 })
}

/// An ICC profile's bytes.
type Icc = Arc<[u8]>;

/// The JPEG `input` opened for a path that does not decode it to RGB, when it is one such paths
/// take: plain (`decode::jpeg::plain`: upright, complete, no Adobe marker, no profile the decode
/// would convert from), YCbCr 4:2:0, of the `probed` size and no larger than a JPEG may be.
/// Also the profile the output keeps (`keep_icc`).
fn open_plain(
    input: &[u8],
    probed: (u32, u32),
    keep_icc: bool,
) -> Result<(Transcoder<'_>, Option<Icc>), Skip> {
    let Some(kept) = crate::decode::jpeg::plain(input, keep_icc) else {
        return Err(
            "not a plain JPEG (rotation, an ICC profile to convert, Adobe marker or truncated)".into()
        );
    };
    let t = Transcoder::open(input)?;
    let header = t.header();
    let sampling: Vec<(u32, u32)> = header.components.iter().map(|c| (c.h_samp, c.v_samp)).collect();
    // (This libjpeg is built for 8-bit samples: it refuses 12-bit files while reading.)
    if !header.ycbcr || sampling != [(2, 2), (1, 1), (1, 1)] {
        return Err(format!("not YCbCr 4:2:0 (sampling {sampling:?})"));
    }
    let (width, height) = (header.width, header.height);
    if (width, height) != probed || width > JPEG_MAX_SIDE || height > JPEG_MAX_SIDE {
        return Err(format!("{width}x{height} is out of range"));
    }
    Ok((t, kept))
}

/// The libjpeg quality level (1..=100) whose tables come closest to the JPEG `input`'s: the
/// level its encoder used when that was libjpeg's scaling of the Annex K tables (libjpeg,
/// sharp, Pillow, ImageMagick); for other tables (some cameras and phones), the level whose
/// tables differ least. `None` when the header cannot be read.
pub(crate) fn source_level(input: &[u8]) -> Option<u8> {
    let t = Transcoder::open(input).ok()?;
    let tables = t.declared_tables();
    let luma = (*tables.first()?)?;
    let chroma = tables.get(1).copied().flatten();
    let baseline = luma.iter().chain(chroma.iter().flatten()).all(|&q| q <= 255);
    let distance = |level: u8| {
        let [l, c] = annex_k(level, baseline);
        let d = |a: &[u16; 64], b: &[u16; 64]| {
            a.iter().zip(b).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum::<u64>()
        };
        d(&luma, &l) + chroma.map_or(0, |chroma| d(&chroma, &c))
    };
    // The closest; among equals the highest level (keeps quality rather than bytes).
    (1..=100u8).rev().min_by_key(|&level| distance(level))
}

/// libjpeg's tables at `level` (`jpeg_set_quality`): the Annex K luma and chroma tables scaled
/// by `5000 / level` below 50 and `200 - 2 level` from there, in percent, rounded, at least 1
/// and (for `baseline`) at most 255. Natural order.
fn annex_k(level: u8, baseline: bool) -> [[u16; 64]; 2] {
    const LUMA: [u16; 64] = [
        16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14,
        17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49,
        64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
    ];
    const CHROMA: [u16; 64] = [
        17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47,
        66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
        99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    ];
    let level = u32::from(level.clamp(1, 100));
    let scale = if level < 50 { 5000 / level } else { 200 - 2 * level };
    let max = if baseline { 255 } else { 32767 };
    [LUMA, CHROMA].map(|t| t.map(|q| ((u32::from(q) * scale + 50) / 100).clamp(1, max) as u16))
}

/// The orthonormal 8-point DCT-II basis `m[u][x] = c(u) cos((2x + 1) u pi / 16)` (the JPEG DCT:
/// libjpeg's coefficients are this transform of the level-shifted samples), and its transpose.
fn bases() -> &'static [[[f32; 8]; 8]; 2] {
    static BASES: OnceLock<[[[f32; 8]; 8]; 2]> = OnceLock::new();
    BASES.get_or_init(|| {
        let mut m = [[0f32; 8]; 8];
        for (u, row) in m.iter_mut().enumerate() {
            let c = if u == 0 { (1.0f64 / 8.0).sqrt() } else { 0.5 };
            for (x, v) in row.iter_mut().enumerate() {
                *v = (c * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()) as f32;
            }
        }
        let t = std::array::from_fn(|i| std::array::from_fn(|j| m[j][i]));
        [m, t]
    })
}

/// `out[a][b] = sum over c, d of k[c][a] k[d][b] x[c][d]` (8x8, row-major): with the basis,
/// the inverse DCT; with its transpose, the forward one.
fn separable(x: &[f32; 64], k: &[[f32; 8]; 8]) -> [f32; 64] {
    let mut tmp = [0f32; 64]; // tmp[c][b] = sum_d x[c][d] k[d][b]
    for c in 0..8 {
        for d in 0..8 {
            let v = x[c * 8 + d];
            if v != 0.0 {
                for b in 0..8 {
                    tmp[c * 8 + b] += v * k[d][b];
                }
            }
        }
    }
    let mut out = [0f32; 64]; // out[a][b] = sum_c k[c][a] tmp[c][b]
    for c in 0..8 {
        for a in 0..8 {
            let w = k[c][a];
            for b in 0..8 {
                out[a * 8 + b] += w * tmp[c * 8 + b];
            }
        }
    }
    out
}

/// Samples (level-shifted, row-major) of the dequantised coefficients `f` (natural order).
fn idct(f: &[f32; 64]) -> [f32; 64] {
    separable(f, &bases()[0])
}

/// Dequantised coefficients (natural order) of the samples `s` (row-major).
fn fdct(s: &[f32; 64]) -> [f32; 64] {
    separable(s, &bases()[1])
}

/// JFIF's YCbCr to RGB, unclamped.
#[inline]
fn to_rgb(y: f32, cb: f32, cr: f32) -> [f32; 3] {
    let (cb, cr) = (cb - 128.0, cr - 128.0);
    [y + 1.402 * cr, y - 0.344_136 * cb - 0.714_136 * cr, y + 1.772 * cb]
}

/// JFIF's RGB to YCbCr for a difference (no offsets).
#[inline]
fn delta_ycc(d: [f32; 3]) -> [f32; 3] {
    [
        0.299 * d[0] + 0.587 * d[1] + 0.114 * d[2],
        -0.168_736 * d[0] - 0.331_264 * d[1] + 0.5 * d[2],
        0.5 * d[0] - 0.418_688 * d[1] - 0.081_312 * d[2],
    ]
}

/// A canvas over a JPEG's coefficients: one window of decoded MCUs, grown to hold every area an
/// overlay asks for.
struct DctCanvas<'t, 'a> {
    t: &'t mut Transcoder<'a>,
    size: (u32, u32),
    window: Option<DecodedWindow>,
}

/// MCUs decoded to pixels: `mcus` (columns, rows) of them from MCU (`mx`, `my`).
struct DecodedWindow {
    mx: u32,
    my: u32,
    mcus: (u32, u32),
    /// Luma samples, `16 * mcus.0` per row, and chroma samples, `8 * mcus.0` per row.
    planes: [Vec<f32>; 3],
    /// The visible part as RGB: what the overlays paint on.
    pixels: Pixels,
    /// `pixels` as decoded, before painting.
    decoded: Vec<u8>,
}

impl Canvas for DctCanvas<'_, '_> {
    fn dimensions(&self) -> (u32, u32) {
        self.size
    }

    fn windows(&mut self, area: Area) -> crate::Result<Vec<Window<'_>>> {
        let fail = |m: String| crate::Error::Encode(format!("transcode: {m}"));
        let (w, h) = self.size;
        if area.width == 0 || area.height == 0 || area.x + area.width > w || area.y + area.height > h {
            return Err(fail(format!("area {area:?} is not inside {w}x{h}")));
        }
        // The MCUs covering the area, and the ones already decoded.
        let mut want = (
            area.x / MCU,
            area.y / MCU,
            (area.x + area.width).div_ceil(MCU),
            (area.y + area.height).div_ceil(MCU),
        );
        if let Some(win) = &self.window {
            want = (
                want.0.min(win.mx),
                want.1.min(win.my),
                want.2.max(win.mx + win.mcus.0),
                want.3.max(win.my + win.mcus.1),
            );
        }
        let mcus = (want.2 - want.0, want.3 - want.1);
        let covers =
            self.window.as_ref().is_some_and(|win| (win.mx, win.my, win.mcus) == (want.0, want.1, mcus));
        if !covers {
            let pixels = u64::from(mcus.0 * MCU) * u64::from(mcus.1 * MCU);
            if pixels * MAX_WINDOW_PARTS > u64::from(w) * u64::from(h) {
                return Err(fail("the overlays cover too much of the image".into()));
            }
            self.t.load().map_err(fail)?;
            let mut grown = DecodedWindow::decode(self.t, (want.0, want.1), mcus, self.size).map_err(fail)?;
            if let Some(old) = self.window.take() {
                grown.take_paint(&old);
            }
            self.window = Some(grown);
        }
        let win = self.window.as_mut().ok_or_else(|| fail("no window".into()))?;
        Ok(vec![Window { pixels: &mut win.pixels, origin: (win.mx * MCU, win.my * MCU) }])
    }
}

impl DecodedWindow {
    /// Decodes `mcus` MCUs from MCU `at` (the visible part of them, in an image of `size`).
    fn decode(
        t: &mut Transcoder<'_>,
        at: (u32, u32),
        mcus: (u32, u32),
        size: (u32, u32),
    ) -> Result<DecodedWindow, String> {
        let mut planes: [Vec<f32>; 3] = Default::default();
        for (comp, plane) in planes.iter_mut().enumerate() {
            let scale = if comp == 0 { 2 } else { 1 }; // blocks per MCU side
            let (bw, bh) = (mcus.0 * scale, mcus.1 * scale);
            let stride = (bw * 8) as usize;
            *plane = vec![128.0; stride * (bh * 8) as usize];
            let (q, wib, hib) = {
                let c = &t.header().components[comp];
                (c.quant.map(f32::from), c.width_in_blocks, c.height_in_blocks)
            };
            for j in 0..bh {
                let by = at.1 * scale + j;
                if by >= hib {
                    break;
                }
                let row = t.row(comp, by)?;
                for i in 0..bw {
                    let bx = at.0 * scale + i;
                    if bx >= wib {
                        break;
                    }
                    let block = &row[bx as usize];
                    let mut f = [0f32; 64];
                    for k in 0..64 {
                        f[k] = f32::from(block[k]) * q[k];
                    }
                    let s = idct(&f);
                    for y in 0..8usize {
                        let o = ((j * 8) as usize + y) * stride + (i * 8) as usize;
                        for x in 0..8 {
                            plane[o + x] = s[y * 8 + x] + 128.0;
                        }
                    }
                }
            }
        }
        let (x0, y0) = (at.0 * MCU, at.1 * MCU);
        let vw = (mcus.0 * MCU).min(size.0 - x0);
        let vh = (mcus.1 * MCU).min(size.1 - y0);
        let mut rgb = RgbImage::new(vw, vh);
        let (ls, cs) = ((mcus.0 * MCU) as usize, (mcus.0 * MCU / 2) as usize);
        for (x, y, px) in rgb.enumerate_pixels_mut() {
            let (x, y) = (x as usize, y as usize);
            let c = (y / 2) * cs + x / 2;
            let v = to_rgb(planes[0][y * ls + x], planes[1][c], planes[2][c]);
            px.0 = v.map(|c| c.round().clamp(0.0, 255.0) as u8);
        }
        let decoded = rgb.as_raw().clone();
        Ok(DecodedWindow { mx: at.0, my: at.1, mcus, planes, pixels: Pixels::Rgb(rgb), decoded })
    }

    /// Copies what was painted on `old` (a window inside this one) into this one.
    fn take_paint(&mut self, old: &DecodedWindow) {
        let (Pixels::Rgb(new), Pixels::Rgb(prev)) = (&mut self.pixels, &old.pixels) else {
            return;
        };
        let dx = (old.mx - self.mx) * MCU;
        let dy = (old.my - self.my) * MCU;
        for (x, y, px) in prev.enumerate_pixels() {
            new.put_pixel(x + dx, y + dy, *px);
        }
    }

    /// The change painted, per block: the dequantised coefficients to add, keyed by
    /// (component, block row, block column). Blocks without a change are left out.
    fn changes(&self, components: &[ffi::Component]) -> BTreeMap<(usize, u32, u32), [f32; 64]> {
        let Pixels::Rgb(rgb) = &self.pixels else {
            return BTreeMap::new();
        };
        let (ls, cs) = ((self.mcus.0 * MCU) as usize, (self.mcus.0 * MCU / 2) as usize);
        let mut deltas: [Vec<f32>; 3] = [
            vec![0.0; self.planes[0].len()],
            vec![0.0; self.planes[1].len()],
            vec![0.0; self.planes[2].len()],
        ];
        let mut cell_pixels = vec![0u8; self.planes[1].len()];
        for (x, y, px) in rgb.enumerate_pixels() {
            let (x, y) = (x as usize, y as usize);
            let c = (y / 2) * cs + x / 2;
            cell_pixels[c] += 1;
            let i = (y * rgb.width() as usize + x) * 3;
            if px.0 == self.decoded[i..i + 3] {
                continue;
            }
            // The difference from the decoded colour before clamping, so that what the
            // decoder would clamp stays as it was.
            let src = to_rgb(self.planes[0][y * ls + x], self.planes[1][c], self.planes[2][c]);
            let d = delta_ycc([0, 1, 2].map(|k| f32::from(px.0[k]) - src[k]));
            deltas[0][y * ls + x] = d[0];
            deltas[1][c] += d[1];
            deltas[2][c] += d[2];
        }
        for chroma in &mut deltas[1..] {
            for (d, &n) in chroma.iter_mut().zip(&cell_pixels) {
                if n > 0 {
                    *d /= f32::from(n);
                }
            }
        }
        let mut out = BTreeMap::new();
        for (comp, delta) in deltas.iter().enumerate() {
            let scale = if comp == 0 { 2 } else { 1 };
            let stride = (self.mcus.0 * scale * 8) as usize;
            let (wib, hib) = (components[comp].width_in_blocks, components[comp].height_in_blocks);
            for j in 0..self.mcus.1 * scale {
                for i in 0..self.mcus.0 * scale {
                    let (bx, by) = (self.mx * scale + i, self.my * scale + j);
                    if bx >= wib || by >= hib {
                        continue;
                    }
                    let mut s = [0f32; 64];
                    for y in 0..8usize {
                        let o = ((j * 8) as usize + y) * stride + (i * 8) as usize;
                        s[y * 8..y * 8 + 8].copy_from_slice(&delta[o..o + 8]);
                    }
                    if s.iter().any(|&v| v != 0.0) {
                        out.insert((comp, by, bx), fdct(&s));
                    }
                }
            }
        }
        out
    }
}

/// Rewrites every block for the new tables: `round((c * source + change) / target)`, clamped to
/// what an 8-bit JPEG holds. Components whose tables are equal keep their unchanged blocks
/// as they are. With `counts`, counts the Huffman symbols of the result.
fn requantise(
    t: &mut Transcoder<'_>,
    source: &[[u16; 64]],
    target: &[[u16; 64]],
    changes: &BTreeMap<(usize, u32, u32), [f32; 64]>,
    mut counts: Option<&mut huffman::Counts>,
) -> Result<(), String> {
    let components = t.header().components.clone();
    let mut dc = Vec::with_capacity(components.len());
    for (comp, c) in components.iter().enumerate() {
        let table = huffman::table_of(comp);
        let mut plane = Vec::new();
        if counts.is_some() {
            plane.reserve_exact(c.width_in_blocks as usize * c.height_in_blocks as usize);
        }
        let (q1, q2) = (source[comp], target[comp]);
        let same = q1 == q2;
        let scale = Requantiser::new(comp, &q1, &q2);
        let q1f = q1.map(f32::from);
        let q2f = q2.map(f32::from);
        let lo = scale.lo.map(|v| v as f32);
        let hi = scale.hi.map(|v| v as f32);
        for by in 0..c.height_in_blocks {
            let mut row_changes = changes.range((comp, by, 0)..=(comp, by, u32::MAX)).peekable();
            if same && row_changes.peek().is_none() && counts.is_none() {
                continue;
            }
            let row = t.row(comp, by)?;
            // Changed blocks from the source's coefficients, before requantising rounds them.
            let changed: Vec<(usize, Block)> = row_changes
                .map(|(&(_, _, bx), change)| {
                    let block = &row[bx as usize];
                    let new = std::array::from_fn(|k| {
                        let v = (f32::from(block[k]) * q1f[k] + change[k]) / q2f[k];
                        v.clamp(lo[k], hi[k]).round() as i16
                    });
                    (bx as usize, new)
                })
                .collect();
            let count = counts.as_deref_mut().map(|counts| (counts, table, &mut plane));
            RowPass { blocks: row, by, scale: (!same).then_some(&scale), changed: &changed, count }.run();
        }
        dc.push(plane);
    }
    if let Some(counts) = counts {
        counts.dc(&components, &dc)?;
    }
    Ok(())
}

/// `c * source / target` for every coefficient of a component, rounded to the nearest integer
/// and clamped to what an 8-bit JPEG holds (DC: 8 x the mean sample, -1024..=1016 before
/// quantisation; AC: 10 bits), in 16.16 fixed point: a branch-free integer loop the compiler
/// vectorises (a float version with saturating casts ran 2.5x slower; skipping zeros helps
/// little on photos, where about 40% of the coefficients are not zero). On 281,000 synthetic
/// blocks (a 12 MP photo's count): 38 ms scalar, as it ran while a `clamp` (which checks its
/// bounds and may panic) kept it from vectorising; 31 ms vectorised for x86-64's baseline SSE2,
/// which has no 32-bit multiply; 14 ms with SSE4.1 (`x86-64-v2`). So on x86_64 the pass over
/// each row is compiled for AVX2 too and picked at run time ([`RowPass::run`]): the shared
/// bench's QR task (12 MP, q80) 0.81x the CPU time in paired runs, the text watermark 0.79x
/// its time per image, the same bytes. arm64's Neon has the multiply.
///
/// Exact ties go away from zero for the coefficients set in one of four fixed masks, picked
/// per block by a hash of its position: eleven in sixteen of luma's ties, none of chroma's. Ties
/// are common: a q90 table is about half a q80 one, so every odd coefficient lands on one,
/// and most of them are +-1. A decode and re-encode sees each tie plus rounding noise and also
/// blurs chroma (upsampling, then downsampling). Measured on the bench's 12 MP photo, q90 to
/// q80, against that re-encode (luma SSIM to the source 0.9433, PSNR 37.99 dB): every tie away
/// from zero: 1.19x its bytes, SSIM 0.9447; every tie toward zero (or to even): 0.72x, SSIM
/// 0.9356; half and half: 1.00x, SSIM 0.9397; three in four of luma's and none of chroma's:
/// 1.04x, SSIM 0.9421, PSNR 38.11 dB. Chroma's ties cost bytes and no luma SSIM. Then against
/// sharp's outputs of the shared bench's watermark and QR tasks (its own decode and re-encode;
/// bytes, and luma SSIM to the source, as ours minus sharp's): three in four of luma's ties
/// 1.049x and 1.0505x, -0.0005 and -0.0000; eleven in sixteen 1.036x and 1.038x, -0.0008 and
/// -0.0004; five in eight 1.024x and 1.026x, -0.0012 and -0.0007. Eleven in sixteen is the
/// one that keeps both within 1.05x sharp's bytes and 0.001 of its SSIM.
struct Requantiser {
    /// `source / target` in 16.16.
    mult: [i32; 64],
    /// Largest magnitude read (beyond it the result clamps anyway; keeps the product in i32).
    max_in: [i32; 64],
    /// Rounding terms in 16.16: one half for ties away from zero, just under for toward.
    bias: [[i32; 64]; 4],
    lo: [i32; 64],
    hi: [i32; 64],
}

impl Requantiser {
    fn new(comp: usize, q1: &[u16; 64], q2: &[u16; 64]) -> Requantiser {
        let mult = std::array::from_fn(|k| {
            ((u64::from(q1[k]) << 16) + u64::from(q2[k]) / 2) as i32 / i32::from(q2[k])
        });
        let max_in = std::array::from_fn(|k| 2048 / i32::from(q1[k]) + 1);
        let bias = std::array::from_fn(|m| {
            // Each bit set with odds 1/2 + 1/2 x 1/2 x 3/4 = 11/16 (as drawn, 190 of the 256).
            let h = |salt: u64| hash(salt, m as u32, 0);
            let away = if comp == 0 { h(0) | (h(1) & (h(2) | h(3))) } else { 0 };
            std::array::from_fn(|k| 0x7FFF + ((away >> k) & 1) as i32)
        });
        let q0 = i32::from(q2[0]);
        let hi = std::array::from_fn(|k| if k == 0 { 1016 / q0 } else { 1023 });
        let lo = std::array::from_fn(|k| if k == 0 { -(1024 / q0) } else { -1023 });
        Requantiser { mult, max_in, bias, lo, hi }
    }

    /// Requantises `block`; `hash` picks its mask of ties.
    #[inline(always)]
    fn block(&self, block: &mut Block, hash: u64) {
        let bias = &self.bias[(hash >> 62) as usize];
        for k in 0..64 {
            let c = i32::from(block[k]);
            let sign = c >> 31;
            let a = ((c ^ sign) - sign).min(self.max_in[k]);
            let r = ((a * self.mult[k] + bias[k]) >> 16).min(self.hi[k].max(-self.lo[k]));
            // (max and min, not clamp: clamp's check that lo <= hi would keep the loop from
            // being vectorised.)
            block[k] = ((r ^ sign) - sign).max(self.lo[k]).min(self.hi[k]) as i16;
        }
    }
}

/// One row of blocks through [`requantise`], a block at a time while it is in cache: each
/// block requantised (with `scale`) or replaced (the `changed` ones, by column ascending), then
/// its symbols counted (with `count`: the counts, the component's table and where its DC
/// coefficients go).
struct RowPass<'a> {
    blocks: &'a mut [Block],
    by: u32,
    scale: Option<&'a Requantiser>,
    changed: &'a [(usize, Block)],
    count: Option<(&'a mut huffman::Counts, usize, &'a mut Vec<i16>)>,
}

impl RowPass<'_> {
    /// The pass, compiled for AVX2 where the CPU has it (every x86-64 CPU Lambda runs on):
    /// x86-64's baseline SSE2 has no 32-bit multiply, minimum or maximum, which the
    /// requantiser's loop is made of.
    #[allow(unsafe_code)]
    fn run(self) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked first).
            return unsafe { self.run_avx2() };
        }
        self.run_any()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(self) {
        self.run_any()
    }

    #[inline(always)]
    fn run_any(mut self) {
        let mut changed = self.changed.iter().peekable();
        for (bx, block) in self.blocks.iter_mut().enumerate() {
            if let Some((_, new)) = changed.next_if(|(x, _)| *x == bx) {
                *block = *new;
            } else if let Some(scale) = self.scale {
                scale.block(block, hash(2, self.by, bx as u32));
            }
            if let Some((counts, table, dc)) = self.count.as_mut() {
                counts.ac(*table, block);
                dc.push(block[0]);
            }
        }
    }
}

/// A fixed hash (splitmix64's finaliser) of a block position and a salt.
fn hash(salt: u64, by: u32, bx: u32) -> u64 {
    let mut z = salt << 56 ^ u64::from(by) << 28 ^ u64::from(bx);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dct_round_trips_and_matches_the_jpeg_definition() {
        let s: [f32; 64] = std::array::from_fn(|i| ((i * 37 % 255) as f32) - 128.0);
        let f = fdct(&s);
        // DC of the orthonormal JPEG DCT: 8 x the mean.
        let mean = s.iter().sum::<f32>() / 64.0;
        assert!((f[0] - 8.0 * mean).abs() < 1e-3, "{} vs {}", f[0], 8.0 * mean);
        // One AC term against the textbook formula F(u, v) = 1/4 C(u) C(v) sum ... .
        let (u, v) = (3usize, 5usize);
        let mut want = 0.0f64;
        for y in 0..8 {
            for x in 0..8 {
                want += f64::from(s[y * 8 + x])
                    * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                    * ((2 * y + 1) as f64 * v as f64 * std::f64::consts::PI / 16.0).cos();
            }
        }
        want *= 0.25;
        assert!((f64::from(f[v * 8 + u]) - want).abs() < 1e-2, "{} vs {want}", f[v * 8 + u]);
        let back = idct(&f);
        for (a, b) in back.iter().zip(&s) {
            assert!((a - b).abs() < 1e-3);
        }
    }

    #[test]
    fn requantising_rounds_splits_ties_and_clamps() {
        let (q1, q2) = ([3u16; 64], [6u16; 64]);
        let r = Requantiser::new(1, &q1, &q2); // chroma: every tie toward zero
        let mut b: Block = [0; 64];
        b[..6].copy_from_slice(&[100, -3, 3, 2000, 4, -5]);
        r.block(&mut b, 0);
        // 100*3/6 = 50; ties -1.5 and 1.5 -> -1, 1; 2000 is beyond any DCT (|c*q| <= 2048):
        // read as 683, so 341.
        assert_eq!(&b[..6], &[50, -1, 1, 341, 2, -2]);
        let r = Requantiser::new(1, &[6; 64], &[1; 64]);
        b[..2].copy_from_slice(&[200, 300]);
        r.block(&mut b, 0);
        // Clamped (DC 1016, AC 1023).
        assert_eq!(&b[..4], &[1016, 1023, 6, 1023]);
        // Luma: about eleven in sixteen ties away from zero over many blocks.
        let r = Requantiser::new(0, &q1, &q2);
        let mut away = 0;
        for i in 0..4000u32 {
            let mut b: Block = [1; 64];
            r.block(&mut b, hash(2, i / 64, i % 64));
            away += b.iter().filter(|&&v| v == 1).count();
        }
        let share = away as f64 / (4000.0 * 64.0);
        // (The four masks' 256 bits as drawn: 190 set, 74%.)
        assert!((share - 190.0 / 256.0).abs() < 0.01, "{share}");
        // Chroma: none.
        let r = Requantiser::new(2, &q1, &q2);
        let mut b: Block = [1; 64];
        r.block(&mut b, u64::MAX);
        assert_eq!(b, [0; 64]);
    }

    #[test]
    fn a_row_pass_gives_the_same_blocks_and_counts_for_every_cpu() {
        // The dispatching pass (AVX2 where the CPU has it) against the same code compiled for
        // the baseline, on rows of coefficients of every size, some blocks replaced.
        let (q1, q2) = (annex_k(90, true), annex_k(75, true));
        for comp in 0..2 {
            let scale = Requantiser::new(comp, &q1[comp], &q2[comp]);
            let row: Vec<Block> = (0..300u32)
                .map(|bx| {
                    std::array::from_fn(|k| {
                        let n = hash(7, bx, k as u32);
                        let v = if n % 5 < 2 { 0 } else { (n >> 8) as i16 % (2048 >> (k / 9)) };
                        if n.is_multiple_of(97) {
                            i16::MAX
                        } else {
                            v
                        }
                    })
                })
                .collect();
            let changed: Vec<(usize, Block)> = vec![(0, [3; 64]), (41, [-7; 64]), (299, [1; 64])];
            let pass = |dispatch: bool| {
                let (mut blocks, mut counts, mut dc) = (row.clone(), huffman::Counts::new(), Vec::new());
                let count = Some((&mut counts, huffman::table_of(comp), &mut dc));
                let pass =
                    RowPass { blocks: &mut blocks, by: 3, scale: Some(&scale), changed: &changed, count };
                if dispatch {
                    pass.run()
                } else {
                    pass.run_any()
                }
                let table = huffman::table_of(comp);
                (blocks, dc, counts.table(false, table).ok())
            };
            assert_eq!(pass(true), pass(false));
        }
    }

    /// A busy test picture (gradients, edges and noise: every kind of coefficient) as a 4:2:0
    /// JPEG of the pixel encoder.
    fn jpeg(width: u32, height: u32, quality: u8, seed: u64) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| {
            let n = hash(seed, y, x);
            let edge = if (x / 13 + y / 7) % 3 == 0 { 90 } else { 0 };
            image::Rgb([
                ((x * 255 / width.max(1)) as u64 + (n & 63) + edge) as u8,
                ((y * 3 + (n >> 8 & 31) as u32) % 256) as u8,
                (((x ^ y) & 0xff) as u64 + (n >> 16 & 15)) as u8,
            ])
        });
        let image = crate::Image::still(Pixels::Rgb(image), crate::InputFormat::Png);
        let out = OutputParams { quality: quality.into(), ..OutputParams::default() };
        crate::encode::encode(&image, OutputFormat::Jpeg, &out).unwrap().bytes
    }

    #[test]
    fn own_huffman_tables_write_libjpegs_bytes() {
        use crate::ops::Loaded;
        use crate::{Limits, Pipeline};
        let mut loaded = Loaded::default();
        let logo =
            image::RgbaImage::from_fn(40, 24, |x, y| image::Rgba([x as u8 * 6, 200, y as u8 * 9, 150]));
        loaded.overlays.insert("logo".into(), logo);
        let ops = [
            r#"[]"#,
            r##"[{"op": "watermark", "text": "imgfn ©", "size": 20, "color": "#ff0000", "gravity": "center"}]"##,
            r#"[{"op": "qr-overlay", "data": "q", "size": 90, "offset_x": 1, "offset_y": 3}]"#,
            r#"[{"op": "watermark", "image": "logo", "opacity": 0.5, "gravity": "top_left", "offset_x": 5}]"#,
        ];
        // Sizes with every kind of edge: whole MCUs, odd blocks (dummy blocks at the right, at
        // the bottom, both), one block, one MCU.
        let sizes = [
            (8, 8),
            (16, 16),
            (9, 23),
            (40, 33),
            (57, 64),
            (120, 97),
            (200, 150),
            (257, 255),
            (333, 250),
            (640, 479),
            (1001, 602),
        ];
        let mut taken = 0;
        for (i, &(w, h)) in sizes.iter().enumerate() {
            for (j, &(q_in, q_out)) in [(90, 80), (75, 75), (100, 100), (60, 95), (95, 5)].iter().enumerate()
            {
                let input = jpeg(w, h, q_in, (i * 8 + j) as u64);
                for ops in ops {
                    let json = format!(r#"{{"ops": {ops}, "output": {{"quality": {q_out}}}}}"#);
                    let p = Pipeline::new(serde_json::from_str(&json).unwrap(), Limits::default()).unwrap();
                    let overlays: Vec<&dyn Overlay> =
                        p.spec().ops.iter().map(|op| op.operation().as_overlay().unwrap()).collect();
                    let cx = Context { limits: p.limits(), assets: &loaded };
                    let out = &p.spec().output;
                    let ours = transcode(&input, (w, h), &overlays, &cx, out, true);
                    let libjpeg = transcode(&input, (w, h), &overlays, &cx, out, false);
                    match (ours, libjpeg) {
                        (Ok(a), Ok(b)) => {
                            assert!(a.bytes == b.bytes, "{w}x{h} q{q_in}->{q_out} {ops}: the bytes differ");
                            taken += 1;
                        }
                        (Err(a), Err(b)) => assert_eq!(a, b),
                        (a, b) => panic!("{w}x{h} {ops}: {:?} vs {:?}", a.err(), b.err()),
                    }
                }
            }
        }
        // Overlays on the smallest images cover more than a quarter of them and fall back.
        assert!(taken >= 120, "only {taken} transcodes ran");
    }

    #[test]
    fn the_source_level_is_the_encoders_quality() {
        for q in [1, 5, 20, 49, 50, 51, 75, 80, 90, 95, 99, 100] {
            let input = jpeg(64, 48, q, 7);
            assert_eq!(source_level(&input), Some(q), "quality {q}");
        }
        // Tables no libjpeg level makes (a camera's): the nearest level.
        let mut input = jpeg(64, 48, 80, 7);
        let dqt = input.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
        // The first table's first entries (after the marker, length and Pq/Tq byte), a little off.
        input[dqt + 5] += 1;
        input[dqt + 9] -= 1;
        assert_eq!(source_level(&input), Some(80));
        assert_eq!(source_level(b"not a jpeg"), None);
    }
}
