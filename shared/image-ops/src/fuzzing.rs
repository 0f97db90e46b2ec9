//! The bodies of the fuzz targets (`tests/fuzz`, cargo-fuzz on nightly), kept here so that the
//! corpus replay test (`tests/fuzz_corpus.rs`, stable, run by CI) runs exactly the code the
//! fuzzer runs, and so that clippy and the stable build keep it compiling. Not part of the API:
//! hidden from the docs, and nothing else may call it.
//!
//! Each target takes the fuzzer's bytes and returns nothing. An error from image-ops is a
//! correct answer; a panic is a finding: either a panic inside image-ops, or one of the
//! invariants below asserted here:
//!
//! - [`decode()`]: a probe that passes is within [`limits()`]; a decode that passes agrees with
//!   the probe (size up to EXIF orientation, no more frames than counted, every frame the same
//!   size); a decode never passes where the probe failed; shrink-on-load and first-frame-only
//!   decodes pass whenever the full decode does, with one frame no larger than it; every error
//!   is the client's (never [`Category::Internal`]).
//! - [`pipeline()`]: a spec that validates prints as JSON and parses back to itself; a run
//!   gives no internal error; its output is within the limits, in the format the pipeline
//!   says, and decodes again to the size it reports; tiles cover the image exactly.
//!
//! Hangs and runaway allocation are caught by libFuzzer (`-timeout`, `-rss_limit_mb`,
//! `-malloc_limit_mb`): [`limits()`] keeps every legitimate run small and fast.
//!
//! JSON parsing stays out of image-ops (an architecture invariant): the callers pass
//! [`Json`], serde_json's two functions.

use std::collections::BTreeMap;

use image::{Rgb, RgbImage, Rgba, RgbaImage};

use crate::decode::{self, DecodeOptions, Probe};
use crate::encode::{self, ChromaSubsampling, OutputParams, Quality};
use crate::geometry::{Color, Gravity, Length};
use crate::ops::qr::{EcLevel, QrParams};
use crate::ops::resize::{CropGravity, Filter, Fit, ResizeParams};
use crate::ops::round_corners::RoundCornersParams;
use crate::ops::slice::SliceParams;
use crate::ops::watermark::WatermarkParams;
use crate::ops::watermark_text::{Align, Tile};
use crate::ops::AssetKind;
use crate::pipeline::MAX_OPS;
use crate::{
    Assets, Category, Error, Frame, Image, InputFormat, Limits, Op, Output, OutputFormat, Pipeline,
    PipelineSpec, Pixels, Rendered, Result,
};

/// The limits both targets run under: small enough that every input that passes them decodes,
/// runs and encodes in milliseconds with a few MB, so that a slow or large run is a finding.
pub fn limits() -> Limits {
    Limits {
        max_input_bytes: 1 << 20,
        max_pixels: 1 << 16,
        max_side: 1024,
        max_frames: 8,
        max_total_pixels: 1 << 18,
        max_asset_bytes: 1 << 20,
    }
}

/// JSON, as the callers parse and print it (serde_json, which image-ops does not depend on).
#[derive(Debug, Clone, Copy)]
pub struct Json {
    /// `serde_json::from_slice(..).ok()`.
    pub parse: fn(&[u8]) -> Option<PipelineSpec>,
    /// `serde_json::to_vec(..).ok()`.
    pub print: fn(&PipelineSpec) -> Option<Vec<u8>>,
}

/// The `decode` target: `data` is the whole input file. Probes and decodes it under
/// [`limits()`] in full, then (when it probed) once more shrunk on load to the first frame.
pub fn decode(data: &[u8]) {
    let limits = limits();
    let probed = decode::probe(data, &limits);
    let full = decode::decode(data, &limits, &DecodeOptions::default());
    let probe = match (&probed, &full) {
        (Ok(probe), _) => {
            check_probe(probe, &limits);
            *probe
        }
        (Err(e), Ok(_)) => panic!("decode passed where probe failed with {e}"),
        (Err(p), Err(d)) => {
            check_client(p);
            check_client(d);
            return;
        }
    };
    let full = match full {
        Ok(image) => {
            check_decoded(&image, &probe, &limits);
            Some(image)
        }
        Err(e) => {
            check_client(&e);
            None
        }
    };
    // Shrink-on-load (JPEG) to a third, first frame only (animations).
    let third = |_: u32, _: u32| 1.0 / 3.0;
    let options = DecodeOptions { first_frame_only: true, shrink: Some(&third), ..Default::default() };
    match (decode::decode_probed(data, &probe, &limits, &options), &full) {
        (Ok(small), Some(full)) => {
            assert_eq!(small.frames.len(), 1, "first_frame_only decoded {} frames", small.frames.len());
            let (sw, sh) = (small.width(), small.height());
            assert!(sw <= full.width() && sh <= full.height(), "shrunk {sw}x{sh} > {}", size(full));
            if let Some((w, h)) = small.shrunk_from {
                assert_eq!((w, h), (full.width(), full.height()), "shrunk_from is not the upright size");
            } else {
                assert_eq!((sw, sh), (full.width(), full.height()), "not shrunk, yet smaller");
            }
        }
        (Ok(_), None) => {} // The full decode failed on a later frame.
        (Err(e), Some(_)) => panic!("the full decode passed, the shrunk first frame failed with {e}"),
        (Err(e), None) => check_client(&e),
    }
}

/// The `pipeline` target. `data[0]` says how the rest is read: bit 0 clear, the spec is JSON
/// up to the first NUL byte (parsed with `json.parse`); set, it is built from the bytes that
/// follow, operation by operation (every operation of the registry, with values chosen to hit
/// the edges of validation). Bit 1 clear, the remaining bytes are the input file; set, they
/// describe a small valid image (format, size, frames, alpha, EXIF orientation, pixels) that
/// image-ops' own encoders write, so that the operations run rather than the decoder refusing
/// garbage. Bits 2..8 size the overlay asset that image watermarks get. Assets are supplied
/// for every name the pipeline asks for, except `missing`; `garbage` is not an image or font.
pub fn pipeline(data: &[u8], json: Json) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = Bytes(rest);
    let spec = if mode & 1 == 0 {
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        bytes = Bytes(rest.get(end + 1..).unwrap_or_default());
        match (json.parse)(&rest[..end]) {
            Some(spec) => spec,
            None => return,
        }
    } else {
        spec(&mut bytes)
    };
    let limits = limits();
    let pipeline = match Pipeline::new(spec, limits) {
        Ok(p) => p,
        Err(e) => return check_client(&e),
    };
    check_round_trip(pipeline.spec(), json);
    let input = if mode & 2 == 0 { bytes.0.to_vec() } else { image_file(&mut bytes) };
    let assets = assets(&pipeline, mode >> 2);
    match pipeline.run(&input, &assets) {
        Ok(rendered) => check_rendered(&rendered, &pipeline, &input),
        Err(e) => check_client(&e),
    }
}

fn size(image: &Image) -> String {
    format!("{}x{}", image.width(), image.height())
}

fn check_client(e: &Error) {
    assert_eq!(e.category(), Category::Client, "internal error: {e}");
}

fn check_probe(p: &Probe, limits: &Limits) {
    let (w, h, n) = (p.width, p.height, p.frames);
    assert!(w >= 1 && h >= 1 && w <= limits.max_side && h <= limits.max_side, "probe passed {w}x{h}");
    assert!(u64::from(w) * u64::from(h) <= limits.max_pixels, "probe passed {w}x{h}");
    assert!(n >= 1 && n <= limits.max_frames, "probe passed {n} frames");
    assert!(
        u64::from(w) * u64::from(h) * u64::from(n) <= limits.max_total_pixels,
        "probe passed {n} x {w}x{h}"
    );
}

fn check_decoded(image: &Image, probe: &Probe, limits: &Limits) {
    let (w, h) = (image.width(), image.height());
    let stored = (probe.width, probe.height);
    assert!((w, h) == stored || (h, w) == stored, "decoded {w}x{h}, the header said {stored:?}");
    assert_eq!(image.format, probe.format);
    assert!(image.shrunk_from.is_none(), "shrunk without being asked to");
    let frames = image.frames.len() as u64;
    assert!(
        frames >= 1 && frames <= u64::from(probe.frames),
        "{frames} frames, probe counted {}",
        probe.frames
    );
    assert!(frames * u64::from(w) * u64::from(h) <= limits.max_total_pixels);
    for f in &image.frames {
        assert_eq!(f.pixels.dimensions(), (w, h), "animation frames differ in size");
    }
}

fn check_round_trip(spec: &PipelineSpec, json: Json) {
    let Some(printed) = (json.print)(spec) else {
        panic!("a valid spec does not print as JSON: {spec:?}");
    };
    let parsed = (json.parse)(&printed);
    assert_eq!(parsed.as_ref(), Some(spec), "{}", String::from_utf8_lossy(&printed));
}

fn check_rendered(rendered: &Rendered, pipeline: &Pipeline, input: &[u8]) {
    let limits = pipeline.limits();
    let probe = decode::probe(input, limits);
    assert_eq!(probe.as_ref().ok(), Some(&rendered.input), "the run's probe differs from probe()");
    // The pipeline's format, or its `alpha_format` for a result with alpha.
    let mut format = pipeline.output_format(rendered.input.format);
    let written = match &rendered.output {
        Output::Image(e) => e.format,
        Output::Tiles { manifest, .. } => manifest.format,
    };
    if pipeline.spec().output.alpha_format == Some(written) {
        format = written;
    }
    match &rendered.output {
        Output::Image(e) => {
            assert_eq!(e.format, format);
            check_encoded(&e.bytes, format, (e.width, e.height), e.frames, limits);
        }
        Output::Tiles { manifest, tiles } => {
            let (w, h) = (manifest.width, manifest.height);
            assert!(w >= 1 && h >= 1 && w <= limits.max_side && h <= limits.max_side, "tiles of {w}x{h}");
            assert_eq!(manifest.format, format);
            assert_eq!(tiles.len(), manifest.tiles.len());
            assert!(!tiles.is_empty() && tiles.len() as u64 <= crate::ops::slice::MAX_TILES);
            let mut area = 0u64;
            for (info, tile) in manifest.tiles.iter().zip(tiles) {
                assert!(info.row < manifest.rows && info.col < manifest.cols, "{info:?}");
                assert!(info.width >= 1 && info.height >= 1, "{info:?}");
                assert!(info.x + info.width <= w && info.y + info.height <= h, "{info:?} outside {w}x{h}");
                assert_eq!((tile.width, tile.height, tile.frames), (info.width, info.height, 1), "{info:?}");
                area += u64::from(info.width) * u64::from(info.height);
            }
            assert_eq!(area, u64::from(w) * u64::from(h), "tiles do not cover {w}x{h} exactly");
            for tile in [tiles.first(), tiles.last()].into_iter().flatten() {
                check_encoded(&tile.bytes, format, (tile.width, tile.height), 1, limits);
            }
        }
    }
}

/// An output decodes again (under the default limits: outputs may exceed the small ones) to
/// the size and format it claims, with at most as many frames (libwebp merges identical ones).
fn check_encoded(bytes: &[u8], format: OutputFormat, (w, h): (u32, u32), frames: u32, limits: &Limits) {
    assert!(w >= 1 && h >= 1 && w <= limits.max_side && h <= limits.max_side, "output of {w}x{h}");
    assert!(frames >= 1 && frames <= limits.max_frames, "output of {frames} frames");
    if format == OutputFormat::Avif {
        // No AVIF decoder yet: the container says what it holds.
        assert_eq!(bytes.get(4..12), Some(&b"ftypavif"[..]), "an AVIF output without its ftyp");
        assert_eq!(frames, 1, "an AVIF output of {frames} frames");
        return;
    }
    let again = match decode::decode(bytes, &Limits::default(), &DecodeOptions::default()) {
        Ok(image) => image,
        Err(e) => panic!("a {w}x{h} {format:?} output does not decode: {e}"),
    };
    assert_eq!(OutputFormat::from_input(again.format), format);
    assert_eq!((again.width(), again.height()), (w, h), "the output's size");
    assert!(
        again.frames.len() as u64 <= u64::from(frames),
        "{} frames, {frames} written",
        again.frames.len()
    );
}

/// The assets the pipeline names (see [`pipeline()`]); image assets are a PNG whose size
/// follows `shape`.
fn assets(pipeline: &Pipeline, shape: u8) -> Assets {
    let mut out = BTreeMap::new();
    for asset in pipeline.assets() {
        let bytes = match (asset.name, asset.kind) {
            ("missing", _) => continue,
            ("garbage", _) => b"neither an image nor a font".to_vec(),
            (_, AssetKind::Font) => crate::fonts::DEFAULT_FONT.to_vec(),
            (_, AssetKind::Image) => overlay(shape),
        };
        out.insert(asset.name.to_owned(), bytes);
    }
    out
}

/// A translucent RGBA PNG, 1..=36 px a side: `shape` bits 0..3 and 3..6 give the sides.
fn overlay(shape: u8) -> Vec<u8> {
    let (w, h) = (1 + u32::from(shape & 7) * 5, 1 + u32::from(shape >> 3 & 7) * 5);
    let pixels =
        RgbaImage::from_fn(w, h, |x, y| Rgba([(x * 40) as u8, (y * 40) as u8, 200, ((x + y) * 30) as u8]));
    let image = Image::still(Pixels::Rgba(pixels), InputFormat::Png);
    match encode::encode(&image, OutputFormat::Png, &OutputParams::default()) {
        Ok(e) => e.bytes,
        Err(e) => panic!("the overlay does not encode: {e}"),
    }
}

/// The fuzzer's bytes, read front to back as choices. Once they run out every read is 0, so
/// any prefix still describes a whole (mostly default) choice.
#[derive(Debug)]
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// 0..n (n <= 256).
    fn below(&mut self, n: u32) -> u32 {
        u32::from(self.byte()) % n.max(1)
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    fn option<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        self.bool().then(|| f(self))
    }

    /// Mostly in `common` (the useful range), sometimes an edge or anything.
    fn u32_in(&mut self, common: std::ops::RangeInclusive<u32>) -> u32 {
        match self.below(8) {
            0 => self.pick(&[0, 1, 2, 3, 255, 1023, 1024, 1025, 4096, 16_384, 65_535, 65_536, u32::MAX]),
            1 => self.u32(),
            _ => {
                let span = u64::from(common.end() - common.start()) + 1;
                common.start() + (u64::from(self.u16()) % span) as u32
            }
        }
    }

    fn i32(&mut self) -> i32 {
        match self.below(8) {
            0 => self.pick(&[i32::MIN, -1025, -1024, -1, 1024, 1025, i32::MAX]),
            1 => self.u32() as i32,
            2..=4 => 0,
            _ => i32::from(self.byte() as i8),
        }
    }

    /// Mostly a fraction in [0, 1], sometimes an edge (NaN, infinities, out of range).
    fn f32(&mut self) -> f32 {
        match self.below(8) {
            0 => self.pick(&[
                0.0,
                -0.0,
                1.0,
                1.0001,
                -1.0,
                50.0,
                50.01,
                f32::NAN,
                f32::INFINITY,
                f32::MIN_POSITIVE,
            ]),
            1 => f32::from_bits(self.u32()),
            _ => f32::from(self.byte()) / 255.0,
        }
    }

    /// A focal point's fraction: [`Bytes::f32`] widened (mostly 0..=1, sometimes an edge).
    fn fraction(&mut self) -> f64 {
        f64::from(self.f32())
    }

    fn text(&mut self, max: usize) -> String {
        let n = self.below(max as u32 + 1) as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }

    fn color(&mut self) -> Color {
        match self.below(4) {
            0 => Color::BLACK,
            1 => Color::WHITE,
            2 => Color::TRANSPARENT,
            _ => Color([self.byte(), self.byte(), self.byte(), self.byte()]),
        }
    }

    fn length(&mut self) -> Length {
        if self.bool() {
            Length::Px(self.u32_in(1..=200))
        } else {
            Length::Percent(self.f32() * 60.0)
        }
    }

    fn asset_name(&mut self) -> String {
        self.pick(&["logo", "missing", "garbage", "", " "]).to_owned()
    }
}

const GRAVITIES: [Gravity; 9] = [
    Gravity::TopLeft,
    Gravity::Top,
    Gravity::TopRight,
    Gravity::Left,
    Gravity::Center,
    Gravity::Right,
    Gravity::BottomLeft,
    Gravity::Bottom,
    Gravity::BottomRight,
];

/// How many kinds of step [`op`] builds: every operation of the registry (`watermark` twice:
/// text and image). A test checks that together they cover [`crate::REGISTRY`].
const OP_KINDS: u32 = 6;

/// One step, of kind `kind % OP_KINDS`, its params read from `b`.
fn op(kind: u32, b: &mut Bytes<'_>) -> Op {
    match kind % OP_KINDS {
        0 => Op::Thumbnail(ResizeParams {
            width: b.option(|b| b.u32_in(1..=300)),
            height: b.option(|b| b.u32_in(1..=300)),
            fit: b.pick(&[Fit::Inside, Fit::Cover, Fit::Fill]),
            gravity: match b.below(12) {
                9 => CropGravity::Entropy,
                10 => CropGravity::Attention,
                _ => CropGravity::Anchor(b.pick(&GRAVITIES)),
            },
            // Now and then a focal point, mostly inside the image.
            focus_x: b.option(Bytes::fraction).filter(|_| b.below(4) == 0),
            focus_y: b.option(Bytes::fraction),
            upscale: b.bool(),
            filter: b.pick(&[
                Filter::Nearest,
                Filter::Bilinear,
                Filter::CatmullRom,
                Filter::Mitchell,
                Filter::Lanczos3,
            ]),
        }),
        kind @ (1 | 2) => {
            let text = kind == 1;
            let mut p = if text { WatermarkParams::text(b.text(40)) } else { WatermarkParams::text("") };
            if !text {
                p.text = None;
                p.image = Some(b.asset_name());
                p.scale = b.option(Bytes::f32);
            }
            // Now and then a param of the other kind, or both kinds at once.
            if text || b.below(8) == 0 {
                p.font = b.option(Bytes::asset_name).filter(|_| b.below(4) == 0);
                p.size = b.option(Bytes::length);
                p.color = b.option(Bytes::color);
                p.align = b.option(|b| b.pick(&[Align::Left, Align::Center, Align::Right]));
            }
            if b.below(16) == 0 {
                p.image = Some(b.asset_name());
            }
            p.opacity = b.f32();
            p.gravity = b.pick(&GRAVITIES);
            p.offset_x = b.i32();
            p.offset_y = b.i32();
            p.tile = b.option(|b| Tile { spacing: b.u32_in(0..=100) });
            Op::Watermark(p)
        }
        3 => Op::RoundCorner(RoundCornersParams { radius: b.length(), background: b.option(Bytes::color) }),
        4 => {
            let long = b.below(16) == 0;
            Op::QrOverlay(QrParams {
                data: if long { "q".repeat(b.u16() as usize % 1200) } else { b.text(60) },
                size: b.u32_in(60..=300),
                quiet_zone: b.u32_in(0..=4),
                ec_level: b.pick(&[EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H]),
                dark: if b.below(4) == 0 { b.color() } else { Color::BLACK },
                light: if b.below(4) == 0 { b.color() } else { Color::WHITE },
                gravity: b.pick(&GRAVITIES),
                offset_x: b.i32(),
                offset_y: b.i32(),
            })
        }
        _ => {
            let grid = b.bool();
            let dim = |b: &mut Bytes<'_>, on: bool| {
                if on || b.below(8) == 0 {
                    Some(b.u32_in(1..=70))
                } else {
                    None
                }
            };
            Op::Slice(SliceParams {
                rows: dim(b, grid),
                cols: dim(b, grid),
                tile_width: dim(b, !grid),
                tile_height: dim(b, !grid),
            })
        }
    }
}

/// A spec built from `b`: up to four steps (now and then more than [`MAX_OPS`]) and the
/// output params, each value mostly valid.
fn spec(b: &mut Bytes<'_>) -> PipelineSpec {
    let n = if b.below(32) == 0 { MAX_OPS + 1 } else { b.below(5) as usize };
    let ops = (0..n).map(|_| op(u32::from(b.byte()), b)).collect();
    let rarely = |b: &mut Bytes<'_>| b.below(8) == 0;
    let output = OutputParams {
        format: b.option(|b| b.pick(&OutputFormat::ALL)),
        quality: match b.below(16) {
            0 => Quality::Source,
            1 => Quality::Level(b.byte()),
            _ => Quality::Level(1 + b.below(100) as u8),
        },
        progressive: b.bool(),
        lossless: b.bool(),
        background: b.color(),
        compression_level: if rarely(b) { b.byte() } else { b.below(10) as u8 },
        effort: if rarely(b) { b.byte() } else { b.below(7) as u8 },
        alpha_format: b.option(|b| b.pick(&OutputFormat::ALL)).filter(|_| rarely(b)),
        depth: if rarely(b) { b.byte() } else { b.pick(&[8, 10]) },
        keep_icc: b.bool(),
        keep_copyright: b.bool(),
        chroma_subsampling: b.pick(&[
            ChromaSubsampling::Auto,
            ChromaSubsampling::Cs420,
            ChromaSubsampling::Cs444,
        ]),
    };
    PipelineSpec { ops, output }
}

/// The formats [`image_file`] writes (in this order: the corpus' bytes pick them by index).
const FILE_FORMATS: [OutputFormat; 4] =
    [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Gif];

/// A small valid image file read from `b`: format, 1..=128 px a side, 1..=3 frames (GIF and
/// WebP), alpha or not, pixels from a 16-byte pattern, encoded by image-ops, then an EXIF
/// orientation (JPEG APP1, PNG eXIf) for 1..=8.
fn image_file(b: &mut Bytes<'_>) -> Vec<u8> {
    let format = b.pick(&FILE_FORMATS);
    let (w, h) = (1 + b.below(128), 1 + b.below(128));
    let frames = 1 + b.below(3);
    let frames = if format.can_animate() { frames } else { 1 };
    let alpha = b.bool();
    let out = OutputParams {
        format: Some(format),
        quality: Quality::Level(1 + b.below(100) as u8),
        progressive: b.bool(),
        lossless: b.bool(),
        ..OutputParams::default()
    };
    let orientation = b.below(9) as u8;
    let loop_count = b.u16();
    let pattern = b.take(16);
    let value = |x: u32, y: u32, f: u32, c: u32| -> u8 {
        let i = (x / 4 + y / 4 * 3 + f * 5 + c * 7) as usize;
        let base = pattern.get(i % pattern.len().max(1)).copied().unwrap_or(0);
        base.wrapping_add((x * 255 / w.max(2)) as u8 ^ (y * 255 / h.max(2)) as u8)
    };
    let frames = (0..frames)
        .map(|f| {
            let pixels = if alpha {
                Pixels::Rgba(RgbaImage::from_fn(w, h, |x, y| {
                    Rgba([value(x, y, f, 0), value(x, y, f, 1), value(x, y, f, 2), value(x, y, f, 3)])
                }))
            } else {
                Pixels::Rgb(RgbImage::from_fn(w, h, |x, y| {
                    Rgb([value(x, y, f, 0), value(x, y, f, 1), value(x, y, f, 2)])
                }))
            };
            Frame { pixels, delay_ms: 10 * f }
        })
        .collect();
    let image = Image {
        frames,
        format: InputFormat::Png,
        loop_count,
        shrunk_from: None,
        metadata: Default::default(),
    };
    let bytes = match encode::encode(&image, format, &out) {
        Ok(e) => e.bytes,
        Err(e) => panic!("a valid {w}x{h} image does not encode as {format:?}: {e}"),
    };
    if orientation == 0 {
        return bytes;
    }
    with_orientation(bytes, format, orientation).unwrap_or_default()
}

/// `file` with an EXIF orientation (and an Artist) added (JPEG and PNG; others as they are).
fn with_orientation(file: Vec<u8>, format: OutputFormat, orientation: u8) -> Result<Vec<u8>> {
    // Big-endian TIFF: two IFD entries, tag 0x0112 (orientation), SHORT, count 1, and 0x013B
    // (Artist), ASCII "fz" inline, for the pipelines that keep the copyright tags.
    let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x02\x01\x12\0\x03\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&[orientation, 0, 0]);
    tiff.extend_from_slice(b"\x01\x3b\0\x02\0\0\0\x03fz\0\0");
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    let cut = || Error::Encode("encoder output too short".into());
    match format {
        OutputFormat::Jpeg => {
            let mut segment = b"Exif\0\0".to_vec();
            segment.extend_from_slice(&tiff);
            let mut out = file.get(..2).ok_or_else(cut)?.to_vec();
            out.extend_from_slice(&[0xFF, 0xE1]);
            out.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(&segment);
            out.extend_from_slice(file.get(2..).ok_or_else(cut)?);
            Ok(out)
        }
        OutputFormat::Png => {
            // After the signature (8) and IHDR (25).
            let mut out = file.get(..33).ok_or_else(cut)?.to_vec();
            out.extend_from_slice(&(tiff.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(b"eXIf");
            crc.update(&tiff);
            out.extend_from_slice(b"eXIf");
            out.extend_from_slice(&tiff);
            out.extend_from_slice(&crc.sum().to_be_bytes());
            out.extend_from_slice(file.get(33..).ok_or_else(cut)?);
            Ok(out)
        }
        OutputFormat::Gif | OutputFormat::Webp | OutputFormat::Avif => Ok(file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_steps_cover_the_registry() {
        let mut built: Vec<&str> = (0..OP_KINDS).map(|k| op(k, &mut Bytes(&[])).spec().name).collect();
        built.sort_unstable();
        built.dedup();
        let mut registry: Vec<&str> =
            crate::REGISTRY.iter().filter(|s| s.kind == crate::ops::Kind::Pixels).map(|s| s.name).collect();
        registry.sort_unstable();
        assert_eq!(built, registry, "fuzzing::op must build every pixel operation of the registry");
    }

    #[test]
    fn built_images_decode_with_their_orientation() {
        // (format, w - 1, h - 1, frames - 1 (GIF/WebP), alpha, quality, progressive, lossless,
        // orientation 6 (rotate 90: sides swap), loop count (2 bytes)).
        for format in 0..4u8 {
            let mut desc = vec![format, 9, 19, 1, 1, 80, 0, 0, 6, 0, 0];
            // The pattern: frames that differ (libwebp merges identical ones).
            desc.extend(1..=16);
            let file = image_file(&mut Bytes(&desc));
            let image = decode::decode(&file, &limits(), &DecodeOptions::default()).expect("decodes");
            let f = FILE_FORMATS[usize::from(format)];
            assert_eq!(OutputFormat::from_input(image.format), f);
            let want = if matches!(f, OutputFormat::Jpeg | OutputFormat::Png) { (20, 10) } else { (10, 20) };
            assert_eq!((image.width(), image.height()), want, "{f:?}");
            assert_eq!(image.frames.len(), if f.can_animate() { 2 } else { 1 }, "{f:?}");
        }
    }
}
