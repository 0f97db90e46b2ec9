//! Small shared parameter types: gravity and placement, colours, lengths.

use serde::{Deserialize, Deserializer};

use crate::{Error, Result};

/// Where something sits in (or is cropped from) a box: one of nine anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gravity {
    TopLeft,
    Top,
    TopRight,
    Left,
    #[default]
    #[serde(alias = "centre")]
    Center,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl Gravity {
    /// Top-left corner of an `inner`-sized box placed in an `outer`-sized box, pushed `offset`
    /// pixels inward from the anchored edges (for `Center`, an offset moves right/down).
    /// The result may be negative or overflow the outer box when `inner` is larger.
    pub fn place(self, outer: (u32, u32), inner: (u32, u32), offset: (i32, i32)) -> (i64, i64) {
        let (ow, oh) = (i64::from(outer.0), i64::from(outer.1));
        let (iw, ih) = (i64::from(inner.0), i64::from(inner.1));
        let (dx, dy) = (i64::from(offset.0), i64::from(offset.1));
        let (hx, vy) = self.factors();
        let x = match hx {
            0 => dx,
            1 => (ow - iw) / 2 + dx,
            _ => ow - iw - dx,
        };
        let y = match vy {
            0 => dy,
            1 => (oh - ih) / 2 + dy,
            _ => oh - ih - dy,
        };
        (x, y)
    }

    /// (horizontal, vertical) anchor: 0 = start, 1 = middle, 2 = end.
    pub fn factors(self) -> (u8, u8) {
        match self {
            Gravity::TopLeft => (0, 0),
            Gravity::Top => (1, 0),
            Gravity::TopRight => (2, 0),
            Gravity::Left => (0, 1),
            Gravity::Center => (1, 1),
            Gravity::Right => (2, 1),
            Gravity::BottomLeft => (0, 2),
            Gravity::Bottom => (1, 2),
            Gravity::BottomRight => (2, 2),
        }
    }
}

/// An sRGB colour with straight alpha, written `"#rgb"`, `"#rrggbb"` or `"#rrggbbaa"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub struct Color(pub [u8; 4]);

impl Color {
    pub const WHITE: Color = Color([255, 255, 255, 255]);
    pub const BLACK: Color = Color([0, 0, 0, 255]);
    pub const TRANSPARENT: Color = Color([0, 0, 0, 0]);

    pub fn parse(s: &str) -> Option<Color> {
        let hex = s.strip_prefix('#')?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let nib = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok();
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        match hex.len() {
            3 => Some(Color([nib(0)? * 17, nib(1)? * 17, nib(2)? * 17, 255])),
            6 => Some(Color([byte(0)?, byte(2)?, byte(4)?, 255])),
            8 => Some(Color([byte(0)?, byte(2)?, byte(4)?, byte(6)?])),
            _ => None,
        }
    }
}

impl From<Color> for String {
    fn from(c: Color) -> String {
        let [r, g, b, a] = c.0;
        format!("#{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Color::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid colour {s:?}: expected #rgb, #rrggbb or #rrggbbaa"))
        })
    }
}

/// A length in pixels (`48`) or relative to a reference dimension (`"5%"`). Serialised as it
/// is written: pixels as a number, a percentage as a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    Px(u32),
    Percent(f32),
}

impl Length {
    /// Resolves against `reference` pixels (rounded, at least 0).
    pub fn resolve(self, reference: u32) -> u32 {
        match self {
            Length::Px(px) => px,
            Length::Percent(p) => (f64::from(reference) * f64::from(p) / 100.0).round().max(0.0) as u32,
        }
    }

    /// Checks the value is positive and a percentage is at most `max_percent`.
    pub fn validate(self, field: &str, max_percent: f32) -> Result<()> {
        match self {
            Length::Px(0) => Err(Error::invalid(field, "must be greater than 0")),
            Length::Percent(p) if !(p > 0.0 && p <= max_percent) => {
                Err(Error::invalid(field, format!("percentage must be in (0, {max_percent}]")))
            }
            _ => Ok(()),
        }
    }
}

impl serde::Serialize for Length {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Length::Px(px) => s.serialize_u32(*px),
            Length::Percent(p) => s.serialize_str(&format!("{p}%")),
        }
    }
}

impl<'de> Deserialize<'de> for Length {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Px(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Px(px) => Ok(Length::Px(px)),
            Raw::Text(s) => {
                let t = s.trim();
                let parsed = if let Some(p) = t.strip_suffix('%') {
                    p.trim().parse::<f32>().ok().filter(|v| v.is_finite()).map(Length::Percent)
                } else if let Some(p) = t.strip_suffix("px") {
                    p.trim().parse::<u32>().ok().map(Length::Px)
                } else {
                    t.parse::<u32>().ok().map(Length::Px)
                };
                parsed.ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "invalid length {s:?}: expected pixels (48) or a percentage (\"5%\")"
                    ))
                })
            }
        }
    }
}

/// Validates that `value` lies in `[min, max]`.
pub(crate) fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<()> {
    if value < min || value > max || value.partial_cmp(&value).is_none() {
        return Err(Error::invalid(field, format!("must be between {min} and {max}, got {value}")));
    }
    Ok(())
}
