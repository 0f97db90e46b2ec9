//! Encoding the working image to JPEG, PNG, WebP or GIF. Outputs carry no metadata: no EXIF
//! (GPS is private data), no ICC profile (pixels are sRGB after decoding), no XMP.

use serde::{Deserialize, Serialize};

use crate::geometry::Color;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[serde(alias = "jpg")]
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::Webp => "webp",
            OutputFormat::Gif => "gif",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Gif => "image/gif",
        }
    }
    /// Whether the format can store an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }
    /// Whether the format can store an animation.
    pub fn can_animate(self) -> bool {
        matches!(self, OutputFormat::Webp | OutputFormat::Gif)
    }
    /// The output format matching an input format (used when `format` is not given).
    pub fn from_input(f: crate::InputFormat) -> Self {
        match f {
            crate::InputFormat::Jpeg => OutputFormat::Jpeg,
            crate::InputFormat::Png => OutputFormat::Png,
            crate::InputFormat::Webp => OutputFormat::Webp,
            crate::InputFormat::Gif => OutputFormat::Gif,
        }
    }
}

/// How the result is encoded (the `output` of a pipeline; the params of `convert`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Default white.
    #[serde(default = "white")]
    pub background: Color,
}

impl Default for OutputParams {
    fn default() -> Self {
        OutputParams {
            format: None,
            quality: default_quality(),
            progressive: false,
            lossless: false,
            background: Color::WHITE,
        }
    }
}

fn default_quality() -> u8 {
    80
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
        crate::geometry::check_range(&format!("{field}.quality"), self.quality, 1, 100)
    }
}

/// Encodes `image` as `format`. Animated images keep their frames for GIF and WebP; other
/// formats get the first frame. Alpha is flattened onto `out.background` for JPEG.
pub fn encode(image: &crate::Image, format: OutputFormat, out: &OutputParams) -> crate::Result<Encoded> {
    let _ = (image, format, out);
    todo!("helper: encode")
}
