//! Guarded decoding of untrusted bytes into the working [`Image`].
//!
//! # Guard order
//!
//! Nothing is decoded, and no buffer sized by the input's header is allocated, before these
//! checks pass, in this order:
//!
//! 1. **Byte length** against [`Limits::max_input_bytes`] ([`Error::InputTooLarge`]).
//! 2. **Magic bytes** against an allowlist: JPEG, PNG, GIF, WebP ([`sniff`]). Everything else is
//!    [`Error::UnsupportedFormat`]; AVIF/HEIC, SVG/XML, TIFF, BMP and PDF are named in the message.
//! 3. **Header** ([`probe`]): dimensions and frame count are read by hand-written, bounded parsers
//!    (JPEG: marker walk to the first SOFn; PNG: IHDR; GIF: logical screen and every image
//!    descriptor, counting frames by skipping data sub-blocks without LZW decoding, stopping once
//!    over the limit; WebP: VP8/VP8L/VP8X canvas, counting ANMF chunks). A zero, inconsistent or
//!    cut-short header is [`Error::CorruptImage`]; a side over `max_side`, more than `max_pixels`
//!    per frame, more than `max_frames`, or more than `max_total_pixels` over all frames is
//!    [`Error::TooManyPixels`].
//! 4. **Decoder limits**: PNG, GIF and WebP are decoded by the `image` crate with its own
//!    [`image::Limits`] set (maximum width/height = `max_side`, and an allocation budget) as a
//!    second guard. PNG metadata (compressed text, ICC, Exif) gets a fixed 8 MiB budget, so an
//!    `iCCP` bomb stops there; compressed text chunks are never inflated. An `image` limit error is
//!    [`Error::TooManyPixels`]; any other decoder error is [`Error::CorruptImage`].
//!
//! JPEG is decoded by libjpeg-turbo (mozjpeg). Its fatal errors unwind; every call runs inside
//! `catch_unwind` and becomes [`Error::CorruptImage`]. libjpeg only *warns* on premature end of
//! data (and pads the image with grey), so a JPEG whose entropy-coded data does not end with an
//! EOI marker is rejected as truncated before decoding, and the decode also fails if libjpeg
//! asked for bytes past the end of the input. Other libjpeg warnings (e.g. extraneous bytes
//! between markers) are tolerated, as libjpeg does.
//!
//! # Orientation
//!
//! The EXIF orientation (all eight values) is applied to the pixels, so the result is upright:
//! JPEG from the first APP1 `Exif\0\0` segment, PNG from `eXIf`, WebP from its `EXIF` chunk.
//! GIF has no orientation. [`Probe`] reports the stored (not upright) size.
//!
//! # Colour: ICC profiles and CMYK
//!
//! Outputs are always sRGB and carry no profile. An embedded ICC profile (JPEG APP2
//! `ICC_PROFILE` segments reassembled by sequence number, PNG `iCCP`, WebP `ICCP`, GIF
//! `ICCRGBG1`) is parsed with moxcms and, unless it behaves as sRGB (checked by converting a
//! grid of test colours), the pixels are converted to sRGB with relative colorimetric intent:
//! RGB and RGBA pixels with an RGB profile, grey pixels with a grey profile. A profile that
//! cannot be parsed, does not match the pixels' colour model, or for which moxcms cannot build
//! a transform is ignored and the pixels are kept as they are: decoding never fails because
//! of a profile.
//!
//! CMYK and YCCK JPEGs are converted to RGB with the naive formula
//! `R = (1 - C)(1 - K)` (likewise G from M, B from Y). When an Adobe APP14 marker is present the
//! stored samples are inverted (the Photoshop convention, also written by Pillow and
//! ImageMagick), so `R = C'·K' / 255`; without it `R = (255 - C)(255 - K) / 255`. Embedded CMYK
//! ICC profiles are not applied.
//!
//! # Shrink-on-load
//!
//! [`DecodeOptions::shrink`] is asked, with the upright size (width and height swapped for EXIF
//! orientations 5–8), which scale factor the first operation will apply. A JPEG is then decoded
//! at the smallest DCT scale n/8, n ∈ {1, 2, 4, 8}, whose output — `ceil(w·n/8)` ×
//! `ceil(h·n/8)`, as libjpeg computes it — is still at least `ceil(w·factor)` ×
//! `ceil(h·factor)`. A factor that is not in (0, 1) decodes at full size. Other formats always
//! decode at full size.
//!
//! # Pixel formats
//!
//! 16-bit samples are reduced to 8 bits; grey, grey+alpha, palette and tRNS transparency become
//! [`Pixels::Rgb`] or [`Pixels::Rgba`] without losing alpha. Sources without alpha, and
//! animations whose every pixel is opaque, become [`Pixels::Rgb`]. Animated GIF and WebP decode
//! to full-canvas frames with their delays; APNG decodes as its default (still) image.

use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use image::metadata::Orientation;
use image::{
    AnimationDecoder, DynamicImage, GrayAlphaImage, GrayImage, ImageDecoder, ImageError, RgbImage, RgbaImage,
};
use moxcms::{ColorProfile, Layout, TransformOptions};

use crate::{Error, Frame, Image, InputFormat, Limits, Pixels, Result};

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

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Budget for the PNG decoder's own allocations (metadata chunks, line buffers).
const PNG_METADATA_BUDGET: u64 = 8 * 1024 * 1024;

fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptImage(message.into())
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::UnsupportedFormat(message.into())
}

/// Identifies the format from magic bytes (allowlist: JPEG, PNG, WebP, GIF).
pub fn sniff(bytes: &[u8]) -> Result<InputFormat> {
    if bytes.is_empty() {
        return Err(unsupported("empty input"));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(InputFormat::Jpeg);
    }
    if bytes.starts_with(&PNG_SIGNATURE) {
        return Ok(InputFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(InputFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(InputFormat::Webp);
    }
    Err(unsupported(name_unsupported(bytes)))
}

/// A message naming a known unsupported format, or "unrecognised".
fn name_unsupported(bytes: &[u8]) -> String {
    if let Some(kind) = iso_bmff_kind(bytes) {
        return format!("{kind} is not supported (accepted: JPEG, PNG, GIF, WebP)");
    }
    if looks_like_xml(bytes) {
        return "SVG/XML is not supported (accepted: JPEG, PNG, GIF, WebP)".into();
    }
    let named = if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("TIFF")
    } else if bytes.starts_with(b"BM") {
        Some("BMP")
    } else if bytes.starts_with(b"%PDF-") {
        Some("PDF")
    } else if bytes.starts_with(b"RIFF") {
        Some("RIFF container (not WebP)")
    } else {
        None
    };
    match named {
        Some(name) => format!("{name} is not supported (accepted: JPEG, PNG, GIF, WebP)"),
        None => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("unrecognised format (first bytes {})", head.join(" "))
        }
    }
}

/// AVIF / HEIC detection from an ISO-BMFF `ftyp` box (major and compatible brands).
fn iso_bmff_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = size.clamp(12, 256).min(bytes.len());
    let mut brands = vec![bytes.get(8..12)?];
    // Compatible brands follow the major brand and its 4-byte minor version.
    let mut pos = 16;
    while pos + 4 <= end {
        brands.push(&bytes[pos..pos + 4]);
        pos += 4;
    }
    if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
        return Some("AVIF");
    }
    let heif: [&[u8]; 8] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"];
    if brands.iter().any(|b| heif.contains(b)) {
        return Some("HEIC/HEIF");
    }
    None
}

/// SVG or other XML: optional UTF-8 BOM and whitespace, then `<?xml`, `<svg` or `<!DOCTYPE svg`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let start = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
    let head: Vec<u8> = rest[start..].iter().take(14).map(u8::to_ascii_lowercase).collect();
    head.starts_with(b"<?xml") || head.starts_with(b"<svg") || head.starts_with(b"<!doctype svg")
}

/// Reads format, dimensions and frame count from the header and checks them against `limits`.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    let len = bytes.len() as u64;
    if len > limits.max_input_bytes {
        return Err(Error::InputTooLarge { bytes: len, limit: limits.max_input_bytes });
    }
    let format = sniff(bytes)?;
    let (width, height, frames) = match format {
        InputFormat::Jpeg => {
            let info = scan_jpeg(bytes, true)?;
            (info.width, info.height, 1)
        }
        InputFormat::Png => png_header(bytes)?,
        InputFormat::Gif => gif_header(bytes, limits)?,
        InputFormat::Webp => webp_header(bytes, limits)?,
    };
    if width == 0 || height == 0 {
        return Err(corrupt(format!("header gives a zero dimension ({width}x{height})")));
    }
    if frames == 0 {
        return Err(corrupt("no image data"));
    }
    check_size(width, height, frames, limits)?;
    Ok(Probe { format, width, height, frames })
}

fn check_size(width: u32, height: u32, frames: u32, limits: &Limits) -> Result<()> {
    if width > limits.max_side || height > limits.max_side {
        return Err(Error::TooManyPixels(format!(
            "{width}x{height} has a side over the limit of {}",
            limits.max_side
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::TooManyPixels(format!(
            "{width}x{height} is {pixels} pixels, over the limit of {}",
            limits.max_pixels
        )));
    }
    if frames > limits.max_frames {
        return Err(Error::TooManyPixels(format!("more than {} frames (the limit)", limits.max_frames)));
    }
    let total = pixels.saturating_mul(u64::from(frames));
    if total > limits.max_total_pixels {
        return Err(Error::TooManyPixels(format!(
            "{frames} frames of {width}x{height} are {total} pixels, over the limit of {}",
            limits.max_total_pixels
        )));
    }
    Ok(())
}

fn be16(bytes: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(pos..pos.checked_add(2)?)?.try_into().ok()?))
}

fn be32(bytes: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

fn le16(bytes: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(pos..pos.checked_add(2)?)?.try_into().ok()?))
}

fn le24(bytes: &[u8], pos: usize) -> Option<u32> {
    let b = bytes.get(pos..pos.checked_add(3)?)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

fn le32(bytes: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

// ---------------------------------------------------------------------------------------------
// JPEG header parsing
// ---------------------------------------------------------------------------------------------

/// What the JPEG marker walk found.
#[derive(Debug, Default)]
struct JpegInfo {
    width: u32,
    height: u32,
    orientation: Option<Orientation>,
    icc: Option<Vec<u8>>,
    adobe: bool,
    /// The entropy-coded data ended with an EOI marker.
    complete: bool,
}

/// Walks the JPEG marker structure. With `header_only` it stops at the first SOFn; otherwise it
/// also skips through the entropy-coded data of every scan to find the EOI marker (O(n), no
/// decoding), collecting EXIF orientation, ICC segments and the Adobe marker on the way.
fn scan_jpeg(bytes: &[u8], header_only: bool) -> Result<JpegInfo> {
    let mut info = JpegInfo::default();
    let mut have_sof = false;
    let mut icc_parts: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut pos = 2usize; // after SOI
                          // Find each next marker, tolerating garbage between segments as libjpeg does.
    'markers: while let Some(off) = bytes.get(pos..).and_then(|rest| rest.iter().position(|&b| b == 0xFF)) {
        pos += off;
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else { break };
        pos += 1;
        match marker {
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            0xD9 => {
                info.complete = true;
                break;
            }
            _ => {}
        }
        let Some(len) = be16(bytes, pos) else { break };
        let len = usize::from(len);
        if len < 2 {
            return Err(corrupt(format!("JPEG segment {marker:#04x} has invalid length {len}")));
        }
        let Some(seg) = bytes.get(pos + 2..pos + len) else { break };
        pos += len;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if have_sof {
                    continue;
                }
                if seg.len() < 6 {
                    return Err(corrupt("JPEG frame header is too short"));
                }
                info.height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
                info.width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
                have_sof = true;
                if header_only {
                    return Ok(info);
                }
            }
            0xE1 if info.orientation.is_none() => {
                if let Some(tiff) = seg.strip_prefix(b"Exif\0\0") {
                    info.orientation = Orientation::from_exif_chunk(tiff);
                }
            }
            0xE2 => {
                if let Some(rest) = seg.strip_prefix(b"ICC_PROFILE\0") {
                    if rest.len() >= 2 {
                        icc_parts.push((rest[0], rest[1], &rest[2..]));
                    }
                }
            }
            0xEE if seg.starts_with(b"Adobe") => info.adobe = true,
            0xDA => {
                if !have_sof {
                    return Err(corrupt("JPEG scan before the frame header"));
                }
                // Skip entropy-coded data: 0xFF is followed by 0x00 (stuffing), RSTn or fill
                // bytes inside a scan; any other byte is the next marker.
                loop {
                    let Some(off) = bytes.get(pos..).and_then(|r| r.iter().position(|&b| b == 0xFF)) else {
                        break 'markers;
                    };
                    let at = pos + off;
                    match bytes.get(at + 1) {
                        None => break 'markers,
                        Some(0x00 | 0xD0..=0xD7) => pos = at + 2,
                        Some(0xFF) => pos = at + 1,
                        Some(_) => {
                            pos = at;
                            break;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !have_sof {
        return Err(corrupt("JPEG header is cut short (no frame header)"));
    }
    info.icc = assemble_icc(&mut icc_parts);
    Ok(info)
}

/// Joins APP2 ICC_PROFILE segments in sequence order (1..=count); `None` if any is missing or
/// they disagree.
fn assemble_icc(parts: &mut [(u8, u8, &[u8])]) -> Option<Vec<u8>> {
    let count = parts.first()?.1;
    if count == 0 || parts.len() != usize::from(count) || parts.iter().any(|p| p.1 != count) {
        return None;
    }
    parts.sort_by_key(|p| p.0);
    if parts.iter().enumerate().any(|(i, p)| usize::from(p.0) != i + 1) {
        return None;
    }
    Some(parts.iter().flat_map(|p| p.2.iter().copied()).collect())
}

// ---------------------------------------------------------------------------------------------
// PNG, GIF, WebP headers
// ---------------------------------------------------------------------------------------------

fn png_header(bytes: &[u8]) -> Result<(u32, u32, u32)> {
    let cut = || corrupt("PNG header is cut short");
    if be32(bytes, 8).ok_or_else(cut)? != 13 || bytes.get(12..16).ok_or_else(cut)? != b"IHDR" {
        return Err(corrupt("PNG does not start with an IHDR chunk"));
    }
    let width = be32(bytes, 16).ok_or_else(cut)?;
    let height = be32(bytes, 20).ok_or_else(cut)?;
    if bytes.len() < 33 {
        return Err(cut());
    }
    Ok((width, height, 1))
}

/// Skips GIF data sub-blocks starting at `pos`; returns the position after the terminator.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = usize::from(*bytes.get(pos)?);
        pos += 1;
        if len == 0 {
            return Some(pos);
        }
        pos += len;
        if pos > bytes.len() {
            return None;
        }
    }
}

/// Logical screen size and frame count (counting stops once over `limits.max_frames`). Every
/// image descriptor is checked against the side and pixel limits too: the decoder allocates a
/// buffer of the descriptor's size.
fn gif_header(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, u32)> {
    let cut = || corrupt("GIF is cut short");
    let width = u32::from(le16(bytes, 6).ok_or_else(cut)?);
    let height = u32::from(le16(bytes, 8).ok_or_else(cut)?);
    let packed = *bytes.get(10).ok_or_else(cut)?;
    let mut pos = 13usize;
    if packed & 0x80 != 0 {
        pos += 3 << ((packed & 7) + 1);
    }
    let mut frames = 0u32;
    // Files ending without a trailer where a block would start are accepted.
    while let Some(&block) = bytes.get(pos) {
        match block {
            0x3B => break,
            0x21 => {
                bytes.get(pos + 1).ok_or_else(cut)?;
                pos = skip_sub_blocks(bytes, pos + 2).ok_or_else(cut)?;
            }
            0x2C => {
                let fw = u32::from(le16(bytes, pos + 5).ok_or_else(cut)?);
                let fh = u32::from(le16(bytes, pos + 7).ok_or_else(cut)?);
                let fpacked = *bytes.get(pos + 9).ok_or_else(cut)?;
                check_size(fw.max(1), fh.max(1), 1, limits)?;
                pos += 10;
                if fpacked & 0x80 != 0 {
                    pos += 3 << ((fpacked & 7) + 1);
                }
                // LZW minimum code size, then the image data sub-blocks.
                bytes.get(pos).ok_or_else(cut)?;
                pos = skip_sub_blocks(bytes, pos + 1).ok_or_else(cut)?;
                frames += 1;
                if frames > limits.max_frames {
                    break;
                }
            }
            other => return Err(corrupt(format!("GIF has an unknown block type {other:#04x}"))),
        }
    }
    Ok((width, height, frames))
}

/// Canvas size and frame count of a WebP (ANMF chunks are counted for animations, stopping
/// once over `limits.max_frames`).
fn webp_header(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, u32)> {
    let cut = || corrupt("WebP header is cut short");
    let fourcc = bytes.get(12..16).ok_or_else(cut)?;
    let data = 20usize;
    match fourcc {
        b"VP8 " => {
            let tag = *bytes.get(data).ok_or_else(cut)?;
            if tag & 1 != 0 {
                return Err(corrupt("WebP VP8 data does not start with a key frame"));
            }
            if bytes.get(data + 3..data + 6).ok_or_else(cut)? != [0x9D, 0x01, 0x2A] {
                return Err(corrupt("WebP VP8 start code missing"));
            }
            let w = u32::from(le16(bytes, data + 6).ok_or_else(cut)? & 0x3FFF);
            let h = u32::from(le16(bytes, data + 8).ok_or_else(cut)? & 0x3FFF);
            Ok((w, h, 1))
        }
        b"VP8L" => {
            if *bytes.get(data).ok_or_else(cut)? != 0x2F {
                return Err(corrupt("WebP VP8L signature missing"));
            }
            let bits = le32(bytes, data + 1).ok_or_else(cut)?;
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 1))
        }
        b"VP8X" => {
            let flags = *bytes.get(data).ok_or_else(cut)?;
            let w = le24(bytes, data + 4).ok_or_else(cut)? + 1;
            let h = le24(bytes, data + 7).ok_or_else(cut)? + 1;
            if flags & 0x02 == 0 {
                return Ok((w, h, 1));
            }
            // Animated: walk the chunks and count ANMF frames.
            let mut pos = 12usize;
            let mut frames = 0u32;
            while pos < bytes.len() {
                let id = bytes.get(pos..pos + 4).ok_or_else(cut)?;
                let size = le32(bytes, pos + 4).ok_or_else(cut)? as usize;
                let payload = pos + 8;
                let end = payload.checked_add(size).filter(|&e| e <= bytes.len()).ok_or_else(cut)?;
                if id == b"ANMF" {
                    let x = le24(bytes, payload).ok_or_else(cut)? * 2;
                    let y = le24(bytes, payload + 3).ok_or_else(cut)? * 2;
                    let fw = le24(bytes, payload + 6).ok_or_else(cut)? + 1;
                    let fh = le24(bytes, payload + 9).ok_or_else(cut)? + 1;
                    if x + fw > w || y + fh > h {
                        return Err(corrupt("WebP animation frame lies outside the canvas"));
                    }
                    frames += 1;
                    if frames > limits.max_frames {
                        break;
                    }
                }
                pos = end + (size & 1);
            }
            Ok((w, h, frames))
        }
        _ => Err(corrupt("WebP has no VP8, VP8L or VP8X chunk")),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Probes, then decodes into an upright sRGB [`Image`].
pub fn decode(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let probe = probe(bytes, limits)?;
    match probe.format {
        InputFormat::Jpeg => decode_jpeg(bytes, &probe, options),
        InputFormat::Png => decode_png(bytes, limits),
        InputFormat::Gif => decode_gif(bytes, limits, options),
        InputFormat::Webp => decode_webp(bytes, limits, options),
    }
}

/// Maps an `image` crate error: limits are [`Error::TooManyPixels`], anything else is corrupt.
fn image_err(e: ImageError) -> Error {
    let mut message = e.to_string();
    if message.len() > 200 {
        let mut cut = 200;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    match e {
        ImageError::Limits(_) => Error::TooManyPixels(message),
        _ => Error::CorruptImage(message),
    }
}

fn image_limits(limits: &Limits, max_alloc: u64) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_side);
    l.max_image_height = Some(limits.max_side);
    l.max_alloc = Some(max_alloc);
    l
}

/// The DCT scale numerator (of 8) for shrink-on-load; see the module docs.
fn jpeg_scale(width: u32, height: u32, factor: f64) -> u8 {
    if !(factor > 0.0 && factor < 1.0) {
        return 8;
    }
    let target = |side: u32| (f64::from(side) * factor - 1e-9).ceil().max(1.0);
    let (tw, th) = (target(width), target(height));
    for n in [1u8, 2, 4] {
        let out = |side: u32| (u64::from(side) * u64::from(n)).div_ceil(8) as f64;
        if out(width) >= tw && out(height) >= th {
            return n;
        }
    }
    8
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// A byte-slice reader for libjpeg that remembers whether libjpeg asked for data past the end.
struct EofReader<'a> {
    data: &'a [u8],
    hit_eof: bool,
}

impl std::io::Read for EofReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof = true;
        }
        Ok(n)
    }
}

impl std::io::BufRead for EofReader<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.data.is_empty() {
            self.hit_eof = true;
        }
        Ok(self.data)
    }
    fn consume(&mut self, amount: usize) {
        self.data = self.data.get(amount..).unwrap_or_default();
    }
}

/// Decoded JPEG samples before colour handling.
enum JpegSamples {
    Gray(GrayImage),
    Rgb(RgbImage),
    Cmyk { width: u32, height: u32, data: Vec<u8> },
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "libjpeg failed".into()
    }
}

fn decode_jpeg(bytes: &[u8], probe: &Probe, options: &DecodeOptions<'_>) -> Result<Image> {
    let info = scan_jpeg(bytes, false)?;
    if !info.complete {
        return Err(corrupt("JPEG is truncated (no end-of-image marker after the scan data)"));
    }
    let orientation = info.orientation.unwrap_or(Orientation::NoTransforms);
    let (uw, uh) =
        if swaps_axes(orientation) { (probe.height, probe.width) } else { (probe.width, probe.height) };
    let scale = options.shrink.map_or(8, |f| jpeg_scale(uw, uh, f(uw, uh)));
    // Grey JPEGs keep one channel only when a (grey) profile may have to be applied.
    let keep_gray = info.icc.is_some();
    let (w, h) = (probe.width, probe.height);

    let samples = catch_unwind(AssertUnwindSafe(|| jpeg_samples(bytes, w, h, scale, keep_gray)))
        .map_err(|payload| corrupt(panic_message(payload.as_ref())))??;

    let pixels = match samples {
        JpegSamples::Gray(g) => gray_to_pixels(g, info.icc.as_deref()),
        JpegSamples::Rgb(mut rgb) => {
            if let Some(icc) = info.icc.as_deref() {
                convert_in_place(rgb.as_mut(), icc, Layout::Rgb);
            }
            Pixels::Rgb(rgb)
        }
        JpegSamples::Cmyk { width, height, data } => {
            Pixels::Rgb(cmyk_to_rgb(width, height, &data, info.adobe)?)
        }
    };
    let mut image = Image::still(orient(pixels, orientation), InputFormat::Jpeg);
    if scale < 8 {
        image.shrunk_from = Some((uw, uh));
    }
    Ok(image)
}

fn jpeg_samples(bytes: &[u8], w: u32, h: u32, scale: u8, keep_gray: bool) -> Result<JpegSamples> {
    use mozjpeg::ColorSpace as Cs;
    let fail = |e: std::io::Error| corrupt(format!("JPEG: {e}"));
    let reader = EofReader { data: bytes, hit_eof: false };
    let mut d = mozjpeg::Decompress::builder().from_reader(reader).map_err(fail)?;
    if d.size() != (w as usize, h as usize) {
        return Err(corrupt("JPEG frame header is inconsistent"));
    }
    d.scale(scale);
    let source = d.color_space();
    let mut started = match source {
        Cs::JCS_CMYK | Cs::JCS_YCCK => d.to_colorspace(Cs::JCS_CMYK),
        Cs::JCS_GRAYSCALE if keep_gray => d.grayscale(),
        _ => d.rgb(),
    }
    .map_err(fail)?;
    let out_space = started.color_space();
    let (ow, oh) = (started.width(), started.height());
    let (Ok(ow32), Ok(oh32)) = (u32::try_from(ow), u32::try_from(oh)) else {
        return Err(corrupt("JPEG output size out of range"));
    };
    let data: Vec<u8> = started.read_scanlines::<u8>().map_err(fail)?;
    let reader = started.finish_into_inner().map_err(fail)?;
    if reader.hit_eof {
        return Err(corrupt("JPEG is truncated (premature end of data)"));
    }
    let bad = || corrupt("JPEG decoded to an unexpected buffer size");
    Ok(match out_space {
        Cs::JCS_CMYK => {
            if data.len() != ow * oh * 4 {
                return Err(bad());
            }
            JpegSamples::Cmyk { width: ow32, height: oh32, data }
        }
        Cs::JCS_GRAYSCALE => JpegSamples::Gray(GrayImage::from_raw(ow32, oh32, data).ok_or_else(bad)?),
        _ => JpegSamples::Rgb(RgbImage::from_raw(ow32, oh32, data).ok_or_else(bad)?),
    })
}

/// Naive CMYK → RGB; `inverted` for Adobe-marked files (stored values are 255 - ink).
fn cmyk_to_rgb(width: u32, height: u32, cmyk: &[u8], inverted: bool) -> Result<RgbImage> {
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

fn decode_png(bytes: &[u8], limits: &Limits) -> Result<Image> {
    let mut decoder = image::codecs::png::PngDecoder::with_limits(
        Cursor::new(bytes),
        image_limits(limits, PNG_METADATA_BUDGET),
    )
    .map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let pixels = dynamic_to_pixels(img, icc.as_deref());
    Ok(Image::still(orient(pixels, orientation), InputFormat::Png))
}

fn decode_webp(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(image_err)?;
    decoder.set_limits(image_limits(limits, animation_budget(limits))).map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if decoder.has_animation() {
        let loop_count = loop_count(decoder.loop_count());
        let frames = decoder.into_frames();
        return animation(frames, icc.as_deref(), orientation, loop_count, InputFormat::Webp, options);
    }
    let img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let pixels = dynamic_to_pixels(img, icc.as_deref());
    Ok(Image::still(orient(pixels, orientation), InputFormat::Webp))
}

fn decode_gif(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let mut decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(image_err)?;
    decoder.set_limits(image_limits(limits, animation_budget(limits))).map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let loop_count = loop_count(decoder.loop_count());
    let frames = decoder.into_frames();
    animation(frames, icc.as_deref(), Orientation::NoTransforms, loop_count, InputFormat::Gif, options)
}

/// Allocation budget for animation decoders: a few full canvases of the largest allowed frame.
fn animation_budget(limits: &Limits) -> u64 {
    limits.max_pixels.saturating_mul(4 * 3).saturating_add(1 << 20)
}

fn loop_count(l: image::metadata::LoopCount) -> u16 {
    match l {
        image::metadata::LoopCount::Infinite => 0,
        image::metadata::LoopCount::Finite(n) => u16::try_from(n.get()).unwrap_or(u16::MAX),
    }
}

/// Collects the frames of an animation (or only the first), converts them to sRGB, keeps
/// alpha only if some pixel is not opaque, and orients them.
fn animation(
    frames: image::Frames<'_>,
    icc: Option<&[u8]>,
    orientation: Orientation,
    loop_count: u16,
    format: InputFormat,
    options: &DecodeOptions<'_>,
) -> Result<Image> {
    let take = if options.first_frame_only { 1 } else { usize::MAX };
    let transform = icc.and_then(|icc| srgb_transform(icc, Layout::Rgba, Layout::Rgba));
    let mut decoded: Vec<(RgbaImage, u32)> = Vec::new();
    for frame in frames.take(take) {
        let frame = frame.map_err(image_err)?;
        let (numer, denom) = frame.delay().numer_denom_ms();
        let delay_ms = numer.saturating_add(denom / 2).checked_div(denom).unwrap_or(0);
        let mut buffer = frame.into_buffer();
        if let Some(t) = &transform {
            apply_rows(t.as_ref(), buffer.as_mut(), 4);
        }
        decoded.push((buffer, delay_ms));
    }
    if decoded.is_empty() {
        return Err(corrupt("animation has no frames"));
    }
    let opaque = decoded.iter().all(|(img, _)| img.as_raw().chunks_exact(4).all(|p| p[3] == 255));
    let frames = decoded
        .into_iter()
        .map(|(img, delay_ms)| {
            let pixels = if opaque { Pixels::Rgb(rgba_into_rgb(img)) } else { Pixels::Rgba(img) };
            Frame { pixels: orient(pixels, orientation), delay_ms }
        })
        .collect();
    Ok(Image { frames, format, loop_count, shrunk_from: None })
}

/// Drops the alpha channel, reusing the buffer.
fn rgba_into_rgb(img: RgbaImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let mut raw = img.into_raw();
    let n = raw.len() / 4;
    for i in 0..n {
        raw.copy_within(i * 4..i * 4 + 3, i * 3);
    }
    raw.truncate(n * 3);
    RgbImage::from_raw(w, h, raw).unwrap_or_default()
}

/// Brings any `image` buffer into the working format, converting to sRGB with `icc`.
fn dynamic_to_pixels(img: DynamicImage, icc: Option<&[u8]>) -> Pixels {
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

fn gray_to_pixels(g: GrayImage, icc: Option<&[u8]>) -> Pixels {
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

/// A transform from the embedded profile to sRGB, or `None` when the profile cannot be parsed,
/// does not fit the layout, or already behaves as sRGB.
fn srgb_transform(icc: &[u8], src: Layout, dst: Layout) -> Option<Transform> {
    let profile = ColorProfile::new_from_slice(icc).ok()?;
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

/// Converts RGB or RGBA samples to sRGB in place (through a small scratch buffer, in row
/// chunks, so no second full-size image is allocated). Keeps the pixels if the profile is not
/// usable.
fn convert_in_place(samples: &mut [u8], icc: &[u8], layout: Layout) {
    if let Some(t) = srgb_transform(icc, layout, layout) {
        apply_rows(t.as_ref(), samples, layout.channels());
    }
}

fn apply_rows(t: &moxcms::Transform8BitExecutor, samples: &mut [u8], channels: usize) {
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

/// Applies an EXIF orientation to the pixels.
fn orient(pixels: Pixels, orientation: Orientation) -> Pixels {
    if orientation == Orientation::NoTransforms {
        return pixels;
    }
    let mut img = match pixels {
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
        Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
    };
    img.apply_orientation(orientation);
    match img {
        DynamicImage::ImageRgba8(i) => Pixels::Rgba(i),
        DynamicImage::ImageRgb8(i) => Pixels::Rgb(i),
        other => Pixels::Rgb(other.into_rgb8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_scale_follows_libjpeg_rounding() {
        assert_eq!(jpeg_scale(1600, 1200, 0.1), 1);
        assert_eq!(jpeg_scale(1600, 1200, 0.125), 1);
        assert_eq!(jpeg_scale(1600, 1200, 0.126), 2);
        assert_eq!(jpeg_scale(1600, 1200, 0.3), 4);
        assert_eq!(jpeg_scale(1600, 1200, 0.5), 4);
        assert_eq!(jpeg_scale(1600, 1200, 0.51), 8);
        assert_eq!(jpeg_scale(1600, 1200, 1.0), 8);
        assert_eq!(jpeg_scale(1600, 1200, f64::NAN), 8);
        assert_eq!(jpeg_scale(1600, 1200, 0.0), 8);
        // 9 px at 1/8 is ceil(9/8) = 2 >= ceil(9 * 0.2) = 2.
        assert_eq!(jpeg_scale(9, 9, 0.2), 1);
        assert_eq!(jpeg_scale(9, 9, 0.23), 2);
    }

    #[test]
    fn icc_segments_reassemble_in_order() {
        let mut parts: Vec<(u8, u8, &[u8])> = vec![(2, 2, b"cd"), (1, 2, b"ab")];
        assert_eq!(assemble_icc(&mut parts).as_deref(), Some(&b"abcd"[..]));
        let mut missing: Vec<(u8, u8, &[u8])> = vec![(2, 2, b"cd")];
        assert_eq!(assemble_icc(&mut missing), None);
        let mut dup: Vec<(u8, u8, &[u8])> = vec![(1, 2, b"ab"), (1, 2, b"ab")];
        assert_eq!(assemble_icc(&mut dup), None);
    }

    #[test]
    fn sniff_names_formats() {
        let msg = |b: &[u8]| match sniff(b) {
            Err(Error::UnsupportedFormat(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(msg(b""), "empty input");
        assert!(msg(b"\xEF\xBB\xBF  \n<svg xmlns=''>").contains("SVG"));
        assert!(msg(b"<?xml version='1.0'?>").contains("SVG/XML"));
        assert!(msg(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1").contains("AVIF"));
        assert!(msg(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").contains("HEIC"));
        assert!(msg(b"\0\0\0\x18ftypmif1\0\0\0\0mif1miaf").contains("HEIC"));
        assert!(msg(b"II*\0\x08\0\0\0").contains("TIFF"));
        assert!(msg(b"MM\0*\0\0\0\x08").contains("TIFF"));
        assert!(msg(b"BM\x36\0\0\0").contains("BMP"));
        assert!(msg(b"%PDF-1.7").contains("PDF"));
        assert!(msg(b"hello world").starts_with("unrecognised"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).ok(), Some(InputFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a....").ok(), Some(InputFormat::Gif));
        assert_eq!(sniff(b"GIF87a....").ok(), Some(InputFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").ok(), Some(InputFormat::Webp));
        assert_eq!(sniff(&PNG_SIGNATURE).ok(), Some(InputFormat::Png));
        assert!(sniff(b"RIFF\0\0\0\0WAVEfmt ").is_err());
    }
}
