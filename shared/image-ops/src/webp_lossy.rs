//! Still lossy WebP through libwebp's own API, the pixels imported straight to YUV 4:2:0.
//!
//! This is the crate's third `unsafe` module (with `decode::av1` and `transcode::ffi`). The
//! invariants: the picture and the memory writer are initialised by libwebp before use and freed
//! by their `Drop` however the encode ends; the import reads exactly `height` rows of `stride`
//! bytes, which the pixel buffer is checked to hold; the writer outlives the one call that
//! writes to it through `custom_ptr`.

#![allow(unsafe_code)]

use crate::{Error, Result};

/// The `webp` crate imports every picture as ARGB (`use_argb = 1`): 4 bytes a pixel (48 MB for
/// 12 MP) beside the RGB input, only for `WebPEncode` to convert it to YUV with the same function
/// (`ImportYUVAFromRGBA`, no dithering) that `WebPPictureImportRGB` calls when `use_argb` is 0.
/// The output is byte-identical and the ARGB buffer is never made. Lossless WebP encodes ARGB
/// and keeps the crate's path.
pub(crate) fn encode(
    raw: &[u8],
    layout: webp::PixelLayout,
    (w, h): (u32, u32),
    config: &webp::WebPConfig,
) -> Result<Vec<u8>> {
    use libwebp_sys as sys;

    /// Frees the picture's buffers however the encode ends.
    struct Picture(sys::WebPPicture);
    impl Drop for Picture {
        fn drop(&mut self) {
            // SAFETY: initialised by `WebPPicture::new` (WebPPictureInit); freeing an empty or
            // imported picture is what libwebp's API is for.
            unsafe { sys::WebPPictureFree(&mut self.0) }
        }
    }
    /// Frees the encoded bytes' buffer once they are copied out.
    struct Writer(sys::WebPMemoryWriter);
    impl Drop for Writer {
        fn drop(&mut self) {
            // SAFETY: initialised by WebPMemoryWriterInit before the encode could write to it.
            unsafe { sys::WebPMemoryWriterClear(&mut self.0) }
        }
    }

    let failed = |what: &str| Error::Encode(format!("webp: {what}"));
    let channels = layout.bytes_per_pixel() as usize;
    let (Ok(width), Ok(height)) = (i32::try_from(w), i32::try_from(h)) else {
        return Err(failed("image too large"));
    };
    let Some(stride) = width.checked_mul(channels as i32) else {
        return Err(failed("image too large"));
    };
    // The import reads `height` rows of `stride` bytes: the buffer holds exactly that.
    if raw.len() != w as usize * h as usize * channels {
        return Err(failed("pixel buffer has the wrong size"));
    }
    // SAFETY: `config` is a WebPConfig from WebPConfigInit; the picture is initialised by
    // `WebPPicture::new`, freed by `Picture`'s drop; the import reads `raw` within its length
    // (checked above) and copies it; the memory writer is initialised before the encode writes
    // to it through `custom_ptr`, which points at `writer` for the whole call.
    unsafe {
        if sys::WebPValidateConfig(config) == 0 {
            return Err(failed("invalid configuration"));
        }
        let mut picture =
            Picture(sys::WebPPicture::new().map_err(|()| failed("cannot initialise a picture"))?);
        picture.0.use_argb = 0;
        picture.0.width = width;
        picture.0.height = height;
        let imported = if layout == webp::PixelLayout::Rgba {
            sys::WebPPictureImportRGBA(&mut picture.0, raw.as_ptr(), stride)
        } else {
            sys::WebPPictureImportRGB(&mut picture.0, raw.as_ptr(), stride)
        };
        if imported == 0 {
            return Err(failed("out of memory importing the pixels"));
        }
        let mut writer = Writer(std::mem::zeroed());
        sys::WebPMemoryWriterInit(&mut writer.0);
        picture.0.writer = Some(sys::WebPMemoryWrite);
        picture.0.custom_ptr = std::ptr::addr_of_mut!(writer.0).cast();
        if sys::WebPEncode(config, &mut picture.0) == 0 {
            return Err(Error::Encode(format!("webp: {:?}", picture.0.error_code)));
        }
        if writer.0.mem.is_null() {
            return Err(failed("the encoder wrote nothing"));
        }
        Ok(std::slice::from_raw_parts(writer.0.mem, writer.0.size).to_vec())
    }
}
