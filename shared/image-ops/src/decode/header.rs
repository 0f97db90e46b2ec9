//! Bounded header parsers for PNG, GIF and WebP: dimensions and frame counts, read without
//! decoding and without allocating anything sized by the header.

use super::{check_size, corrupt};
use crate::{Limits, Result};

pub(super) fn be16(bytes: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(pos..pos.checked_add(2)?)?.try_into().ok()?))
}

pub(super) fn be32(bytes: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

pub(super) fn le16(bytes: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(pos..pos.checked_add(2)?)?.try_into().ok()?))
}

pub(super) fn le24(bytes: &[u8], pos: usize) -> Option<u32> {
    let b = bytes.get(pos..pos.checked_add(3)?)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

pub(super) fn le32(bytes: &[u8], pos: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(pos..pos.checked_add(4)?)?.try_into().ok()?))
}

/// Dimensions from IHDR, and the frame count of an animated PNG from its `acTL` chunk (1 for
/// a still PNG).
///
/// `acTL` must come before the first IDAT, so only the chunks between IHDR and IDAT are walked
/// (skipped by their lengths, nothing read into memory). As the `png` crate does, an `acTL`
/// that declares 0 frames is ignored (the file is a still PNG); a declared count over
/// `limits.max_frames` is returned as is, for [`check_size`] to refuse.
pub(super) fn png(bytes: &[u8]) -> Result<(u32, u32, u32)> {
    let cut = || corrupt("PNG header is cut short");
    if be32(bytes, 8).ok_or_else(cut)? != 13 || bytes.get(12..16).ok_or_else(cut)? != b"IHDR" {
        return Err(corrupt("PNG does not start with an IHDR chunk"));
    }
    let width = be32(bytes, 16).ok_or_else(cut)?;
    let height = be32(bytes, 20).ok_or_else(cut)?;
    if bytes.len() < 33 {
        return Err(cut());
    }
    Ok((width, height, png_frames(bytes)))
}

/// The frame count an `acTL` chunk before the first IDAT declares (1 without one, or when it
/// declares 0). A chunk cut short ends the walk: the decoder reports the damage.
fn png_frames(bytes: &[u8]) -> u32 {
    let mut pos = 33usize; // After the signature and IHDR (8 + 4 + 4 + 13 + 4).
    while let (Some(len), Some(kind)) = (be32(bytes, pos), bytes.get(pos + 4..pos + 8)) {
        match kind {
            b"IDAT" | b"IEND" => break,
            b"acTL" => return be32(bytes, pos + 8).filter(|&n| n > 0).unwrap_or(1),
            _ => {}
        }
        // Length, type, data, CRC.
        match usize::try_from(len).ok().and_then(|l| pos.checked_add(12)?.checked_add(l)) {
            Some(next) => pos = next,
            None => break,
        }
    }
    1
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
pub(super) fn gif(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, u32)> {
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
///
/// The decoder allocates each image by the dimensions in its own VP8/VP8L bitstream header, not
/// by the VP8X canvas (and checks that they agree only after decoding), so in an extended file
/// every bitstream header is read too and must give the size of its canvas (a still) or of its
/// ANMF frame: a 24x20 canvas cannot carry a 13080x13299 VP8 frame (174 MB from 403 bytes).
pub(super) fn webp(bytes: &[u8], limits: &Limits) -> Result<(u32, u32, u32)> {
    let cut = || corrupt("WebP header is cut short");
    let fourcc = bytes.get(12..16).ok_or_else(cut)?;
    match fourcc {
        b"VP8 " | b"VP8L" => {
            let (w, h) = bitstream(fourcc, bytes.get(20..).ok_or_else(cut)?)?;
            Ok((w, h, 1))
        }
        b"VP8X" => {
            let data = 20usize;
            let flags = *bytes.get(data).ok_or_else(cut)?;
            let w = le24(bytes, data + 4).ok_or_else(cut)? + 1;
            let h = le24(bytes, data + 7).ok_or_else(cut)? + 1;
            let animated = flags & 0x02 != 0;
            let mut frames = 0u32;
            for (id, payload) in chunks(bytes, 12) {
                match id {
                    b"VP8 " | b"VP8L" if !animated => {
                        same_size(bitstream(id, payload)?, (w, h), "canvas")?;
                        frames = 1;
                    }
                    b"ANMF" if animated => {
                        let x = le24(payload, 0).ok_or_else(cut)? * 2;
                        let y = le24(payload, 3).ok_or_else(cut)? * 2;
                        let fw = le24(payload, 6).ok_or_else(cut)? + 1;
                        let fh = le24(payload, 9).ok_or_else(cut)? + 1;
                        if x + fw > w || y + fh > h {
                            return Err(corrupt("WebP animation frame lies outside the canvas"));
                        }
                        // The frame's own chunks follow its 16-byte header.
                        for (sub_id, sub_payload) in chunks(payload, 16) {
                            if matches!(sub_id, b"VP8 " | b"VP8L") {
                                same_size(bitstream(sub_id, sub_payload)?, (fw, fh), "animation frame")?;
                            }
                        }
                        frames += 1;
                        if frames > limits.max_frames {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if !animated && frames == 0 {
                return Err(corrupt("WebP has no VP8 or VP8L image data"));
            }
            Ok((w, h, frames))
        }
        _ => Err(corrupt("WebP has no VP8, VP8L or VP8X chunk")),
    }
}

/// The RIFF chunks of `bytes` from `start` on, as (fourcc, payload). Lenient as the decoder is:
/// the walk ends where a chunk header no longer fits, and a chunk that runs past the end is the
/// last one, with the payload that is there. It covers every chunk the decoder may read (the
/// decoder stops at the RIFF size; this walk goes on to the end of the bytes).
fn chunks(bytes: &[u8], start: usize) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut pos = Some(start);
    std::iter::from_fn(move || {
        let at = pos?;
        let id = bytes.get(at..at.checked_add(4)?)?;
        let size = le32(bytes, at + 4)? as usize;
        let payload_end = (at + 8).saturating_add(size);
        let payload = bytes.get(at + 8..payload_end.min(bytes.len()))?;
        pos = (payload_end < bytes.len()).then(|| payload_end + (size & 1));
        Some((id, payload))
    })
}

/// Dimensions from a VP8 (lossy) or VP8L (lossless) bitstream header.
fn bitstream(fourcc: &[u8], data: &[u8]) -> Result<(u32, u32)> {
    let cut = || corrupt("WebP header is cut short");
    if fourcc == b"VP8L" {
        if *data.first().ok_or_else(cut)? != 0x2F {
            return Err(corrupt("WebP VP8L signature missing"));
        }
        let bits = le32(data, 1).ok_or_else(cut)?;
        return Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1));
    }
    let tag = *data.first().ok_or_else(cut)?;
    if tag & 1 != 0 {
        return Err(corrupt("WebP VP8 data does not start with a key frame"));
    }
    if data.get(3..6).ok_or_else(cut)? != [0x9D, 0x01, 0x2A] {
        return Err(corrupt("WebP VP8 start code missing"));
    }
    let w = u32::from(le16(data, 6).ok_or_else(cut)? & 0x3FFF);
    let h = u32::from(le16(data, 8).ok_or_else(cut)? & 0x3FFF);
    Ok((w, h))
}

fn same_size(image: (u32, u32), declared: (u32, u32), what: &str) -> Result<()> {
    if image != declared {
        return Err(corrupt(format!(
            "WebP image data is {}x{}, its {what} {}x{}",
            image.0, image.1, declared.0, declared.1
        )));
    }
    Ok(())
}

/// A big-endian bit reader over a codec header (an AV1 OBU payload, an HEVC parameter set with
/// its emulation prevention bytes removed); reading past the end is corrupt, named by `what`.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8], what: &'static str) -> Bits<'a> {
        Bits { data, pos: 0, what }
    }

    pub(super) fn read(&mut self, n: u32) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte =
                *self.data.get(self.pos / 8).ok_or_else(|| corrupt(format!("{} is cut short", self.what)))?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    pub(super) fn flag(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    /// AV1's `uvlc()`: only skipped.
    pub(super) fn skip_uvlc(&mut self) -> Result<()> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(());
            }
        }
        self.read(zeros)?;
        Ok(())
    }

    /// HEVC's `ue(v)` (Exp-Golomb), up to 2^32 - 2; a longer code is corrupt.
    pub(super) fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(corrupt(format!("{} has an Exp-Golomb code over 32 bits", self.what)));
            }
        }
        Ok(((1u64 << zeros) - 1 + u64::from(self.read(zeros)?)) as u32)
    }
}
