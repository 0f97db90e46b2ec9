//! The decoded working image every operation takes and returns.

use image::{RgbImage, RgbaImage};

use crate::{InputFormat, Metadata};

/// Pixels of one frame in the working format: 8-bit sRGB, with or without straight alpha.
/// Decoders bring every input (16-bit, grey, palette, CMYK, ICC-tagged) into one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    pub fn width(&self) -> u32 {
        match self {
            Pixels::Rgb(i) => i.width(),
            Pixels::Rgba(i) => i.width(),
        }
    }
    pub fn height(&self) -> u32 {
        match self {
            Pixels::Rgb(i) => i.height(),
            Pixels::Rgba(i) => i.height(),
        }
    }
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width(), self.height())
    }
    pub fn has_alpha(&self) -> bool {
        matches!(self, Pixels::Rgba(_))
    }
    /// Converts to RGBA in place (opaque alpha for RGB) and returns the buffer.
    pub fn make_rgba(&mut self) -> &mut RgbaImage {
        if let Pixels::Rgb(rgb) = self {
            let rgba = image::DynamicImage::ImageRgb8(std::mem::take(rgb)).into_rgba8();
            *self = Pixels::Rgba(rgba);
        }
        match self {
            Pixels::Rgba(i) => i,
            Pixels::Rgb(_) => unreachable!("converted above"),
        }
    }
    /// The `width` x `height` rectangle at (`x`, `y`), copied row by row; `None` when it does
    /// not lie inside.
    pub fn crop(&self, x: u32, y: u32, width: u32, height: u32) -> Option<Pixels> {
        fn rows(
            raw: &[u8],
            stride: usize,
            channels: usize,
            (x, y, w, h): (u32, u32, u32, u32),
        ) -> Option<Vec<u8>> {
            let row_len = w as usize * channels;
            let mut buf = Vec::with_capacity(row_len * h as usize);
            for row in y..y.checked_add(h)? {
                let start = row as usize * stride + x as usize * channels;
                buf.extend_from_slice(raw.get(start..start + row_len)?);
            }
            Some(buf)
        }
        let rect = (x, y, width, height);
        if x.checked_add(width)? > self.width() {
            return None;
        }
        match self {
            Pixels::Rgb(img) => rows(img.as_raw(), img.width() as usize * 3, 3, rect)
                .and_then(|raw| RgbImage::from_raw(width, height, raw))
                .map(Pixels::Rgb),
            Pixels::Rgba(img) => rows(img.as_raw(), img.width() as usize * 4, 4, rect)
                .and_then(|raw| RgbaImage::from_raw(width, height, raw))
                .map(Pixels::Rgba),
        }
    }
    pub fn to_rgba(&self) -> RgbaImage {
        match self {
            Pixels::Rgb(i) => image::DynamicImage::ImageRgb8(i.clone()).into_rgba8(),
            Pixels::Rgba(i) => i.clone(),
        }
    }
}

/// One frame and how long it shows (0 for stills).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub pixels: Pixels,
    pub delay_ms: u32,
}

/// A decoded, upright image, sRGB unless `metadata.icc` says otherwise: one frame for stills, several for animations (all frames
/// full-canvas and the same size). Operations map over every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub frames: Vec<Frame>,
    pub format: InputFormat,
    /// Loop count of an animation (0 = forever).
    pub loop_count: u16,
    /// The upright size of the full image when the decoder shrank it on load (JPEG DCT
    /// scaling), so that the first `resize` computes exactly the output size a full-size decode
    /// would give. `None` when the pixels are at full size.
    pub shrunk_from: Option<(u32, u32)>,
    /// What the output keeps of the source's metadata (empty unless the output params ask):
    /// the profile the pixels are in when it was kept, the copyright tags. See
    /// [`crate::metadata`].
    pub metadata: Metadata,
}

impl Image {
    /// A still image.
    pub fn still(pixels: Pixels, format: InputFormat) -> Self {
        Image {
            frames: vec![Frame { pixels, delay_ms: 0 }],
            format,
            loop_count: 0,
            shrunk_from: None,
            metadata: Metadata::default(),
        }
    }
    pub fn width(&self) -> u32 {
        self.first().width()
    }
    pub fn height(&self) -> u32 {
        self.first().height()
    }
    pub fn first(&self) -> &Pixels {
        &self.frames[0].pixels
    }
    pub fn is_animated(&self) -> bool {
        self.frames.len() > 1
    }
    /// Keeps only the first frame (for outputs and operations that cannot animate).
    pub fn into_first_frame(mut self) -> Self {
        self.frames.truncate(1);
        self
    }
    /// Applies `f` to every frame, stopping at the first error.
    pub fn try_map_frames(
        &mut self,
        mut f: impl FnMut(&mut Pixels) -> crate::Result<()>,
    ) -> crate::Result<()> {
        for frame in &mut self.frames {
            f(&mut frame.pixels)?;
        }
        Ok(())
    }
}
