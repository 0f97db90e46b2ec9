//! Hostile inputs: each case must fail (or succeed) with the right category, through both
//! `probe` and `decode`, while the peak heap allocation stays small.
//!
//! A counting global allocator measures the peak. Everything runs in ONE test so that no
//! other test thread allocates while a case is measured.
#![allow(clippy::unwrap_used)]
// A global allocator is the only way to observe peak heap use; it just forwards to `System`.
#![allow(unsafe_code)]

mod common;
mod craft;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use image_ops::decode::{decode, probe, DecodeOptions};
use image_ops::{Error, Limits};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result and the peak heap growth (bytes) while it ran.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Unsupported,
    Corrupt,
    TooMany,
    /// Over the byte limit: refused before the magic bytes are even looked at.
    TooLarge,
    /// Passes (the hostile part is ignored, or lies past what the step reads); a decode gives a
    /// tiny image.
    Passes,
}

fn category(r: &Result<impl Sized, Error>) -> Want {
    match r {
        Ok(_) => Want::Passes,
        Err(Error::UnsupportedFormat(_)) => Want::Unsupported,
        Err(Error::CorruptImage(_)) => Want::Corrupt,
        Err(Error::TooManyPixels(_)) => Want::TooMany,
        Err(Error::InputTooLarge { .. }) => Want::TooLarge,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

const MAX_PEAK: usize = 16 * 1024 * 1024;

fn sof_65500() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    // SOF0: length 17, precision 8, height, width, 3 components.
    j.extend_from_slice(&[0xFF, 0xC0, 0, 17, 8]);
    j.extend_from_slice(&65500u16.to_be_bytes());
    j.extend_from_slice(&65500u16.to_be_bytes());
    j.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    j.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0, 0x12, 0x34, 0xFF, 0xD9]);
    j
}

fn webp_vp8l(width: u32, height: u32) -> Vec<u8> {
    let mut payload = vec![0x2F];
    let bits = (width - 1) | (height - 1) << 14 | 1 << 28;
    payload.extend_from_slice(&bits.to_le_bytes());
    payload.extend_from_slice(&[0; 16]);
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&((4 + 8 + payload.len()) as u32).to_le_bytes());
    w.extend_from_slice(b"WEBPVP8L");
    w.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    w.extend_from_slice(&payload);
    w
}

/// A RIFF WebP file of these chunks.
fn riff_webp(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (id, payload) in chunks {
        body.extend_from_slice(*id);
        body.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        body.extend_from_slice(payload);
        if payload.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut w = b"RIFF".to_vec();
    w.extend_from_slice(&(body.len() as u32).to_le_bytes());
    w.extend_from_slice(&body);
    w
}

/// A VP8 key frame header claiming `width` x `height`, and a little (garbage) data.
fn vp8_frame(width: u16, height: u16) -> Vec<u8> {
    let mut p = vec![0x30, 0x04, 0x00, 0x9D, 0x01, 0x2A];
    p.extend_from_slice(&width.to_le_bytes());
    p.extend_from_slice(&height.to_le_bytes());
    p.extend_from_slice(&[0xF3; 96]);
    p
}

fn le24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Found by the decode fuzz target (tests/fuzz/artifacts/decode/oom-e46b5f0b…): a VP8X canvas of
/// 24x20 whose VP8 bitstream says 13080x13299. The decoder allocates by the bitstream (174 MB
/// from 403 bytes) and compares the sizes only afterwards. Still, or as an animation frame.
fn webp_vp8_larger_than_canvas(animated: bool) -> Vec<u8> {
    let mut vp8x = vec![if animated { 0x02 } else { 0 }, 0, 0, 0];
    vp8x.extend_from_slice(&le24(23));
    vp8x.extend_from_slice(&le24(19));
    let frame = vp8_frame(13080, 13299);
    if !animated {
        return riff_webp(&[(b"VP8X", vp8x), (b"VP8 ", frame)]);
    }
    // ANMF: x, y, width - 1, height - 1, duration (24 bits each), flags; then the frame's chunks.
    let mut anmf = [le24(0), le24(0), le24(23), le24(19), le24(100)].concat();
    anmf.push(0);
    anmf.extend_from_slice(b"VP8 ");
    anmf.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    anmf.extend_from_slice(&frame);
    riff_webp(&[(b"VP8X", vp8x), (b"ANIM", vec![0; 6]), (b"ANMF", anmf)])
}

fn text_bombs() -> Vec<u8> {
    let gib = 1u64 << 30;
    let zeros = craft::zlib_zeros(gib);
    let small = common::png_bytes(&common::photo_rgba(8, 8));
    let mut ztxt = b"Comment\0\0".to_vec();
    ztxt.extend_from_slice(&zeros);
    let mut itxt = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
    itxt.extend_from_slice(&zeros);
    let png = craft::png_insert_after_ihdr(&small, b"zTXt", &ztxt);
    craft::png_insert_after_ihdr(&png, b"iTXt", &itxt)
}

/// A 1x1 canvas whose only image descriptor claims 65535x65535.
fn gif_huge_frame() -> Vec<u8> {
    let mut g = craft::gif_many_frames(1);
    let at = g.iter().position(|&b| b == 0x2C).unwrap();
    g[at + 5..at + 9].copy_from_slice(&[0xFF; 4]);
    g
}

/// An APNG whose acTL declares `frames` frames (the file holds one 8x8 frame).
fn apng_declaring(width: u32, height: u32, frames: u32) -> Vec<u8> {
    let mut actl = frames.to_be_bytes().to_vec();
    actl.extend_from_slice(&0u32.to_be_bytes());
    craft::png_file(&craft::ihdr(width, height, 8, 6), &[(b"acTL", actl)], &craft::zlib_stored(&[0; 64]))
}

fn iccp_bomb() -> Vec<u8> {
    let mut iccp = b"evil\0\0".to_vec();
    iccp.extend_from_slice(&craft::zlib_zeros(1 << 30));
    craft::png_insert_after_ihdr(&common::png_bytes(&common::photo_rgba(8, 8)), b"iCCP", &iccp)
}

#[test]
fn hostile_inputs_fail_fast_and_small() {
    let mut rng = craft::Rng(42);
    let photo_jpeg = common::jpeg_bytes(&common::photo(512, 512));
    let big_png_header =
        craft::png_file(&craft::ihdr(50_000, 50_000, 8, 2), &[], &craft::zlib_stored(&[0; 64]));
    let avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf\0\0\0\0meta".to_vec();
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0meta".to_vec();
    let svg =
        b"\xEF\xBB\xBF\n  <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100000\" height=\"100000\"/>"
            .to_vec();
    let default = Limits::default();
    let lowered = Limits { max_pixels: 1_000_000, ..Limits::default() };

    // (name, input, limits, what probe says, what decode says). Probe reads the header only,
    // so a JPEG cut in its scan data passes probe and fails decode.
    use Want::*;
    let cases: Vec<(&str, Vec<u8>, Limits, Want, Want)> = vec![
        ("empty", Vec::new(), default, Unsupported, Unsupported),
        ("random bytes", rng.bytes(64 * 1024), default, Unsupported, Unsupported),
        ("truncated jpeg", photo_jpeg[..photo_jpeg.len() / 2].to_vec(), default, Passes, Corrupt),
        ("png ihdr 50000x50000", big_png_header, default, TooMany, TooMany),
        ("png zTXt+iTXt 1 GiB bombs", text_bombs(), default, Passes, Passes),
        ("png iCCP 1 GiB bomb", iccp_bomb(), default, Passes, Passes),
        ("gif 5000 frames", craft::gif_many_frames(5000), default, TooMany, TooMany),
        ("gif 65535x65535 frame on 1x1 canvas", gif_huge_frame(), default, TooMany, TooMany),
        ("apng acTL 1,000,000 frames", apng_declaring(8, 8, 1_000_000), default, TooMany, TooMany),
        ("apng acTL 2^32-1 frames", apng_declaring(8, 8, u32::MAX), default, TooMany, TooMany),
        ("apng 5000x5000 x 10 frames (250 MP)", apng_declaring(5000, 5000, 10), default, TooMany, TooMany),
        ("svg", svg, default, Unsupported, Unsupported),
        ("avif", avif, default, Unsupported, Unsupported),
        ("heic", heic, default, Unsupported, Unsupported),
        ("webp 16383x16383", webp_vp8l(16383, 16383), lowered, TooMany, TooMany),
        ("webp 24x20 canvas, 13080x13299 vp8", webp_vp8_larger_than_canvas(false), default, Corrupt, Corrupt),
        ("webp 24x20 frame, 13080x13299 vp8", webp_vp8_larger_than_canvas(true), default, Corrupt, Corrupt),
        ("jpeg sof 65500x65500", sof_65500(), default, TooMany, TooMany),
        ("jpeg sof cut short", sof_65500()[..15].to_vec(), default, Corrupt, Corrupt),
        ("jpeg cut before sof", sof_65500()[..6].to_vec(), default, Corrupt, Corrupt),
        (
            "input over byte limit",
            vec![0xFF; 2048],
            Limits { max_input_bytes: 1024, ..default },
            TooLarge,
            TooLarge,
        ),
    ];

    for (name, bytes, limits, probe_want, decode_want) in cases {
        let (probed, peak_probe) = measure(|| probe(&bytes, &limits));
        let (decoded, peak_decode) = measure(|| decode(&bytes, &limits, &DecodeOptions::default()));
        assert_eq!(category(&probed), probe_want, "{name}: probe gave {probed:?}");
        assert_eq!(category(&decoded), decode_want, "{name}: decode gave {:?}", decoded.as_ref().err());
        if let Ok(img) = &decoded {
            assert!(img.width() <= 8 && img.height() <= 8, "{name}");
        }
        eprintln!("{name}: peak {peak_probe} B probe, {peak_decode} B decode");
        assert!(peak_probe < MAX_PEAK && peak_decode < MAX_PEAK, "{name}: peak {peak_probe} / {peak_decode}");
    }
}
