//! The bundled default font.

/// DejaVu Sans (Bitstream Vera licence, see `fonts/DejaVuSans.LICENSE`): broad Latin, Greek and
/// Cyrillic coverage. CJK and brand fonts are supplied by the caller as font assets. Stored without
/// its TrueType hinting, which ab_glyph never runs (146 KB less in every binary; the outlines,
/// metrics, cmap and kerning are unchanged: `fonts/dehint.py`).
pub static DEFAULT_FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
