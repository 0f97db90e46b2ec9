//! Thumbnail / resize.

use serde::{Deserialize, Serialize};

use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{self as fir, FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{RgbImage, RgbaImage};

use crate::geometry::{check_range, Gravity};
use crate::smartcrop::{self, Strategy};
use crate::{Error, Image, Limits, Pixels, Result};

/// The registry's one-line summary.
pub const SUMMARY: &str = "Resize to fit a box, cover it (cropped by gravity) or fill it exactly.";
/// The registry's params doc.
pub const PARAMS: &str = "`width`, `height` (at least one), `fit`: `inside` (keep aspect, fit the box) | \
    `cover` (fill the box, crop by `gravity`) | `fill` (exact size); `gravity` (`center`; with `cover` also \
    `entropy`: the most detailed part, or `attention`: edges, skin tones and saturated colour, as libvips/sharp), \
    or a focal point `focus_x`, `focus_y` (fractions 0-1 of the width and height; `cover` only: the crop \
    keeps it as central as the box allows); `upscale` (`false`: never enlarge); `filter`: `lanczos3` | \
    `mitchell` | `catmull_rom` | `bilinear` | `nearest`";

impl crate::ops::Operation for ResizeParams {
    fn apply(&self, image: &mut Image, cx: &crate::ops::Context<'_>) -> Result<()> {
        resize(image, self, cx.limits)
    }

    fn shrink_factor(&self, width: u32, height: u32) -> f64 {
        scale_factor(self, width, height)
    }

    fn as_resize(&self) -> Option<&ResizeParams> {
        Some(self)
    }
}

/// How the image is fitted to the `width` x `height` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Keep the aspect ratio; the result fits inside the box (one side may be smaller).
    #[default]
    Inside,
    /// Keep the aspect ratio; fill the box and crop the overflow, anchored by `gravity`.
    Cover,
    /// Stretch to exactly the box.
    Fill,
}

/// Resampling filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Nearest,
    Bilinear,
    CatmullRom,
    Mitchell,
    #[default]
    Lanczos3,
}

/// Which part of the image a `cover` crop keeps: an anchor, or a part found by looking at the
/// pixels ([`smartcrop`](crate::smartcrop)). Written as one string: a [`Gravity`]
/// (`"top_left"`, ...), `"entropy"` or `"attention"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropGravity {
    /// Anchored: `top_left` ... `bottom_right`.
    Anchor(Gravity),
    /// The most detailed part (highest Shannon entropy), as libvips/sharp `entropy`.
    Entropy,
    /// What draws the eye (edges, skin tones, saturated colour), as libvips/sharp `attention`.
    Attention,
}

impl Default for CropGravity {
    fn default() -> Self {
        CropGravity::Anchor(Gravity::Center)
    }
}

impl From<Gravity> for CropGravity {
    fn from(g: Gravity) -> Self {
        CropGravity::Anchor(g)
    }
}

/// Every spelling of a [`CropGravity`] (besides the alias `centre`).
pub const CROP_GRAVITIES: &[&str] = &[
    "top_left",
    "top",
    "top_right",
    "left",
    "center",
    "right",
    "bottom_left",
    "bottom",
    "bottom_right",
    "entropy",
    "attention",
];

impl Serialize for CropGravity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            CropGravity::Anchor(g) => g.serialize(s),
            CropGravity::Entropy => s.serialize_str("entropy"),
            CropGravity::Attention => s.serialize_str("attention"),
        }
    }
}

impl<'de> Deserialize<'de> for CropGravity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::{value::StrDeserializer, Error as _, IntoDeserializer};
        let s = String::deserialize(d)?;
        match s.as_str() {
            "entropy" => Ok(CropGravity::Entropy),
            "attention" => Ok(CropGravity::Attention),
            other => {
                let anchor: StrDeserializer<'_, serde::de::value::Error> = other.into_deserializer();
                Gravity::deserialize(anchor)
                    .map(CropGravity::Anchor)
                    .map_err(|_| D::Error::unknown_variant(other, CROP_GRAVITIES))
            }
        }
    }
}

/// Params of `thumbnail` (alias `resize`). At least one of `width`/`height`; with only one,
/// the other follows from the aspect ratio (for `cover`/`fill` both are required).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResizeParams {
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub fit: Fit,
    /// Which part to keep when `fit` is `cover`: an anchor, `entropy` or `attention` (those two
    /// only with `cover`). Default `center`.
    #[serde(default)]
    pub gravity: CropGravity,
    /// A focal point, as a fraction (0..=1) of the width from the left: with `focus_y`, the
    /// `cover` crop is placed so that this point is as central as the box allows. Only with
    /// `cover`, and instead of a `gravity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus_x: Option<f64>,
    /// The focal point's fraction (0..=1) of the height from the top (see `focus_x`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus_y: Option<f64>,
    /// Allow making the image larger than it is. Default false: a smaller image is returned as is.
    #[serde(default)]
    pub upscale: bool,
    #[serde(default)]
    pub filter: Filter,
}

impl crate::Validate for ResizeParams {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        let max = limits.max_side.max(1);
        if let Some(w) = self.width {
            check_range(&format!("{field}.width"), w, 1, max)?;
        }
        if let Some(h) = self.height {
            check_range(&format!("{field}.height"), h, 1, max)?;
        }
        self.validate_placement(field)?;
        match (self.width, self.height, self.fit) {
            (None, None, _) => {
                Err(Error::invalid(format!("{field}.width"), "at least one of width and height is required"))
            }
            (None, Some(_), Fit::Cover | Fit::Fill) => {
                Err(Error::invalid(format!("{field}.width"), "required when fit is cover or fill"))
            }
            (Some(_), None, Fit::Cover | Fit::Fill) => {
                Err(Error::invalid(format!("{field}.height"), "required when fit is cover or fill"))
            }
            // With upscaling allowed, cover and fill produce exactly the box.
            (Some(w), Some(h), Fit::Cover | Fit::Fill)
                if self.upscale && u64::from(w) * u64::from(h) > limits.max_pixels =>
            {
                Err(Error::invalid(
                    format!("{field}.width"),
                    format!("{w} x {h} is more than the limit of {} pixels", limits.max_pixels),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl ResizeParams {
    /// `width` x `height` with every other param at its default.
    pub fn new(width: Option<u32>, height: Option<u32>, fit: Fit) -> ResizeParams {
        ResizeParams {
            width,
            height,
            fit,
            gravity: CropGravity::default(),
            focus_x: None,
            focus_y: None,
            upscale: false,
            filter: Filter::default(),
        }
    }

    /// The checks of `gravity` and the focal point.
    fn validate_placement(&self, field: &str) -> Result<()> {
        for (name, value) in [("focus_x", self.focus_x), ("focus_y", self.focus_y)] {
            if let Some(v) = value {
                if !(0.0..=1.0).contains(&v) {
                    return Err(Error::invalid(
                        format!("{field}.{name}"),
                        format!("must be between 0 and 1 (a fraction of the image), got {v}"),
                    ));
                }
            }
        }
        match (self.focus_x, self.focus_y) {
            (Some(_), None) => {
                return Err(Error::invalid(
                    format!("{field}.focus_y"),
                    "required with focus_x (a focal point)",
                ))
            }
            (None, Some(_)) => {
                return Err(Error::invalid(
                    format!("{field}.focus_x"),
                    "required with focus_y (a focal point)",
                ))
            }
            (Some(_), Some(_)) if self.fit != Fit::Cover => {
                return Err(Error::invalid(
                    format!("{field}.focus_x"),
                    "a focal point applies only with fit cover (it chooses what the crop keeps)",
                ))
            }
            (Some(_), Some(_)) if self.gravity != CropGravity::default() => {
                return Err(Error::invalid(
                    format!("{field}.gravity"),
                    "give a gravity or a focal point (focus_x, focus_y), not both",
                ))
            }
            _ => {}
        }
        if matches!(self.gravity, CropGravity::Entropy | CropGravity::Attention) && self.fit != Fit::Cover {
            let name = if self.gravity == CropGravity::Entropy { "entropy" } else { "attention" };
            return Err(Error::invalid(
                format!("{field}.gravity"),
                format!("{name} applies only with fit cover (it chooses what the crop keeps)"),
            ));
        }
        Ok(())
    }
}

/// The scale factor `resize` will apply to an upright `width` x `height` image (1.0 when it
/// will not shrink). Used for shrink-on-load.
///
/// For `inside` this is `min(W / width, H / height)` over the given sides, for `cover` and
/// `fill` `max(W / width, H / height)`: the largest factor of any axis, so that an image
/// decoded at least this large still has every pixel `resize` needs. Never more than 1.0.
///
/// `resize` sizes its output from the decoded image: a DCT-scaled decode whose sides are
/// rounded up skews the aspect ratio slightly, so with `inside` the side that follows the aspect
/// ratio may differ by a pixel or two from a full-size decode (more for very elongated images
/// fitted by their short side). The side fitted to the box, and `cover`/`fill` sizes, are exact.
pub fn scale_factor(p: &ResizeParams, width: u32, height: u32) -> f64 {
    if width == 0 || height == 0 {
        return 1.0;
    }
    let sx = p.width.map(|w| f64::from(w) / f64::from(width));
    let sy = p.height.map(|h| f64::from(h) / f64::from(height));
    let factor = match (p.fit, sx, sy) {
        (_, None, None) => 1.0,
        (Fit::Inside, Some(s), None) | (Fit::Inside, None, Some(s)) => s,
        (Fit::Inside, Some(a), Some(b)) => a.min(b),
        (Fit::Cover | Fit::Fill, Some(a), Some(b)) => a.max(b),
        // Invalid for cover/fill (rejected by validation): resize will not shrink.
        (Fit::Cover | Fit::Fill, _, _) => 1.0,
    };
    if factor.is_finite() && factor > 0.0 {
        factor.min(1.0)
    } else {
        1.0
    }
}

/// Resizes every frame the same way (one [`Resizer`] reused across frames).
///
/// Rules (`W` x `H` is the box, `w` x `h` the image):
/// - `inside`: the image is scaled by `min(W/w, H/h)` over the given sides, so that it fits the
///   box with its aspect ratio kept. Without `upscale`, an image that already fits is left as is.
/// - `cover`: scaled by `max(W/w, H/h)` to fill the box, and the overflow is cropped away
///   (the crop goes straight to the resampler; no intermediate copy). The crop is anchored by
///   `gravity`, placed by [`smartcrop`] for `entropy` and `attention` (looking at the first
///   frame; every frame gets the same crop), or centred on the focal point as far as the image
///   allows. See [`cover_crop`].
/// - `fill`: stretched to exactly `W` x `H`.
/// - Without `upscale`, `cover` and `fill` never make the output larger than the input on either
///   axis: a box that does not fit inside the image is first shrunk proportionally (keeping the
///   requested aspect ratio) until it does. A 100 x 50 image with a 200 x 200 `cover` box gives
///   the centred 50 x 50 square, cropped without resampling.
///
/// Output sides are rounded to the nearest pixel, at least 1. An output over `limits`
/// (possible only when upscaling) is rejected with [`Error::InvalidParams`].
pub fn resize(image: &mut Image, p: &ResizeParams, limits: &Limits) -> Result<()> {
    let (w, h) = (image.width(), image.height());
    // After shrink-on-load, sizes follow from the full image (so they equal a full decode's)
    // while the resampler reads the smaller pixels; a cover crop is planned on those pixels.
    let frame = image.frames.first().map(|f| &f.pixels);
    let Some(plan) = plan_decoded(p, (w, h), image.shrunk_from.take(), frame)? else {
        return Ok(());
    };
    let (ow, oh) = (plan.width, plan.height);
    if ow > limits.max_side || oh > limits.max_side {
        let side = if ow > limits.max_side { "width" } else { "height" };
        return Err(Error::invalid(
            side,
            format!("resized image would be {ow} x {oh}, over the limit of {} px a side", limits.max_side),
        ));
    }
    let pixels = u64::from(ow) * u64::from(oh);
    let frames = image.frames.len() as u64;
    if pixels > limits.max_pixels || pixels.saturating_mul(frames) > limits.max_total_pixels {
        return Err(Error::invalid(
            "width",
            format!("resized image would be {ow} x {oh} x {frames} frames, over the pixel limits"),
        ));
    }
    let mut resizer = Resizer::new();
    image.try_map_frames(|pixels| {
        *pixels = resample(&mut resizer, pixels, ow, oh, plan.crop, p.filter)?;
        Ok(())
    })
}

/// Resamples `p` to exactly `width` x `height` (aspect ratio not kept) with `filter`, in
/// premultiplied alpha for RGBA (no dark fringes at transparent edges). Returns pixels of the
/// same kind (RGB or RGBA). For other operations that scale an overlay; callers bound the size
/// (a zero side or a buffer that cannot be addressed is an [`Error::InvalidParams`]).
pub(crate) fn resize_pixels(p: &Pixels, width: u32, height: u32, filter: Filter) -> Result<Pixels> {
    resample(&mut Resizer::new(), p, width, height, None, filter)
}

/// Source rectangle of a `cover` crop, in source pixels (fractional: the resampler reads it
/// exactly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The source rectangle `resize` keeps of `pixels` (a frame at full size) for `p`: `Some` only
/// for a `cover` that crops. This is the crop [`resize`] resamples.
pub fn cover_crop(p: &ResizeParams, pixels: &Pixels) -> Result<Option<Crop>> {
    let (w, h) = pixels.dimensions();
    if p.fit != Fit::Cover {
        return Ok(None);
    }
    Ok(plan(p, w, h, Some(pixels))?.and_then(|pl| pl.crop))
}

/// What `resize` does to a `w` x `h` image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Plan {
    pub width: u32,
    pub height: u32,
    pub crop: Option<Crop>,
}

/// The plan for an image decoded at `(w, h)`, from `shrunk_from` when shrink-on-load made it
/// smaller: sizes then follow from the full image (so they equal a full decode's) while the
/// resampler reads the smaller pixels; a cover crop is planned on those pixels (a smart one
/// looks at `frame`). `None` to leave the image as it is.
pub(crate) fn plan_decoded(
    p: &ResizeParams,
    (w, h): (u32, u32),
    shrunk_from: Option<(u32, u32)>,
    frame: Option<&Pixels>,
) -> Result<Option<Plan>> {
    Ok(match shrunk_from {
        Some((fw, fh)) if p.fit != Fit::Cover => {
            plan(p, fw, fh, None)?.map(|pl| Plan { crop: None, ..pl }).or(
                // At full size the image would be left as is: keep that size.
                ((fw, fh) != (w, h)).then_some(Plan { width: fw, height: fh, crop: None }),
            )
        }
        _ => plan(p, w, h, frame)?,
    })
}

/// `round(a * b / c)` without overflow, at least 1 (c > 0).
fn mul_div_round(a: u32, b: u32, c: u32) -> u32 {
    let (a, b, c) = (u128::from(a), u128::from(b), u128::from(c.max(1)));
    let v = (2 * a * b + c) / (2 * c);
    u32::try_from(v).unwrap_or(u32::MAX).max(1)
}

/// The output size (and cover crop) for a `w` x `h` image; `None` to leave it as is. A smart
/// cover crop looks at `frame` (the pixels, `w` x `h`); without it, it is centred.
fn plan(p: &ResizeParams, w: u32, h: u32, frame: Option<&Pixels>) -> Result<Option<Plan>> {
    if w == 0 || h == 0 {
        return Ok(None);
    }
    let missing = |name: &str| Error::invalid(name, "required when fit is cover or fill");
    let (out_w, out_h, crop) = match p.fit {
        Fit::Inside => {
            let fits = p.width.is_none_or(|bw| w <= bw) && p.height.is_none_or(|bh| h <= bh);
            if fits && !p.upscale {
                return Ok(None);
            }
            match (p.width, p.height) {
                (None, None) => return Ok(None),
                (Some(bw), None) => (bw, mul_div_round(h, bw, w), None),
                (None, Some(bh)) => (mul_div_round(w, bh, h), bh, None),
                (Some(bw), Some(bh)) => {
                    // Width-limited when bw / w <= bh / h.
                    if u64::from(bw) * u64::from(h) <= u64::from(bh) * u64::from(w) {
                        (bw, mul_div_round(h, bw, w), None)
                    } else {
                        (mul_div_round(w, bh, h), bh, None)
                    }
                }
            }
        }
        Fit::Cover | Fit::Fill => {
            let bw = p.width.ok_or_else(|| missing("width"))?;
            let bh = p.height.ok_or_else(|| missing("height"))?;
            let (bw, bh) = if p.upscale { (bw, bh) } else { shrink_box(bw, bh, w, h) };
            let crop = if p.fit == Fit::Cover { crop_for(p, w, h, bw, bh, frame)? } else { None };
            (bw, bh, crop)
        }
    };
    if out_w == w && out_h == h && crop.is_none() {
        return Ok(None);
    }
    Ok(Some(Plan { width: out_w, height: out_h, crop }))
}

/// Shrinks a `bw` x `bh` box proportionally until it fits in `w` x `h` (unchanged if it fits).
fn shrink_box(bw: u32, bh: u32, w: u32, h: u32) -> (u32, u32) {
    if bw <= w && bh <= h {
        (bw, bh)
    } else if u64::from(bw) * u64::from(h) >= u64::from(bh) * u64::from(w) {
        // The width overflows most: it becomes the image's width.
        (w, mul_div_round(bh, w, bw).min(h))
    } else {
        (mul_div_round(bw, h, bh).min(w), h)
    }
}

/// Where a cover crop goes along each axis.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    /// At the start (0), middle (1) or end (2).
    Anchor(u8),
    /// Centred on this source coordinate, as far as the image allows.
    Centre(f64),
}

/// The cover crop of a `w` x `h` image for the `bw` x `bh` box, placed as `p` says.
fn crop_for(
    p: &ResizeParams,
    w: u32,
    h: u32,
    bw: u32,
    bh: u32,
    frame: Option<&Pixels>,
) -> Result<Option<Crop>> {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let strategy = match p.gravity {
        CropGravity::Anchor(g) => {
            let place = match (p.focus_x, p.focus_y) {
                (Some(fx), Some(fy)) => (Place::Centre(fx * wf), Place::Centre(fy * hf)),
                _ => {
                    let (gx, gy) = g.factors();
                    (Place::Anchor(gx), Place::Anchor(gy))
                }
            };
            return Ok(place_crop(w, h, bw, bh, place));
        }
        CropGravity::Entropy => Strategy::Entropy,
        CropGravity::Attention => Strategy::Attention,
    };
    let Some(window) = place_crop(w, h, bw, bh, (Place::Anchor(0), Place::Anchor(0))) else {
        return Ok(None);
    };
    let (cx, cy) = match frame {
        Some(pixels) if pixels.dimensions() == (w, h) => {
            smartcrop::centre(pixels, (window.width, window.height), strategy)?
        }
        _ => (wf / 2.0, hf / 2.0),
    };
    Ok(place_crop(w, h, bw, bh, (Place::Centre(cx), Place::Centre(cy))))
}

/// The source rectangle that, scaled by `max(bw/w, bh/h)`, gives exactly `bw` x `bh`; `None`
/// when it is the whole image. The offset is snapped to whole output pixels (as if the image were
/// scaled and then cropped), so an unscaled crop copies pixels exactly.
fn place_crop(w: u32, h: u32, bw: u32, bh: u32, place: (Place, Place)) -> Option<Crop> {
    let (wf, hf, bwf, bhf) = (f64::from(w), f64::from(h), f64::from(bw), f64::from(bh));
    let scale = (bwf / wf).max(bhf / hf);
    // `overflow` and the result are in output pixels; `box_side` is the box's side on this axis.
    let offset = |overflow: f64, box_side: f64, place: Place| {
        let overflow = overflow.max(0.0);
        let at = match place {
            Place::Anchor(g) => overflow * f64::from(g) / 2.0,
            Place::Centre(c) => c * scale - box_side / 2.0,
        };
        if at.is_finite() {
            at.round().clamp(0.0, overflow)
        } else {
            0.0
        }
    };
    let width = (bwf / scale).min(wf);
    let height = (bhf / scale).min(hf);
    let left = (offset(wf * scale - bwf, bwf, place.0) / scale).clamp(0.0, wf - width);
    let top = (offset(hf * scale - bhf, bhf, place.1) / scale).clamp(0.0, hf - height);
    let crop = Crop { left, top, width, height };
    (crop != Crop { left: 0.0, top: 0.0, width: wf, height: hf }).then_some(crop)
}

fn algorithm(filter: Filter) -> ResizeAlg {
    match filter {
        Filter::Nearest => ResizeAlg::Nearest,
        Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
        Filter::CatmullRom => ResizeAlg::Convolution(FilterType::CatmullRom),
        Filter::Mitchell => ResizeAlg::Convolution(FilterType::Mitchell),
        Filter::Lanczos3 => ResizeAlg::Convolution(
            fir::Filter::new("Lanczos3", lanczos3, 3.0).map_or(FilterType::Lanczos3, FilterType::Custom),
        ),
    }
}

/// Lanczos3 as fast_image_resize defines it (sinc(x) sinc(x/3) for |x| < 3), with one sine
/// instead of two: for t = πx/3, sin(πx) = sin(3t) = sin t (3 - 4 sin² t), so the product is
/// sin² t (3 - 4 sin² t) / 3t². The resampler computes it for every tap of every output row
/// and column: 4% of a 2725x2225 to 720x588 resize from a JPEG's planes, most of it in the sines.
fn lanczos3(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    if !(-3.0..3.0).contains(&x) {
        return 0.0;
    }
    let t = x * std::f64::consts::FRAC_PI_3;
    let s2 = t.sin().powi(2);
    s2 * (3.0 - 4.0 * s2) / (3.0 * t * t)
}

/// Resamples (the `crop` of) `src` into a new `width` x `height` buffer of the same kind.
fn resample(
    resizer: &mut Resizer,
    src: &Pixels,
    width: u32,
    height: u32,
    crop: Option<Crop>,
    filter: Filter,
) -> Result<Pixels> {
    let channels: u64 = if src.has_alpha() { 4 } else { 3 };
    let bytes = u64::from(width) * u64::from(height) * channels;
    if width == 0 || height == 0 || usize::try_from(bytes).ok().is_none_or(|b| b > isize::MAX as usize) {
        return Err(Error::invalid("width", format!("cannot resize to {width} x {height}")));
    }
    let mut options = ResizeOptions::new().resize_alg(algorithm(filter)).use_alpha(true);
    if let Some(c) = crop {
        options = options.crop(c.left, c.top, c.width, c.height);
    }
    let (sw, sh) = src.dimensions();
    let failed = |e: &dyn std::fmt::Display| Error::Encode(format!("resize failed: {e}"));
    // Typed calls for the two pixel types used (`resample_plane` too takes its samples as
    // U8x4): `Resizer::resize` dispatches on the pixel type at run time, which links every
    // type's kernels (~1 MB of each function binary).
    let mut raw = vec![0u8; bytes as usize];
    let (from, to) = ((sw, sh), (width, height));
    match src {
        Pixels::Rgb(img) => resize_typed::<U8x3>(resizer, img.as_raw(), from, &mut raw, to, &options),
        Pixels::Rgba(img) => resize_typed::<U8x4>(resizer, img.as_raw(), from, &mut raw, to, &options),
    }
    .map_err(|e| failed(&e))?;
    let out = match src {
        Pixels::Rgb(_) => RgbImage::from_raw(width, height, raw).map(Pixels::Rgb),
        Pixels::Rgba(_) => RgbaImage::from_raw(width, height, raw).map(Pixels::Rgba),
    };
    out.ok_or_else(|| failed(&"output buffer has the wrong size"))
}

/// Resamples the `crop` of one plane of samples (the first `view` columns and rows of `data`,
/// whose rows are `stride` samples apart, a multiple of 4: the rest is padding the filter never
/// reads) into a new `width` x `height` plane. For `transcode::thumbnail`, which resizes a
/// JPEG's Y, Cb and Cr planes instead of RGB.
///
/// In two passes, as the resampler does them for 8-bit samples (vertical, then horizontal), but
/// with the horizontal pass on rows taken four at a time as the channels of RGBA pixels: the
/// resampler's one-channel horizontal kernel sums a 13-tap Lanczos window (a shrink by 2) eight
/// taps at a time and the rest one by one, and took 2.4 times as long per sample as its RGB
/// kernel; its RGBA kernel takes all four rows in one.
pub(crate) fn resample_plane(
    resizer: &mut Resizer,
    (data, stride): (&[u8], usize),
    view: (u32, u32),
    crop: Crop,
    (width, height): (u32, u32),
    filter: Filter,
) -> std::result::Result<Vec<u8>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (vw, w, h) = (view.0 as usize, width as usize, height as usize);
    if vw == 0 || w == 0 || h == 0 {
        return Err("an empty plane".into());
    }
    let options = ResizeOptions::new().resize_alg(algorithm(filter)).use_alpha(false);
    // Vertical: every column of the view's rows to `height` rows, four columns at a time as the
    // channels of RGBA pixels (the columns are independent; a one-channel pixel type would link
    // the resampler's kernels for it, 0.4 MB).
    if stride % 4 != 0 || stride < vw {
        return Err("a plane's stride is not whole RGBA pixels".into());
    }
    let quads = u32::try_from(stride / 4).map_err(|e| err(&e))?;
    let mut tall = vec![0u8; stride.checked_mul(h).ok_or("a plane too large")?];
    {
        // The view's rows only (a cropped view would be another type to build the kernels for).
        let rows = stride.checked_mul(view.1 as usize).ok_or("a plane too large")?;
        let data = data.get(..rows).ok_or("a view past the plane")?;
        let src =
            fir::images::TypedImageRef::<U8x4>::from_buffer(quads, view.1, data).map_err(|e| err(&e))?;
        let mut dst =
            fir::images::TypedImage::<U8x4>::from_buffer(quads, height, &mut tall).map_err(|e| err(&e))?;
        let v = options.crop(0.0, crop.top, f64::from(quads), crop.height);
        resizer.resize_typed(&src, &mut dst, &v).map_err(|e| err(&e))?;
    }
    // Horizontal: rows 4k..4k+4 as the four channels of one row of pixels (the last group
    // padded with copies of the last row).
    let groups = h.div_ceil(4);
    let mut packed = vec![0u8; vw * groups * 4];
    for (g, out) in packed.chunks_exact_mut(vw * 4).enumerate() {
        let row = |i: usize| &tall[(4 * g + i).min(h - 1) * stride..][..vw];
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        for (x, px) in out.chunks_exact_mut(4).enumerate() {
            px.copy_from_slice(&[r0[x], r1[x], r2[x], r3[x]]);
        }
    }
    drop(tall);
    let mut wide = vec![0u8; w * groups * 4];
    {
        let g = u32::try_from(groups).map_err(|e| err(&e))?;
        let src = fir::images::TypedImageRef::<U8x4>::from_buffer(view.0, g, &packed).map_err(|e| err(&e))?;
        let mut dst =
            fir::images::TypedImage::<U8x4>::from_buffer(width, g, &mut wide).map_err(|e| err(&e))?;
        let hz = options.crop(crop.left, 0.0, crop.width, f64::from(g));
        resizer.resize_typed(&src, &mut dst, &hz).map_err(|e| err(&e))?;
    }
    let mut out = vec![0u8; w * h];
    for (g, px_row) in wide.chunks_exact(w * 4).enumerate() {
        for i in 0..4.min(h - 4 * g) {
            let dst = &mut out[(4 * g + i) * w..][..w];
            for (d, px) in dst.iter_mut().zip(px_row.chunks_exact(4)) {
                *d = px[i];
            }
        }
    }
    Ok(out)
}

/// One typed resize of `src` (`sw` x `sh`) into `dst` (`dw` x `dh`), both packed `P` pixels.
fn resize_typed<P: fir::PixelTrait>(
    resizer: &mut Resizer,
    src: &[u8],
    (sw, sh): (u32, u32),
    dst: &mut [u8],
    (dw, dh): (u32, u32),
    options: &ResizeOptions,
) -> std::result::Result<(), String> {
    let src = fir::images::TypedImageRef::<P>::from_buffer(sw, sh, src).map_err(|e| e.to_string())?;
    let mut dst = fir::images::TypedImage::<P>::from_buffer(dw, dh, dst).map_err(|e| e.to_string())?;
    resizer.resize_typed(&src, &mut dst, options).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos3_is_the_two_sine_definition() {
        let sinc = |x: f64| {
            let px = x * std::f64::consts::PI;
            if x == 0.0 {
                1.0
            } else {
                px.sin() / px
            }
        };
        for i in -700..=700 {
            let x = f64::from(i) / 200.0;
            let want = if x.abs() < 3.0 { sinc(x) * sinc(x / 3.0) } else { 0.0 };
            assert!((lanczos3(x) - want).abs() < 1e-12, "{x}: {} against {want}", lanczos3(x));
        }
    }
}
