//! Where a `cover` crop goes when it is not anchored: the part with the most detail
//! (`entropy`) or the part that draws the eye (`attention`), after libvips' `vips_smartcrop`
//! (which sharp's `position: "entropy" | "attention"` runs).
//!
//! A cover crop is as tall as the image (or as wide): only one axis has freedom, so both
//! strategies score every position of the crop window along that axis and keep the best. They
//! look at a small copy of the image (the window at most [`ANALYSIS_WINDOW`] px, the image at
//! most [`ANALYSIS_SIDE`] px along the free axis), made from the pixels as decoded, after
//! shrink-on-load: a few hundred thousand pixels at most, whatever the input's size. Transparent
//! pixels are first composited over mid grey, so a transparent border is neither detail nor
//! colour. Only the first frame of an animation is looked at; every frame gets the same crop.
//!
//! - **entropy**: the window whose pixels have the highest Shannon entropy (the sum over R, G
//!   and B of `-Σ p log p` of each channel's 256-bin histogram). libvips approximates this by
//!   trimming the less interesting end in eight steps; here every position is scored (sliding
//!   histograms), so the true maximum is found. When several positions tie (a subject on a
//!   flat background fits whole in many of them; within a tenth of the spread of the scores, so
//!   that grain does not break the tie), the ones whose central half has the most entropy are kept,
//!   and the middle of the longest run of those is taken: the subject sits near the middle of
//!   the crop, as far as the image's edges allow.
//! - **attention**: libvips' saliency per pixel, in CIE L\*a\*b\* (D65): Sobel edges of L\*
//!   (`|Gx| + |Gy|`), plus 255 where the colour is skin-like (`3 <= a* <= 22`, `4 <= b* <= 31`,
//!   `L* >= 15`), plus 255 where it is saturated (chroma `C*ab > 60`). libvips blurs that map
//!   with a Gaussian as wide as a sixth of the crop and centres the crop on the maximum; here
//!   the saliency is summed across the fixed axis, and each feasible window is scored by its
//!   saliency weighted by a Gaussian (sigma a quarter of the window) around its centre: the
//!   window keeps as much of what is salient as it can, centred on it when it fits.

use crate::ops::resize::{resize_pixels, Filter};
use crate::{Pixels, Result};

/// The crop window is analysed at most this many px on its longer side.
pub const ANALYSIS_WINDOW: f64 = 256.0;
/// The image is analysed at most this many px on its longer side.
pub const ANALYSIS_SIDE: f64 = 1024.0;

/// Entropy scores within this fraction of the range of scores of the best count as tied.
const ENTROPY_TIE: f64 = 0.1;

/// How a smart crop scores the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Entropy,
    Attention,
}

/// The centre, in `pixels`' coordinates, of the `window` (width, height in px, each at most the
/// image's) that `strategy` picks. Along an axis with no freedom this is the image's centre.
pub fn centre(pixels: &Pixels, window: (f64, f64), strategy: Strategy) -> Result<(f64, f64)> {
    let (w, h) = pixels.dimensions();
    let (wf, hf) = (f64::from(w), f64::from(h));
    let middle = (wf / 2.0, hf / 2.0);
    // The free axis: where the window is at least half a pixel shorter than the image.
    let horizontal = window.0 <= wf - 0.5;
    if !horizontal && window.1 > hf - 0.5 {
        return Ok(middle);
    }
    let scale = (ANALYSIS_WINDOW / window.0.max(window.1)).min(ANALYSIS_SIDE / wf.max(hf)).min(1.0);
    if !(scale.is_finite() && scale > 0.0) || w == 0 || h == 0 {
        return Ok(middle);
    }
    let aw = ((wf * scale).round() as u32).clamp(1, w);
    let ah = ((hf * scale).round() as u32).clamp(1, h);
    let small;
    let analysed = if (aw, ah) == (w, h) {
        pixels
    } else {
        small = resize_pixels(pixels, aw, ah, Filter::Bilinear)?;
        &small
    };
    let grid = Grid::of(analysed);
    // Along the free axis: its length, the window's length, both in analysis px.
    let (sx, sy) = (f64::from(aw) / wf, f64::from(ah) / hf);
    let (len, win, s) = if horizontal {
        (aw as usize, (window.0 * sx).round() as usize, sx)
    } else {
        (ah as usize, (window.1 * sy).round() as usize, sy)
    };
    let win = win.clamp(1, len);
    if win >= len {
        return Ok(middle);
    }
    let offset = match strategy {
        Strategy::Entropy => entropy_offset(&grid, horizontal, win),
        Strategy::Attention => attention_offset(&grid, horizontal, win),
    };
    // The window's centre, back in source pixels.
    let c = (offset as f64 + win as f64 / 2.0) / s;
    Ok(if horizontal { (c, middle.1) } else { (middle.0, c) })
}

/// The analysis pixels: opaque RGB (alpha composited over mid grey), row-major.
struct Grid {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Grid {
    fn of(pixels: &Pixels) -> Grid {
        let (w, h) = pixels.dimensions();
        let rgb = match pixels {
            Pixels::Rgb(img) => img.as_raw().chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect(),
            Pixels::Rgba(img) => img
                .as_raw()
                .chunks_exact(4)
                .map(|p| {
                    let a = u32::from(p[3]);
                    let over = |c: u8| ((u32::from(c) * a + 128 * (255 - a) + 127) / 255) as u8;
                    [over(p[0]), over(p[1]), over(p[2])]
                })
                .collect(),
        };
        Grid { width: w as usize, height: h as usize, rgb }
    }

    /// The pixels of line `i` across the free axis (a column when it is horizontal).
    fn line(&self, horizontal: bool, i: usize) -> impl Iterator<Item = &[u8; 3]> + '_ {
        let (w, h) = (self.width, self.height);
        let (start, step, count) = if horizontal { (i, w, h) } else { (i * w, 1, w) };
        (0..count).filter_map(move |k| self.rgb.get(start + k * step))
    }
}

/// Which of `scores` are within `tolerance` of the best of those `among` allows.
fn near_best(scores: &[f64], tolerance: f64, among: &[bool]) -> Vec<bool> {
    let best =
        scores.iter().zip(among).filter(|(_, &ok)| ok).map(|(&s, _)| s).fold(f64::NEG_INFINITY, f64::max);
    scores.iter().zip(among).map(|(&s, &ok)| ok && s >= best - tolerance).collect()
}

/// The spread of the `scores` that `among` allows (0 when fewer than two).
fn spread(scores: &[f64], among: &[bool]) -> f64 {
    let (lo, hi) = scores
        .iter()
        .zip(among)
        .filter(|(_, &ok)| ok)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (&s, _)| (lo.min(s), hi.max(s)));
    if hi > lo {
        hi - lo
    } else {
        0.0
    }
}

/// The index of the middle of the longest run of `true` (the first run of that length; 0 when
/// there is none).
fn middle_of_longest_run(mask: &[bool]) -> usize {
    let (mut run_start, mut longest) = (0usize, (0usize, 0usize));
    for (i, &top) in mask.iter().enumerate() {
        if !top {
            run_start = i + 1;
        } else if i + 1 - run_start > longest.1 {
            longest = (run_start, i + 1 - run_start);
        }
    }
    longest.0 + longest.1.saturating_sub(1) / 2
}

/// The entropy of every window of `win` lines along the free axis, offset by `skip` lines from
/// each position `0..=len - total` (a sliding histogram per channel).
fn window_entropies(grid: &Grid, horizontal: bool, total: usize, skip: usize, win: usize) -> Vec<f64> {
    let len = if horizontal { grid.width } else { grid.height };
    let mut counts = vec![[0u32; 256]; 3];
    let add = |counts: &mut Vec<[u32; 256]>, line: usize, up: bool| {
        for px in grid.line(horizontal, line) {
            for (c, &v) in px.iter().enumerate() {
                let slot = &mut counts[c][usize::from(v)];
                *slot = if up { *slot + 1 } else { slot.saturating_sub(1) };
            }
        }
    };
    for line in skip..skip + win {
        add(&mut counts, line, true);
    }
    let n = (win * if horizontal { grid.height } else { grid.width }) as f64;
    let entropy = |counts: &Vec<[u32; 256]>| -> f64 {
        counts
            .iter()
            .flat_map(|hist| hist.iter())
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = f64::from(c) / n;
                -p * p.ln()
            })
            .sum()
    };
    let mut scores = Vec::with_capacity(len - total + 1);
    scores.push(entropy(&counts));
    for offset in 1..=len - total {
        add(&mut counts, skip + offset - 1, false);
        add(&mut counts, skip + offset + win - 1, true);
        scores.push(entropy(&counts));
    }
    scores
}

/// The offset (first line) of the `win`-line window with the highest entropy. Among windows
/// that tie, those whose central half has the highest entropy (the detail in their middle),
/// and of those the middle of the longest run.
fn entropy_offset(grid: &Grid, horizontal: bool, win: usize) -> usize {
    let scores = window_entropies(grid, horizontal, win, 0, win);
    let all = vec![true; scores.len()];
    // Grain makes positions that hold the same subject score a little differently: positions
    // within a tenth of the spread of scores of the best one count as tied.
    let tied = near_best(&scores, spread(&scores, &all) * ENTROPY_TIE, &all);
    let half = win / 2;
    if half == 0 {
        return middle_of_longest_run(&tied);
    }
    let inner = window_entropies(grid, horizontal, win, win / 4, half);
    let centred = near_best(&inner, spread(&inner, &tied) * ENTROPY_TIE, &tied);
    middle_of_longest_run(&centred)
}

/// sRGB (0..=255) to linear light, per channel value.
fn linear_table() -> [f32; 256] {
    let mut t = [0f32; 256];
    for (i, v) in t.iter_mut().enumerate() {
        let c = i as f32 / 255.0;
        *v = if c <= 0.040_45 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
    }
    t
}

/// CIE L*a*b* (D65 white) of an sRGB colour.
fn lab(px: &[u8; 3], linear: &[f32; 256]) -> (f32, f32, f32) {
    let [r, g, b] = px.map(|c| linear[usize::from(c)]);
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47;
    let y = 0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b;
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83;
    let f = |t: f32| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz))
}

/// libvips' attention map: Sobel edges of L*, plus 255 for skin tones, plus 255 for saturated
/// colour; row-major.
fn saliency(grid: &Grid) -> Vec<f32> {
    let linear = linear_table();
    let (w, h) = (grid.width, grid.height);
    let labs: Vec<(f32, f32, f32)> = grid.rgb.iter().map(|p| lab(p, &linear)).collect();
    let l_at = |x: isize, y: isize| {
        let x = x.clamp(0, w as isize - 1) as usize;
        let y = y.clamp(0, h as isize - 1) as usize;
        labs.get(y * w + x).map_or(0.0, |p| p.0)
    };
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h as isize {
        for x in 0..w as isize {
            let gx = (l_at(x + 1, y - 1) + 2.0 * l_at(x + 1, y) + l_at(x + 1, y + 1))
                - (l_at(x - 1, y - 1) + 2.0 * l_at(x - 1, y) + l_at(x - 1, y + 1));
            let gy = (l_at(x - 1, y + 1) + 2.0 * l_at(x, y + 1) + l_at(x + 1, y + 1))
                - (l_at(x - 1, y - 1) + 2.0 * l_at(x, y - 1) + l_at(x + 1, y - 1));
            let (l, a, b) = labs.get(y as usize * w + x as usize).copied().unwrap_or_default();
            let skin = (3.0..=22.0).contains(&a) && (4.0..=31.0).contains(&b) && l >= 15.0;
            let saturated = a.hypot(b) > 60.0;
            let score =
                gx.abs() + gy.abs() + if skin { 255.0 } else { 0.0 } + if saturated { 255.0 } else { 0.0 };
            out.push(score);
        }
    }
    out
}

/// The offset of the `win`-line window that keeps the most saliency, weighted towards its centre.
fn attention_offset(grid: &Grid, horizontal: bool, win: usize) -> usize {
    let map = saliency(grid);
    let (w, h) = (grid.width, grid.height);
    let len = if horizontal { w } else { h };
    // Saliency of each line across the free axis.
    let mut profile = vec![0f64; len];
    for (i, s) in map.iter().enumerate() {
        let line = if horizontal { i % w } else { i / w };
        if let Some(p) = profile.get_mut(line) {
            *p += f64::from(*s);
        }
    }
    let sigma = (win as f64 / 4.0).max(0.5);
    let kernel: Vec<f64> = (0..win)
        .map(|k| {
            let d = k as f64 + 0.5 - win as f64 / 2.0;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let scores: Vec<f64> = (0..=len - win)
        .map(|offset| profile[offset..offset + win].iter().zip(&kernel).map(|(p, k)| p * k).sum())
        .collect();
    let best = scores.iter().copied().fold(0.0f64, f64::max);
    middle_of_longest_run(&near_best(&scores, best * 1e-9, &vec![true; scores.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn lab_matches_reference_values() {
        let t = linear_table();
        let close = |a: (f32, f32, f32), b: (f32, f32, f32)| {
            (a.0 - b.0).abs() < 0.1 && (a.1 - b.1).abs() < 0.2 && (a.2 - b.2).abs() < 0.2
        };
        // Reference values from the CIE formulas (e.g. colorjs.io / Bruce Lindbloom, D65).
        assert!(close(lab(&[255, 255, 255], &t), (100.0, 0.0, 0.0)));
        assert!(close(lab(&[0, 0, 0], &t), (0.0, 0.0, 0.0)));
        assert!(close(lab(&[255, 0, 0], &t), (53.24, 80.09, 67.20)), "{:?}", lab(&[255, 0, 0], &t));
        assert!(close(lab(&[0, 0, 255], &t), (32.30, 79.19, -107.86)), "{:?}", lab(&[0, 0, 255], &t));
        // A typical skin tone lands in libvips' skin box.
        let (l, a, b) = lab(&[224, 172, 140], &t);
        assert!(l >= 15.0 && (3.0..=22.0).contains(&a) && (4.0..=31.0).contains(&b), "{l} {a} {b}");
    }

    #[test]
    fn ties_go_to_the_middle_of_the_longest_run() {
        let best = |s: &[f64]| middle_of_longest_run(&near_best(s, 0.0, &vec![true; s.len()]));
        assert_eq!(best(&[1.0, 3.0, 3.0, 3.0, 2.0, 3.0]), 2);
        assert_eq!(best(&[5.0]), 0);
        assert_eq!(best(&[1.0, 2.0, 2.0]), 1);
        assert_eq!(best(&[3.0, 1.0, 3.0, 3.0, 3.0, 3.0]), 3);
        // Only the allowed positions count.
        assert_eq!(
            middle_of_longest_run(&near_best(&[9.0, 1.0, 2.0, 2.0], 0.0, &[false, true, true, true])),
            2
        );
        assert_eq!(middle_of_longest_run(&[false, false]), 0);
    }

    #[test]
    fn no_freedom_gives_the_middle() {
        let px = Pixels::Rgb(RgbImage::from_pixel(40, 30, Rgb([9, 9, 9])));
        for s in [Strategy::Entropy, Strategy::Attention] {
            assert_eq!(centre(&px, (40.0, 30.0), s).ok(), Some((20.0, 15.0)));
        }
        let one = Pixels::Rgb(RgbImage::new(1, 1));
        assert_eq!(centre(&one, (1.0, 1.0), Strategy::Attention).ok(), Some((0.5, 0.5)));
    }
}
