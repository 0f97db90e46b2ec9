//! Encoding the working image to JPEG, PNG, WebP, GIF or AVIF. Outputs carry no metadata: no EXIF
//! (GPS is private data), no ICC profile (pixels are sRGB after decoding), no XMP; unless the
//! output params keep the source's profile or copyright tags, which the image then carries
//! ([`crate::metadata`]) and which are written into the file here.
//!
//! Encoder settings, chosen for speed per image on one Lambda vCPU (like sharp's defaults):
//!
//! - **JPEG** (mozjpeg, i.e. libjpeg-turbo): libjpeg-turbo-compatible settings (`JCP_FASTEST`:
//!   no trellis quantisation, no scan search, standard Annex K tables), optimised Huffman tables,
//!   4:2:0 chroma subsampling, baseline or (on request) the standard progressive script. Only the
//!   JFIF APP0 marker is written. For baseline files the tables' statistics are counted by imgfn
//!   (`transcode::PixelEncoder`, hooked into libjpeg's first pass) instead of libjpeg's scalar
//!   statistics pass, a quarter of a full-size encode's time: the same file, byte for byte. Alpha is flattened onto [`OutputParams::background`].
//! - **PNG** (`png` via `image`): 8-bit RGB or RGBA as the pixels are, adaptive filtering (each
//!   row gets the filter whose output has the smallest sum of absolute values). No ancillary
//!   chunks. [`OutputParams::compression_level`] picks the deflate encoder, and its levels are
//!   not zlib's: 0 stores; 1 is fdeflate, the png crate's fast encoder; 2 to 6 are fdeflate, and
//!   zlib-rs at that level as well on graphics ([`PNG_ZLIB_BELOW`]); 7 to 9 are zlib-rs at that
//!   level. The default, 6, writes a photo about ten times faster than zlib-rs's level 6 (the
//!   default before) within 2% of its bytes, and graphics at zlib-rs level 6's bytes for an added
//!   fdeflate pass.
//! - **WebP** (libwebp): lossy at [`OutputParams::quality`] or lossless, method
//!   [`OutputParams::effort`] (default 4, like sharp), alpha kept. Animations go through
//!   libwebp's animation encoder with each frame's delay and the loop count.
//! - **GIF** (`gif` via `image`): NeuQuant palette per frame at sampling factor
//!   [`GIF_SPEED`]; each frame's delay (in 1/100 s) and the loop count; pixels with alpha below
//!   128 become the transparent colour, the rest are opaque.
//! - **AVIF** (rav1e, in an avif-serialize container: `crate::avif`): 8-bit (or 10-bit) YCbCr,
//!   4:2:0 below quality 90 and 4:4:4 from 90 unless [`OutputParams::chroma_subsampling`] says
//!   which, at [`OutputParams::quality`], alpha
//!   kept (a second AV1 image at the same quality), rav1e speed from [`OutputParams::effort`]
//!   ([`AVIF_SPEEDS`]: effort 4 is speed 9, about 0.4 s of one core for a 1024x684 rendition),
//!   one thread. An image too large for its effort within [`AVIF_BUDGET_MS`] is encoded at a
//!   faster speed, and one too large at any speed is refused ([`avif_speed`]).
//!
//! JPEG, PNG and AVIF cannot animate here: they get the first frame.

use std::panic::AssertUnwindSafe;

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::geometry::{check_range, Color};
use crate::limits::WORST_BYTES_PER_PIXEL;
use crate::{Error, Image, Limits, OutputFormat, Pixels, Result};

/// How the result is encoded (the `output` of a pipeline; the params of `convert`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputParams {
    /// Output format; unset = the input's format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// JPEG, lossy WebP and AVIF quality, 1..=100, or `"source"` (see [`Quality`]). Default
    /// 80.
    #[serde(default)]
    pub quality: Quality,
    /// Progressive JPEG. Default false.
    #[serde(default)]
    pub progressive: bool,
    /// Lossless WebP. Default false.
    #[serde(default)]
    pub lossless: bool,
    /// Colour that transparent pixels are flattened onto when the format has no alpha (JPEG).
    /// Its own alpha is ignored. Default white.
    #[serde(default = "white")]
    pub background: Color,
    /// PNG compression level, 0 (stored, fastest, largest) ..= 9 (slowest). Not zlib's levels:
    /// 1 is fdeflate alone; 2..=6 are fdeflate, and on graphics zlib-rs at that level too, the
    /// smaller kept; 7..=9 are zlib-rs at that level alone (on photos up to 3% smaller than 6,
    /// in 10 to 20 times the time). Default 6. See [`PNG_ZLIB_BELOW`].
    #[serde(default = "default_compression_level")]
    pub compression_level: u8,
    /// Encoder effort, 0 (fastest) ..= 6 (smallest). WebP: libwebp's `method`, default 4 like
    /// sharp and cwebp. AVIF: a rav1e speed ([`AVIF_SPEEDS`]; 4 is speed 9).
    #[serde(default = "default_effort")]
    pub effort: u8,
    /// The format to write instead when the result has an alpha channel (say `png` with a
    /// `jpeg` format: photos as JPEG, transparent images as PNG). Unset: always `format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha_format: Option<OutputFormat>,
    /// Bits per sample of an AVIF: 8 or 10 (10 keeps smooth gradients free of banding, and
    /// costs about [`AVIF_TEN_BIT_PERCENT`] of the 8-bit encode time). Default 8. Other formats
    /// write 8 bits.
    #[serde(default = "default_depth")]
    pub depth: u8,
    /// Keep the source's ICC profile (a wide-gamut one: Display P3, Adobe RGB) instead of
    /// converting to sRGB: the output carries it (JPEG, PNG, WebP, AVIF; GIF is converted).
    /// Default false. See [`crate::metadata`].
    #[serde(default)]
    pub keep_icc: bool,
    /// Keep the source's Exif `Artist` and `Copyright` (and nothing else: never GPS) in the
    /// output (JPEG, PNG, WebP, AVIF). Default false. See [`crate::metadata`].
    #[serde(default)]
    pub keep_copyright: bool,
    /// AVIF chroma: `"4:2:0"` (Cb and Cr at half the width and height, as in every JPEG and lossy
    /// WebP imgfn writes: about a fifth fewer bytes than 4:4:4 on photos at the same quality),
    /// `"4:4:4"` (full resolution: sharp colour edges in graphics and small coloured text), or
    /// `"auto"`, the default: 4:2:0 below quality 90 and 4:4:4 from 90 up (libvips's rule).
    #[serde(default)]
    pub chroma_subsampling: ChromaSubsampling,
}

/// How an AVIF stores its chroma ([`OutputParams::chroma_subsampling`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum ChromaSubsampling {
    /// [`ChromaSubsampling::Cs420`] below [`FULL_CHROMA_FROM`], else [`ChromaSubsampling::Cs444`].
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "4:2:0")]
    Cs420,
    #[serde(rename = "4:4:4")]
    Cs444,
}

/// The quality from which [`ChromaSubsampling::Auto`] keeps full-resolution chroma: libvips's
/// threshold for its AVIF/HEIF and JPEG writers (`subsample_mode` auto). Whoever asks for that
/// much fidelity gets colour edges kept too; below it, half-resolution chroma costs nothing a
/// photo shows.
pub const FULL_CHROMA_FROM: u8 = 90;

impl ChromaSubsampling {
    /// [`ChromaSubsampling::Auto`] resolved for `quality` (1..=100); the others as they are.
    pub fn at(self, quality: u8) -> ChromaSubsampling {
        match self {
            ChromaSubsampling::Auto if quality >= FULL_CHROMA_FROM => ChromaSubsampling::Cs444,
            ChromaSubsampling::Auto => ChromaSubsampling::Cs420,
            fixed => fixed,
        }
    }
}

impl Default for OutputParams {
    fn default() -> Self {
        OutputParams {
            format: None,
            quality: Quality::default(),
            progressive: false,
            lossless: false,
            background: Color::WHITE,
            compression_level: default_compression_level(),
            effort: default_effort(),
            alpha_format: None,
            depth: default_depth(),
            keep_icc: false,
            keep_copyright: false,
            chroma_subsampling: ChromaSubsampling::default(),
        }
    }
}

/// The quality of lossy output: a level from 1 (smallest) to 100 (best), or `"source"`: the
/// source JPEG's own quantisation. With `"source"`, a JPEG that becomes a JPEG through overlays
/// only (watermarks, QR codes: see `transcode`) keeps its quantisation tables, so every block
/// the overlay does not touch is copied as it was, without generation loss; any other JPEG
/// source is encoded at the level its tables come closest to (the libjpeg level whose scaled
/// Annex K tables they are, for files that libjpeg, sharp, Pillow or ImageMagick wrote), and a
/// source that is not a JPEG at the default level, 80.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    Level(u8),
    Source,
}

impl Quality {
    /// The default level.
    pub const DEFAULT: u8 = 80;

    /// The level, for output that is not a transcoded JPEG ([`Quality::Source`] once the
    /// pipeline resolved it, or [`Quality::DEFAULT`]).
    pub fn level(self) -> u8 {
        match self {
            Quality::Level(q) => q.clamp(1, 100),
            Quality::Source => Quality::DEFAULT,
        }
    }
}

impl Default for Quality {
    fn default() -> Self {
        Quality::Level(Quality::DEFAULT)
    }
}

impl From<u8> for Quality {
    fn from(q: u8) -> Self {
        Quality::Level(q)
    }
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quality::Level(q) => write!(f, "{q}"),
            Quality::Source => f.write_str("source"),
        }
    }
}

impl Serialize for Quality {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Quality::Level(q) => s.serialize_u8(*q),
            Quality::Source => s.serialize_str("source"),
        }
    }
}

impl<'de> Deserialize<'de> for Quality {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quality;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"a quality from 1 to 100, or "source""#)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Quality, E> {
                // Out of range stays a level for validation to name (0, 101, 255).
                Ok(Quality::Level(u8::try_from(v).unwrap_or(u8::MAX)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Quality, E> {
                Ok(Quality::Level(u8::try_from(v).unwrap_or(0)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Quality, E> {
                match v {
                    "source" => Ok(Quality::Source),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}
fn default_compression_level() -> u8 {
    6
}
fn default_effort() -> u8 {
    4
}
fn default_depth() -> u8 {
    8
}
fn white() -> Color {
    Color::WHITE
}

/// An encoded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// Number of frames written (1 for stills).
    pub frames: u32,
}

impl crate::Validate for OutputParams {
    fn validate(&self, field: &str, _limits: &crate::Limits) -> crate::Result<()> {
        if let Quality::Level(q) = self.quality {
            check_range(&format!("{field}.quality"), q, 1, 100)?;
        }
        check_range(&format!("{field}.compression_level"), self.compression_level, 0, 9)?;
        check_range(&format!("{field}.effort"), self.effort, 0, 6)?;
        if !matches!(self.depth, 8 | 10) {
            return Err(crate::Error::invalid(
                format!("{field}.depth"),
                format!("must be 8 or 10 (bits per sample, for AVIF), got {}", self.depth),
            ));
        }
        Ok(())
    }
}

/// NeuQuant sampling factor for GIF palettes (1 = best, 30 = fastest). At 10 (the `gif`
/// crate's recommended compromise) NeuQuant learns from every 10th pixel instead of all of
/// them (`image`'s default, speed 1); a 1 MP photo frame then quantises and encodes in about
/// 0.2 s on one core, with a mean error of a few levels.
pub const GIF_SPEED: i32 = 10;

/// PNG levels 2 to 6 also try zlib-rs (at that level) when fdeflate's stream is under
/// 1/`PNG_ZLIB_BELOW` of the raw pixel bytes, and keep the smaller stream.
///
/// fdeflate (the png crate's `Compression::Fast`) uses one fixed Huffman table and finds only
/// runs of zeros. On filtered photo rows, mostly small residuals with few long repeats, that is
/// within 2% of zlib-rs's level 6 bytes in a tenth of its time or less. Graphics (screenshots,
/// logos, flat colour) repeat runs of pixels that only zlib finds: there fdeflate's stream is
/// 1.5 to 2.3 times zlib's, while zlib itself is fast (long matches). fdeflate's own ratio tells
/// the two apart: photos compress to 45-55% of their raw bytes, graphics to under 5%. Measured
/// with `examples/png_speeds.rs` (adaptive filter, corners rounded at 10%, one core, one run on
/// a machine shared with builds: times vary by up to 1.5x):
///
/// | image (RGBA) | raw bytes | fdeflate (level 1) | zlib-rs 6 | zlib-rs 7 | level 6 keeps |
/// |---|---:|---:|---:|---:|---|
/// | bench photo-1mp.jpg, 1224x816 | 3,995,136 | 1,863,115 (47%), 11 ms | 1,834,428, 193 ms | 1,800,464, 341 ms | fdeflate |
/// | bench alpha-4mp.png, 2448x1632 | 15,980,544 | 8,827,947 (55%), 40 ms | 8,932,010, 398 ms | 8,869,728, 485 ms | fdeflate |
/// | bench logo.png, 480x160 | 307,200 | 3,282 (1.1%), 0.14 ms | 1,426, 0.39 ms | 1,512, 0.74 ms | zlib-rs |
/// | a screenshot, 1988x1362 | 10,830,624 | 481,962 (4.5%), 9 ms | 309,837, 32 ms | 315,345, 49 ms | zlib-rs |
/// | a diagram, 1629x927 | 6,040,332 | 297,569 (4.9%), 5 ms | 133,657, 19 ms | 135,326, 36 ms | zlib-rs |
/// | a screenshot, 3013x1561 | 18,813,172 | 325,937 (1.7%), 16 ms | 194,305, 29 ms | 197,881, 55 ms | zlib-rs |
///
/// (The screenshots and the diagram are `llvm-cov-show-01.png`, `nrf52-memory-map.png` and
/// `trpl14-01.png` from Rust's installed documentation.) Zlib-rs's levels 1 to 5 are all slower
/// and larger than fdeflate on photos: level 1 (2,822,208 bytes, 35 ms) barely compresses, and
/// the filter matters less than the encoder (fdeflate with only Sub, Up, Avg or Paeth: 1.87 to
/// 2.03 MB on the photo, 1-4 ms faster than adaptive; on alpha-4mp 4-5% larger than adaptive).
pub const PNG_ZLIB_BELOW: usize = 5;

/// Largest side of a JPEG written (libjpeg's limit).
pub(crate) const JPEG_MAX_SIDE: u32 = 65_500;

/// Longest frame delay written, in ms: libwebp's limit (2^24 - 1 ms, about 4.6 hours). GIF
/// saturates earlier, at 655,350 ms.
const MAX_DELAY_MS: u32 = (1 << 24) - 1;

/// Encodes `image` as `format` under the default [`Limits`]: see [`encode_limited`].
pub fn encode(image: &Image, format: OutputFormat, out: &OutputParams) -> Result<Encoded> {
    encode_limited(image, format, out, &Limits::default())
}

/// Encodes `image` as `format`. Animated images keep their frames for GIF and WebP; other
/// formats get the first frame. Alpha is flattened onto `out.background` for JPEG. `limits`
/// bound what an AVIF may cost ([`avif_speed`]).
///
/// Fails with [`Error::InvalidParams`] (field `output.format`) when the image is larger than
/// the format allows (JPEG 65,500 px, WebP 16,383 px, GIF 65,535 px per side; AVIF see
/// [`avif_speed`]), and with [`Error::Encode`] when the image is empty or an encoder fails;
/// encoder panics (mozjpeg reports errors by unwinding) are caught and reported the same way.
pub fn encode_limited(
    image: &Image,
    format: OutputFormat,
    out: &OutputParams,
    limits: &Limits,
) -> Result<Encoded> {
    encode_part(image, format, out, limits, None)
}

/// [`encode_limited`] for one part of a larger image whose parts share one time budget (the
/// tiles of a slice): `whole` is that image's pixel count.
pub(crate) fn encode_part(
    image: &Image,
    format: OutputFormat,
    out: &OutputParams,
    limits: &Limits,
    whole: Option<u64>,
) -> Result<Encoded> {
    let first = image.frames.first().ok_or_else(|| Error::Encode("the image has no frames".into()))?;
    let (width, height) = first.pixels.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::Encode(format!("cannot encode an empty {width}x{height} image")));
    }
    let max_side = match format {
        OutputFormat::Jpeg => JPEG_MAX_SIDE,
        OutputFormat::Png => u32::MAX,
        OutputFormat::Webp => 16_383,
        OutputFormat::Gif => u32::from(u16::MAX),
        OutputFormat::Avif => AVIF_MAX_SIDE,
    };
    if width > max_side || height > max_side {
        return Err(Error::invalid(
            "output.format",
            format!(
                "{} images are at most {max_side} px per side; this one is {width}x{height}",
                format.extension()
            ),
        ));
    }
    let frames: &[crate::Frame] =
        if format.can_animate() { &image.frames } else { std::slice::from_ref(first) };
    if let Some(odd) = frames.iter().find(|f| f.pixels.dimensions() != (width, height)) {
        let (w, h) = odd.pixels.dimensions();
        return Err(Error::Encode(format!("animation frames differ in size: {width}x{height} and {w}x{h}")));
    }

    // GIF cannot carry a profile: pixels kept in one are converted to sRGB for it.
    let srgb: Vec<crate::Frame>;
    let frames = match (&image.metadata.icc, format) {
        (Some(icc), OutputFormat::Gif) => {
            srgb = frames
                .iter()
                .map(|f| {
                    let mut f = f.clone();
                    crate::decode::pixels_to_srgb(&mut f.pixels, icc);
                    f
                })
                .collect();
            &srgb[..]
        }
        _ => frames,
    };
    let first = &frames[0];
    let bytes = catch_encoder_panic(format, || match format {
        OutputFormat::Jpeg => encode_jpeg(&first.pixels, out),
        OutputFormat::Png => encode_png(&first.pixels, out),
        OutputFormat::Webp if frames.len() > 1 => encode_webp_animation(frames, image.loop_count, out),
        OutputFormat::Webp => encode_webp_still(&first.pixels, out),
        OutputFormat::Gif => encode_gif(frames, image.loop_count),
        OutputFormat::Avif => {
            let own = u64::from(width) * u64::from(height);
            let total = whole.unwrap_or(own).max(own);
            let speed = avif_speed(out.effort, out.depth, (width, height), total, limits)?;
            let exif = image.metadata.copyright.as_deref();
            crate::avif::encode(
                &first.pixels,
                out.quality.level(),
                speed,
                out.depth,
                out.chroma_subsampling,
                exif,
            )
        }
    })?;
    let bytes = crate::metadata::embed(bytes, format, &image.metadata)?;
    if bytes.is_empty() {
        return Err(Error::Encode(format!("the {} encoder produced no output", format.extension())));
    }
    Ok(Encoded { bytes, format, width, height, frames: u32::try_from(frames.len()).unwrap_or(u32::MAX) })
}

/// Runs an encoder, turning a panic (mozjpeg's error path, or a bug in a codec) into
/// [`Error::Encode`].
fn catch_encoder_panic(format: OutputFormat, f: impl FnOnce() -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("panic");
            Err(Error::Encode(format!("{} encoder failed: {message}", format.extension())))
        }
    }
}

fn encode_error(format: &str, e: impl std::fmt::Display) -> Error {
    Error::Encode(format!("{format}: {e}"))
}

/// Rows handed to libjpeg per call when flattening alpha: one MCU row at 4:2:0, so the
/// flattened copy stays small instead of a second full-size buffer.
const JPEG_BAND_ROWS: usize = 16;

fn encode_jpeg(pixels: &Pixels, out: &OutputParams) -> Result<Vec<u8>> {
    let (w, h) = pixels.dimensions();
    // A rough guess at the output size (about 1 bit per pixel) saves most reallocations.
    let capacity = (w as usize).saturating_mul(h as usize) / 8 + 4096;
    // Baseline files count their Huffman statistics in imgfn (the same file, faster: see
    // `transcode::PixelEncoder`); progressive ones, or a libjpeg set up otherwise, as below.
    if !out.progressive {
        let started = crate::transcode::PixelEncoder::start(w, h, out.quality.level(), capacity);
        if let Some(mut encoder) = started.map_err(|e| encode_error("jpeg", e))? {
            rgb_bands(pixels, out.background, |rows| {
                encoder.write(rows).map_err(|e| encode_error("jpeg", e))
            })?;
            return encoder.finish().map_err(|e| encode_error("jpeg", e));
        }
    }
    encode_jpeg_libjpeg(pixels, out, capacity)
}

/// [`encode_jpeg`] through the `mozjpeg` crate, libjpeg counting its own Huffman statistics.
fn encode_jpeg_libjpeg(pixels: &Pixels, out: &OutputParams, capacity: usize) -> Result<Vec<u8>> {
    let (w, h) = pixels.dimensions();
    let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    // mozjpeg's own defaults (JCP_MAX_COMPRESSION) turn on trellis quantisation, progressive
    // scan search and its alternative quant tables: a few percent smaller files for several
    // times the CPU. Like sharp (whose `mozjpeg` option is off by default) we use the
    // libjpeg-turbo profile and only add optimised Huffman tables, which cost one extra pass
    // over the coefficients and save ~5-10 %. This call resets every setting, so it comes first.
    comp.set_fastest_defaults();
    comp.set_size(w as usize, h as usize);
    comp.set_quality(f32::from(out.quality.level()));
    comp.set_optimize_coding(true);
    // 4:2:0 (the libjpeg default, set explicitly): sharp's default subsampling.
    comp.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
    if out.progressive {
        // The standard libjpeg progressive script (scan search stays off).
        comp.set_progressive_mode();
    }
    let mut started =
        comp.start_compress(Vec::with_capacity(capacity)).map_err(|e| encode_error("jpeg", e))?;
    rgb_bands(pixels, out.background, |rows| {
        started.write_scanlines(rows).map_err(|e| encode_error("jpeg", e))
    })?;
    started.finish().map_err(|e| encode_error("jpeg", e))
}

/// Hands `pixels` to `write` as RGB rows: RGB as it is, RGBA flattened onto `background`
/// [`JPEG_BAND_ROWS`] rows at a time.
fn rgb_bands(pixels: &Pixels, background: Color, mut write: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
    match pixels {
        Pixels::Rgb(img) => write(img.as_raw()),
        Pixels::Rgba(img) => {
            let w = img.width() as usize;
            let [br, bg, bb, _] = background.0;
            let bg = [u32::from(br), u32::from(bg), u32::from(bb)];
            let row_bytes = w * 4;
            let mut band = Vec::with_capacity(JPEG_BAND_ROWS * w * 3);
            for rows in img.as_raw().chunks(JPEG_BAND_ROWS * row_bytes) {
                band.clear();
                for px in rows.chunks_exact(4) {
                    let a = u32::from(px[3]);
                    let na = 255 - a;
                    for c in 0..3 {
                        // Straight-alpha "over": (c*a + bg*(255-a)) / 255, rounded.
                        band.push(((u32::from(px[c]) * a + bg[c] * na + 127) / 255) as u8);
                    }
                }
                write(&band)?;
            }
            Ok(())
        }
    }
}

fn encode_png(pixels: &Pixels, out: &OutputParams) -> Result<Vec<u8>> {
    let (w, h) = pixels.dimensions();
    let (raw, color) = match pixels {
        Pixels::Rgb(img) => (img.as_raw(), ExtendedColorType::Rgb8),
        Pixels::Rgba(img) => (img.as_raw(), ExtendedColorType::Rgba8),
    };
    let write = |compression: CompressionType| -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(raw.len() / 2 + 1024);
        // No ICC profile or EXIF is set, so only IHDR, IDAT and IEND are written. The filter is
        // ignored by the stored (level 0) encoder.
        PngEncoder::new_with_quality(&mut bytes, compression, FilterType::Adaptive)
            .write_image(raw, w, h, color)
            .map_err(|e| encode_error("png", e))?;
        Ok(bytes)
    };
    match out.compression_level.min(9) {
        0 => write(CompressionType::Uncompressed),
        // `Fast` is the png crate's fdeflate encoder; `Level(n)` is zlib-rs (through flate2).
        level @ 1..=6 => {
            let fast = write(CompressionType::Fast)?;
            if level == 1 || fast.len().saturating_mul(PNG_ZLIB_BELOW) >= raw.len() {
                return Ok(fast);
            }
            let zlib = write(CompressionType::Level(level))?;
            Ok(if zlib.len() < fast.len() { zlib } else { fast })
        }
        level => write(CompressionType::Level(level)),
    }
}

fn webp_config(out: &OutputParams) -> Result<webp::WebPConfig> {
    let mut config =
        webp::WebPConfig::new().map_err(|()| Error::Encode("webp: cannot initialise the config".into()))?;
    config.method = i32::from(out.effort.min(6));
    if out.lossless {
        config.lossless = 1;
        // For lossless WebP, `quality` is compression effort, not fidelity: 75 is cwebp's
        // default for `-lossless`. Pixels are exact whatever it is.
        config.quality = 75.0;
    } else {
        config.lossless = 0;
        config.quality = f32::from(out.quality.level());
        // Alpha, if any, is stored losslessly compressed (libwebp's default, kept explicit).
        config.alpha_compression = 1;
        config.alpha_quality = 100;
    }
    // With a second core (a Lambda function above 1,769 MB), libwebp compresses alpha beside the
    // colour and tries lossless variants on a second thread; the bytes are the same. (An opaque
    // lossy photo gains nothing measurable: its analysis pass is a small part of the encode.)
    config.thread_level = i32::from(std::thread::available_parallelism().is_ok_and(|n| n.get() > 1));
    Ok(config)
}

fn webp_input(pixels: &Pixels) -> (&[u8], webp::PixelLayout) {
    match pixels {
        Pixels::Rgb(img) => (img.as_raw(), webp::PixelLayout::Rgb),
        Pixels::Rgba(img) => (img.as_raw(), webp::PixelLayout::Rgba),
    }
}

fn encode_webp_still(pixels: &Pixels, out: &OutputParams) -> Result<Vec<u8>> {
    let config = webp_config(out)?;
    let (raw, layout) = webp_input(pixels);
    let (w, h) = pixels.dimensions();
    if !out.lossless {
        return crate::webp_lossy::encode(raw, layout, (w, h), &config);
    }
    let memory = webp::Encoder::new(raw, layout, w, h)
        .encode_advanced(&config)
        .map_err(|e| encode_error("webp", format!("{e:?}")))?;
    Ok(memory.to_vec())
}

fn encode_webp_animation(frames: &[crate::Frame], loop_count: u16, out: &OutputParams) -> Result<Vec<u8>> {
    let config = webp_config(out)?;
    let (w, h) = frames.first().map(|f| f.pixels.dimensions()).unwrap_or_default();
    let mut encoder = webp::AnimEncoder::new(w, h, &config);
    encoder.set_loop_count(i32::from(loop_count));
    // Timestamps are frame start times, in ms. The `webp` crate ends the animation with a call
    // at timestamp 0, which libwebp would reject (and then give the last frame the average
    // duration). libwebp computes durations as wrapping u32 differences, so we shift all
    // timestamps by minus the total duration: the animation then ends exactly at 0 and every
    // frame, the last included, keeps its own delay.
    let delays: Vec<u32> = frames.iter().map(|f| f.delay_ms.min(MAX_DELAY_MS)).collect();
    let total = delays.iter().fold(0u32, |acc, d| acc.wrapping_add(*d));
    let mut start = 0u32;
    for (frame, delay) in frames.iter().zip(&delays) {
        let (raw, layout) = webp_input(&frame.pixels);
        let timestamp = start.wrapping_sub(total) as i32;
        encoder.add_frame(webp::AnimFrame::new(raw, layout, w, h, timestamp, None));
        start = start.wrapping_add(*delay);
    }
    let memory = encoder.try_encode().map_err(|e| encode_error("webp animation", format!("{e:?}")))?;
    Ok(memory.to_vec())
}

fn encode_gif(frames: &[crate::Frame], loop_count: u16) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, GIF_SPEED);
        if frames.len() > 1 {
            let repeat = if loop_count == 0 { Repeat::Infinite } else { Repeat::Finite(loop_count) };
            encoder.set_repeat(repeat).map_err(|e| encode_error("gif", e))?;
        }
        for frame in frames {
            let rgba = gif_rgba(&frame.pixels)?;
            let delay = image::Delay::from_numer_denom_ms(frame.delay_ms.min(MAX_DELAY_MS), 1);
            encoder
                .encode_frame(image::Frame::from_parts(rgba, 0, 0, delay))
                .map_err(|e| encode_error("gif", e))?;
        }
    }
    Ok(bytes)
}

/// The RGBA copy the GIF encoder consumes (it quantises in place). GIF transparency is on/off:
/// alpha below 128 becomes transparent (the `gif` crate would otherwise make every pixel with
/// alpha > 0 opaque).
fn gif_rgba(pixels: &Pixels) -> Result<RgbaImage> {
    let (w, h) = pixels.dimensions();
    let raw = match pixels {
        Pixels::Rgb(img) => {
            let mut raw = Vec::with_capacity(img.as_raw().len() / 3 * 4);
            for px in img.as_raw().chunks_exact(3) {
                raw.extend_from_slice(&[px[0], px[1], px[2], 255]);
            }
            raw
        }
        Pixels::Rgba(img) => {
            let mut raw = img.as_raw().clone();
            for px in raw.chunks_exact_mut(4) {
                if px[3] < 128 {
                    px[3] = 0;
                }
            }
            raw
        }
    };
    RgbaImage::from_raw(w, h, raw).ok_or_else(|| Error::Encode("gif: pixel buffer size mismatch".into()))
}

/// Largest AVIF side: AV1's frame size field holds 16 bits.
const AVIF_MAX_SIDE: u32 = 65_536;

/// The rav1e speed (1 slowest ..= 10 fastest) each `effort` (0..=6) asks for. The default
/// effort, 4, is speed 9: a 1024 px rendition in about 0.3-0.4 s of one core, within a 1 s
/// budget, where speed 8 takes 0.8-1.2 s for a 9% smaller file. rav1e's speeds 7 and 5 give
/// the same files as 8 and 6 (the still-image settings in `crate::avif`), and 1 to 3 cost 10 to 100 times speed 9 for 2
/// to 18% smaller files; see [`AVIF_NS_PER_PIXEL`].
pub const AVIF_SPEEDS: [u8; 7] = [10, 10, 9, 9, 9, 6, 4];

/// Encode time per pixel at each rav1e speed (index `speed - 1`), in ns on one core: the
/// slowest of two or three runs of `examples/avif_speeds.rs` (release build, `taskset -c 0`,
/// quality 80, rav1e's asm on, a 2-core x86_64 cloud VM whose timings vary by up to 1.5x from
/// run to run), rounded up, on the benchmark corpus' 12 MP photo (4240x2832) and its 1024x684
/// rendition:
///
/// | speed | 1024x684 | 12 MP | ns/px used | file, 1024 / 12 MP |
/// |---:|---:|---:|---:|---:|
/// | 10 | 0.21-0.30 s | 3.9-4.6 s | 450 | 82 / 645 KB |
/// | 9 | 0.29-0.41 s | 5.1-5.8 s | 600 | 67 / 565 KB |
/// | 8 (7 the same file) | 0.75-1.2 s | 16-22 s | 1,900 | 61 / 546 KB |
/// | 6 (5 the same file) | 1.05-1.6 s | 15-22 s | 2,300 | 60 / 540 KB |
/// | 4 | 2.8-4.7 s | 66-83 s | 7,000 | 56 / 529 KB |
/// | 3 | 3.2-5.3 s | 111 s | 9,500 | 57 / 529 KB |
/// | 2 | 6.5-9.0 s | 293 s | 25,000 | 56 / 512 KB |
/// | 1 | 25-39 s | 830 s | 70,000 | 55 / 468 KB |
///
/// Measured at 4:4:4 (through ravif, whose settings `crate::avif` keeps). At 4:2:0, the default
/// below quality 90 since, the rendition took 0.68-0.74x that time at speeds 10, 9 and 6 and 0.88x at speed 4 (one
/// run of both, `--chroma`), for 0.78-0.81x the bytes, so the table bounds both.
/// The Lambda functions run on arm64 (Graviton, rav1e's NEON asm), not measured here: the
/// budget below leaves room for a slower core.
pub const AVIF_NS_PER_PIXEL: [u64; 10] = [70_000, 25_000, 9_500, 7_000, 2_300, 2_300, 1_900, 1_900, 600, 450];

/// Most one-core time an AVIF encode may take: 6 s. A Lambda function gets one vCPU per
/// 1,769 MB of memory, so this is about 10 s at 1024 MB and 21 s at 512 MB, inside the 30 s
/// timeout with the download, decode and upload.
pub const AVIF_BUDGET_MS: u64 = 6_000;

/// Peak memory of an AVIF encode per pixel of the image (12 MP: 354 MB peak RSS with the
/// decoded photo, `/usr/bin/time -v`): about three times [`WORST_BYTES_PER_PIXEL`], which
/// [`Limits::max_pixels`] is sized for.
pub const AVIF_BYTES_PER_PIXEL: u64 = 30;

/// 10-bit AVIF encode time as a percentage of 8-bit at the same speed: rav1e works on 16-bit
/// samples throughout. Measured with `examples/avif_speeds.rs --depth 10` against `--depth 8`
/// in the same run (one core, the machine busy with other builds, so the ratios, not the
/// times, are what counts): the 1024x684 rendition took 1.9x (speed 10), 2.3-3.3x (speed 9)
/// and 2.1x (speed 6) the 8-bit time, the 12 MP photo 1.25x at speed 10. 300% covers the worst.
pub const AVIF_TEN_BIT_PERCENT: u64 = 300;

/// Peak memory of a 10-bit AVIF encode per pixel: the 12 MP photo peaked at 394 MB against
/// 292 MB at 8 bits (`/usr/bin/time -f %M`, speed 10), about 1.35 times
/// [`AVIF_BYTES_PER_PIXEL`].
pub const AVIF_TEN_BIT_BYTES_PER_PIXEL: u64 = 40;

/// The rav1e speed for an AVIF of `size`, part of `total` pixels encoded under one budget (a
/// slice's tiles; else its own pixels): the speed `effort` asks for ([`AVIF_SPEEDS`]) if the
/// estimated time of all `total` pixels ([`AVIF_NS_PER_PIXEL`]) fits [`AVIF_BUDGET_MS`], else
/// the slowest faster one of [`AVIF_SPEEDS`] that fits. At `depth` 10 every time is
/// [`AVIF_TEN_BIT_PERCENT`] of the table's. An image over a third of [`Limits::max_pixels`]
/// (the encoder's memory, [`AVIF_BYTES_PER_PIXEL`]; [`AVIF_TEN_BIT_BYTES_PER_PIXEL`] at 10
/// bits), or too large for the budget even at speed 10 (about 13 MP at 8 bits), is refused:
/// [`Error::InvalidParams`] on `output.format`, naming the limit.
pub fn avif_speed(effort: u8, depth: u8, size: (u32, u32), total: u64, limits: &Limits) -> Result<u8> {
    let pixels = u64::from(size.0) * u64::from(size.1);
    let ten = depth > 8;
    let bytes_per_pixel = if ten { AVIF_TEN_BIT_BYTES_PER_PIXEL } else { AVIF_BYTES_PER_PIXEL };
    let memory_cap = limits.max_pixels.saturating_mul(WORST_BYTES_PER_PIXEL) / bytes_per_pixel;
    let ns_per_pixel = |speed: u8| {
        let ns = AVIF_NS_PER_PIXEL[usize::from(speed.clamp(1, 10)) - 1];
        if ten {
            ns * AVIF_TEN_BIT_PERCENT / 100
        } else {
            ns
        }
    };
    let mp = |p: u64| format!("{:.1} MP", p as f64 / 1e6);
    let refuse = |cap: u64, why: &str| {
        Error::invalid(
            "output.format",
            format!(
                "an AVIF here is at most {} ({why}); this one is {}x{} ({}): resize it first, or choose webp or jpeg",
                mp(cap),
                size.0,
                size.1,
                mp(total.max(pixels))
            ),
        )
    };
    if pixels > memory_cap {
        let why = format!("the encoder needs about {bytes_per_pixel} bytes per pixel at {depth} bits");
        return Err(refuse(memory_cap, &why));
    }
    let wanted = AVIF_SPEEDS[usize::from(effort.min(6))];
    let budget_ns = AVIF_BUDGET_MS * 1_000_000;
    let mut speeds: Vec<u8> = AVIF_SPEEDS.iter().copied().filter(|&s| s >= wanted).collect();
    speeds.sort_unstable();
    speeds.dedup();
    for speed in speeds {
        if total.max(pixels).saturating_mul(ns_per_pixel(speed)) <= budget_ns {
            return Ok(speed);
        }
    }
    let why = format!("the encode must take at most {} s of one core", AVIF_BUDGET_MS / 1000);
    Err(refuse(budget_ns / ns_per_pixel(10), &why))
}

/// Encodes one frame as an AVIF of `depth` bits per sample (8, or 10 for anything above 8) with
/// `chroma` subsampling at `quality` (1..=100) and rav1e `speed` (1..=10), on this thread: see
/// `crate::avif`. No Exif or other metadata is written.
///
/// This is what [`encode`] runs for AVIF after choosing the speed from `effort`; it is public for
/// the measurements behind that choice (`examples/avif_speeds.rs`).
pub fn encode_avif(
    pixels: &Pixels,
    quality: u8,
    speed: u8,
    depth: u8,
    chroma: ChromaSubsampling,
) -> Result<Vec<u8>> {
    crate::avif::encode(pixels, quality, speed, depth, chroma, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    /// Photo-like gradients with texture, flat areas, and (with `noise`) every byte random:
    /// at quality 100 that makes the largest coefficients a baseline file can hold.
    fn picture(w: u32, h: u32, seed: u32, noise: bool) -> RgbImage {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        RgbImage::from_fn(w, h, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            if noise {
                let [a, b, c, _] = state.to_le_bytes();
                return Rgb([a, b, c]);
            }
            let flat = x > w / 2 && y > h / 2;
            let grain = if flat { 0 } else { (state % 9) as i32 - 4 };
            let v = |base: u32| (base as i32 + grain).clamp(0, 255) as u8;
            Rgb([v(x * 255 / w.max(1)), v(y * 255 / h.max(1)), v((x + y) * 127 / (w + h).max(1))])
        })
    }

    #[test]
    fn counted_statistics_write_libjpegs_own_file() {
        let mut cases = 0;
        for (w, h) in [(1, 1), (7, 3), (16, 16), (17, 9), (33, 65), (200, 150), (257, 31), (1000, 3)] {
            for quality in [1u8, 35, 80, 95, 100] {
                for (seed, noise) in [(1, false), (2, true)] {
                    let rgb = picture(w, h, seed + w, noise);
                    let rgba = RgbaImage::from_fn(w, h, |x, y| {
                        let p = rgb.get_pixel(x, y).0;
                        Rgba([p[0], p[1], p[2], ((x * 37 + y * 11) % 256) as u8])
                    });
                    for pixels in [Pixels::Rgb(rgb.clone()), Pixels::Rgba(rgba)] {
                        let out =
                            OutputParams { quality: Quality::Level(quality), ..OutputParams::default() };
                        let counted = encode_jpeg(&pixels, &out).unwrap();
                        let libjpeg = encode_jpeg_libjpeg(&pixels, &out, 4096).unwrap();
                        assert!(
                            counted == libjpeg,
                            "{w}x{h} q{quality} noise {noise} alpha {}",
                            pixels.has_alpha()
                        );
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 8 * 5 * 2 * 2);
        // The counting did run (libjpeg's setup is the one it is for), not the fallback.
        assert!(crate::transcode::PixelEncoder::start(16, 16, 80, 4096).unwrap().is_some());
    }

    #[test]
    fn progressive_files_keep_libjpegs_pass() {
        let pixels = Pixels::Rgb(picture(64, 48, 3, false));
        let out = OutputParams { progressive: true, ..OutputParams::default() };
        assert_eq!(encode_jpeg(&pixels, &out).unwrap(), encode_jpeg_libjpeg(&pixels, &out, 4096).unwrap());
    }
}
