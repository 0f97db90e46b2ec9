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

use super::corrupt;
use crate::Result;

/// dav1d's "try again" result: `-EAGAIN`.
const EAGAIN: c_int = -11;

/// Most pictures one item may produce (every layer of a layered image is one): the decoder is
/// fed one item, so a few calls always suffice; the bound only guards the loops.
const MAX_PICTURES: usize = 16;

/// Chroma layout of a decoded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    Mono,
    I420,
    I422,
    I444,
}

/// The samples of one row of a plane.
#[derive(Debug, Clone, Copy)]
pub(super) enum Row<'a> {
    Eight(&'a [u8]),
    /// 10- or 12-bit samples, one `u16` each.
    High(&'a [u16]),
}

impl Row<'_> {
    pub(super) fn get(&self, x: usize) -> u16 {
        match self {
            Row::Eight(r) => u16::from(r[x]),
            Row::High(r) => r[x],
        }
    }
}

/// A decoded picture, with the decoder that made it (both released on drop).
pub(super) struct Picture {
    picture: Dav1dPicture,
    /// Kept open while the picture lives; closed after it is released.
    _context: Decoder,
    pub(super) width: u32,
    pub(super) height: u32,
    /// Bits per sample: 8, 10 or 12.
    pub(super) bits: u8,
    pub(super) layout: Layout,
    /// The sequence header's colour description (CICP codes): colour primaries, transfer
    /// characteristics, matrix coefficients, and whether the samples are full range.
    pub(super) primaries: u32,
    pub(super) transfer: u32,
    pub(super) matrix: u32,
    pub(super) full_range: bool,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bits", &self.bits)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Picture {
    /// Width and height of `plane` (0: luma, 1 and 2: chroma).
    pub(super) fn plane_size(&self, plane: usize) -> (usize, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        match (plane, self.layout) {
            (0, _) | (_, Layout::I444) => (w, h),
            (_, Layout::I422) => (w.div_ceil(2), h),
            (_, Layout::I420) => (w.div_ceil(2), h.div_ceil(2)),
            (_, Layout::Mono) => (0, 0),
        }
    }

    /// Row `y` of `plane`. Panics if `y` or `plane` is out of range (a bug of the caller, not
    /// of the input: the sizes were checked when the picture was made).
    pub(super) fn row(&self, plane: usize, y: usize) -> Row<'_> {
        let (w, h) = self.plane_size(plane);
        assert!(y < h && w > 0, "row {y} of plane {plane} is outside the picture");
        let base = self.picture.data[plane].expect("checked in `decode`");
        let stride = self.picture.stride[usize::from(plane > 0)] as usize;
        if self.bits == 8 {
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
    let out = Picture {
        width: u32::try_from(p.w).unwrap_or(0),
        height: u32::try_from(p.h).unwrap_or(0),
        bits: u8::try_from(p.bpc).unwrap_or(0),
        layout: layout.unwrap_or(Layout::Mono),
        primaries,
        transfer,
        matrix,
        full_range,
        picture,
        _context: context,
    };
    outcome?;
    if layout.is_none() || !matches!(out.bits, 8 | 10 | 12) || out.width == 0 || out.height == 0 {
        return Err(corrupt("AV1 picture has an unknown layout or bit depth"));
    }
    let bytes = if out.bits == 8 { 1 } else { 2 };
    let planes = if out.layout == Layout::Mono { 1 } else { 3 };
    for plane in 0..planes {
        let (w, _) = out.plane_size(plane);
        let stride = out.picture.stride[usize::from(plane > 0)];
        let ok = out.picture.data[plane].is_some_and(|d| d.as_ptr().cast::<u8>().align_offset(bytes) == 0)
            && usize::try_from(stride).is_ok_and(|s| s >= w * bytes && s.is_multiple_of(bytes));
        if !ok {
            return Err(corrupt("AV1 picture has an unexpected plane layout"));
        }
    }
    Ok(out)
}
