//! Text watermark.
//!
//! The text is laid out once (UTF-8, `\n`-separated lines, kerning between neighbouring glyphs
//! from the font's GPOS `kern` feature, else its old `kern` table ([`Kerning`]), line height
//! from its ascent, descent and line gap), rendered once into an anti-aliased
//! coverage mask cut to the ink's bounding box, and blended in the requested colour onto every
//! frame. The text is never clipped: when the block does not fit inside the image (minus the
//! offsets), the font size is reduced until it does. A character the font has no glyph for
//! (its cmap maps it to glyph 0, `.notdef`, usually drawn as an empty box) is refused with
//! [`Error::InvalidParams`] on `text`, naming the characters: the bundled DejaVu Sans has no
//! CJK, so CJK text needs a CJK font asset. Control characters are not drawn (a tab is a space,
//! `\n` breaks the line) and invisible format characters (zero-width space and joiners,
//! variation selectors, bidi marks, the BOM) the font lacks are left out; neither counts as
//! missing. No complex shaping (ligatures, Arabic joining, bidi) is done.

use ab_glyph::{point, Font, FontRef, GlyphId, OutlinedGlyph, PxScale, ScaleFont};
use image::GrayImage;
use serde::{Deserialize, Serialize};

use crate::compose::{self, Layer, Source};
use crate::geometry::{check_range, Color, Gravity, Length};
use crate::ops::Canvas;
use crate::{Error, Limits, Result};

/// Horizontal alignment of the lines of a multi-line text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    Left,
    #[default]
    Center,
    Right,
}

/// Repeat the watermark over the whole image. Written `{"spacing": 64}`, or just the spacing
/// (`64`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tile {
    /// Gap between repetitions in px (both directions). Default 64.
    pub spacing: u32,
}

impl<'de> Deserialize<'de> for Tile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            #[serde(default = "default_spacing")]
            spacing: u32,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Spacing(u32),
            Object(Object),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Spacing(spacing)) | Ok(Raw::Object(Object { spacing })) => Ok(Tile { spacing }),
            Err(_) => Err(serde::de::Error::custom(
                "invalid tile: expected the spacing in px (64) or {\"spacing\": 64}",
            )),
        }
    }
}

fn default_spacing() -> u32 {
    64
}

/// Params of `watermark_text`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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

impl TextWatermarkParams {
    /// `text` with every other param at its default.
    pub fn new(text: impl Into<String>) -> TextWatermarkParams {
        TextWatermarkParams {
            text: text.into(),
            font: None,
            size: default_size(),
            color: white(),
            opacity: default_opacity(),
            gravity: default_gravity(),
            offset_x: 0,
            offset_y: 0,
            align: Align::default(),
            tile: None,
        }
    }
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

/// Most characters of a text watermark.
pub const MAX_CHARS: usize = 1000;
/// Most lines of a text watermark.
pub const MAX_LINES: usize = 50;
/// Largest tile spacing, in px.
pub const MAX_SPACING: u32 = 10_000;

impl crate::Validate for TextWatermarkParams {
    fn validate(&self, field: &str, limits: &Limits) -> Result<()> {
        let text_field = format!("{field}.text");
        if self.text.trim().is_empty() {
            return Err(Error::invalid(text_field, "must not be empty"));
        }
        let chars = self.text.chars().count();
        if chars > MAX_CHARS {
            return Err(Error::invalid(text_field, format!("at most {MAX_CHARS} characters, got {chars}")));
        }
        let lines = self.text.split('\n').count();
        if lines > MAX_LINES {
            return Err(Error::invalid(text_field, format!("at most {MAX_LINES} lines, got {lines}")));
        }
        if self.font.as_deref().is_some_and(|f| f.trim().is_empty()) {
            return Err(Error::invalid(format!("{field}.font"), "asset name must not be empty"));
        }
        if self.font.is_none() {
            // The bundled font is known now: missing glyphs are refused before any decoding.
            // An asset font is checked once it is loaded ([`check_glyphs`]).
            check_glyphs(crate::fonts::DEFAULT_FONT, None, &self.text).map_err(|e| e.under(field))?;
        }
        self.size.validate(&format!("{field}.size"), 50.0)?;
        if let Length::Px(px) = self.size {
            check_range(&format!("{field}.size"), px, 1, limits.max_side)?;
        }
        validate_common(field, self.opacity, self.offset_x, self.offset_y, self.tile.as_ref(), limits)
    }
}

/// Checks of the params both watermarks share: opacity, offsets and tile spacing.
pub(crate) fn validate_common(
    field: &str,
    opacity: f32,
    offset_x: i32,
    offset_y: i32,
    tile: Option<&Tile>,
    limits: &Limits,
) -> Result<()> {
    check_range(&format!("{field}.opacity"), opacity, 0.0, 1.0)?;
    let max = i32::try_from(limits.max_side).unwrap_or(i32::MAX);
    check_range(&format!("{field}.offset_x"), offset_x, -max, max)?;
    check_range(&format!("{field}.offset_y"), offset_y, -max, max)?;
    if let Some(t) = tile {
        check_range(&format!("{field}.tile.spacing"), t.spacing, 0, MAX_SPACING)?;
    }
    Ok(())
}

/// Draws the text onto every frame. `font` is the TTF/OTF asset named by `p.font` (a TrueType
/// collection uses its first face), or `None` for the bundled font.
///
/// Errors: `font` when the bytes are not a usable font; `text` when the font has no glyph for
/// a character (see the module docs); `offset_x`/`offset_y` when the offsets leave no room on
/// this image; `size` when the text cannot be made to fit at any size.
pub fn watermark_text(canvas: &mut dyn Canvas, p: &TextWatermarkParams, font: Option<&[u8]>) -> Result<()> {
    let bytes = font.unwrap_or(crate::fonts::DEFAULT_FONT);
    let font = FontRef::try_from_slice_and_index(bytes, 0)
        .map_err(|_| Error::invalid("font", "not a TrueType/OpenType font"))?;
    let metrics =
        Metrics::of(&font).ok_or_else(|| Error::invalid("font", "the font has unusable metrics"))?;
    let frame = canvas.dimensions();
    let layer_visible = p.opacity > 0.0 && p.color.0[3] > 0;
    if !layer_visible || frame.0 == 0 || frame.1 == 0 {
        return Ok(());
    }

    let offset = if p.tile.is_some() { (0, 0) } else { (p.offset_x, p.offset_y) };
    let room = compose::room_or_error(frame, p.gravity, offset, "text")?;
    let em = match p.size {
        Length::Px(px) => px as f32,
        Length::Percent(pc) => frame.0 as f32 * pc / 100.0,
    };
    let lines = drawable_lines(&font, p.font.as_deref(), &p.text)?;
    let kerning = Kerning::of(bytes);
    let Some(block) = fit(&font, &metrics, &kerning, &lines, em, p.align, room)? else {
        return Ok(()); // No ink at all (e.g. only glyphs without outlines).
    };
    let mask = block.render();
    let layer = Layer::new(Source::Mask { mask: &mask, color: p.color.0 }, p.opacity);
    let positions = match &p.tile {
        Some(t) => compose::tile_positions(frame, mask.dimensions(), t.spacing),
        None => vec![compose::place_inside(frame, mask.dimensions(), p.gravity, offset)],
    };
    layer.draw_on(canvas, &positions)
}

/// Checks that the font `bytes` (the asset `name`, or the bundled font) has a glyph for every
/// character of `text` that is drawn. Errors name `text` (or `font` for bytes that are not a
/// font).
pub fn check_glyphs(bytes: &[u8], name: Option<&str>, text: &str) -> Result<()> {
    let font = FontRef::try_from_slice_and_index(bytes, 0)
        .map_err(|_| Error::invalid("font", "not a TrueType/OpenType font"))?;
    drawable_lines(&font, name, text).map(drop)
}

/// Most missing characters listed in an error.
const MAX_LISTED: usize = 12;

/// The lines of `text` as `font` draws them ([`split_lines`], without the invisible format
/// characters it has no glyph for), or the error naming the characters it has no glyph for.
fn drawable_lines(font: &FontRef<'_>, name: Option<&str>, text: &str) -> Result<Vec<Vec<char>>> {
    let mut missing: Vec<char> = Vec::new();
    let lines: Vec<Vec<char>> = split_lines(text)
        .into_iter()
        .map(|line| {
            line.into_iter()
                .filter(|&c| {
                    if font.glyph_id(c).0 != 0 {
                        return true;
                    }
                    if !is_default_ignorable(c) && !missing.contains(&c) {
                        missing.push(c);
                    }
                    false
                })
                .collect()
        })
        .collect();
    if missing.is_empty() {
        return Ok(lines);
    }
    let mut listed: Vec<String> = missing.iter().take(MAX_LISTED).map(|&c| show_char(c)).collect();
    if missing.len() > MAX_LISTED {
        listed.push(format!("and {} more", missing.len() - MAX_LISTED));
    }
    let which = match name {
        Some(name) => format!(" (font asset {name:?})"),
        None => " (the bundled DejaVu Sans covers Latin, Greek and Cyrillic: name a font asset that has them in `font`)"
            .to_owned(),
    };
    Err(Error::invalid("text", format!("the font has no glyph for {}{which}", listed.join(", "))))
}

/// A character for a message: quoted, or its code point when it would not show.
fn show_char(c: char) -> String {
    if c.is_whitespace() || c.is_control() || is_default_ignorable(c) || ('\u{300}'..='\u{36f}').contains(&c)
    {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("'{c}'")
    }
}

/// Unicode's Default_Ignorable_Code_Point: invisible format characters (zero-width space and
/// joiners, bidi controls, variation selectors, the BOM, ...) that a font need not have.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// Unscaled vertical metrics, checked to be usable.
#[derive(Debug, Clone, Copy)]
struct Metrics {
    /// Font units per em.
    upem: f32,
    /// Ascent - descent, in font units (> 0).
    height: f32,
}

impl Metrics {
    fn of(font: &FontRef<'_>) -> Option<Metrics> {
        let upem = font.units_per_em()?;
        let height = font.height_unscaled();
        (upem.is_finite() && upem > 0.0 && height.is_finite() && height > 0.0)
            .then_some(Metrics { upem, height })
    }
}

/// The lines of a text, each as its characters: `\r` before `\n` is dropped, a tab becomes a
/// space and other control characters are skipped.
fn split_lines(text: &str) -> Vec<Vec<char>> {
    text.split('\n')
        .map(|line| {
            line.chars()
                .filter_map(|c| match c {
                    '\t' => Some(' '),
                    c if c.is_control() => None,
                    c => Some(c),
                })
                .collect()
        })
        .collect()
}

/// Laid-out glyph outlines and the whole-pixel bounding box of their ink.
#[derive(Debug)]
struct Block {
    glyphs: Vec<OutlinedGlyph>,
    min: (f32, f32),
    max: (f32, f32),
}

impl Block {
    /// Size of the ink's bounding box in px.
    fn size(&self) -> (i64, i64) {
        ((self.max.0 - self.min.0) as i64, (self.max.1 - self.min.1) as i64)
    }

    /// Renders the anti-aliased coverage of every glyph into one mask the size of the box.
    fn render(&self) -> GrayImage {
        let (w, h) = self.size();
        let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
        let mut mask = GrayImage::new(w, h);
        let stride = w as usize;
        let buf: &mut [u8] = &mut mask;
        for g in &self.glyphs {
            let b = g.px_bounds();
            let ox = (b.min.x - self.min.0) as usize;
            let oy = (b.min.y - self.min.1) as usize;
            g.draw(|x, y, c| {
                let (x, y) = (ox + x as usize, oy + y as usize);
                if x >= stride {
                    return;
                }
                if let Some(px) = buf.get_mut(y * stride + x) {
                    // Glyphs touching at a pixel add up (their anti-aliased edges complement).
                    let v = (c.clamp(0.0, 1.0) * 255.0).round() as u8;
                    *px = px.saturating_add(v);
                }
            });
        }
        mask
    }
}

/// Pair kerning, as a shaper applies it to horizontal text without other features: the pair
/// adjustments (GPOS lookup type 2, formats 1 and 2, through extension lookups too) of every
/// lookup of the font's `kern` features, summed over those lookups, first matching subtable per
/// lookup, as HarfBuzz does; the old `kern` table only when the font has no GPOS `kern` feature
/// (HarfBuzz's rule too: a font with both keeps the table for old software). Only the first
/// glyph's x advance adjustment is used (what Latin, Cyrillic, Greek and CJK kerning is made
/// of); placement changes and device tables are ignored. Features are taken from every script,
/// not only the text's.
pub(crate) struct Kerning<'a> {
    pairs: Vec<ttf_parser::gpos::PairAdjustment<'a>>,
    /// Lookup boundaries in `pairs`: the subtables of one lookup are `pairs[ends[i-1]..ends[i]]`.
    ends: Vec<usize>,
}

impl<'a> Kerning<'a> {
    /// The GPOS pair adjustments of `bytes` (the first face of a collection). A font without
    /// them, or one whose tables do not parse, gets none, and [`Kerning::pair`] falls back to
    /// the `kern` table.
    pub(crate) fn of(bytes: &'a [u8]) -> Kerning<'a> {
        use ttf_parser::gpos::PositioningSubtable;
        let mut kerning = Kerning { pairs: Vec::new(), ends: Vec::new() };
        let Some(gpos) = ttf_parser::Face::parse(bytes, 0).ok().and_then(|f| f.tables().gpos) else {
            return kerning;
        };
        let kern = ttf_parser::Tag::from_bytes(b"kern");
        let mut lookups: Vec<u16> = gpos
            .features
            .into_iter()
            .filter(|f| f.tag == kern)
            .flat_map(|f| f.lookup_indices.into_iter())
            .collect();
        lookups.sort_unstable();
        lookups.dedup();
        for index in lookups {
            let Some(lookup) = gpos.lookups.get(index) else { continue };
            let before = kerning.pairs.len();
            for sub in lookup.subtables.into_iter::<PositioningSubtable<'a>>() {
                if let PositioningSubtable::Pair(pair) = sub {
                    kerning.pairs.push(pair);
                }
            }
            if kerning.pairs.len() > before {
                kerning.ends.push(kerning.pairs.len());
            }
        }
        kerning
    }

    /// The kerning between `a` and `b` in font units (negative: closer).
    pub(crate) fn pair(&self, font: &FontRef<'_>, a: GlyphId, b: GlyphId) -> f32 {
        use ttf_parser::gpos::PairAdjustment;
        if self.ends.is_empty() {
            return font.kern_unscaled(a, b);
        }
        let (a, b) = (ttf_parser::GlyphId(a.0), ttf_parser::GlyphId(b.0));
        let mut total = 0.0f32;
        let mut start = 0;
        for &end in &self.ends {
            let adjusted =
                self.pairs.get(start..end).unwrap_or_default().iter().find_map(|pair| match pair {
                    PairAdjustment::Format1 { coverage, sets } => coverage
                        .get(a)
                        .and_then(|i| sets.get(i))
                        .and_then(|set| set.get(b))
                        .map(|r| r.0.x_advance),
                    PairAdjustment::Format2 { coverage, classes, matrix } => {
                        coverage.get(a)?;
                        matrix.get((classes.0.get(a), classes.1.get(b))).map(|r| r.0.x_advance)
                    }
                });
            total += f32::from(adjusted.unwrap_or(0));
            start = end;
        }
        total
    }
}

/// Lays out the lines at `em` px per em: baselines one line height apart, each line placed in
/// the widest line's advance width by `align`, kerning between neighbouring glyphs. `None`
/// when nothing has ink.
fn layout(
    font: &FontRef<'_>,
    m: &Metrics,
    kerning: &Kerning<'_>,
    lines: &[Vec<char>],
    em: f32,
    align: Align,
) -> Option<Block> {
    let scale = PxScale::from(em * m.height / m.upem);
    let sf = font.as_scaled(scale);
    let line_height = sf.ascent() - sf.descent() + sf.line_gap();
    let mut placed: Vec<(Vec<(GlyphId, f32)>, f32)> = Vec::with_capacity(lines.len());
    for line in lines {
        let mut caret = 0.0f32;
        let mut prev: Option<GlyphId> = None;
        let mut glyphs = Vec::with_capacity(line.len());
        for &c in line {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                caret += kerning.pair(font, p, id) * sf.h_scale_factor();
            }
            glyphs.push((id, caret));
            caret += sf.h_advance(id);
            prev = Some(id);
        }
        placed.push((glyphs, caret));
    }
    let widest = placed.iter().map(|(_, w)| *w).fold(0.0f32, f32::max);
    let mut out = Vec::new();
    let (mut min, mut max) = ((f32::INFINITY, f32::INFINITY), (f32::NEG_INFINITY, f32::NEG_INFINITY));
    for (i, (glyphs, width)) in placed.into_iter().enumerate() {
        let shift = match align {
            Align::Left => 0.0,
            Align::Center => (widest - width) / 2.0,
            Align::Right => widest - width,
        };
        let baseline = sf.ascent() + i as f32 * line_height;
        for (id, x) in glyphs {
            let Some(g) = font.outline_glyph(id.with_scale_and_position(scale, point(shift + x, baseline)))
            else {
                continue; // No outline (a space).
            };
            let b = g.px_bounds();
            if !(b.min.x.is_finite() && b.min.y.is_finite() && b.max.x.is_finite() && b.max.y.is_finite())
                || b.width() < 1.0
                || b.height() < 1.0
            {
                continue;
            }
            min = (min.0.min(b.min.x), min.1.min(b.min.y));
            max = (max.0.max(b.max.x), max.1.max(b.max.y));
            out.push(g);
        }
    }
    (!out.is_empty()).then_some(Block { glyphs: out, min, max })
}

/// Lays the text out at `em`, or smaller so that its ink fits in `room`. The size is computed
/// from the measured block, then corrected for pixel rounding in a few re-measures.
fn fit(
    font: &FontRef<'_>,
    m: &Metrics,
    kerning: &Kerning<'_>,
    lines: &[Vec<char>],
    em: f32,
    align: Align,
    room: (i64, i64),
) -> Result<Option<Block>> {
    let mut em = em;
    for attempt in 0..8 {
        let Some(block) = layout(font, m, kerning, lines, em, align) else {
            return Ok(None);
        };
        let (w, h) = block.size();
        if w <= room.0 && h <= room.1 {
            return Ok(Some(block));
        }
        // The ink grows linearly with the size, plus up to a pixel of rounding on each side.
        let f = ((room.0 as f64 - 2.0).max(0.5) / (w as f64 - 2.0).max(1.0))
            .min((room.1 as f64 - 2.0).max(0.5) / (h as f64 - 2.0).max(1.0))
            .min(1.0)
            * if attempt == 0 { 1.0 } else { 0.97 };
        em = (f64::from(em) * f) as f32;
        if !(em.is_finite() && em > 0.0) {
            break;
        }
    }
    Err(Error::invalid("size", "the text cannot be made small enough to fit in the image"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dejavu() -> (FontRef<'static>, Metrics) {
        let font = FontRef::try_from_slice(crate::fonts::DEFAULT_FONT).expect("bundled font parses");
        let m = Metrics::of(&font).expect("metrics");
        (font, m)
    }

    #[test]
    fn kerning_is_applied() {
        let (font, m) = dejavu();
        let k = Kerning::of(crate::fonts::DEFAULT_FONT);
        let lay = |s: &str| layout(&font, &m, &k, &split_lines(s), 100.0, Align::Left).expect("ink");
        let (a, v, av) = (lay("A"), lay("V"), lay("AV"));
        let sf = font.as_scaled(PxScale::from(100.0 * m.height / m.upem));
        let kern = k.pair(&font, font.glyph_id('A'), font.glyph_id('V')) * sf.h_scale_factor();
        assert!(kern < -1.0, "DejaVu kerns AV: {kern}");
        // V's ink starts later by A's advance plus the (negative) kerning.
        let v_in_av = av.glyphs[1].px_bounds().min.x;
        let expect = sf.h_advance(font.glyph_id('A')) + kern + v.min.0;
        assert!((v_in_av - expect).abs() <= 1.0, "{v_in_av} vs {expect}");
        assert!(av.size().0 < a.size().0 + v.size().0);
    }

    /// A font that kerns only through GPOS (DejaVu without its `kern` table; see
    /// tests/fixtures/README.md).
    const GPOS_ONLY: &[u8] = include_bytes!("../../tests/fixtures/DejaVuSans-gpos-kern-subset.ttf");

    #[test]
    fn gpos_kerning_matches_harfbuzz() {
        let font = FontRef::try_from_slice(GPOS_ONLY).expect("the fixture parses");
        let k = Kerning::of(GPOS_ONLY);
        assert!(!k.ends.is_empty(), "the fixture has GPOS kern lookups");
        // ab_glyph alone (the kern table, absent here) kerns nothing.
        let (a, v) = (font.glyph_id('A'), font.glyph_id('V'));
        assert_eq!(font.kern_unscaled(a, v), 0.0);
        // HarfBuzz's advances with kern on (tests/fixtures/README.md), in units of 2048 per em:
        // each is the glyph's own advance plus the kerning with the next one.
        for (text, harfbuzz) in [
            ("AVATAR", &[1270, 1270, 1242, 1092, 1401, 1229][..]),
            ("To", &[903, 1253]),
            ("Wa", &[1894, 1255]),
            ("Ye", &[979, 1260]),
            ("LT", &[859, 1251]),
            ("P.", &[916, 651]),
            ("kv", &[1186, 1212]),
        ] {
            let ids: Vec<GlyphId> = text.chars().map(|c| font.glyph_id(c)).collect();
            let ours: Vec<i32> = ids
                .iter()
                .enumerate()
                .map(|(i, &id)| {
                    let next = ids.get(i + 1).map_or(0.0, |&n| k.pair(&font, id, n));
                    (font.h_advance_unscaled(id) + next).round() as i32
                })
                .collect();
            assert_eq!(ours, harfbuzz, "{text}");
        }
        // The bundled DejaVu has both: GPOS wins, and agrees with its kern table on AV.
        let dejavu = FontRef::try_from_slice(crate::fonts::DEFAULT_FONT).expect("bundled font parses");
        let both = Kerning::of(crate::fonts::DEFAULT_FONT);
        let (a, v) = (dejavu.glyph_id('A'), dejavu.glyph_id('V'));
        assert_eq!(both.pair(&dejavu, a, v), 1270.0 - 1401.0);
        // Not a font: no GPOS, the kern table (through ab_glyph) is used.
        assert!(Kerning::of(b"not a font").ends.is_empty());
    }

    #[test]
    fn lines_are_one_line_height_apart_and_aligned() {
        let (font, m) = dejavu();
        let lines = split_lines("I\nI\r\nIIIII");
        let sf = font.as_scaled(PxScale::from(40.0 * m.height / m.upem));
        let lh = sf.ascent() - sf.descent() + sf.line_gap();
        for (align, expect_x) in [(Align::Left, 0.0), (Align::Center, 0.5), (Align::Right, 1.0)] {
            let b = layout(&font, &m, &Kerning::of(crate::fonts::DEFAULT_FONT), &lines, 40.0, align)
                .expect("ink");
            assert_eq!(b.glyphs.len(), 7);
            let y0 = b.glyphs[0].px_bounds().min.y;
            let y1 = b.glyphs[1].px_bounds().min.y;
            assert!((y1 - y0 - lh).abs() <= 1.0, "{y0} {y1} {lh}");
            // The single I of line 1 sits at the left, middle or right of the 5-I line.
            let one = b.glyphs[0].px_bounds();
            let wide = (b.glyphs[2].px_bounds().min.x, b.glyphs[6].px_bounds().max.x);
            let rel = (one.min.x - wide.0) / (wide.1 - wide.0 - one.width());
            assert!((rel - expect_x).abs() < 0.05, "{align:?}: {rel}");
        }
    }

    #[test]
    fn fit_shrinks_to_the_room() {
        let (font, m) = dejavu();
        let lines = split_lines("a rather long watermark line\nand a second");
        for room in [(300, 200), (100, 100), (37, 11), (5, 3)] {
            let k = Kerning::of(crate::fonts::DEFAULT_FONT);
            let b = fit(&font, &m, &k, &lines, 120.0, Align::Center, room).expect("fits").expect("ink");
            let (w, h) = b.size();
            assert!(w <= room.0 && h <= room.1, "{room:?}: {w}x{h}");
            assert!(w >= room.0 * 7 / 10 || h >= room.1 * 7 / 10, "not needlessly small: {room:?}: {w}x{h}");
        }
    }

    #[test]
    fn bad_fonts_are_rejected_not_panicking() {
        let mut img =
            crate::Image::still(crate::Pixels::Rgb(image::RgbImage::new(20, 20)), crate::InputFormat::Png);
        let p: TextWatermarkParams = TextWatermarkParams {
            text: "x".into(),
            font: Some("f".into()),
            size: Length::Px(10),
            color: Color::WHITE,
            opacity: 1.0,
            gravity: Gravity::Center,
            offset_x: 0,
            offset_y: 0,
            align: Align::Center,
            tile: None,
        };
        let mut truncated = crate::fonts::DEFAULT_FONT.to_vec();
        truncated.truncate(5000);
        for bytes in [&b""[..], b"\0\x01\0\0garbage", b"ttcf\0\x01\0\0\0\0\0\x01", &truncated] {
            // ttf-parser parses lazily, so a truncated font may be accepted; it must not panic.
            if let Err(e) = watermark_text(&mut img, &p, Some(bytes)) {
                assert_eq!(e.field(), Some("font"), "{e}");
            }
        }
        // Corrupted fonts (random bytes overwritten in the tables DejaVu starts with) never panic.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let p = TextWatermarkParams { text: "Ag\u{e9}".into(), ..p };
        for _ in 0..300 {
            let mut font = crate::fonts::DEFAULT_FONT.to_vec();
            for _ in 0..(1 + next() % 8) {
                let at = (next() % 2048) as usize;
                font[at] = next() as u8;
            }
            if let Err(e) = watermark_text(&mut img, &p, Some(&font)) {
                assert!(matches!(e.field(), Some("font" | "size" | "text")), "{e}");
            }
        }
    }
}
