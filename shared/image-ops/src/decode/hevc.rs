//! One HEVC still picture (a HEIC image item or tile), decoded by heic-rs's intra decoder
//! (pure Rust, `#![forbid(unsafe_code)]`), and the checks made on the item's `hvcC` parameter
//! sets before anything is decoded.
//!
//! heic-rs allocates a picture by the sequence parameter set's coded size, which a conformance
//! window may crop to a much smaller displayed size, and it reads sizes up to 65,535 a side.
//! So the SPS is read here (up to the bit depths) and the coded size is checked against the
//! limits, the cropped size against the item's `ispe`, before [`decode`] is called. Only what
//! heic-rs decodes exactly as libde265 does (compared sample for sample on x265's output:
//! 8- and 10-bit, 4:2:0 and monochrome, which is what phones write) is let through; 4:2:2,
//! 4:4:4 and deeper samples are refused by name.

use std::panic::{catch_unwind, AssertUnwindSafe};

use heic_rs::hevc::{self, ChromaFormat, Frame};

use super::header::{be16, Bits};
use super::yuv::{self, Info, Layout, Row};
use super::{check_size, corrupt, unsupported};
use crate::{Limits, Result};

/// NAL unit types of the parameter sets, in the order heic-rs takes them.
const VPS: u8 = 32;
const SPS: u8 = 33;
const PPS: u8 = 34;
/// Most parameter sets one `hvcC` may carry (one of each is usual).
const MAX_SETS: usize = 64;

fn cut() -> crate::Error {
    corrupt("HEIC hvcC (HEVC decoder configuration) is cut short")
}

/// An item's decoder configuration: its parameter sets (VPS, SPS, PPS, in that order) and the
/// size of the length prefix of each NAL unit in the item's data.
#[derive(Debug)]
pub(super) struct Config<'a> {
    sets: Vec<&'a [u8]>,
    length_size: usize,
}

/// Reads an `hvcC` property (ISO/IEC 14496-15, 8.3.3.1).
pub(super) fn config(hvcc: &[u8]) -> Result<Config<'_>> {
    let length_size = usize::from(hvcc.get(21).ok_or_else(cut)? & 3) + 1;
    if length_size == 3 {
        return Err(corrupt("HEIC hvcC gives a NAL length size of 3 bytes"));
    }
    let arrays = *hvcc.get(22).ok_or_else(cut)?;
    let mut pos = 23;
    let mut found: Vec<(u8, &[u8])> = Vec::new();
    for _ in 0..arrays {
        let kind = hvcc.get(pos).ok_or_else(cut)? & 0x3F;
        let count = be16(hvcc, pos + 1).ok_or_else(cut)?;
        pos += 3;
        for _ in 0..count {
            let len = usize::from(be16(hvcc, pos).ok_or_else(cut)?);
            let nal = hvcc.get(pos + 2..pos + 2 + len).ok_or_else(cut)?;
            pos += 2 + len;
            if matches!(kind, VPS | SPS | PPS) {
                if found.len() >= MAX_SETS {
                    return Err(unsupported(format!("HEIC hvcC with more than {MAX_SETS} parameter sets")));
                }
                found.push((kind, nal));
            }
        }
    }
    found.sort_by_key(|&(kind, _)| kind);
    if !found.iter().any(|&(k, _)| k == SPS) || !found.iter().any(|&(k, _)| k == PPS) {
        return Err(corrupt("HEIC hvcC has no sequence or picture parameter set"));
    }
    Ok(Config { sets: found.into_iter().map(|(_, nal)| nal).collect(), length_size })
}

/// What the sequence parameter set says the decoder will allocate and produce.
#[derive(Debug, PartialEq, Eq)]
struct Sequence {
    /// `pic_width_in_luma_samples`, `pic_height_in_luma_samples`: what is allocated.
    coded: (u32, u32),
    /// The coded size less the conformance window: what is displayed.
    cropped: (u32, u32),
    chroma_format: u32,
    bits: (u32, u32),
}

/// Reads an SPS NAL unit (H.265 7.3.2.2) up to its bit depths.
fn sequence(nal: &[u8]) -> Result<Sequence> {
    let what = "HEIC sequence parameter set";
    // The RBSP: the two-byte NAL header dropped, emulation prevention bytes (00 00 03) removed.
    let mut rbsp = Vec::with_capacity(nal.len().min(4096));
    let mut zeros = 0;
    for &b in nal.iter().skip(2).take(4096) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits::new(&rbsp, what);
    r.read(4)?; // sps_video_parameter_set_id
    let sub_layers = r.read(3)?; // sps_max_sub_layers_minus1
    r.read(1)?; // sps_temporal_id_nesting_flag

    // profile_tier_level(1, sps_max_sub_layers_minus1): the general profile (88 bits), level.
    r.read(32)?;
    r.read(32)?;
    r.read(24)?;
    r.read(8)?;
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((r.flag()?, r.flag()?));
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.read(2)?;
        }
    }
    for (profile, level) in present {
        if profile {
            r.read(32)?;
            r.read(32)?;
            r.read(24)?;
        }
        if level {
            r.read(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format = r.ue()?;
    if chroma_format == 3 {
        r.read(1)?; // separate_colour_plane_flag
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (sub_x, sub_y) = match chroma_format {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let mut cropped = (width, height);
    if r.flag()? {
        let [left, right, top, bottom] = [r.ue()?, r.ue()?, r.ue()?, r.ue()?];
        let crop = |size: u32, a: u32, b: u32, unit: u32| {
            let c = (u64::from(a) + u64::from(b)) * u64::from(unit);
            u32::try_from(u64::from(size).saturating_sub(c)).unwrap_or(0)
        };
        cropped = (crop(width, left, right, sub_x), crop(height, top, bottom, sub_y));
    }
    let bits = (r.ue()?.saturating_add(8), r.ue()?.saturating_add(8));
    Ok(Sequence { coded: (width, height), cropped, chroma_format, bits })
}

/// Splits an item's data into its NAL units by their length prefixes.
fn units<'d>(config: &Config<'_>, data: &'d [u8]) -> Result<Vec<&'d [u8]>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = data
            .get(pos..pos + config.length_size)
            .ok_or_else(|| corrupt("HEIC image data is cut short"))?
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        pos += config.length_size;
        out.push(data.get(pos..pos + len).ok_or_else(|| corrupt("HEIC image data is cut short"))?);
        pos += len;
    }
    if out.is_empty() {
        return Err(corrupt("HEIC image item has no data"));
    }
    Ok(out)
}

/// Checks an item before it is decoded: the SPS's coded size is within `limits`, its cropped
/// size is `size` (the item's `ispe`), its chroma format and bit depth are ones heic-rs decodes
/// exactly, and the data splits into whole NAL units.
pub(super) fn check(config: &Config<'_>, data: &[u8], size: (u32, u32), limits: &Limits) -> Result<()> {
    for sps in config.sets.iter().filter(|nal| nal.first().map(|b| b >> 1 & 0x3F) == Some(SPS)) {
        let s = sequence(sps)?;
        if s.coded.0 == 0 || s.coded.1 == 0 {
            return Err(corrupt("HEIC sequence parameter set gives a zero size"));
        }
        check_size(s.coded.0, s.coded.1, 1, limits)?;
        if s.cropped != size {
            return Err(corrupt(format!(
                "HEVC sequence parameter set is {}x{}, its image item {}x{}",
                s.cropped.0, s.cropped.1, size.0, size.1
            )));
        }
        if !matches!(s.chroma_format, 0 | 1) {
            return Err(unsupported(format!(
                "HEIC with {} chroma (4:2:0 and monochrome are supported)",
                if s.chroma_format == 2 { "4:2:2" } else { "4:4:4" }
            )));
        }
        if s.bits.0 != s.bits.1 || !matches!(s.bits.0, 8 | 10) {
            return Err(unsupported(format!(
                "HEIC with {}-bit luma and {}-bit chroma (8 and 10 bits are supported)",
                s.bits.0, s.bits.1
            )));
        }
    }
    // heic-rs's own reading of the first SPS must agree (a second opinion on the parse above).
    let theirs = hevc::probe(&config.sets).map_err(|e| corrupt(format!("HEVC: {e}")))?;
    if (theirs.width, theirs.height) != size {
        return Err(corrupt(format!(
            "HEVC sequence parameter set is {}x{}, its image item {}x{}",
            theirs.width, theirs.height, size.0, size.1
        )));
    }
    units(config, data).map(|_| ())
}

/// A decoded HEVC picture.
pub(super) struct Picture {
    frame: Frame,
    info: Info,
}

impl yuv::Picture for Picture {
    fn info(&self) -> &Info {
        &self.info
    }

    fn row(&self, plane: usize, y: usize) -> Row<'_> {
        let (w, h) = self.info.plane_size(plane);
        assert!(y < h && w > 0, "row {y} of plane {plane} is outside the picture");
        let (samples, stride) = match plane {
            0 => (&self.frame.y, self.frame.y_stride),
            1 => (&self.frame.cb, self.frame.c_stride),
            _ => (&self.frame.cr, self.frame.c_stride),
        };
        let start = y * stride as usize;
        Row::High(&samples[start..start + w])
    }
}

/// Decodes one item, checked by [`check`] first. heic-rs has no unsafe code, so a bug in it
/// is a panic, not memory corruption; a panic is caught and the input called corrupt.
///
/// Colour: the container's `nclx` wins; without one, libheif's default is what the file means
/// (BT.601 matrix, full range, as libheif, iPhones and x265 through heif-enc write it). The
/// bitstream's VUI colour description is not read (libheif 1.15 does not read it either).
pub(super) fn decode(config: &Config<'_>, data: &[u8]) -> Result<Picture> {
    let nals = units(config, data)?;
    let frame = catch_unwind(AssertUnwindSafe(|| hevc::decode_still(&config.sets, &nals)))
        .map_err(|_| corrupt("HEVC decoder failed on this image"))?
        .map_err(|e| match e {
            heic_rs::Error::Unsupported(what) => {
                unsupported(format!("HEIC using an HEVC tool imgfn does not decode: {what}"))
            }
            other => corrupt(format!("HEVC: {other}")),
        })?;
    frame.validate().map_err(|e| corrupt(format!("HEVC: {e}")))?;
    let layout = match frame.chroma {
        ChromaFormat::Monochrome => Layout::Mono,
        ChromaFormat::Yuv420 => Layout::I420,
        ChromaFormat::Yuv422 => Layout::I422,
        ChromaFormat::Yuv444 => Layout::I444,
    };
    if !matches!(frame.bit_depth, 8 | 10) {
        return Err(unsupported(format!("HEIC with {}-bit samples", frame.bit_depth)));
    }
    let info = Info {
        width: frame.width,
        height: frame.height,
        bits: frame.bit_depth,
        layout,
        primaries: 2,
        transfer: 2,
        matrix: 6,
        full_range: true,
    };
    Ok(Picture { frame, info })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Writes `fields` (value, bits; bits 0 means ue(v)) as a bit string, as an SPS RBSP.
    fn rbsp(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut bits: Vec<u8> = Vec::new();
        for &(v, n) in fields {
            if n == 0 {
                let code = u64::from(v) + 1;
                let len = 64 - code.leading_zeros();
                bits.extend(std::iter::repeat_n(0, len as usize - 1));
                bits.extend((0..len).rev().map(|i| ((code >> i) & 1) as u8));
            } else {
                bits.extend((0..n).rev().map(|i| ((v >> i) & 1) as u8));
            }
        }
        bits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |a, (i, b)| a | b << (7 - i))).collect()
    }

    fn sps(width: u32, height: u32, crop: Option<[u32; 4]>, chroma: u32, bits: u32) -> Vec<u8> {
        let mut f = vec![(0, 4), (0, 3), (1, 1), (0, 32), (0, 32), (0, 24), (0, 8), (0, 0), (chroma, 0)];
        if chroma == 3 {
            f.push((0, 1));
        }
        f.extend([(width, 0), (height, 0), (u32::from(crop.is_some()), 1)]);
        f.extend(crop.into_iter().flatten().map(|c| (c, 0)));
        f.extend([(bits - 8, 0), (bits - 8, 0), (1, 1), (0, 7)]);
        [vec![0x42, 0x01], rbsp(&f)].concat()
    }

    #[test]
    fn sequence_sizes_and_conformance_window() {
        let s = sequence(&sps(1920, 1088, Some([0, 0, 0, 4]), 1, 8)).unwrap();
        assert_eq!((s.coded, s.cropped, s.chroma_format, s.bits), ((1920, 1088), (1920, 1080), 1, (8, 8)));
        let s = sequence(&sps(64, 64, None, 0, 10)).unwrap();
        assert_eq!((s.coded, s.cropped, s.chroma_format, s.bits), ((64, 64), (64, 64), 0, (10, 10)));
        // A window as large as the picture crops it to nothing, never below zero.
        let s = sequence(&sps(64, 64, Some([40, 40, 0, 0]), 1, 8)).unwrap();
        assert_eq!(s.cropped, (0, 64));
        assert!(sequence(&sps(64, 64, None, 1, 8)[..6]).is_err(), "cut short");
    }

    #[test]
    fn a_small_window_on_a_huge_picture_is_refused_by_its_coded_size() {
        let big = sps(60_000, 60_000, Some([29_968, 0, 29_976, 0]), 1, 8);
        assert_eq!(sequence(&big).unwrap().cropped, (64, 48));
        let config = Config { sets: vec![&big], length_size: 4 };
        let r = check(&config, &[0, 0, 0, 1, 0x26], (64, 48), &Limits::default());
        assert!(matches!(r, Err(crate::Error::TooManyPixels(_))), "{r:?}");
    }
}
