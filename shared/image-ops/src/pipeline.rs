//! A pipeline: operations applied in order to one decoded image, encoded once at the end.
//! The HTTP API and the CLI accept exactly [`PipelineSpec`] as JSON:
//!
//! ```json
//! {"ops": [{"op": "thumbnail", "width": 800},
//!          {"op": "watermark", "text": "© ACME", "gravity": "bottom_right"}],
//!  "output": {"format": "webp", "quality": 80}}
//! ```
//!
//! A [`Pipeline`] is a spec that passed validation under a set of [`Limits`]: there is no other
//! way to make one, so nothing validates twice, and [`Pipeline::run`] runs under the limits it
//! was validated against. Running loads the assets and checks what depends on them (a font's
//! glyphs), then probes the input once, decodes it once (shrunk on load for a
//! first `thumbnail`), applies the operations and encodes once, and reports what the probe
//! learned about the input beside the output.
//!
//! One shortcut: a JPEG that becomes a JPEG through overlays only (watermarks, QR codes, or no
//! operation at all) is not decoded to pixels. Its DCT coefficients are read, the overlays are
//! painted on the few blocks they cover and written back, and the rest is requantised
//! (`crate::transcode`): the same image at the same quality and size for a fraction of the
//! work. Anything else decodes in full.

use std::collections::BTreeMap;

use ab_glyph::FontRef;
use serde::{Deserialize, Serialize};

use crate::decode::{self, DecodeOptions, Probe};
use crate::encode::{self, Encoded, OutputParams, Quality};
use crate::ops::slice::{self, Manifest, SliceParams};
use crate::ops::{AssetKind, Context, Loaded, Op, Overlay};
use crate::{Error, Image, InputFormat, Limits, OutputFormat, Result, Validate};

/// Most operations in one pipeline.
pub const MAX_OPS: usize = 20;

/// A pipeline as written: operations and output params, not yet validated.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    #[serde(default)]
    pub ops: Vec<Op>,
    #[serde(default)]
    pub output: OutputParams,
}

/// A validated pipeline (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    spec: PipelineSpec,
    limits: Limits,
}

/// Named byte blobs the operations refer to: fonts (`watermark.font`) and overlay images
/// (`watermark.image`). The caller loads them (from S3, from disk) before running.
pub type Assets = BTreeMap<String, Vec<u8>>;

/// An asset a pipeline names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset<'a> {
    /// The param naming it, e.g. `ops[1].font`.
    pub field: String,
    pub name: &'a str,
    pub kind: AssetKind,
}

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

/// A run's result: the output, and what the header of the input said.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub input: Probe,
    pub output: Output,
}

impl PipelineSpec {
    /// Checks every parameter without looking at any image. Errors name the field, e.g.
    /// `ops[2].size`.
    pub fn validate(&self, limits: &Limits) -> Result<()> {
        if self.ops.len() > MAX_OPS {
            return Err(Error::invalid("ops", format!("at most {MAX_OPS} operations")));
        }
        for (i, op) in self.ops.iter().enumerate() {
            let field = format!("ops[{i}]");
            op.operation().validate(&field, limits)?;
            if op.operation().tiles().is_some() && i + 1 != self.ops.len() {
                return Err(Error::invalid(field, "slice must be the last operation"));
            }
        }
        self.output.validate("output", limits)
    }
}

impl Pipeline {
    /// Validates `spec` under `limits`.
    pub fn new(spec: PipelineSpec, limits: Limits) -> Result<Pipeline> {
        spec.validate(&limits)?;
        Ok(Pipeline { spec, limits })
    }

    pub fn ops(&self) -> &[Op] {
        &self.spec.ops
    }

    pub fn output(&self) -> &OutputParams {
        &self.spec.output
    }

    /// The spec, e.g. to serialise its canonical form (every default spelled out).
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The limits it was validated against and runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// This pipeline with its output format fixed (a format is always valid).
    pub fn with_format(mut self, format: OutputFormat) -> Pipeline {
        self.spec.output.format = Some(format);
        self
    }

    /// The output format for an input of format `input`.
    pub fn output_format(&self, input: InputFormat) -> OutputFormat {
        self.spec.output.format.unwrap_or_else(|| OutputFormat::from_input(input))
    }

    /// The final `slice`, if the pipeline produces tiles.
    pub fn tiles(&self) -> Option<&SliceParams> {
        self.spec.ops.last().and_then(|op| op.operation().tiles())
    }

    /// The assets the operations name, each once per param.
    pub fn assets(&self) -> Vec<Asset<'_>> {
        let mut out = Vec::new();
        for (i, op) in self.spec.ops.iter().enumerate() {
            for a in op.operation().assets() {
                out.push(Asset { field: format!("ops[{i}].{}", a.field), name: a.name, kind: a.kind });
            }
        }
        out
    }

    /// Decodes `input` under the limits, applies the operations and encodes once. `assets`
    /// holds every asset [`Pipeline::assets`] names.
    pub fn run(&self, input: &[u8], assets: &Assets) -> Result<Rendered> {
        self.run_with(input, assets, true)
    }

    /// [`Pipeline::run`] that always decodes the image in full, never transcoding a JPEG's
    /// coefficients or slicing or resizing its YCbCr planes: for tests and benchmarks that
    /// compare the paths.
    #[doc(hidden)]
    pub fn run_decoded(&self, input: &[u8], assets: &Assets) -> Result<Rendered> {
        self.run_with(input, assets, false)
    }

    fn run_with(&self, input: &[u8], assets: &Assets, transcode: bool) -> Result<Rendered> {
        let loaded = self.load(assets)?;
        let cx = Context { limits: &self.limits, assets: &loaded };
        for (i, op) in self.spec.ops.iter().enumerate() {
            op.operation().check_assets(&cx).map_err(|e| e.under(&format!("ops[{i}]")))?;
        }
        let probe = decode::probe(input, &self.limits)?;
        let format = self.output_format(probe.format);
        if transcode {
            if let Some(encoded) = self.transcode(input, &probe, format, &cx) {
                return Ok(Rendered { input: probe, output: Output::Image(encoded) });
            }
        }
        let resolved;
        let out = if self.spec.output.quality == Quality::Source {
            let level = match probe.format {
                InputFormat::Jpeg => crate::transcode::source_level(input),
                _ => None,
            };
            resolved = OutputParams {
                quality: Quality::Level(level.unwrap_or(Quality::DEFAULT)),
                ..self.spec.output.clone()
            };
            &resolved
        } else {
            &self.spec.output
        };
        if transcode {
            if let Some(output) = self.planes(input, &probe, format, out) {
                return Ok(Rendered { input: probe, output });
            }
        }
        let shrink =
            |w: u32, h: u32| self.spec.ops.first().map_or(1.0, |op| op.operation().shrink_factor(w, h));
        let options = DecodeOptions {
            first_frame_only: self.tiles().is_some() || !format.can_animate(),
            shrink: Some(&shrink),
            keep_icc: out.keep_icc,
            keep_copyright: out.keep_copyright,
        };
        let mut image = decode::decode_probed(input, &probe, &self.limits, &options)?;

        for (i, op) in self.spec.ops.iter().enumerate() {
            let under = |e: Error| e.under(&format!("ops[{i}]"));
            if let Some(p) = op.operation().tiles() {
                let output = self.encode_tiles(&image, p, format, out).map_err(under)?;
                return Ok(Rendered { input: probe, output });
            }
            op.operation().apply(&mut image, &cx).map_err(under)?;
        }
        let format = self.final_format(&image, format);
        let output = Output::Image(encode::encode_limited(&image, format, out, &self.limits)?);
        Ok(Rendered { input: probe, output })
    }

    /// The result without decoding the image, when it is a JPEG, the output is one and every
    /// operation is an overlay (see `transcode`); `None` when that does not apply, and the
    /// image is then decoded in full (which also reports any error the overlays met).
    fn transcode(&self, input: &[u8], probe: &Probe, to: OutputFormat, cx: &Context<'_>) -> Option<Encoded> {
        if probe.format != InputFormat::Jpeg || to != OutputFormat::Jpeg {
            return None;
        }
        let overlays: Vec<&dyn Overlay> =
            self.spec.ops.iter().map(|op| op.operation().as_overlay()).collect::<Option<_>>()?;
        let out = &self.spec.output;
        let encoded =
            crate::transcode::render(input, (probe.width, probe.height), &overlays, cx, out).ok()?;
        // (A profile the output keeps is in the file already.)
        let copyright = if out.keep_copyright { decode::jpeg::copyright(input) } else { None };
        match copyright {
            Some(copyright) => {
                let meta = crate::Metadata { icc: None, copyright: Some(copyright) };
                let bytes = crate::metadata::embed(encoded.bytes, OutputFormat::Jpeg, &meta).ok()?;
                Some(Encoded { bytes, ..encoded })
            }
            None => Some(encoded),
        }
    }

    /// Checks and prepares the assets: each present and within the asset limit, fonts
    /// parseable, overlay images decoded (under the limits). Errors name the param.
    fn load(&self, assets: &Assets) -> Result<Loaded> {
        let mut loaded = Loaded::default();
        for asset in self.assets() {
            let bytes = assets.get(asset.name).ok_or_else(|| {
                Error::invalid(&asset.field, format!("asset {:?} was not supplied", asset.name))
            })?;
            self.limits.check_asset(&asset.field, asset.name, bytes.len() as u64)?;
            match asset.kind {
                AssetKind::Font => {
                    FontRef::try_from_slice_and_index(bytes, 0).map_err(|_| {
                        Error::invalid(
                            &asset.field,
                            format!("asset {:?} is not a TrueType/OpenType font", asset.name),
                        )
                    })?;
                    loaded.fonts.insert(asset.name.to_owned(), bytes.clone());
                }
                AssetKind::Image if !loaded.overlays.contains_key(asset.name) => {
                    let options =
                        DecodeOptions { first_frame_only: true, shrink: None, ..Default::default() };
                    let overlay = decode::decode(bytes, &self.limits, &options)
                        .map_err(|e| Error::invalid(&asset.field, format!("overlay image: {e}")))?;
                    loaded.overlays.insert(asset.name.to_owned(), overlay.first().to_rgba());
                }
                AssetKind::Image => {}
            }
        }
        Ok(loaded)
    }

    /// `format`, or the output's `alpha_format` when the result has alpha.
    fn final_format(&self, image: &Image, format: OutputFormat) -> OutputFormat {
        match self.spec.output.alpha_format {
            Some(alpha) if image.first().has_alpha() => alpha,
            _ => format,
        }
    }

    fn encode_tiles(
        &self,
        image: &Image,
        p: &SliceParams,
        format: OutputFormat,
        out: &OutputParams,
    ) -> Result<Output> {
        let format = self.final_format(image, format);
        let (width, height) = image.first().dimensions();
        let infos = slice::plan(width, height, p)?;
        // The tiles share one encode budget (AVIF's, see encode::avif_speed).
        let whole = u64::from(width) * u64::from(height);
        let encode_tile = |info: &slice::TileInfo| {
            let tile = slice::cut(image, info)?;
            encode::encode_part(&tile, format, out, &self.limits, Some(whole))
        };
        let tiles = crate::parallel::map_all(&infos, encode_tile)?;
        Ok(tiled((image.width(), image.height()), infos, format, tiles))
    }

    /// The result of a JPEG that is only sliced into JPEG tiles (`transcode::tiles`) or only
    /// resized (`transcode::thumbnail`) into JPEG, from its YCbCr planes without an RGB image;
    /// `None` when that does not apply, and the image is then decoded in full (which also
    /// reports any error).
    fn planes(&self, input: &[u8], probe: &Probe, to: OutputFormat, out: &OutputParams) -> Option<Output> {
        let [op] = self.spec.ops.as_slice() else {
            return None;
        };
        if probe.format != InputFormat::Jpeg || to != OutputFormat::Jpeg {
            return None;
        }
        let size = (probe.width, probe.height);
        if let Some(p) = op.operation().tiles() {
            let infos = slice::plan(size.0, size.1, p).ok()?;
            let tiles = crate::transcode::tiles(input, size, &infos, out).ok()?;
            return Some(tiled(size, infos, to, tiles));
        }
        let p = op.operation().as_resize()?;
        crate::transcode::thumbnail(input, size, p, out).ok().map(Output::Image)
    }
}

/// A slice's output: the tiles `infos` of a `(width, height)` image and their encodings.
fn tiled(
    (width, height): (u32, u32),
    infos: Vec<slice::TileInfo>,
    format: OutputFormat,
    tiles: Vec<Encoded>,
) -> Output {
    let manifest = Manifest {
        width,
        height,
        rows: infos.iter().map(|t| t.row + 1).max().unwrap_or(0),
        cols: infos.iter().map(|t| t.col + 1).max().unwrap_or(0),
        format,
        tiles: infos,
    };
    Output::Tiles { manifest, tiles }
}
