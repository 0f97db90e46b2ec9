//! Text watermark.

use serde::Deserialize;

use crate::geometry::{Color, Gravity, Length};

/// Horizontal alignment of the lines of a multi-line text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    Left,
    #[default]
    Center,
    Right,
}

/// Repeat the watermark over the whole image.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    /// Gap between repetitions in px (both directions). Default 64.
    #[serde(default = "default_spacing")]
    pub spacing: u32,
}

fn default_spacing() -> u32 {
    64
}

/// Params of `watermark_text`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextWatermarkParams {
    /// UTF-8 text; `\n` separates lines. At most 1,000 characters.
    pub text: String,
    /// Name of a TTF/OTF font asset supplied with the request; unset = the bundled DejaVu Sans.
    #[serde(default)]
    pub font: Option<String>,
    /// Font size (em height) in px, or a percentage of the image width. Default `"4%"`.
    #[serde(default = "default_size")]
    pub size: Length,
    /// Text colour. Default white.
    #[serde(default = "white")]
    pub color: Color,
    /// Multiplies the colour's alpha, 0..=1. Default 0.6.
    #[serde(default = "default_opacity")]
    pub opacity: f32,
    #[serde(default = "default_gravity")]
    pub gravity: Gravity,
    #[serde(default)]
    pub offset_x: i32,
    #[serde(default)]
    pub offset_y: i32,
    #[serde(default)]
    pub align: Align,
    /// When set, the text repeats across the whole image and gravity/offset are ignored.
    #[serde(default)]
    pub tile: Option<Tile>,
}

pub(crate) fn default_opacity() -> f32 {
    0.6
}
fn default_size() -> Length {
    Length::Percent(4.0)
}
fn white() -> Color {
    Color::WHITE
}
pub(crate) fn default_gravity() -> Gravity {
    Gravity::BottomRight
}

impl crate::Validate for TextWatermarkParams {
    fn validate(&self, field: &str, _limits: &crate::Limits) -> crate::Result<()> {
        let _ = field;
        todo!("helper: watermark")
    }
}

/// Draws the text onto every frame. `font` is the TTF/OTF asset named by `p.font`, or `None`
/// for the bundled font.
pub fn watermark_text(
    image: &mut crate::Image,
    p: &TextWatermarkParams,
    font: Option<&[u8]>,
) -> crate::Result<()> {
    let _ = (image, p, font);
    todo!("helper: watermark")
}
