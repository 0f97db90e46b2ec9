//! Colour: embedded ICC profiles and CICP colour descriptions converted to sRGB with moxcms (a
//! profile that behaves as sRGB, or that cannot be used, leaves the pixels as they are), grey to
//! RGB, CMYK to RGB (through the embedded CMYK profile when there is a usable one, else naively).

use std::sync::Arc;

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use moxcms::{ColorProfile, Layout, TransformOptions};

use super::corrupt;
use crate::{Pixels, Result};

/// CMYK → sRGB through the embedded profile `icc` (the ICC convention: 0 is no ink) when it
/// is a CMYK profile moxcms can use, else [`cmyk_to_rgb`]. `inverted` for Adobe-marked files
/// (stored values are 255 - ink), as there.
pub(super) fn cmyk_profile_to_rgb(
    width: u32,
    height: u32,
    cmyk: &[u8],
    inverted: bool,
    icc: Option<&[u8]>,
) -> Result<RgbImage> {
    let transform = icc.and_then(|icc| {
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        if profile.color_space != moxcms::DataColorSpace::Cmyk {
            return None;
        }
        // moxcms takes 8-bit CMYK in the RGBA layout.
        profile
            .create_transform_8bit(
                Layout::Rgba,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .ok()
    });
    let Some(transform) = transform else {
        return cmyk_to_rgb(width, height, cmyk, inverted);
    };
    let mut out = Vec::new();
    out.try_reserve_exact(cmyk.len() / 4 * 3).map_err(|_| corrupt("out of memory"))?;
    // In chunks of rows' worth of pixels, through a small scratch buffer for the ink values.
    const CHUNK_PIXELS: usize = 64 * 1024;
    let mut ink = Vec::with_capacity(CHUNK_PIXELS * 4);
    let mut rgb = vec![0u8; CHUNK_PIXELS * 3];
    for part in cmyk.chunks(CHUNK_PIXELS * 4) {
        ink.clear();
        if inverted {
            ink.extend(part.iter().map(|v| 255 - v));
        } else {
            ink.extend_from_slice(part);
        }
        let n = part.len() / 4;
        ink.truncate(n * 4);
        let dst = &mut rgb[..n * 3];
        if transform.transform(&ink, dst).is_err() {
            return cmyk_to_rgb(width, height, cmyk, inverted);
        }
        out.extend_from_slice(dst);
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| corrupt("CMYK buffer size mismatch"))
}

/// Naive CMYK → RGB; `inverted` for Adobe-marked files (stored values are 255 - ink).
pub(super) fn cmyk_to_rgb(width: u32, height: u32, cmyk: &[u8], inverted: bool) -> Result<RgbImage> {
    let mut out = Vec::new();
    out.try_reserve_exact(cmyk.len() / 4 * 3).map_err(|_| corrupt("out of memory"))?;
    let mul = |a: u8, b: u8| ((u32::from(a) * u32::from(b) + 127) / 255) as u8;
    for px in cmyk.chunks_exact(4) {
        let [c, m, y, k] = [px[0], px[1], px[2], px[3]];
        if inverted {
            out.extend_from_slice(&[mul(c, k), mul(m, k), mul(y, k)]);
        } else {
            out.extend_from_slice(&[mul(255 - c, 255 - k), mul(255 - m, 255 - k), mul(255 - y, 255 - k)]);
        }
    }
    RgbImage::from_raw(width, height, out).ok_or_else(|| corrupt("CMYK buffer size mismatch"))
}

/// Brings any `image` buffer into the working format, converting to sRGB with `icc`.
pub(super) fn dynamic_to_pixels(img: DynamicImage, icc: Option<&[u8]>) -> Pixels {
    match img {
        DynamicImage::ImageLuma8(g) => gray_to_pixels(g, icc),
        DynamicImage::ImageLuma16(_) => gray_to_pixels(img.into_luma8(), icc),
        DynamicImage::ImageLumaA8(g) => gray_alpha_to_pixels(g, icc),
        DynamicImage::ImageLumaA16(_) => gray_alpha_to_pixels(img.into_luma_alpha8(), icc),
        DynamicImage::ImageRgb8(mut rgb) => {
            if let Some(icc) = icc {
                convert_in_place(rgb.as_mut(), icc, Layout::Rgb);
            }
            Pixels::Rgb(rgb)
        }
        DynamicImage::ImageRgba8(mut rgba) => {
            if let Some(icc) = icc {
                convert_in_place(rgba.as_mut(), icc, Layout::Rgba);
            }
            Pixels::Rgba(rgba)
        }
        other if other.color().has_alpha() => {
            dynamic_to_pixels(DynamicImage::ImageRgba8(other.into_rgba8()), icc)
        }
        other => dynamic_to_pixels(DynamicImage::ImageRgb8(other.into_rgb8()), icc),
    }
}

pub(super) fn gray_to_pixels(g: GrayImage, icc: Option<&[u8]>) -> Pixels {
    if let Some(t) = icc.and_then(|icc| srgb_transform(icc, Layout::Gray, Layout::Rgb)) {
        let mut out = RgbImage::new(g.width(), g.height());
        if t.transform(g.as_raw(), out.as_mut()).is_ok() {
            return Pixels::Rgb(out);
        }
    }
    Pixels::Rgb(DynamicImage::ImageLuma8(g).into_rgb8())
}

fn gray_alpha_to_pixels(g: GrayAlphaImage, icc: Option<&[u8]>) -> Pixels {
    if let Some(t) = icc.and_then(|icc| srgb_transform(icc, Layout::GrayAlpha, Layout::Rgba)) {
        let mut out = RgbaImage::new(g.width(), g.height());
        if t.transform(g.as_raw(), out.as_mut()).is_ok() {
            return Pixels::Rgba(out);
        }
    }
    Pixels::Rgba(DynamicImage::ImageLumaA8(g).into_rgba8())
}

type Transform = Arc<moxcms::Transform8BitExecutor>;

/// The source's profile, split for [`super::DecodeOptions::keep_icc`]: (the profile to convert
/// the pixels with, the profile they keep). Kept when asked and the profile is an RGB one that
/// moxcms can use and that does not behave as sRGB (an sRGB one has nothing to keep); the
/// pixels are then not converted. Otherwise converted as always.
pub(super) fn split_profile(icc: Option<&[u8]>, keep: bool) -> (Option<&[u8]>, Option<Arc<[u8]>>) {
    match icc {
        Some(p) if keep && srgb_transform(p, Layout::Rgb, Layout::Rgb).is_some() => {
            (None, Some(Arc::from(p)))
        }
        other => (other, None),
    }
}

/// A transform from the embedded profile to sRGB, or `None` when the profile cannot be parsed,
/// does not fit the layout, or already behaves as sRGB.
pub(super) fn srgb_transform(icc: &[u8], src: Layout, dst: Layout) -> Option<Transform> {
    profile_to_srgb(&ColorProfile::new_from_slice(icc).ok()?, src, dst)
}

/// A transform from `profile` to sRGB, or `None` when it does not fit the layout or already
/// behaves as sRGB.
fn profile_to_srgb(profile: &ColorProfile, src: Layout, dst: Layout) -> Option<Transform> {
    let srgb = ColorProfile::new_srgb();
    let transform = profile.create_transform_8bit(src, &srgb, dst, TransformOptions::default()).ok()?;
    if behaves_as_srgb(transform.as_ref(), src, dst) {
        None
    } else {
        Some(transform)
    }
}

/// Converts a grid of test colours; true when every output equals its input within 1.
fn behaves_as_srgb(t: &moxcms::Transform8BitExecutor, src: Layout, dst: Layout) -> bool {
    const LEVELS: [u8; 6] = [0, 51, 102, 153, 204, 255];
    let mut colours: Vec<[u8; 3]> = Vec::with_capacity(256);
    if matches!(src, Layout::Gray | Layout::GrayAlpha) {
        colours.extend((0..=255u8).step_by(5).map(|v| [v, v, v]));
    } else {
        for r in LEVELS {
            for g in LEVELS {
                for b in LEVELS {
                    colours.push([r, g, b]);
                }
            }
        }
    }
    let src_channels = src.channels();
    let dst_channels = dst.channels();
    let mut input = Vec::with_capacity(colours.len() * src_channels);
    for c in &colours {
        match src {
            Layout::Gray => input.push(c[0]),
            Layout::GrayAlpha => input.extend_from_slice(&[c[0], 255]),
            Layout::Rgba => input.extend_from_slice(&[c[0], c[1], c[2], 255]),
            _ => input.extend_from_slice(c),
        }
    }
    let mut output = vec![0u8; colours.len() * dst_channels];
    if t.transform(&input, &mut output).is_err() {
        return false;
    }
    colours
        .iter()
        .zip(output.chunks_exact(dst_channels))
        .all(|(c, o)| (0..3).all(|i| c[i].abs_diff(o[i]) <= 1))
}

/// Converts RGB or RGBA samples described by CICP codes (an AVIF's `nclx`, or its AV1 sequence
/// header: ITU-T H.273) to sRGB in place, as [`convert_in_place`] does for a profile. The
/// BT.709-family transfers (1, 6, 14, 15) and "unspecified" are read as sRGB's, as browsers show
/// them, and unspecified primaries as BT.709's, so a file tagged sRGB or BT.709 is left as it
/// is; other primaries (Display P3, BT.2020, ...) and transfers (linear, gamma 2.2 and 2.8, ...)
/// are converted. HDR transfers (PQ, HLG) are left as stored: there is no tone mapping here,
/// and mapping absolute PQ light into sRGB without one would only darken the picture.
pub(super) fn cicp_in_place(samples: &mut [u8], primaries: u32, transfer: u32, layout: Layout) {
    if let Some(t) = cicp_profile(primaries, transfer).and_then(|p| profile_to_srgb(&p, layout, layout)) {
        apply_rows(t.as_ref(), samples, layout.channels());
    }
}

/// The profile CICP `primaries` and `transfer` describe, read as [`cicp_in_place`] reads them;
/// `None` when they are sRGB's (or read as sRGB's), HDR, or codes moxcms does not know.
fn cicp_profile(primaries: u32, transfer: u32) -> Option<ColorProfile> {
    let transfer = match transfer {
        16 | 18 => return None,
        1 | 2 | 6 | 14 | 15 => 13,
        t => t,
    };
    let primaries = if primaries == 2 { 1 } else { primaries };
    if (primaries, transfer) == (1, 13) {
        return None;
    }
    let (p, t) = (u8::try_from(primaries).ok()?, u8::try_from(transfer).ok()?);
    Some(ColorProfile::new_from_cicp(moxcms::CicpProfile {
        color_primaries: p.try_into().ok()?,
        transfer_characteristics: t.try_into().ok()?,
        matrix_coefficients: moxcms::MatrixCoefficients::Identity,
        full_range: true,
    }))
}

/// For [`super::DecodeOptions::keep_icc`] on a source whose colour only CICP codes describe:
/// an ICC profile made from them (moxcms writes it), when [`cicp_in_place`] would convert.
pub(super) fn cicp_icc(primaries: u32, transfer: u32) -> Option<Arc<[u8]>> {
    let profile = cicp_profile(primaries, transfer)?;
    profile_to_srgb(&profile, Layout::Rgb, Layout::Rgb)?;
    profile.encode().ok().map(Arc::from)
}

/// Converts RGB or RGBA samples to sRGB in place (through a small scratch buffer, in row
/// chunks, so no second full-size image is allocated). Keeps the pixels if the profile is not
/// usable.
pub(super) fn convert_in_place(samples: &mut [u8], icc: &[u8], layout: Layout) {
    if let Some(t) = srgb_transform(icc, layout, layout) {
        apply_rows(t.as_ref(), samples, layout.channels());
    }
}

pub(super) fn apply_rows(t: &moxcms::Transform8BitExecutor, samples: &mut [u8], channels: usize) {
    const CHUNK_PIXELS: usize = 64 * 1024;
    let chunk = CHUNK_PIXELS * channels;
    let mut scratch = vec![0u8; chunk.min(samples.len())];
    for part in samples.chunks_mut(chunk) {
        let out = &mut scratch[..part.len()];
        if t.transform(part, out).is_err() {
            return;
        }
        part.copy_from_slice(out);
    }
}
