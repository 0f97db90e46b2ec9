//! Shared test helpers: deterministic fixtures, golden-image comparison, independent decoding.
#![allow(dead_code, clippy::unwrap_used, clippy::needless_range_loop)]

use std::path::PathBuf;

use image::{Rgb, RgbImage, Rgba, RgbaImage};

/// A deterministic photo-like RGB image: smooth gradients, hard-edged shapes and fine texture,
/// asymmetric so that flips and rotations are visible.
pub fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width.max(1) as f32;
        let fy = y as f32 / height.max(1) as f32;
        let mut r = 40.0 + 180.0 * fx;
        let mut g = 60.0 + 150.0 * fy;
        let mut b = 120.0 + 80.0 * ((fx * 9.0).sin() * (fy * 7.0).cos());
        // A dark disc in the top-left quadrant and a bright bar on the right.
        let (dx, dy) = (fx - 0.28, fy - 0.3);
        if dx * dx + dy * dy < 0.02 {
            r *= 0.3;
            g *= 0.3;
            b *= 0.4;
        }
        if fx > 0.78 && fx < 0.86 && fy > 0.15 && fy < 0.7 {
            r = 245.0;
            g = 230.0;
            b = 60.0;
        }
        // Deterministic grain.
        let n = ((x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663)) % 17) as f32 - 8.0;
        let c = |v: f32| (v + n).clamp(0.0, 255.0) as u8;
        Rgb([c(r), c(g), c(b)])
    })
}

pub fn photo_rgba(width: u32, height: u32) -> RgbaImage {
    image::DynamicImage::ImageRgb8(photo(width, height)).into_rgba8()
}

/// Encodes an RGB image as JPEG (quality 92) with the independent encoder in `image`.
pub fn jpeg_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(img).unwrap();
    out
}

pub fn png_bytes(img: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// Decodes any output with the `image` crate (zune-jpeg, png, image-webp, gif): a decoder
/// independent of the one imgfn decodes with.
pub fn decode_independent(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).expect("output decodes").into_rgba8()
}

fn test_dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(sub)
}

/// Compares `actual` against `tests/golden/<name>.png` on decoded pixels: every channel of
/// every pixel must be within `tolerance`. `REGENERATE=1` (re)writes the golden file, and only
/// then: a missing golden image fails the test. On failure a diff image (red where a pixel
/// differs) and the actual image go to `tests/diff/`.
pub fn assert_golden(name: &str, actual: &RgbaImage, tolerance: u8) {
    let path = test_dir("golden").join(format!("{name}.png"));
    if std::env::var_os("REGENERATE").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        actual.save(&path).unwrap();
        eprintln!("wrote golden image {}", path.display());
        return;
    }
    let expected = image::open(&path)
        .unwrap_or_else(|e| {
            panic!("golden image {} missing or unreadable ({e}); run with REGENERATE=1", path.display())
        })
        .into_rgba8();
    assert_eq!(expected.dimensions(), actual.dimensions(), "{name}: dimensions differ from golden image");
    let mut bad = 0u64;
    let mut worst = 0u8;
    let diff = RgbaImage::from_fn(actual.width(), actual.height(), |x, y| {
        let (a, e) = (actual.get_pixel(x, y), expected.get_pixel(x, y));
        // Fully transparent pixels compare equal whatever their colour.
        let d = if a[3] == 0 && e[3] == 0 { 0 } else { (0..4).map(|c| a[c].abs_diff(e[c])).max().unwrap() };
        worst = worst.max(d);
        if d > tolerance {
            bad += 1;
            Rgba([255, 0, 0, 255])
        } else {
            let l = (u16::from(e[0]) + u16::from(e[1]) + u16::from(e[2])) / 12;
            Rgba([l as u8, l as u8, l as u8, 255])
        }
    });
    if bad > 0 {
        let dir = test_dir("diff");
        std::fs::create_dir_all(&dir).unwrap();
        diff.save(dir.join(format!("{name}.diff.png"))).unwrap();
        actual.save(dir.join(format!("{name}.actual.png"))).unwrap();
        panic!("{name}: {bad} pixels differ by more than {tolerance} (worst {worst}); see {}", dir.display());
    }
}

/// The largest difference of any colour channel (where alpha is at least `min_alpha` in the
/// reference) and of alpha, and the mean colour difference.
pub fn max_diff(a: &RgbaImage, b: &RgbaImage, min_alpha: u8) -> (u8, u8, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut colour, mut alpha, mut sum, mut n, mut at) = (0u8, 0u8, 0u64, 0u64, (0, 0));
    for ((x, y, p), q) in a.enumerate_pixels().zip(b.pixels()) {
        alpha = alpha.max(p[3].abs_diff(q[3]));
        if q[3] >= min_alpha {
            for c in 0..3 {
                let d = p[c].abs_diff(q[c]);
                if d > colour {
                    (colour, at) = (d, (x, y));
                }
                sum += u64::from(d);
                n += 1;
            }
        }
    }
    if colour > 0 {
        eprintln!(
            "largest colour difference {colour} at {at:?}: {:?} and {:?}",
            a.get_pixel(at.0, at.1),
            b.get_pixel(at.0, at.1)
        );
    }
    (colour, alpha, sum as f64 / n.max(1) as f64)
}

/// `img` converted from the ICC profile `icc` to sRGB by moxcms (the expected decode of a file
/// whose reference decoder keeps the stored values).
pub fn icc_to_srgb(img: &RgbaImage, icc: &[u8]) -> RgbaImage {
    let profile = moxcms::ColorProfile::new_from_slice(icc).unwrap();
    let t = profile
        .create_transform_8bit(
            moxcms::Layout::Rgba,
            &moxcms::ColorProfile::new_srgb(),
            moxcms::Layout::Rgba,
            moxcms::TransformOptions::default(),
        )
        .unwrap();
    let mut out = RgbaImage::new(img.width(), img.height());
    t.transform(img.as_raw(), out.as_mut()).unwrap();
    out
}

/// `file` (an AVIF or HEIC fixture) with its first `ispe` (image size) property replaced by
/// `width` x `height`: for a file of one coded item, the AV1 sequence header or HEVC parameter
/// set still gives the real size.
pub fn with_ispe(mut file: Vec<u8>, width: u32, height: u32) -> Vec<u8> {
    let at = file.windows(4).position(|w| w == b"ispe").unwrap();
    file[at + 8..at + 12].copy_from_slice(&width.to_be_bytes());
    file[at + 12..at + 16].copy_from_slice(&height.to_be_bytes());
    file
}

/// Mean absolute difference per channel between two same-sized images (alpha included).
pub fn mean_abs_diff(a: &RgbaImage, b: &RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

/// The outside tool `name`: `$<env_var>`, else `name` on `PATH`; else a panic that says how to
/// get it. For tests marked `#[ignore = "needs ..."]`: they run only when asked (`cargo test --
/// --ignored`, as CI does), and then a missing tool is a failure, never a silent pass.
pub fn outside_tool(env_var: &str, name: &str, how: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed (or set {env_var}): {how}"))
}

/// A fresh scratch folder for test files under the target directory (never the source tree).
pub fn scratch(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("test-scratch").join(format!("image-ops-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// sRGB's transfer function (IEC 61966-2-1), on 0..=1: encoded to linear light.
pub fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// Its inverse, linear light (clamped to 0..=1) to encoded.
pub fn linear_to_srgb(l: f64) -> f64 {
    let l = l.clamp(0.0, 1.0);
    if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    }
}

pub type M3 = [[f64; 3]; 3];

fn mul(a: &M3, b: &M3) -> M3 {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn inv(m: &M3) -> M3 {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, d) = ((i + 1) % 3, (i + 2) % 3);
            r[i][j] = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) / det;
        }
    }
    r
}

/// RGB -> XYZ from chromaticities (the textbook derivation).
pub fn rgb_to_xyz(prim: [(f64, f64); 3], white: (f64, f64)) -> M3 {
    let xyz = |(x, y): (f64, f64)| [x / y, 1.0, (1.0 - x - y) / y];
    let cols = prim.map(xyz);
    let p = [
        [cols[0][0], cols[1][0], cols[2][0]],
        [cols[0][1], cols[1][1], cols[2][1]],
        [cols[0][2], cols[1][2], cols[2][2]],
    ];
    let w = xyz(white);
    let pi = inv(&p);
    let s: Vec<f64> = (0..3).map(|i| (0..3).map(|k| pi[i][k] * w[k]).sum()).collect();
    let mut m = p;
    for row in &mut m {
        for (j, v) in row.iter_mut().enumerate() {
            *v *= s[j];
        }
    }
    m
}

/// Display P3's and BT.2020's primaries (CIE xy of red, green, blue; both D65).
pub const P3_PRIMARIES: [(f64, f64); 3] = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)];
pub const BT2020_PRIMARIES: [(f64, f64); 3] = [(0.708, 0.292), (0.170, 0.797), (0.131, 0.046)];

/// A pixel with the sRGB transfer curve in `primaries` (D65) converted to sRGB, clipped:
/// the textbook derivation, computed independently of moxcms.
pub fn primaries_to_srgb(p: [u8; 3], primaries: [(f64, f64); 3]) -> [u8; 3] {
    let d65 = (0.3127, 0.3290);
    let from = rgb_to_xyz(primaries, d65);
    let srgb = rgb_to_xyz([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)], d65);
    let m = mul(&inv(&srgb), &from);
    let lin = p.map(|v| srgb_to_linear(f64::from(v) / 255.0));
    let mut out = [0u8; 3];
    for i in 0..3 {
        let l: f64 = (0..3).map(|k| m[i][k] * lin[k]).sum();
        out[i] = (linear_to_srgb(l) * 255.0).round() as u8;
    }
    out
}
