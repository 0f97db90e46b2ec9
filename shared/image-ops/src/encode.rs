//! Encoding the working image to JPEG, PNG, WebP or GIF. Outputs carry no metadata: no EXIF
//! (GPS is private data), no ICC profile (pixels are sRGB after decoding), no XMP.
//!
//! Encoder settings, chosen for speed per image on one Lambda vCPU (like sharp's defaults):
//!
//! - **JPEG** (mozjpeg, i.e. libjpeg-turbo): libjpeg-turbo-compatible settings (`JCP_FASTEST`:
//!   no trellis quantisation, no scan search, standard Annex K tables), optimised Huffman tables,
//!   4:2:0 chroma subsampling, baseline or (on request) the standard progressive script. Only the
//!   JFIF APP0 marker is written. Alpha is flattened onto [`OutputParams::background`].
//! - **PNG** (`png` via `image`): 8-bit RGB or RGBA as the pixels are, adaptive filtering, zlib
//!   level [`OutputParams::compression_level`] (default 6, zlib's default). No ancillary chunks.
//! - **WebP** (libwebp): lossy at [`OutputParams::quality`] or lossless, method
//!   [`OutputParams::effort`] (default 4, like sharp), alpha kept. Animations go through
//!   libwebp's animation encoder with each frame's delay and the loop count.
//! - **GIF** (`gif` via `image`): NeuQuant palette per frame at sampling factor
//!   [`GIF_SPEED`]; each frame's delay (in 1/100 s) and the loop count; pixels with alpha below
//!   128 become the transparent colour, the rest are opaque.
//!
//! JPEG and PNG cannot animate: they get the first frame.

use std::panic::AssertUnwindSafe;

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbaImage};
use serde::{Deserialize, Serialize};

use crate::geometry::{check_range, Color};
use crate::{Error, Image, OutputFormat, Pixels, Result};

/// How the result is encoded (the `output` of a pipeline; the params of `convert`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputParams {
    /// Output format; unset = the input's format.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// JPEG and lossy WebP quality, 1..=100. Default 80.
    #[serde(default = "default_quality")]
    pub quality: u8,
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
    /// PNG zlib compression level, 0 (stored, fastest, largest) ..= 9 (smallest, slowest).
    /// Default 6, zlib's and sharp's default.
    #[serde(default = "default_compression_level")]
    pub compression_level: u8,
    /// WebP encoder effort (libwebp `method`), 0 (fastest) ..= 6 (smallest). Default 4, like
    /// sharp and cwebp.
    #[serde(default = "default_effort")]
    pub effort: u8,
    /// The format to write instead when the result has an alpha channel (say `png` with a
    /// `jpeg` format: photos as JPEG, transparent images as PNG). Unset: always `format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha_format: Option<OutputFormat>,
}

impl Default for OutputParams {
    fn default() -> Self {
        OutputParams {
            format: None,
            quality: default_quality(),
            progressive: false,
            lossless: false,
            background: Color::WHITE,
            compression_level: default_compression_level(),
            effort: default_effort(),
            alpha_format: None,
        }
    }
}

fn default_quality() -> u8 {
    80
}
fn default_compression_level() -> u8 {
    6
}
fn default_effort() -> u8 {
    4
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
        check_range(&format!("{field}.quality"), self.quality, 1, 100)?;
        check_range(&format!("{field}.compression_level"), self.compression_level, 0, 9)?;
        check_range(&format!("{field}.effort"), self.effort, 0, 6)
    }
}

/// NeuQuant sampling factor for GIF palettes (1 = best, 30 = fastest). At 10 (the `gif`
/// crate's recommended compromise) NeuQuant learns from every 10th pixel instead of all of
/// them (`image`'s default, speed 1); a 1 MP photo frame then quantises and encodes in about
/// 0.2 s on one core, with a mean error of a few levels.
pub const GIF_SPEED: i32 = 10;

/// Longest frame delay written, in ms: libwebp's limit (2^24 - 1 ms, about 4.6 hours). GIF
/// saturates earlier, at 655,350 ms.
const MAX_DELAY_MS: u32 = (1 << 24) - 1;

/// Encodes `image` as `format`. Animated images keep their frames for GIF and WebP; other
/// formats get the first frame. Alpha is flattened onto `out.background` for JPEG.
///
/// Fails with [`Error::InvalidParams`] (field `output.format`) when the image is larger than
/// the format allows (JPEG 65,500 px, WebP 16,383 px, GIF 65,535 px per side), and with
/// [`Error::Encode`] when the image is empty or an encoder fails; encoder panics (mozjpeg
/// reports errors by unwinding) are caught and reported the same way.
pub fn encode(image: &Image, format: OutputFormat, out: &OutputParams) -> Result<Encoded> {
    let first = image.frames.first().ok_or_else(|| Error::Encode("the image has no frames".into()))?;
    let (width, height) = first.pixels.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::Encode(format!("cannot encode an empty {width}x{height} image")));
    }
    let max_side = match format {
        OutputFormat::Jpeg => 65_500,
        OutputFormat::Png => u32::MAX,
        OutputFormat::Webp => 16_383,
        OutputFormat::Gif => u32::from(u16::MAX),
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

    let bytes = catch_encoder_panic(format, || match format {
        OutputFormat::Jpeg => encode_jpeg(&first.pixels, out),
        OutputFormat::Png => encode_png(&first.pixels, out),
        OutputFormat::Webp if frames.len() > 1 => encode_webp_animation(frames, image.loop_count, out),
        OutputFormat::Webp => encode_webp_still(&first.pixels, out),
        OutputFormat::Gif => encode_gif(frames, image.loop_count),
    })?;
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
    let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    // mozjpeg's own defaults (JCP_MAX_COMPRESSION) turn on trellis quantisation, progressive
    // scan search and its alternative quant tables: a few percent smaller files for several
    // times the CPU. Like sharp (whose `mozjpeg` option is off by default) we use the
    // libjpeg-turbo profile and only add optimised Huffman tables, which cost one extra pass
    // over the coefficients and save ~5-10 %. This call resets every setting, so it comes first.
    comp.set_fastest_defaults();
    comp.set_size(w as usize, h as usize);
    comp.set_quality(f32::from(out.quality.clamp(1, 100)));
    comp.set_optimize_coding(true);
    // 4:2:0 (the libjpeg default, set explicitly): sharp's default subsampling.
    comp.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
    if out.progressive {
        // The standard libjpeg progressive script (scan search stays off).
        comp.set_progressive_mode();
    }
    // A rough guess at the output size (about 1 bit per pixel) saves most reallocations.
    let capacity = (w as usize).saturating_mul(h as usize) / 8 + 4096;
    let mut started =
        comp.start_compress(Vec::with_capacity(capacity)).map_err(|e| encode_error("jpeg", e))?;
    match pixels {
        Pixels::Rgb(img) => started.write_scanlines(img.as_raw()).map_err(|e| encode_error("jpeg", e))?,
        Pixels::Rgba(img) => {
            let [br, bg, bb, _] = out.background.0;
            let bg = [u32::from(br), u32::from(bg), u32::from(bb)];
            let row_bytes = w as usize * 4;
            let mut band = Vec::with_capacity(JPEG_BAND_ROWS * w as usize * 3);
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
                started.write_scanlines(&band).map_err(|e| encode_error("jpeg", e))?;
            }
        }
    }
    started.finish().map_err(|e| encode_error("jpeg", e))
}

fn encode_png(pixels: &Pixels, out: &OutputParams) -> Result<Vec<u8>> {
    let (w, h) = pixels.dimensions();
    let compression = match out.compression_level.min(9) {
        0 => CompressionType::Uncompressed,
        // zlib-rs (through flate2) at this zlib level; 6 is zlib's default.
        n => CompressionType::Level(n),
    };
    let (raw, color) = match pixels {
        Pixels::Rgb(img) => (img.as_raw(), ExtendedColorType::Rgb8),
        Pixels::Rgba(img) => (img.as_raw(), ExtendedColorType::Rgba8),
    };
    let mut bytes = Vec::with_capacity(raw.len() / 2 + 1024);
    // No ICC profile or EXIF is set, so only IHDR, IDAT and IEND are written.
    PngEncoder::new_with_quality(&mut bytes, compression, FilterType::Adaptive)
        .write_image(raw, w, h, color)
        .map_err(|e| encode_error("png", e))?;
    Ok(bytes)
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
        config.quality = f32::from(out.quality.clamp(1, 100));
        // Alpha, if any, is stored losslessly compressed (libwebp's default, kept explicit).
        config.alpha_compression = 1;
        config.alpha_quality = 100;
    }
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
