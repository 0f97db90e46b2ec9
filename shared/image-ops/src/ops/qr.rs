//! QR-code overlay: a crisp code drawn with whole-pixel modules in an opaque `size` x `size`
//! square of the light colour, placed by gravity and offsets, on every frame.

use serde::{Deserialize, Serialize};

use crate::geometry::{check_range, Color, Gravity};
use crate::ops::{Area, Canvas, Overlay};
use crate::{Error, Image, Pixels, Result};

/// Longest payload, in bytes.
pub const MAX_DATA_BYTES: usize = 1000;
/// Largest `size`, in px.
pub const MAX_SIZE: u32 = 4096;
/// Largest quiet zone, in modules.
pub const MAX_QUIET_ZONE: u32 = 16;
/// Smallest module, in px: below this, scaling and JPEG/WebP compression blur the code.
pub const MIN_MODULE_PX: u32 = 3;
/// Smallest WCAG contrast ratio between `light` and `dark` (the WCAG minimum for graphics).
pub const MIN_CONTRAST: f64 = 3.0;

/// The registry's one-line summary.
pub const SUMMARY: &str = "Overlay a QR code that phones can scan.";
/// The registry's params doc.
pub const PARAMS: &str = "`data` (at most 1,000 bytes), `size` (200 px, quiet zone included), `quiet_zone` \
    (4 modules), `ec_level` (`L` | `M` | `Q` | `H`, default `M`), `dark` (`#000000`), `light` (`#ffffff`), \
    `gravity` (`bottom_right`), `offset_x`/`offset_y`. A size too small to scan (under 3 px per module) \
    is rejected.";

impl crate::ops::Operation for QrParams {
    fn apply(&self, image: &mut Image, _cx: &crate::ops::Context<'_>) -> Result<()> {
        qr_overlay(image, self)
    }

    fn as_overlay(&self) -> Option<&dyn Overlay> {
        Some(self)
    }
}

impl Overlay for QrParams {
    fn paint(&self, canvas: &mut dyn Canvas, _cx: &crate::ops::Context<'_>) -> Result<()> {
        qr_overlay(canvas, self)
    }
}

/// QR error-correction level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum EcLevel {
    L,
    #[default]
    M,
    Q,
    H,
}

/// Params of `qr-overlay`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QrParams {
    /// The payload (text or URL), UTF-8, at most 1,000 bytes.
    pub data: String,
    /// Side of the drawn square in px, quiet zone included, at most 4096. Default 200.
    /// Modules are whole pixels: the module size is `size / (modules + 2 * quiet_zone)` rounded
    /// down, and must be at least 3 px; the code is centred in the square, whose remaining
    /// pixels (less than one module per side) are painted `light`.
    #[serde(default = "default_size")]
    pub size: u32,
    /// Quiet zone in modules on each side, 0..=16. Default 4 (the standard's minimum): codes
    /// with less may not scan, unless the surrounding image is plain and light.
    #[serde(default = "default_quiet_zone")]
    pub quiet_zone: u32,
    /// Error-correction level. Default M.
    #[serde(default)]
    pub ec_level: EcLevel,
    /// Colour of dark modules; must be opaque and darker than `light` with a WCAG contrast
    /// ratio of at least 3. Default black.
    #[serde(default = "black")]
    pub dark: Color,
    /// Colour of light modules and the quiet zone; must be opaque. Default white.
    #[serde(default = "white")]
    pub light: Color,
    /// Where the code sits. Default bottom right.
    #[serde(default = "default_gravity")]
    pub gravity: Gravity,
    /// Offset in px from the anchored edges (inward). Default 0.
    #[serde(default)]
    pub offset_x: i32,
    #[serde(default)]
    pub offset_y: i32,
}

fn default_size() -> u32 {
    200
}
fn default_quiet_zone() -> u32 {
    4
}
fn black() -> Color {
    Color::BLACK
}
fn white() -> Color {
    Color::WHITE
}
fn default_gravity() -> Gravity {
    Gravity::BottomRight
}

impl From<EcLevel> for qrcode::EcLevel {
    fn from(level: EcLevel) -> Self {
        match level {
            EcLevel::L => qrcode::EcLevel::L,
            EcLevel::M => qrcode::EcLevel::M,
            EcLevel::Q => qrcode::EcLevel::Q,
            EcLevel::H => qrcode::EcLevel::H,
        }
    }
}

/// A QR code laid out for drawing.
struct Layout {
    /// Modules per side, without the quiet zone.
    modules: usize,
    /// Dark flags, row-major, `modules * modules`.
    dark: Vec<bool>,
    /// Modules per side, quiet zone included.
    total: u32,
    /// Pixels per module.
    module_px: u32,
}

/// Builds the code and sizes its modules. `field` prefixes error fields (`ops[0]`; empty at
/// apply time, when errors name the bare parameter).
fn layout(p: &QrParams, field: &str) -> Result<Layout> {
    let name = |n: &str| if field.is_empty() { n.to_string() } else { format!("{field}.{n}") };
    if p.data.is_empty() {
        return Err(Error::invalid(name("data"), "must not be empty"));
    }
    if p.data.len() > MAX_DATA_BYTES {
        return Err(Error::invalid(
            name("data"),
            format!("is {} bytes; at most {MAX_DATA_BYTES} bytes", p.data.len()),
        ));
    }
    check_range(&name("quiet_zone"), p.quiet_zone, 0, MAX_QUIET_ZONE)?;
    let code =
        qrcode::QrCode::with_error_correction_level(p.data.as_bytes(), p.ec_level.into()).map_err(|e| {
            Error::invalid(
                name("data"),
                format!("cannot be encoded as a QR code at level {:?}: {e}", p.ec_level),
            )
        })?;
    let modules = code.width();
    let dark = code.to_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
    // modules <= 177 and quiet_zone <= 16: no overflow.
    let total = modules as u32 + 2 * p.quiet_zone;
    let min_size = MIN_MODULE_PX * total;
    if p.size < min_size {
        return Err(Error::invalid(
            name("size"),
            format!(
                "{} px is too small for this payload: its code is {total} modules wide (quiet zone \
                 included) and modules need at least {MIN_MODULE_PX} px, so the minimum size is {min_size} px",
                p.size
            ),
        ));
    }
    check_range(&name("size"), p.size, min_size, MAX_SIZE)?;
    Ok(Layout { modules, dark, total, module_px: p.size / total })
}

/// WCAG relative luminance of an sRGB colour.
fn luminance(c: Color) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(c.0[0]) + 0.7152 * lin(c.0[1]) + 0.0722 * lin(c.0[2])
}

impl crate::Validate for QrParams {
    fn validate(&self, field: &str, _limits: &crate::Limits) -> crate::Result<()> {
        for (name, colour) in [("dark", self.dark), ("light", self.light)] {
            if colour.0[3] != 255 {
                return Err(Error::invalid(format!("{field}.{name}"), "must be opaque (alpha ff)"));
            }
        }
        let (ld, ll) = (luminance(self.dark), luminance(self.light));
        let ratio = (ll + 0.05) / (ld + 0.05);
        if ratio < MIN_CONTRAST {
            return Err(Error::invalid(
                format!("{field}.dark"),
                format!(
                    "dark {} on light {} has a contrast ratio of {ratio:.2}; scanners need the dark \
                     colour darker than the light one with a ratio of at least {MIN_CONTRAST}",
                    String::from(self.dark),
                    String::from(self.light)
                ),
            ));
        }
        layout(self, field).map(|_| ())
    }
}

/// Draws the QR code onto every frame, opaque, in a `size` x `size` square placed by
/// `gravity` and the offsets. Fails with [`Error::InvalidParams`] on `size` if the square does
/// not lie entirely inside the image (and on `data`/`size` for params that would not pass
/// [`crate::Validate`]).
pub fn qr_overlay(canvas: &mut dyn Canvas, p: &QrParams) -> Result<()> {
    let layout = layout(p, "")?;
    let (w, h) = canvas.dimensions();
    let (x, y) = p.gravity.place((w, h), (p.size, p.size), (p.offset_x, p.offset_y));
    let fits =
        x >= 0 && y >= 0 && x + i64::from(p.size) <= i64::from(w) && y + i64::from(p.size) <= i64::from(h);
    if !fits {
        return Err(Error::invalid(
            "size",
            format!(
                "QR code of {} px does not fit in a {w}x{h} image (at {x},{y} with gravity {:?} and \
                 offsets {},{})",
                p.size, p.gravity, p.offset_x, p.offset_y
            ),
        ));
    }
    // Checked above: 0 <= x, y and x + size <= w, y + size <= h (so size >= 1 and the area is
    // inside the frame).
    let (x, y) = (x as u32, y as u32);
    let area = Area { x, y, width: p.size, height: p.size };
    for window in canvas.windows(area)? {
        let (wx, wy) = window.origin;
        let (ww, wh) = window.pixels.dimensions();
        if x < wx || y < wy || x + p.size > wx + ww || y + p.size > wy + wh {
            return Err(Error::Encode(format!("a {ww}x{wh} window at {wx},{wy} does not hold the QR code")));
        }
        let at = ((x - wx) as usize, (y - wy) as usize);
        match window.pixels {
            Pixels::Rgb(img) => {
                let [r, g, b, _] = p.dark.0;
                let [lr, lg, lb, _] = p.light.0;
                draw(img, ww as usize, at, &layout, p, [r, g, b], [lr, lg, lb]);
            }
            Pixels::Rgba(img) => draw(img, ww as usize, at, &layout, p, p.dark.0, p.light.0),
        }
    }
    Ok(())
}

/// Paints the square into a row-major buffer of `N`-byte pixels, `width` px per row. Per band
/// of one module row, the first pixel row is filled module by module, and the band's other
/// rows are slice copies of it.
fn draw<const N: usize>(
    buf: &mut [u8],
    width: usize,
    (x, y): (usize, usize),
    layout: &Layout,
    p: &QrParams,
    dark: [u8; N],
    light: [u8; N],
) {
    let size = p.size as usize;
    let module_px = layout.module_px as usize;
    let side = layout.total as usize * module_px;
    let margin = (size - side) / 2; // size >= side: module_px = size / total.
    let quiet = p.quiet_zone as usize;
    let stride = width * N;
    let row_start = |row: usize| (y + row) * stride + x * N;
    let fill = |dst: &mut [u8], colour: &[u8; N]| {
        for px in dst.chunks_exact_mut(N) {
            px.copy_from_slice(colour);
        }
    };
    // Paints square row `row` (0..size) as: light margin + quiet zone, modules, light rest.
    let paint_row = |buf: &mut [u8], row: usize, module_row: Option<usize>| {
        let start = row_start(row);
        let dst = &mut buf[start..start + size * N];
        match module_row {
            None => fill(dst, &light),
            Some(r) => {
                let code_start = (margin + quiet * module_px) * N;
                let code_end = code_start + layout.modules * module_px * N;
                fill(&mut dst[..code_start], &light);
                let flags = &layout.dark[r * layout.modules..(r + 1) * layout.modules];
                for (cell, &is_dark) in dst[code_start..code_end].chunks_exact_mut(module_px * N).zip(flags) {
                    fill(cell, if is_dark { &dark } else { &light });
                }
                fill(&mut dst[code_end..], &light);
            }
        }
    };
    let copy_row = |buf: &mut [u8], from: usize, to: usize| {
        let src = row_start(from);
        buf.copy_within(src..src + size * N, row_start(to));
    };
    // Bands: (first row, rows, module row or None for light rows).
    let code_top = margin + quiet * module_px;
    let code_bottom = code_top + layout.modules * module_px;
    let mut bands = Vec::with_capacity(layout.modules + 2);
    bands.push((0, code_top, None));
    for r in 0..layout.modules {
        bands.push((code_top + r * module_px, module_px, Some(r)));
    }
    bands.push((code_bottom, size - code_bottom, None));
    for (first, rows, module_row) in bands {
        if rows == 0 {
            continue;
        }
        paint_row(buf, first, module_row);
        for row in first + 1..first + rows {
            copy_row(buf, first, row);
        }
    }
}
