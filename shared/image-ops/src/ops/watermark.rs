//! `watermark`: one operation for both kinds of watermark. Params with `text` draw text
//! ([`watermark_text`](super::watermark_text)); params with `image` overlay an image asset
//! ([`watermark_image`](super::watermark_image)). The params that only one kind has are
//! refused on the other, naming the field.

use serde::{Deserialize, Serialize};

use super::watermark_image::{self, ImageWatermarkParams};
use super::watermark_text::{self, Align, TextWatermarkParams, Tile};
use super::{AssetKind, AssetRef, Canvas, Context, Operation, Overlay};
use crate::geometry::{Color, Gravity, Length};
use crate::{Error, Image, Limits, Result, Validate};

/// The registry's one-line summary.
/// A text watermark's size, colour and alignment at their defaults, spelled out: unset, these
/// params still mean exactly this, so a rendition URL may leave them out (the registry's
/// `implied`). The test below checks that giving them changes nothing.
pub const IMPLIED: &str = r##"{"size":"4%","color":"#ffffff","align":"center"}"##;

pub const SUMMARY: &str = "Draw a text watermark, or overlay an image (a logo).";
/// The registry's params doc.
pub const PARAMS: &str = "Either `text` (UTF-8, `\\n` for lines, at most 1,000 characters; a character the font \
    has no glyph for is refused, naming it) with `font` (asset; default the bundled DejaVu Sans: Latin, Greek, \
    Cyrillic; CJK and other scripts need a font asset that has them), `size` (`\"4%\"` of the width, or px), `color` (`#ffffff`), `align` \
    (`center`); or `image` (asset: PNG/WebP with alpha, or any accepted format) with `scale` (overlay width as \
    a fraction of the image width; default its own size, shrunk to fit). Both: `opacity` (0.6), `gravity` \
    (`bottom_right`), `offset_x`/`offset_y` (0), `tile` (`64` or `{\"spacing\": 64}`: repeat it over the image, 64 px apart). A \
    watermark that would not fit is scaled down, never clipped.";

/// Params of `watermark` (aliases `watermark_text`, `watermark_image`): exactly one of `text`
/// and `image`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkParams {
    /// The text of a text watermark (UTF-8, `\n` separates lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The overlay image asset of an image watermark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Text only: a TTF/OTF font asset; unset = the bundled DejaVu Sans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font: Option<String>,
    /// Text only: the font size in px or a percentage of the image width. Default `"4%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Length>,
    /// Text only: the text colour. Default white.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// Text only: alignment of the lines. Default `center`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<Align>,
    /// Image only: the overlay's width as a fraction of the image's (0 < scale <= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f32>,
    /// Multiplies the watermark's alpha, 0..=1. Default 0.6.
    #[serde(default = "watermark_text::default_opacity")]
    pub opacity: f32,
    #[serde(default = "watermark_text::default_gravity")]
    pub gravity: Gravity,
    #[serde(default)]
    pub offset_x: i32,
    #[serde(default)]
    pub offset_y: i32,
    /// Repeat over the whole image (gravity and offsets are then ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<Tile>,
}

/// The watermark these params describe.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Text(TextWatermarkParams),
    Image(ImageWatermarkParams),
}

impl WatermarkParams {
    /// A text watermark with every other param at its default.
    pub fn text(text: impl Into<String>) -> WatermarkParams {
        WatermarkParams {
            text: Some(text.into()),
            image: None,
            font: None,
            size: None,
            color: None,
            align: None,
            scale: None,
            opacity: watermark_text::default_opacity(),
            gravity: watermark_text::default_gravity(),
            offset_x: 0,
            offset_y: 0,
            tile: None,
        }
    }

    /// The kind of watermark, with its defaults filled in; `field` names errors.
    pub fn kind(&self, field: &str) -> Result<Kind> {
        let only = |name: &str, set: bool, kind: &str| {
            if set {
                Err(Error::invalid(format!("{field}.{name}"), format!("applies to {kind} watermarks only")))
            } else {
                Ok(())
            }
        };
        match (&self.text, &self.image) {
            (Some(text), None) => {
                only("scale", self.scale.is_some(), "image")?;
                let defaults = TextWatermarkParams::new(text.clone());
                Ok(Kind::Text(TextWatermarkParams {
                    font: self.font.clone(),
                    size: self.size.unwrap_or(defaults.size),
                    color: self.color.unwrap_or(defaults.color),
                    align: self.align.unwrap_or(defaults.align),
                    opacity: self.opacity,
                    gravity: self.gravity,
                    offset_x: self.offset_x,
                    offset_y: self.offset_y,
                    tile: self.tile.clone(),
                    ..defaults
                }))
            }
            (None, Some(image)) => {
                for (name, set) in [
                    ("font", self.font.is_some()),
                    ("size", self.size.is_some()),
                    ("color", self.color.is_some()),
                    ("align", self.align.is_some()),
                ] {
                    only(name, set, "text")?;
                }
                Ok(Kind::Image(ImageWatermarkParams {
                    image: image.clone(),
                    scale: self.scale,
                    opacity: self.opacity,
                    gravity: self.gravity,
                    offset_x: self.offset_x,
                    offset_y: self.offset_y,
                    tile: self.tile.clone(),
                }))
            }
            (Some(_), Some(_)) => {
                Err(Error::invalid(format!("{field}.image"), "give text or image, not both"))
            }
            (None, None) => Err(Error::invalid(format!("{field}.text"), "give text (or image)")),
        }
    }
}

impl Validate for WatermarkParams {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        match self.kind(field)? {
            Kind::Text(p) => p.validate(field, limits),
            Kind::Image(p) => p.validate(field, limits),
        }
    }
}

impl Overlay for WatermarkParams {
    fn paint(&self, canvas: &mut dyn Canvas, cx: &Context<'_>) -> Result<()> {
        match self.kind("")? {
            Kind::Text(p) => {
                let font = p.font.as_ref().and_then(|name| cx.assets.fonts.get(name)).map(Vec::as_slice);
                watermark_text::watermark_text(canvas, &p, font)
            }
            Kind::Image(p) => match cx.assets.overlays.get(&p.image) {
                Some(overlay) => watermark_image::watermark_image(canvas, &p, overlay),
                None => Err(Error::invalid("image", format!("asset {:?} was not loaded", p.image))),
            },
        }
    }
}

impl Operation for WatermarkParams {
    fn apply(&self, image: &mut Image, cx: &Context<'_>) -> Result<()> {
        self.paint(image, cx)
    }

    fn as_overlay(&self) -> Option<&dyn Overlay> {
        Some(self)
    }

    fn check_assets(&self, cx: &Context<'_>) -> Result<()> {
        if let (Some(text), Some(name)) = (&self.text, &self.font) {
            if let Some(bytes) = cx.assets.fonts.get(name) {
                watermark_text::check_glyphs(bytes, Some(name), text)?;
            }
        }
        Ok(())
    }

    fn assets(&self) -> Vec<AssetRef<'_>> {
        let mut out = Vec::new();
        if let Some(font) = &self.font {
            out.push(AssetRef { field: "font", name: font, kind: AssetKind::Font });
        }
        if let Some(image) = &self.image {
            out.push(AssetRef { field: "image", name: image, kind: AssetKind::Image });
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_implied_params_change_nothing() {
        let bare: WatermarkParams = serde_json::from_str(r#"{"text":"x"}"#).unwrap();
        let mut spelled: serde_json::Value = serde_json::from_str(IMPLIED).unwrap();
        spelled["text"] = "x".into();
        let spelled: WatermarkParams = serde_json::from_value(spelled).unwrap();
        assert_ne!(bare, spelled, "the params differ as written");
        assert_eq!(bare.kind("w").unwrap(), spelled.kind("w").unwrap(), "and mean the same watermark");
    }
}
