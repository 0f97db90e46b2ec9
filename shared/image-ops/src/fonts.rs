//! The bundled default font.

/// DejaVu Sans (Bitstream Vera licence, see `fonts/DejaVuSans.LICENSE`): broad Latin, Greek and
/// Cyrillic coverage. CJK and brand fonts are supplied by the caller as font assets.
pub static DEFAULT_FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
