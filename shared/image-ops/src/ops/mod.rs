//! The operations, and the ONE registry of them.
//!
//! An operation is a params type in its own file (serde, `deny_unknown_fields`) that implements
//! [`Validate`] (checked before any decoding) and [`Operation`] (applied to a decoded
//! [`Image`]). The [`operations!`] list at the end of this file registers it: it generates the
//! [`Op`] enum that pipelines parse and the entry of [`REGISTRY`] that the rest of imgfn reads.
//! From the registry come: the `op` tag and its aliases; the S3-triggered functions, their
//! trigger prefixes and default params (`imgfn-lambda`, `template.yaml`, `samconfig.toml`,
//! `events/`, the local stack); the CLI's subcommands; the OpenAPI enums and the README's table
//! (`cargo xtask sync` writes those files; a test fails when they fall behind).

pub mod qr;
pub mod resize;
pub mod round_corners;
pub mod slice;
pub mod watermark;
pub mod watermark_image;
pub mod watermark_text;

use std::collections::BTreeMap;
use std::fmt;

use image::RgbaImage;
use serde::{Deserialize, Serialize};

use crate::{Image, Limits, Pixels, Result, Validate};

/// Everything imgfn knows about an operation besides its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// The one name: the `op` tag in a pipeline, the S3-triggered function (and so its trigger
    /// prefix `<name>/` and the first segment of its output keys) and the CLI subcommand.
    pub name: &'static str,
    /// Earlier spellings, still accepted as the `op` tag, the `/uploads` `op` and the CLI
    /// subcommand.
    pub aliases: &'static [&'static str],
    /// What it does, in one line.
    pub summary: &'static str,
    /// Its parameters with their defaults (Markdown, one paragraph): the README's table and
    /// the CLI's help.
    pub params: &'static str,
    /// Its smallest valid params (the required ones), a JSON object: every other param then
    /// has its default, which is how rendition URLs learn the defaults they may leave out.
    pub example: &'static str,
    /// Whether its params are an operation's or the output's.
    pub kind: Kind,
    /// The S3-triggered function of this operation, if it has one.
    pub trigger: Option<Trigger>,
    /// Whether a rendition URL may use it (every operation that yields one image).
    pub rendition: bool,
    /// Groups of params that are alternatives to each other (a watermark's `text` or `image`; a
    /// slice's grid or tile size): when per-object params name a field of one group, the
    /// defaults' fields of the other groups are dropped instead of merged.
    pub alternatives: &'static [&'static [&'static str]],
    /// Params left unset in [`OpSpec::example`]'s serialisation whose unset value still means
    /// one fixed value (a text watermark's size, colour and alignment), as a JSON object: the
    /// defaults a rendition URL may also leave out. Each op's tests check that spelling them
    /// out changes nothing.
    pub implied: &'static str,
}

/// What an operation's params configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A step of a pipeline: an [`Op`].
    Pixels,
    /// No step: the params are the output params (`convert`).
    Output,
}

/// The defaults of an operation's S3-triggered function (JSON objects; empty = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trigger {
    /// `IMGFN_PARAMS`: the operation's params (for [`Kind::Output`], output params).
    pub params: &'static str,
    /// `IMGFN_OUTPUT`: the output params ("" = the input's format).
    pub output: &'static str,
}

impl OpSpec {
    /// Whether `name` is this operation's name or one of its aliases (exact spelling).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// The prefix of the source bucket whose objects trigger this operation's function.
    pub fn trigger_prefix(&self) -> Option<String> {
        self.trigger.map(|_| format!("{}/", self.name))
    }
}

/// The operation called `name` (or one of its aliases).
pub fn find(name: &str) -> Option<&'static OpSpec> {
    REGISTRY.iter().copied().find(|s| s.answers_to(name))
}

/// The operations that have an S3-triggered function, in registry order.
pub fn triggers() -> impl Iterator<Item = &'static OpSpec> {
    REGISTRY.iter().copied().filter(|s| s.trigger.is_some())
}

/// What an operation reads besides the image: a named asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    /// A TrueType/OpenType font (`watermark.font`).
    Font,
    /// An image to overlay (`watermark.image`).
    Image,
}

/// An asset an operation names: the param that names it (relative, e.g. `font`) and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetRef<'a> {
    pub field: &'static str,
    pub name: &'a str,
    pub kind: AssetKind,
}

/// Assets as loaded for a run: fonts as bytes (checked to parse), overlays decoded.
#[derive(Debug, Default)]
pub struct Loaded {
    pub fonts: BTreeMap<String, Vec<u8>>,
    pub overlays: BTreeMap<String, RgbaImage>,
}

/// What an operation may use while it runs.
#[derive(Debug)]
pub struct Context<'a> {
    pub limits: &'a Limits,
    pub assets: &'a Loaded,
}

/// A rectangle of a frame, in pixels: top-left corner and size (both sides > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    /// The smallest area holding both.
    pub fn union(self, other: Area) -> Area {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = (self.x + self.width).max(other.x + other.width);
        let bottom = (self.y + self.height).max(other.y + other.height);
        Area { x, y, width: right - x, height: bottom - y }
    }
}

/// Pixels an overlay operation paints on: a frame's, or a part of one. `origin` is the frame
/// position of `pixels`' top-left pixel; painting is clipped to `pixels`.
#[derive(Debug)]
pub struct Window<'a> {
    pub pixels: &'a mut Pixels,
    pub origin: (u32, u32),
}

/// Where an overlay operation (one that paints over part of the image and changes nothing
/// else: the watermarks, the QR code) paints: every frame of a decoded [`Image`], or a JPEG's
/// DCT coefficients decoded only around the overlay (`crate::transcode`), so that the rest of
/// the image is never decoded to pixels.
pub trait Canvas {
    /// The size of the frame the overlay is placed in.
    fn dimensions(&self) -> (u32, u32);

    /// The pixels of every frame covering `area` (inside the frame), to paint on. A canvas that
    /// cannot hold that much (a transcode asked for most of the image) fails; the caller then
    /// decodes the image in full.
    fn windows(&mut self, area: Area) -> Result<Vec<Window<'_>>>;
}

/// An operation that only paints over part of the image: it can paint on any [`Canvas`], and
/// its `apply` is `paint` on the image.
pub trait Overlay {
    /// Paints onto `canvas`. Errors name the param relative to the operation, as `apply`'s do.
    fn paint(&self, canvas: &mut dyn Canvas, cx: &Context<'_>) -> Result<()>;
}

impl Canvas for Image {
    fn dimensions(&self) -> (u32, u32) {
        self.frames.first().map_or((0, 0), |f| f.pixels.dimensions())
    }

    fn windows(&mut self, _area: Area) -> Result<Vec<Window<'_>>> {
        Ok(self.frames.iter_mut().map(|f| Window { pixels: &mut f.pixels, origin: (0, 0) }).collect())
    }
}

/// An operation: validated params that transform a decoded image.
pub trait Operation: Validate + fmt::Debug + Send + Sync {
    /// Applies the operation to every frame of `image`. Errors that depend on the image name
    /// the param relative to the operation (`size`); the pipeline puts them under `ops[i]`.
    fn apply(&self, image: &mut Image, cx: &Context<'_>) -> Result<()>;

    /// `Some` for an overlay operation (see [`Canvas`]).
    fn as_overlay(&self) -> Option<&dyn Overlay> {
        None
    }

    /// The assets the params name.
    fn assets(&self) -> Vec<AssetRef<'_>> {
        Vec::new()
    }

    /// Checks what depends on the loaded assets (a font's glyphs for the text), before the
    /// image is decoded. Errors name the param relative to the operation, as `apply`'s do.
    fn check_assets(&self, cx: &Context<'_>) -> Result<()> {
        let _ = cx;
        Ok(())
    }

    /// As the first operation: the scale factor it will apply to an upright `width` x
    /// `height` image (1.0 when it will not shrink it), for shrink-on-load.
    fn shrink_factor(&self, width: u32, height: u32) -> f64 {
        let _ = (width, height);
        1.0
    }

    /// `Some` for the operation that cuts the image into tiles (it must come last).
    fn tiles(&self) -> Option<&slice::SliceParams> {
        None
    }

    /// `Some` for the resize (`thumbnail`), which a JPEG may take without an RGB image
    /// (`transcode::thumbnail`).
    fn as_resize(&self) -> Option<&resize::ResizeParams> {
        None
    }
}

/// Registers the pixel operations: generates [`Op`] (tagged by `op`, with the aliases) and
/// their [`OpSpec`]s, in this order.
macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $variant:ident($params:ty) {
            name: $name:literal,
            aliases: [$($alias:literal),* $(,)?],
            summary: $summary:expr,
            params: $params_doc:expr,
            example: $example:expr,
            trigger: $trigger:expr,
            rendition: $rendition:expr,
            alternatives: $alternatives:expr,
            implied: $implied:expr $(,)?
        }
    )*) => {
        /// One step of a pipeline, tagged by `op` (the registry's name or an alias).
        #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(tag = "op")]
        pub enum Op {
            $(
                $(#[$doc])*
                #[serde(rename = $name $(, alias = $alias)*)]
                $variant($params),
            )*
        }

        /// The [`OpSpec`] of each pixel operation.
        #[allow(non_upper_case_globals)]
        mod specs {
            use super::*;
            $(
                pub const $variant: OpSpec = OpSpec {
                    name: $name,
                    aliases: &[$($alias),*],
                    summary: $summary,
                    params: $params_doc,
                    example: $example,
                    kind: Kind::Pixels,
                    trigger: $trigger,
                    rendition: $rendition,
                    alternatives: $alternatives,
                    implied: $implied,
                };
            )*
        }

        impl Op {
            /// The operation as a trait object.
            pub fn operation(&self) -> &dyn Operation {
                match self {
                    $(Op::$variant(p) => p,)*
                }
            }

            /// Its registry entry.
            pub fn spec(&self) -> &'static OpSpec {
                match self {
                    $(Op::$variant(_) => &specs::$variant,)*
                }
            }

            /// The step called `name` (its name or an alias, exactly) with its params read from
            /// `params` (an object without the `op` tag); `None` when no operation has that
            /// name. Unlike deserializing an [`Op`], the params go straight to their type, so
            /// a deserializer that tracks paths can name the param at fault.
            pub fn from_params<'de, D: serde::Deserializer<'de>>(
                name: &str,
                params: D,
            ) -> Option<std::result::Result<Op, D::Error>> {
                $(
                    if name == $name $(|| name == $alias)* {
                        return Some(<$params as Deserialize>::deserialize(params).map(Op::$variant));
                    }
                )*
                None
            }
        }

        /// The pixel operations' entries, in registry order.
        const PIXEL_OPS: &[&OpSpec] = &[$(&specs::$variant),*];
    };
}

operations! {
    /// Resize to fit a box (`inside`), fill it (`cover`) or stretch to it (`fill`).
    Thumbnail(resize::ResizeParams) {
        name: "thumbnail",
        aliases: ["resize"],
        summary: resize::SUMMARY,
        params: resize::PARAMS,
        example: r#"{"width":1}"#,
        trigger: Some(Trigger {
            params: r#"{"width":256,"height":256}"#,
            output: r#"{"format":"webp","quality":80}"#,
        }),
        rendition: true,
        alternatives: &[],
        implied: "{}",
    }
    /// A text or image watermark.
    Watermark(watermark::WatermarkParams) {
        name: "watermark",
        aliases: ["watermark_text", "watermark_image", "watermark-text", "watermark-image"],
        summary: watermark::SUMMARY,
        params: watermark::PARAMS,
        example: r#"{"text":"x"}"#,
        trigger: Some(Trigger { params: r#"{"text":"imgfn","size":"5%"}"#, output: "" }),
        rendition: true,
        alternatives: &[&["text", "font", "size", "color", "align"], &["image", "scale"]],
        implied: watermark::IMPLIED,
    }
    /// Round the corners.
    RoundCorner(round_corners::RoundCornersParams) {
        name: "round-corner",
        aliases: ["round_corners", "round-corners"],
        summary: round_corners::SUMMARY,
        params: round_corners::PARAMS,
        example: r#"{"radius":1}"#,
        trigger: Some(Trigger { params: r#"{"radius":"8%"}"#, output: r#"{"format":"png"}"# }),
        rendition: true,
        alternatives: &[],
        implied: "{}",
    }
    /// Overlay a QR code.
    QrOverlay(qr::QrParams) {
        name: "qr-overlay",
        aliases: ["qr"],
        summary: qr::SUMMARY,
        params: qr::PARAMS,
        example: r#"{"data":"x"}"#,
        trigger: Some(Trigger { params: r#"{"data":"https://example.com/imgfn","size":300}"#, output: "" }),
        rendition: true,
        alternatives: &[],
        implied: "{}",
    }
    /// Cut into tiles (the last operation).
    Slice(slice::SliceParams) {
        name: "slice",
        aliases: [],
        summary: slice::SUMMARY,
        params: slice::PARAMS,
        example: r#"{"rows":1,"cols":1}"#,
        trigger: Some(Trigger { params: r#"{"rows":2,"cols":2}"#, output: "" }),
        rendition: false,
        alternatives: &[&["rows", "cols"], &["tile_width", "tile_height"]],
        implied: "{}",
    }
}

/// `convert`: no pixel operation; its params are the output params.
pub const CONVERT: OpSpec = OpSpec {
    name: "convert",
    aliases: [].as_slice(),
    summary: "Re-encode in another format or at another quality.",
    params: "The output params (see `output` below): `format`, `quality`, `lossless`, ...",
    example: "{}",
    kind: Kind::Output,
    trigger: Some(Trigger { params: r#"{"format":"webp","quality":80}"#, output: "" }),
    rendition: false,
    alternatives: &[],
    implied: "{}",
};

/// Every operation, in documentation order: the pixel operations, then `convert`.
pub static REGISTRY: [&OpSpec; PIXEL_OPS.len() + 1] = {
    let mut all = [&CONVERT; PIXEL_OPS.len() + 1];
    let mut i = 0;
    while i < PIXEL_OPS.len() {
        all[i] = PIXEL_OPS[i];
        i += 1;
    }
    all
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_parse() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in REGISTRY {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert!(seen.insert(*name), "{name} names two operations");
                assert_eq!(find(name).map(|s| s.name), Some(spec.name));
                assert!(
                    name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_'),
                    "{name}: lowercase letters, - and _ only (it is a key prefix and a CLI subcommand)"
                );
            }
            if let Some(t) = spec.trigger {
                assert!(t.params.starts_with('{'), "{}: trigger params are a JSON object", spec.name);
                assert!(t.output.is_empty() || t.output.starts_with('{'), "{}", spec.name);
            }
        }
        assert!(find("no-such-op").is_none());
    }
}
