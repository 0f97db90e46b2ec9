//! A pipeline: operations applied in order to one decoded image, encoded once at the end.
//! The HTTP API accepts exactly this type as JSON:
//!
//! ```json
//! {"ops": [{"op": "resize", "width": 800},
//!          {"op": "watermark_text", "text": "© ACME", "gravity": "bottom_right"}],
//!  "output": {"format": "webp", "quality": 80}}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::decode::{self, DecodeOptions};
use crate::encode::{self, Encoded, OutputFormat, OutputParams};
use crate::ops::qr::{self, QrParams};
use crate::ops::resize::{self, ResizeParams};
use crate::ops::round_corners::{self, RoundCornersParams};
use crate::ops::slice::{self, Manifest, SliceParams};
use crate::ops::watermark_image::{self, ImageWatermarkParams};
use crate::ops::watermark_text::{self, TextWatermarkParams};
use crate::{Error, Image, Limits, Result, Validate};

/// One step of a pipeline, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    #[serde(alias = "thumbnail")]
    Resize(ResizeParams),
    WatermarkText(TextWatermarkParams),
    WatermarkImage(ImageWatermarkParams),
    RoundCorners(RoundCornersParams),
    Qr(QrParams),
    /// Must be the last operation: the result is a set of tiles.
    Slice(SliceParams),
}

impl Op {
    /// The operation's name as written in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Resize(_) => "resize",
            Op::WatermarkText(_) => "watermark_text",
            Op::WatermarkImage(_) => "watermark_image",
            Op::RoundCorners(_) => "round_corners",
            Op::Qr(_) => "qr",
            Op::Slice(_) => "slice",
        }
    }

    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        match self {
            Op::Resize(p) => p.validate(field, limits),
            Op::WatermarkText(p) => p.validate(field, limits),
            Op::WatermarkImage(p) => p.validate(field, limits),
            Op::RoundCorners(p) => p.validate(field, limits),
            Op::Qr(p) => p.validate(field, limits),
            Op::Slice(p) => p.validate(field, limits),
        }
    }
}

/// Operations plus the output encoding.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    pub ops: Vec<Op>,
    #[serde(default)]
    pub output: OutputParams,
}

/// Named byte blobs an operation refers to: fonts (`watermark_text.font`) and overlay images
/// (`watermark_image.image`). The caller loads them (from S3, from disk) before running.
pub type Assets = BTreeMap<String, Vec<u8>>;

/// What a pipeline produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Image(Encoded),
    /// The result of a final `slice`: tiles in row-major order, matching `manifest.tiles`.
    Tiles {
        manifest: Manifest,
        tiles: Vec<Encoded>,
    },
}

impl Pipeline {
    /// Checks every parameter without looking at any image. Errors name the field,
    /// e.g. `ops[2].size`.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        if self.ops.len() > 20 {
            return Err(Error::invalid("ops", "at most 20 operations"));
        }
        for (i, op) in self.ops.iter().enumerate() {
            let field = format!("ops[{i}]");
            op.validate(&field, limits)?;
            if matches!(op, Op::Slice(_)) && i + 1 != self.ops.len() {
                return Err(Error::invalid(field, "slice must be the last operation"));
            }
        }
        self.output.validate("output", limits)
    }

    /// The asset names the operations need, with the field that names each.
    pub fn assets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::WatermarkText(TextWatermarkParams { font: Some(f), .. }) => {
                    out.push((format!("ops[{i}].font"), f.as_str()));
                }
                Op::WatermarkImage(p) => out.push((format!("ops[{i}].image"), p.image.as_str())),
                _ => {}
            }
        }
        out
    }

    /// The output format for an input of format `input`.
    pub fn output_format(&self, input: crate::InputFormat) -> OutputFormat {
        self.output.format.unwrap_or_else(|| OutputFormat::from_input(input))
    }

    /// Validates, decodes `input` under `limits`, applies the operations and encodes once.
    pub fn run(&self, input: &[u8], assets: &Assets, limits: &Limits) -> Result<Output> {
        self.validate(limits)?;
        let mut overlays = BTreeMap::new();
        for (field, name) in self.assets() {
            let bytes = assets
                .get(name)
                .ok_or_else(|| Error::invalid(&field, format!("asset {name:?} was not supplied")))?;
            if bytes.len() as u64 > limits.max_asset_bytes {
                return Err(Error::InputTooLarge {
                    bytes: bytes.len() as u64,
                    limit: limits.max_asset_bytes,
                });
            }
            if field.ends_with(".image") && !overlays.contains_key(name) {
                let overlay =
                    decode::decode(bytes, limits, &DecodeOptions { first_frame_only: true, shrink: None })
                        .map_err(|e| Error::invalid(&field, format!("overlay image: {e}")))?;
                overlays.insert(name, overlay.first().to_rgba());
            }
        }

        let probe = decode::probe(input, limits)?;
        let format = self.output_format(probe.format);
        let slicing = matches!(self.ops.last(), Some(Op::Slice(_)));
        let shrink = |w: u32, h: u32| match self.ops.first() {
            Some(Op::Resize(p)) => resize::scale_factor(p, w, h),
            _ => 1.0,
        };
        let options =
            DecodeOptions { first_frame_only: slicing || !format.can_animate(), shrink: Some(&shrink) };
        let mut image = decode::decode(input, limits, &options)?;

        for (i, op) in self.ops.iter().enumerate() {
            let applied = match op {
                Op::Resize(p) => resize::resize(&mut image, p, limits),
                Op::WatermarkText(p) => {
                    let font = p.font.as_ref().and_then(|name| assets.get(name)).map(Vec::as_slice);
                    watermark_text::watermark_text(&mut image, p, font)
                }
                Op::WatermarkImage(p) => match overlays.get(p.image.as_str()) {
                    Some(overlay) => watermark_image::watermark_image(&mut image, p, overlay),
                    None => Err(Error::invalid("image", "overlay was not loaded")),
                },
                Op::RoundCorners(p) => round_corners::round_corners(&mut image, p),
                Op::Qr(p) => qr::qr_overlay(&mut image, p),
                Op::Slice(p) => {
                    return self.encode_tiles(&image, p, format).map_err(|e| e.under(&format!("ops[{i}]")))
                }
            };
            applied.map_err(|e| e.under(&format!("ops[{i}]")))?;
        }
        encode::encode(&image, format, &self.output).map(Output::Image)
    }

    fn encode_tiles(&self, image: &Image, p: &SliceParams, format: OutputFormat) -> Result<Output> {
        let pieces = slice::slice(image, p)?;
        let mut infos = Vec::with_capacity(pieces.len());
        let mut tiles = Vec::with_capacity(pieces.len());
        for (info, tile) in pieces {
            tiles.push(encode::encode(&tile, format, &self.output)?);
            infos.push(info);
        }
        let manifest = Manifest {
            width: image.width(),
            height: image.height(),
            rows: infos.iter().map(|t| t.row + 1).max().unwrap_or(0),
            cols: infos.iter().map(|t| t.col + 1).max().unwrap_or(0),
            format,
            tiles: infos,
        };
        Ok(Output::Tiles { manifest, tiles })
    }
}
