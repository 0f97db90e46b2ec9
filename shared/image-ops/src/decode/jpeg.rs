//! JPEG: the marker walk (frame header, EXIF orientation, ICC segments, Adobe marker, the
//! end-of-image check) and DCT-scaled decoding by libjpeg-turbo inside `catch_unwind`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use image::metadata::Orientation;
use image::{GrayImage, RgbImage};
use moxcms::Layout;

use super::colour::{cmyk_profile_to_rgb, convert_in_place, gray_to_pixels, split_profile, srgb_transform};
use super::header::be16;
use super::orient::{orient, swaps_axes};
use super::{corrupt, DecodeOptions, Probe, MAX_JPEG_SCANS};
use crate::{Image, InputFormat, Pixels, Result};

/// Dimensions from the first frame header (one frame).
pub(super) fn header(bytes: &[u8]) -> Result<(u32, u32, u32)> {
    let info = scan(bytes, true)?;
    Ok((info.width, info.height, 1))
}

/// What the JPEG marker walk found.
#[derive(Debug, Default)]
struct JpegInfo {
    width: u32,
    height: u32,
    orientation: Option<Orientation>,
    icc: Option<Vec<u8>>,
    /// Where the first Exif block's TIFF structure is in the file.
    exif: Option<std::ops::Range<usize>>,
    adobe: bool,
    /// The entropy-coded data ended with an EOI marker.
    complete: bool,
}

/// Walks the JPEG marker structure. With `header_only` it stops at the first SOFn; otherwise it
/// also skips through the entropy-coded data of every scan to find the EOI marker (O(n), no
/// decoding), collecting EXIF orientation, ICC segments and the Adobe marker on the way.
fn scan(bytes: &[u8], header_only: bool) -> Result<JpegInfo> {
    let mut info = JpegInfo::default();
    let mut have_sof = false;
    let mut scans = 0usize;
    let mut icc_parts: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut pos = 2usize; // after SOI
                          // Find each next marker, tolerating garbage between segments as libjpeg does.
    'markers: while let Some(off) = bytes.get(pos..).and_then(|rest| memchr::memchr(0xFF, rest)) {
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
            0xE1 if info.exif.is_none() => {
                if let Some(tiff) = seg.strip_prefix(b"Exif\0\0") {
                    info.orientation = Orientation::from_exif_chunk(tiff);
                    info.exif = Some(pos - tiff.len()..pos);
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
                scans += 1;
                if scans > MAX_JPEG_SCANS {
                    return Err(corrupt(format!("JPEG has more than {MAX_JPEG_SCANS} scans")));
                }
                // Skip entropy-coded data: 0xFF is followed by 0x00 (stuffing), RSTn or fill
                // bytes inside a scan; any other byte is the next marker.
                loop {
                    let Some(off) = bytes.get(pos..).and_then(|r| memchr::memchr(0xFF, r)) else {
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

/// Whether the JPEG's pixels need nothing but decoding: complete (an EOI after the scans), upright
/// (no EXIF rotation or mirroring), without an Adobe marker (which may mean RGB or YCCK
/// samples), and without an ICC profile that decoding would convert from: none, one that
/// behaves as sRGB or that cannot be used (decoding leaves the pixels as they are), or one the
/// output keeps (`keep_icc`). The transcode path takes only such files: `Some` of the profile
/// the output keeps, `None` for the others.
pub(crate) fn plain(bytes: &[u8], keep_icc: bool) -> Option<Option<Arc<[u8]>>> {
    let info = scan(bytes, false).ok()?;
    let upright = matches!(info.orientation, None | Some(Orientation::NoTransforms));
    if !info.complete || !upright || info.adobe {
        return None;
    }
    match split_profile(info.icc.as_deref(), keep_icc) {
        (_, Some(kept)) => Some(Some(kept)),
        (Some(icc), None) if srgb_transform(icc, Layout::Rgb, Layout::Rgb).is_some() => None,
        _ => Some(None),
    }
}

/// The copyright tags of the first Exif block (read before the frame header, where APP1 is),
/// for an output that keeps them without decoding the JPEG (`transcode`).
pub(crate) fn copyright(bytes: &[u8]) -> Option<Arc<[u8]>> {
    let range = scan(bytes, true).ok()?.exif?;
    crate::metadata::copyright_exif(bytes.get(range)?).map(Arc::from)
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

/// The DCT scale numerator (of 8) for shrink-on-load; see the module docs.
///
/// The smallest n ∈ {1, 2, 4} whose output leaves the resampler a reduction of at least
/// 1 + n/8 on both axes (1.125 after a 1/8 decode, 1.25 after 1/4, 1.5 after 1/2), else 8. A
/// DCT-scaled decode filters worse than Lanczos: one that lands just above the target (12 MP to
/// 1,024 px at 1/4 leaves 1.035) gives up 0.002 SSIM against a full-size Lanczos reference.
/// This is libvips's and sharp's choice (they halve the shrink-on-load factor s when the whole
/// shrink is below s + 1), so outputs match theirs in quality.
pub(crate) fn jpeg_scale(width: u32, height: u32, factor: f64) -> u8 {
    if !(factor > 0.0 && factor < 1.0) {
        return 8;
    }
    let target = |side: u32| (f64::from(side) * factor - 1e-9).ceil().max(1.0);
    let (tw, th) = (target(width), target(height));
    for n in [1u8, 2, 4] {
        let headroom = 1.0 + f64::from(n) / 8.0;
        let out = |side: u32| (u64::from(side) * u64::from(n)).div_ceil(8) as f64;
        if out(width) >= tw * headroom && out(height) >= th * headroom {
            return n;
        }
    }
    8
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
#[derive(Debug, PartialEq)]
pub(super) enum JpegSamples {
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

pub(super) fn decode(bytes: &[u8], probe: &Probe, options: &DecodeOptions<'_>) -> Result<Image> {
    let info = scan(bytes, false)?;
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

    // A 1/8-scale decode needs only DC coefficients: `jpeg_dc` gets them faster, with the same
    // output, or leaves the file to libjpeg-turbo.
    let dc_only = if scale == 1 { super::jpeg_dc::decode(bytes, keep_gray) } else { None };
    let samples = match dc_only {
        Some(samples) => samples,
        None => catch_unwind(AssertUnwindSafe(|| jpeg_samples(bytes, w, h, scale, keep_gray)))
            .map_err(|payload| corrupt(panic_message(payload.as_ref())))??,
    };

    let mut kept = None;
    let pixels = match samples {
        JpegSamples::Gray(g) => gray_to_pixels(g, info.icc.as_deref()),
        JpegSamples::Rgb(mut rgb) => {
            let (convert, keep) = split_profile(info.icc.as_deref(), options.keep_icc);
            if let Some(icc) = convert {
                convert_in_place(rgb.as_mut(), icc, Layout::Rgb);
            }
            kept = keep;
            Pixels::Rgb(rgb)
        }
        JpegSamples::Cmyk { width, height, data } => {
            Pixels::Rgb(cmyk_profile_to_rgb(width, height, &data, info.adobe, info.icc.as_deref())?)
        }
    };
    let mut image = Image::still(orient(pixels, orientation), InputFormat::Jpeg);
    image.metadata.icc = kept;
    if options.keep_copyright {
        let exif = info.exif.and_then(|range| bytes.get(range));
        image.metadata.copyright = exif.and_then(crate::metadata::copyright_exif).map(Arc::from);
    }
    if scale < 8 {
        image.shrunk_from = Some((uw, uh));
    }
    Ok(image)
}

pub(super) fn jpeg_samples(bytes: &[u8], w: u32, h: u32, scale: u8, keep_gray: bool) -> Result<JpegSamples> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_scale_leaves_headroom_and_follows_libjpeg_rounding() {
        // 1/8 needs 1.125x the target: 200 >= 1.125 * 176 (and 150 >= 1.125 * 132).
        assert_eq!(jpeg_scale(1600, 1200, 0.11), 1);
        assert_eq!(jpeg_scale(1600, 1200, 0.112), 2);
        assert_eq!(jpeg_scale(1600, 1200, 0.125), 2);
        // 1/4 needs 1.25x, 1/2 needs 1.5x.
        assert_eq!(jpeg_scale(1600, 1200, 0.2), 2);
        assert_eq!(jpeg_scale(1600, 1200, 0.21), 4);
        assert_eq!(jpeg_scale(1600, 1200, 0.33), 4);
        assert_eq!(jpeg_scale(1600, 1200, 0.34), 8);
        assert_eq!(jpeg_scale(1600, 1200, 0.5), 8);
        assert_eq!(jpeg_scale(1600, 1200, 1.0), 8);
        assert_eq!(jpeg_scale(1600, 1200, f64::NAN), 8);
        assert_eq!(jpeg_scale(1600, 1200, 0.0), 8);
        // Rounded up as libjpeg rounds: 9 px at 1/4 is ceil(18/8) = 3 >= 1.25 * ceil(9 * 0.2).
        assert_eq!(jpeg_scale(9, 9, 0.2), 2);
        assert_eq!(jpeg_scale(9, 9, 0.23), 4);
        // The shared bench's photos, as sharp picks: 12 MP to 1,024 px at 1/2 (1/4 would leave
        // 1.035), 24 MP at 1/4 (1.46 left); 1 MP to 256 px at 1/2; 24 MP to 256 px at 1/8.
        assert_eq!(jpeg_scale(4240, 2832, 1024.0 / 4240.0), 4);
        assert_eq!(jpeg_scale(6000, 4000, 1024.0 / 6000.0), 2);
        assert_eq!(jpeg_scale(1224, 816, 256.0 / 1224.0), 4);
        assert_eq!(jpeg_scale(6000, 4000, 256.0 / 6000.0), 1);
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
}
