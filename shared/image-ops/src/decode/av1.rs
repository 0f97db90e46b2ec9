//! One AV1 still image decoded by rav1d (the Rust port of dav1d), through its dav1d API.
//!
//! One of the two modules of image-ops with `unsafe` code (with `transcode::ffi`): rav1d's public interface is the C
//! API of dav1d (`dav1d_open`, `dav1d_send_data`, `dav1d_get_picture`, ...). Everything unsafe
//! stays here, behind [`decode`] and [`Picture`], which hand out bounds-checked rows only.
//!
//! The caller has checked, before calling [`decode`], that every sequence header in `data`
//! gives the size the container declares, and that this size is within the limits. rav1d is
//! also told that size as its `frame_size_limit`, so a frame header that overrides the size
//! upwards is refused by the decoder before it allocates the frame. A panic inside rav1d
//! cannot be caught: its API functions are `extern "C"`, so it would abort the process.
#![allow(unsafe_code)]

use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dLogger, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422, DAV1D_PIXEL_LAYOUT_I444,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture, dav1d_open,
    dav1d_picture_unref, dav1d_send_data,
};
use rav1d::Dav1dResult;

use super::header::Bits;
use super::yuv::{self, Info, Layout, Row};
use super::{corrupt, unsupported};
use crate::Result;

/// dav1d's "try again" result: `-EAGAIN`.
const EAGAIN: c_int = -11;

/// Most pictures one item may produce (every layer of a layered image is one): the decoder is
/// fed one item, so a few calls always suffice; the bound only guards the loops.
const MAX_PICTURES: usize = 16;

/// A decoded picture, with the decoder that made it (both released on drop).
pub(super) struct Picture {
    picture: Dav1dPicture,
    /// Kept open while the picture lives; closed after it is released.
    _context: Decoder,
    /// The sequence header's colour description is in it.
    info: Info,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture").field("info", &self.info).finish_non_exhaustive()
    }
}

impl yuv::Picture for Picture {
    fn info(&self) -> &Info {
        &self.info
    }

    fn row(&self, plane: usize, y: usize) -> Row<'_> {
        let (w, h) = self.info.plane_size(plane);
        assert!(y < h && w > 0, "row {y} of plane {plane} is outside the picture");
        let base = self.picture.data[plane].expect("checked in `decode`");
        let stride = self.picture.stride[usize::from(plane > 0)] as usize;
        if self.info.bits == 8 {
            // SAFETY: `decode` checked that the plane pointer is non-null and that the stride is
            // at least `w` samples; dav1d allocates `stride * h` bytes per plane (its picture
            // allocator rounds rows up, never down), and the picture stays referenced (not
            // unref'd) for as long as `self` lives, which outlives the returned borrow.
            let row = unsafe { std::slice::from_raw_parts(base.as_ptr().cast::<u8>().add(y * stride), w) };
            Row::Eight(row)
        } else {
            // SAFETY: as above, with two bytes a sample; `decode` checked that the plane pointer
            // and the stride are two-byte aligned, so every row is.
            let row = unsafe {
                std::slice::from_raw_parts(base.as_ptr().cast::<u8>().add(y * stride).cast::<u16>(), w)
            };
            Row::High(row)
        }
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was filled by `dav1d_get_picture` and is unref'd only here.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.picture))) };
        // `self._context` is dropped (closed) after this, as fields drop after `drop`.
    }
}

/// An open rav1d context, closed on drop.
struct Decoder(Option<Dav1dContext>);

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context came from `dav1d_open` (or is `None`, which dav1d_close accepts)
        // and is closed only here; it sets `self.0` to `None`.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

fn check(res: Dav1dResult, what: &str) -> Result<()> {
    if res.0 == 0 {
        Ok(())
    } else {
        Err(corrupt(format!("AV1 {what} failed (dav1d error {})", res.0)))
    }
}

/// Decodes the AV1 image item `data` into one picture: the last one it produces (a layered
/// item refines its image layer by layer). `max_pixels` is given to rav1d as its frame size
/// limit; the caller checks the picture's size against the container's.
pub(super) fn decode(data: &[u8], max_pixels: u64) -> Result<Picture> {
    if data.is_empty() {
        return Err(corrupt("AV1 image item is empty"));
    }
    let mut settings = MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: dav1d_default_settings writes every field of the settings it is given.
    let mut settings = unsafe {
        dav1d_default_settings(NonNull::from(&mut settings).cast());
        settings.assume_init()
    };
    // One thread: a Lambda function has about one vCPU, and extra threads would each
    // allocate their own scratch buffers.
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    // Film grain is part of the image: libavif and browsers apply it.
    settings.apply_grain = 1;
    settings.all_layers = 0;
    settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX).max(1);
    // SAFETY: no callback, so nothing is ever called with the cookie.
    settings.logger = unsafe { Dav1dLogger::new(None, None) };

    let mut context = Decoder(None);
    // SAFETY: both pointers are valid for the call; on success `context.0` holds a context.
    check(
        unsafe { dav1d_open(Some(NonNull::from(&mut context.0)), Some(NonNull::from(&mut settings))) },
        "open",
    )?;
    let ctx = context.0.ok_or_else(|| corrupt("AV1 decoder did not open"))?;

    let mut input = Dav1dData::default();
    // SAFETY: dav1d_data_create allocates `data.len()` bytes owned by `input`, or returns null.
    let buf = unsafe { dav1d_data_create(Some(NonNull::from(&mut input)), data.len()) };
    let Some(buf) = NonNull::new(buf) else {
        return Err(corrupt("AV1 decoder could not allocate its input"));
    };
    // SAFETY: `buf` holds `data.len()` bytes and does not overlap `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.as_ptr(), data.len()) };

    let mut last: Option<Dav1dPicture> = None;
    let mut outcome = Ok(());
    let mut rounds = 0;
    // Feed the item; when the decoder will not take more (EAGAIN), take a picture out first.
    while input.sz > 0 {
        rounds += 1;
        // SAFETY: `ctx` is open; `input` is a valid Dav1dData that dav1d consumes in part or whole.
        let res = unsafe { dav1d_send_data(Some(ctx), Some(NonNull::from(&mut input))) };
        if res.0 == 0 && input.sz == 0 {
            break;
        }
        if (res.0 != 0 && res.0 != EAGAIN) || rounds > MAX_PICTURES {
            outcome = check(res, "decoding").and(Err(corrupt("AV1 item decodes to too many pictures")));
            break;
        }
        match take_picture(ctx) {
            Ok(Some(picture)) => replace(&mut last, picture),
            Ok(None) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // SAFETY: `input` was made by dav1d_data_create; unref is a no-op once dav1d consumed it.
    unsafe { dav1d_data_unref(Some(NonNull::from(&mut input))) };
    if outcome.is_ok() {
        // Drain: every picture still in the decoder; the last is the image.
        for _ in 0..MAX_PICTURES {
            match take_picture(ctx) {
                Ok(Some(picture)) => replace(&mut last, picture),
                Ok(None) => break,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
    }
    let Some(picture) = last else {
        outcome?;
        return Err(corrupt("AV1 item holds no picture"));
    };
    describe(picture, context, outcome)
}

/// Replaces the kept picture, releasing the one it supersedes.
fn replace(last: &mut Option<Dav1dPicture>, picture: Dav1dPicture) {
    if let Some(mut old) = last.replace(picture) {
        // SAFETY: `old` was filled by dav1d_get_picture and is unref'd once, here.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut old))) };
    }
}

/// One picture out of the decoder, `None` when it has none ready.
fn take_picture(ctx: Dav1dContext) -> Result<Option<Dav1dPicture>> {
    let mut picture = Dav1dPicture::default();
    // SAFETY: `ctx` is open; `picture` is valid to write to.
    let res = unsafe { dav1d_get_picture(Some(ctx), Some(NonNull::from(&mut picture))) };
    match res.0 {
        0 => Ok(Some(picture)),
        EAGAIN => Ok(None),
        _ => check(res, "decoding").map(|()| None),
    }
}

/// Checks the picture's planes and reads its parameters; releases it on error.
fn describe(picture: Dav1dPicture, context: Decoder, outcome: Result<()>) -> Result<Picture> {
    let p = &picture.p;
    let layout = match p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => Some(Layout::Mono),
        DAV1D_PIXEL_LAYOUT_I420 => Some(Layout::I420),
        DAV1D_PIXEL_LAYOUT_I422 => Some(Layout::I422),
        DAV1D_PIXEL_LAYOUT_I444 => Some(Layout::I444),
        _ => None,
    };
    // SAFETY: when set, `seq_hdr` points to the sequence header the picture holds a reference to.
    let seq = picture.seq_hdr.map(|s| unsafe { s.as_ref() });
    // 2 is "unspecified" for each code.
    let (primaries, transfer, matrix, full_range) =
        seq.map_or((2, 2, 2, false), |s| (s.pri, s.trc, s.mtrx, s.color_range != 0));
    let info = Info {
        width: u32::try_from(p.w).unwrap_or(0),
        height: u32::try_from(p.h).unwrap_or(0),
        bits: u8::try_from(p.bpc).unwrap_or(0),
        layout: layout.unwrap_or(Layout::Mono),
        primaries,
        transfer,
        matrix,
        full_range,
    };
    let out = Picture { picture, _context: context, info };
    outcome?;
    if layout.is_none() || !matches!(info.bits, 8 | 10 | 12) || info.width == 0 || info.height == 0 {
        return Err(corrupt("AV1 picture has an unknown layout or bit depth"));
    }
    let bytes = if info.bits == 8 { 1 } else { 2 };
    let planes = if info.layout == Layout::Mono { 1 } else { 3 };
    for plane in 0..planes {
        let (w, _) = info.plane_size(plane);
        let stride = out.picture.stride[usize::from(plane > 0)];
        let ok = out.picture.data[plane].is_some_and(|d| d.as_ptr().cast::<u8>().align_offset(bytes) == 0)
            && usize::try_from(stride).is_ok_and(|s| s >= w * bytes && s.is_multiple_of(bytes));
        if !ok {
            return Err(corrupt("AV1 picture has an unexpected plane layout"));
        }
    }
    Ok(out)
}

fn cut_obu() -> crate::Error {
    corrupt("AV1 bitstream is cut short")
}

/// Reads an OBU's leb128 value at `*pos`.
fn leb128(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(*pos).ok_or_else(cut_obu)?;
        *pos += 1;
        value |= u64::from(b & 0x7F) << (i * 7);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt("AV1 OBU size is too long"))
}

/// Walks the OBUs of an AV1 image item: every sequence header must give `size` as its
/// maximum frame size (the decoder allocates by the bitstream, not by `ispe`), and the item
/// must hold exactly one frame (layered images, several frames in one item, are refused).
pub(super) fn check_bitstream(data: &[u8], size: (u32, u32)) -> Result<()> {
    let mut pos = 0usize;
    let mut sequence_headers = 0;
    let mut frames = 0;
    while pos < data.len() {
        let header = data[pos];
        let kind = (header >> 3) & 0xF;
        let extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        if header & 0x80 != 0 {
            return Err(corrupt("AV1 OBU header has its forbidden bit set"));
        }
        pos += 1 + usize::from(extension);
        let len = if has_size {
            usize::try_from(leb128(data, &mut pos)?).map_err(|_| cut_obu())?
        } else {
            data.len().saturating_sub(pos)
        };
        let end = pos.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(cut_obu)?;
        let payload = &data[pos..end];
        match kind {
            1 => {
                let found = sequence_size(payload)?;
                if found != size {
                    return Err(corrupt(format!(
                        "AV1 sequence header is {}x{}, its image item {}x{}",
                        found.0, found.1, size.0, size.1
                    )));
                }
                sequence_headers += 1;
            }
            // A frame header or a frame (header and tile group).
            3 | 6 => frames += 1,
            _ => {}
        }
        pos = end;
    }
    if sequence_headers == 0 {
        return Err(corrupt("AV1 image item has no sequence header"));
    }
    match frames {
        0 => Err(corrupt("AV1 image item has no frame")),
        1 => Ok(()),
        _ => Err(unsupported("AVIF item with more than one AV1 frame (layered or progressive AVIF)")),
    }
}

/// The maximum frame size (`max_frame_width_minus_1 + 1`, ...) of an AV1 sequence header
/// (AV1 specification 5.5.1, read up to that field).
fn sequence_size(payload: &[u8]) -> Result<(u32, u32)> {
    let mut b = Bits::new(payload, "AV1 sequence header");
    let _profile = b.read(3)?;
    let _still = b.flag()?;
    let reduced = b.flag()?;
    if reduced {
        b.read(5)?; // seq_level_idx[0]
    } else {
        let timing_info = b.flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_bits = 0;
        if timing_info {
            b.read(32)?; // num_units_in_display_tick
            b.read(32)?; // time_scale
            if b.flag()? {
                b.skip_uvlc()?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info = b.flag()?;
            if decoder_model_info {
                buffer_delay_bits = b.read(5)? + 1;
                b.read(32)?; // num_units_in_decoding_tick
                b.read(5)?; // buffer_removal_time_length_minus_1
                b.read(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = b.flag()?;
        let operating_points = b.read(5)? + 1;
        for _ in 0..operating_points {
            b.read(12)?; // operating_point_idc
            if b.read(5)? > 7 {
                b.read(1)?; // seq_tier
            }
            if decoder_model_info && b.flag()? {
                b.read(buffer_delay_bits)?; // decoder_buffer_delay
                b.read(buffer_delay_bits)?; // encoder_buffer_delay
                b.read(1)?; // low_delay_mode_flag
            }
            if initial_display_delay && b.flag()? {
                b.read(4)?;
            }
        }
    }
    let width_bits = b.read(4)? + 1;
    let height_bits = b.read(4)? + 1;
    let width = b.read(width_bits)? + 1;
    let height = b.read(height_bits)? + 1;
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_header_sizes() {
        // rav1e's reduced still-picture header for 64x48: profile 0, still, reduced,
        // level 0, 6+1 and 6+1 bits of size.
        let mut bits: Vec<u8> = Vec::new();
        let mut push = |v: u32, n: u32| (0..n).rev().for_each(|i| bits.push(((v >> i) & 1) as u8));
        push(0, 3);
        push(1, 1);
        push(1, 1);
        push(0, 5);
        push(6, 4);
        push(6, 4);
        push(63, 7);
        push(47, 7);
        let bytes: Vec<u8> =
            bits.chunks(8).map(|c| c.iter().enumerate().fold(0, |a, (i, b)| a | b << (7 - i))).collect();
        assert_eq!(sequence_size(&bytes).ok(), Some((64, 48)));
        assert!(sequence_size(&bytes[..3]).is_err());
    }
}
