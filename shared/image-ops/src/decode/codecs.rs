//! PNG, GIF and WebP (stills and animations: APNG, animated GIF and WebP) through the `image` crate, with its own limits set
//! as a second guard.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, RgbImage, RgbaImage};
use moxcms::Layout;

use super::colour::{apply_rows, dynamic_to_pixels, split_profile, srgb_transform};
use super::orient::orient;
use super::{corrupt, image_err, image_limits, DecodeOptions};
use crate::{Frame, Image, InputFormat, Limits, Metadata, Pixels, Result};

/// Budget for the PNG decoder's own allocations (metadata chunks, line buffers).
const PNG_METADATA_BUDGET: u64 = 8 * 1024 * 1024;

/// A PNG: the still image, or every frame of an animated PNG (APNG, whose frame count the
/// header's `acTL` gave and [`super::probe`] checked). APNG frames are composited onto the
/// canvas by `image`'s APNG decoder (dispose and blend ops, sub-frame regions, which the `png`
/// crate checks to lie inside the canvas); when the PNG's default image is not part of the
/// animation, it is skipped. Animated PNGs with 16-bit samples are refused
/// ([`Error::UnsupportedFormat`](crate::Error)): `image` composites 8-bit frames only.
pub(super) fn png(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let mut decoder = image::codecs::png::PngDecoder::with_limits(
        Cursor::new(bytes),
        image_limits(limits, PNG_METADATA_BUDGET),
    )
    .map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let metadata = kept(icc.as_deref(), &mut decoder, options);
    let icc = if metadata.icc.is_some() { None } else { icc };
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if decoder.is_apng().map_err(image_err)? {
        if decoder.color_type().bytes_per_pixel() > decoder.color_type().channel_count() {
            return Err(crate::Error::UnsupportedFormat(
                "animated PNG with 16-bit samples (only 8-bit APNG is supported)".into(),
            ));
        }
        // The canvases and frames get the animation budget; the png crate's own metadata
        // budget, set above, stays.
        decoder.set_limits(image_limits(limits, animation_budget(limits))).map_err(image_err)?;
        let apng = decoder.apng().map_err(image_err)?;
        let loop_count = loop_count(apng.loop_count());
        // image's APNG compositor asserts (`expect`) what the png crate checks; a bug there
        // must still not take the process down.
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let frames = apng.into_frames();
            animation(frames, icc.as_deref(), orientation, loop_count, InputFormat::Png, options)
                .map(|image| Image { metadata, ..image })
        }))
        .unwrap_or_else(|_| Err(corrupt("animated PNG could not be composited")));
    }
    let img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let pixels = dynamic_to_pixels(img, icc.as_deref());
    Ok(Image { metadata, ..Image::still(orient(pixels, orientation), InputFormat::Png) })
}

/// What the image keeps of its metadata ([`DecodeOptions::keep_icc`] and `keep_copyright`):
/// the profile when kept (the caller then does not convert with it), the copyright tags of
/// its Exif.
fn kept(icc: Option<&[u8]>, decoder: &mut impl ImageDecoder, options: &DecodeOptions<'_>) -> Metadata {
    let copyright = if options.keep_copyright {
        let exif = decoder.exif_metadata().ok().flatten();
        exif.and_then(|tiff| crate::metadata::copyright_exif(&tiff)).map(std::sync::Arc::from)
    } else {
        None
    };
    Metadata { icc: split_profile(icc, options.keep_icc).1, copyright }
}

pub(super) fn webp(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let mut decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).map_err(image_err)?;
    decoder.set_limits(image_limits(limits, animation_budget(limits))).map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let metadata = kept(icc.as_deref(), &mut decoder, options);
    let icc = if metadata.icc.is_some() { None } else { icc };
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if decoder.has_animation() {
        let loop_count = loop_count(decoder.loop_count());
        let frames = decoder.into_frames();
        let image = animation(frames, icc.as_deref(), orientation, loop_count, InputFormat::Webp, options)?;
        return Ok(Image { metadata, ..image });
    }
    let img = DynamicImage::from_decoder(decoder).map_err(image_err)?;
    let pixels = dynamic_to_pixels(img, icc.as_deref());
    Ok(Image { metadata, ..Image::still(orient(pixels, orientation), InputFormat::Webp) })
}

pub(super) fn gif(bytes: &[u8], limits: &Limits, options: &DecodeOptions<'_>) -> Result<Image> {
    let mut decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).map_err(image_err)?;
    decoder.set_limits(image_limits(limits, animation_budget(limits))).map_err(image_err)?;
    let icc = decoder.icc_profile().ok().flatten();
    let metadata = kept(icc.as_deref(), &mut decoder, options);
    let icc = if metadata.icc.is_some() { None } else { icc };
    let loop_count = loop_count(decoder.loop_count());
    let frames = decoder.into_frames();
    let image =
        animation(frames, icc.as_deref(), Orientation::NoTransforms, loop_count, InputFormat::Gif, options)?;
    Ok(Image { metadata, ..image })
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
    Ok(Image { frames, format, loop_count, shrunk_from: None, metadata: Default::default() })
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
