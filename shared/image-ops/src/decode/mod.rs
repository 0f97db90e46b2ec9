//! Guarded decoding of untrusted bytes into the working [`Image`].
//!
//! # Guard order
//!
//! Nothing is decoded, and no buffer sized by the input's header is allocated, before these
//! checks pass, in this order:
//!
//! 1. **Byte length** against [`Limits::max_input_bytes`] ([`Error::InputTooLarge`]).
//! 2. **Magic bytes** against an allowlist: JPEG, PNG, GIF, WebP, AVIF, HEIC ([`sniff`]).
//!    Everything else is [`Error::UnsupportedFormat`]; SVG/XML, TIFF, BMP, PDF and other
//!    ISO-BMFF files are named in the message.
//! 3. **Header** ([`probe`]): dimensions and frame count are read by hand-written, bounded parsers
//!    (JPEG: marker walk to the first SOFn; PNG: IHDR, and the `acTL` frame count of an animated
//!    PNG, found by skipping the chunks before IDAT; GIF: logical screen and every image
//!    descriptor, counting frames by skipping data sub-blocks without LZW decoding, stopping once
//!    over the limit; WebP: VP8/VP8L/VP8X canvas, counting ANMF chunks, and every VP8/VP8L
//!    bitstream header, which must give the size of its canvas or ANMF frame, since the decoder
//!    allocates by it; AVIF: the container's boxes, each of which must lie inside its parent, with
//!    fixed caps on the items, extents, references and properties kept, then the `ispe` of the
//!    primary item, or a grid's output size and every tile's `ispe`, and of the alpha item, and
//!    every sequence header of every AV1 item to be decoded, which must give its item's `ispe`;
//!    HEIC: the same container walk, then every HEVC item's sequence parameter set, whose coded
//!    size must be within the limits and whose size less its conformance window must be its
//!    item's `ispe`, in 4:2:0 or monochrome, 8 or 10 bits).
//!    A zero, inconsistent or
//!    cut-short header is [`Error::CorruptImage`]; a side over `max_side`, more than `max_pixels`
//!    per frame, more than `max_frames`, or more than `max_total_pixels` over all frames is
//!    [`Error::TooManyPixels`].
//! 4. **Decoder limits**: PNG, GIF and WebP are decoded by the `image` crate with its own
//!    [`image::Limits`] set (maximum width/height = `max_side`, and an allocation budget) as a
//!    second guard. PNG metadata (compressed text, ICC, Exif) gets a fixed 8 MiB budget, so an
//!    `iCCP` bomb stops there; compressed text chunks are never inflated. An `image` limit error is
//!    [`Error::TooManyPixels`]; any other decoder error is [`Error::CorruptImage`].
//!
//! AVIF's AV1 items are decoded by rav1d, told the item's size as its frame size limit (a frame
//! header that overrides the size upwards is refused before the frame is allocated), one
//! thread, film grain applied. HEIC's HEVC items are decoded by heic-rs (no unsafe code; a panic
//! in it is caught and the input called corrupt), one tile at a time. Each decoded picture must
//! have its item's size.
//!
//! JPEG is decoded by libjpeg-turbo (mozjpeg). Its fatal errors unwind; every call runs inside
//! `catch_unwind` and becomes [`Error::CorruptImage`]. libjpeg only *warns* on premature end of
//! data (and pads the image with grey), so a JPEG whose entropy-coded data does not end with an
//! EOI marker is rejected as truncated before decoding, and the decode also fails if libjpeg
//! asked for bytes past the end of the input. Other libjpeg warnings (e.g. extraneous bytes
//! between markers) are tolerated, as libjpeg does. Among them is a bogus progression, so a
//! scan may repeat, and every scan costs libjpeg a pass over all the blocks of its components
//! however few bytes it takes (a 14-byte scan header with no data costs about 0.4 ms per
//! megapixel): a JPEG with more than [`MAX_JPEG_SCANS`] scans is rejected by the marker walk,
//! before decoding.
//!
//! # Orientation
//!
//! The EXIF orientation (all eight values) is applied to the pixels, so the result is upright:
//! JPEG from the first APP1 `Exif\0\0` segment, PNG from `eXIf`, WebP from its `EXIF` chunk.
//! GIF has no orientation. AVIF's and HEIC's `irot` (anti-clockwise quarter turns) then `imir`
//! (axis 0: top and bottom exchanged, 1: left and right, as libavif and libheif read ISO/IEC
//! 23008-12:2022) are applied; their Exif orientation is not: HEIF makes `irot`/`imir` the
//! normative transforms and Exif informative, and libavif and iPhones write both from one
//! orientation, so applying both would turn the image twice (browsers, libavif and libheif
//! apply `irot`/`imir` only). [`Probe`] reports the stored
//! (not upright) size.
//!
//! # Colour: ICC profiles and CMYK
//!
//! Outputs are sRGB and carry no profile unless the output keeps it ([`DecodeOptions::keep_icc`],
//! see [`crate::metadata`]: an RGB profile that is not sRGB is then left unapplied and handed to
//! the encoder). An embedded ICC profile (JPEG APP2
//! `ICC_PROFILE` segments reassembled by sequence number, PNG `iCCP`, WebP `ICCP`, GIF
//! `ICCRGBG1`, AVIF and HEIC `colr` of type `prof` or `rICC`) is parsed with moxcms and, unless it behaves as sRGB (checked by converting a
//! grid of test colours), the pixels are converted to sRGB with relative colorimetric intent:
//! RGB and RGBA pixels with an RGB profile, grey pixels with a grey profile. A profile that
//! cannot be parsed, does not match the pixels' colour model, or for which moxcms cannot build
//! a transform is ignored and the pixels are kept as they are: decoding never fails because
//! of a profile.
//!
//! AVIF's and HEIC's YUV is converted to RGB with the matrix of the `colr` `nclx` box (the
//! primary item's, else a grid's first tile's), else of the AV1 sequence header for AVIF
//! (BT.601 when unspecified) and BT.601 full range for HEIC (libheif's default: the HEVC VUI is
//! not read); BT.709, BT.2020, SMPTE 240, FCC, YCgCo and identity too; chroma-derived and
//! ICtCp matrices fall back to BT.601; full or limited range as signalled; 4:2:0 and 4:2:2
//! chroma is upsampled bilinearly (libavif's weights). 10- and 12-bit samples are reduced to 8
//! bits with rounding. The alpha auxiliary image (`auxC`
//! `urn:mpeg:mpegB:cicp:systems:auxiliary:alpha`, or HEVC's `urn:mpeg:hevc:2015:auxid:1`)
//! becomes alpha (full range, as libavif reads it), made straight when the file says it is
//! premultiplied (`prem`). `nclx` (or sequence header) primaries and transfer other than sRGB's
//! are converted to sRGB (HDR transfers are kept as stored); an ICC profile wins over them.
//! A clean aperture (`clap`) crops the image before `irot` and `imir`, as libheif and Chromium
//! apply it, when it is a whole number of pixels inside the image (what MIAF requires); one
//! that is not is ignored (the whole image is shown), never guessed at or refused.
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
//! `ceil(h·n/8)`, as libjpeg computes it — is still at least (1 + n/8) × `ceil(w·factor)` ×
//! `ceil(h·factor)`: the resampler is left a reduction of at least 1.125, 1.25 or 1.5, which
//! keeps its Lanczos filter in charge of the quality (libvips's and sharp's choice). A factor
//! that is not in (0, 1) decodes at full size. Other formats always decode at full size.
//!
//! # Pixel formats
//!
//! 16-bit samples are reduced to 8 bits; grey, grey+alpha, palette and tRNS transparency become
//! [`Pixels::Rgb`] or [`Pixels::Rgba`] without losing alpha. Sources without alpha, and
//! animations whose every pixel is opaque, become [`Pixels::Rgb`]. Animated GIF, WebP and PNG
//! (APNG, 8-bit; 16-bit APNG is refused as unsupported) decode to full-canvas frames with their
//! delays and loop count. An AVIF image sequence (`avis`) decodes to its still primary image (the
//! track is ignored; one with no still image is refused as unsupported); an AVIF item holding
//! more than one AV1 frame (a layered, progressive image) is refused as unsupported. AVIF grids
//! are assembled from their tiles, decoded one at a time.
//!
//! # Where things are
//!
//! - [`sniff`](sniff::sniff) — the magic-byte allowlist and the names of refused formats;
//! - `header` — bounded header parsers for PNG (with APNG's `acTL`), GIF and WebP (dimensions,
//!   frame counts);
//! - `jpeg` — the JPEG marker walk (header, EXIF, ICC, Adobe), DCT-scaled decoding by
//!   libjpeg-turbo;
//! - `jpeg_dc` — 1/8-scale decoding from the DC coefficients (AC codes skipped, luma's
//!   progressive AC scans not read), libjpeg-turbo's output bit for bit; anything else is left to
//!   libjpeg;
//! - `codecs` — PNG, GIF and WebP (stills and animations) through the `image` crate;
//! - `heif` — the bounded AVIF/HEIC container parser, YUV to RGB, grids, alpha, transforms;
//! - `yuv` — a decoded YUV picture, whichever codec made it;
//! - `av1` — AV1 decoding by rav1d (one of the two modules with `unsafe` code, with `transcode::ffi`: rav1d's API is dav1d's
//!   C API) and the AV1 sequence header check;
//! - `hevc` — HEVC decoding by heic-rs, the `hvcC` and sequence parameter set checks;
//! - `colour` — ICC profiles to sRGB, grey and CMYK to RGB;
//! - `orient` — EXIF orientation.

mod av1;
mod codecs;
mod colour;
pub(crate) mod entropy;
mod header;
mod heif;
mod hevc;
pub(crate) mod jpeg;
pub(crate) mod jpeg_dc;
mod orient;
mod sniff;
mod yuv;

use image::ImageError;

pub use self::sniff::sniff;

/// Most scans a JPEG may have. libjpeg's standard progressive script has 10, and encoders that
/// search for a smaller one stay well below this; each scan is a pass over every block.
pub const MAX_JPEG_SCANS: usize = 256;
use crate::{Error, Image, InputFormat, Limits, Result};

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
    /// apply. A JPEG is then decoded at the smallest DCT scale (1/8..1) that stays comfortably
    /// larger (see the module docs). `None` decodes at full size.
    pub shrink: Option<&'a dyn Fn(u32, u32) -> f64>,
    /// Keep an embedded RGB profile that is not sRGB instead of converting the pixels to sRGB
    /// (the output param `keep_icc`): the image's [`Metadata::icc`](crate::Metadata) then names
    /// the pixels' colour space.
    pub keep_icc: bool,
    /// Read the Exif `Artist` and `Copyright` into [`Metadata::copyright`](crate::Metadata)
    /// (the output param `keep_copyright`).
    pub keep_copyright: bool,
}

impl std::fmt::Debug for DecodeOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeOptions")
            .field("first_frame_only", &self.first_frame_only)
            .field("shrink", &self.shrink.is_some())
            .field("keep_icc", &self.keep_icc)
            .field("keep_copyright", &self.keep_copyright)
            .finish()
    }
}

fn corrupt(message: impl Into<String>) -> Error {
    Error::CorruptImage(message.into())
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::UnsupportedFormat(message.into())
}

/// Reads format, dimensions and frame count from the header and checks them against `limits`.
/// This is the one probe of an input: [`decode_probed`] decodes what it describes.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    let len = bytes.len() as u64;
    if len > limits.max_input_bytes {
        return Err(Error::InputTooLarge { bytes: len, limit: limits.max_input_bytes });
    }
    let format = sniff(bytes)?;
    let (width, height, frames) = match format {
        InputFormat::Jpeg => jpeg::header(bytes)?,
        InputFormat::Png => header::png(bytes)?,
        InputFormat::Gif => header::gif(bytes, limits)?,
        InputFormat::Webp => header::webp(bytes, limits)?,
        InputFormat::Avif | InputFormat::Heic => {
            let heif = heif::parse(bytes, format, limits)?;
            (heif.width, heif.height, 1)
        }
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

/// Probes, then decodes into an upright sRGB [`Image`].
pub fn decode(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let probe = probe(bytes, limits)?;
    decode_probed(bytes, &probe, limits, options)
}

/// Decodes what `probe` (the result of [`probe`] on these same bytes and limits) describes
/// into an upright sRGB [`Image`], without probing again.
pub fn decode_probed(
    bytes: &[u8],
    probe: &Probe,
    limits: &Limits,
    options: &DecodeOptions<'_>,
) -> Result<Image> {
    match probe.format {
        InputFormat::Jpeg => jpeg::decode(bytes, probe, options),
        InputFormat::Png => codecs::png(bytes, limits, options),
        InputFormat::Gif => codecs::gif(bytes, limits, options),
        InputFormat::Webp => codecs::webp(bytes, limits, options),
        InputFormat::Avif | InputFormat::Heic => heif::decode(bytes, probe.format, limits, options),
    }
}

/// Converts pixels in the colour space of `icc` to sRGB, for an output that cannot carry the
/// profile (GIF).
pub(crate) fn pixels_to_srgb(pixels: &mut crate::Pixels, icc: &[u8]) {
    match pixels {
        crate::Pixels::Rgb(img) => colour::convert_in_place(img.as_mut(), icc, moxcms::Layout::Rgb),
        crate::Pixels::Rgba(img) => colour::convert_in_place(img.as_mut(), icc, moxcms::Layout::Rgba),
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
