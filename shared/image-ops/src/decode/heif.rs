//! AVIF and HEIC: a bounded parser of their container (ISO-BMFF / HEIF boxes, read in place
//! from the input slice), the checks made before any pixel buffer is allocated, and the
//! conversion of the decoded pictures (AV1 by rav1d, in `av1`; HEVC by heic-rs, in `hevc`) to
//! 8-bit RGB(A). The two differ only in their coded items (`av01` with an AV1 bitstream, `hvc1`
//! with its `hvcC` parameter sets and length-prefixed NAL units), in the alpha URN, and in
//! their colour when the file says nothing (AV1's sequence header; libheif's BT.601 full range).
//!
//! The container is parsed here rather than by the `avif-parse` crate: that one reserves each
//! box's declared size before reading it, keeps a vector for every declared `iloc` extent (zero
//! bytes of input each, so a small file can make it allocate gigabytes), and exposes neither
//! `ispe`, `irot`, `imir`, `colr` nor grids. This parser allocates nothing sized by a
//! declared length: boxes are sub-slices of the input (a box that runs past its parent is
//! corrupt), and the tables it keeps (items, extents, references, properties) have fixed caps.

use std::borrow::Cow;

use image::metadata::Orientation;
use image::{GrayImage, RgbImage, RgbaImage};
use moxcms::Layout as IccLayout;

use super::av1;
use super::colour::{cicp_icc, cicp_in_place, convert_in_place, gray_to_pixels, split_profile};
use super::header::{be16, be32};
use super::hevc;
use super::orient::orient;
use super::yuv::{Layout, Picture, Row};
use super::{check_size, corrupt, unsupported, DecodeOptions};
use crate::{Image, InputFormat, Limits, Pixels, Result};

/// Most items (image tiles, metadata, ...) a file may declare.
const MAX_ITEMS: usize = 4096;
/// Most extents over all items.
const MAX_EXTENTS: usize = 8192;
/// Most item references and property associations.
const MAX_REFS: usize = 16384;
/// Most properties.
const MAX_PROPERTIES: usize = 4096;

/// The `auxC` types of an alpha image: MIAF/AVIF's, and HEVC's (which libheif and iPhones write).
const ALPHA_URNS: [&[u8]; 2] =
    [b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1"];

fn cut() -> crate::Error {
    corrupt("HEIF container is cut short")
}

fn be64(bytes: &[u8], pos: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(pos..pos.checked_add(8)?)?.try_into().ok()?))
}

/// The boxes in `data`, as (type, payload). A box that does not fit in `data` is an error.
fn boxes(data: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8])>> {
    let mut pos = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= data.len() {
            return None;
        }
        let rest = &data[pos..];
        let parsed = (|| {
            let size32 = be32(rest, 0).ok_or_else(cut)?;
            let kind: [u8; 4] = rest.get(4..8).ok_or_else(cut)?.try_into().map_err(|_| cut())?;
            let (header, size) = match size32 {
                0 => (8, rest.len() as u64),
                1 => (16, be64(rest, 8).ok_or_else(cut)?),
                n => (8, u64::from(n)),
            };
            if size < header as u64 {
                return Err(corrupt(format!("HEIF box '{}' has an invalid size", fourcc(&kind))));
            }
            if size > rest.len() as u64 {
                return Err(corrupt(format!("HEIF box '{}' runs past the end of its parent", fourcc(&kind))));
            }
            Ok((kind, header, size as usize))
        })();
        match parsed {
            Ok((kind, header, size)) => {
                pos += size;
                Some(Ok((kind, &rest[header..size])))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

fn fourcc(kind: &[u8]) -> String {
    kind.iter().map(|&b| if b.is_ascii_graphic() { char::from(b) } else { '?' }).collect()
}

/// A full box: version, flags and the rest of the payload.
fn full_box(payload: &[u8]) -> Result<(u8, u32, &[u8])> {
    let head = be32(payload, 0).ok_or_else(cut)?;
    Ok(((head >> 24) as u8, head & 0xFF_FFFF, &payload[4..]))
}

/// A big-endian unsigned number of `size` bytes (0, 2, 4 or 8) at `*pos`, advancing it.
fn read_sized(data: &[u8], pos: &mut usize, size: usize) -> Result<u64> {
    let v = match size {
        0 => 0,
        2 => u64::from(be16(data, *pos).ok_or_else(cut)?),
        4 => u64::from(be32(data, *pos).ok_or_else(cut)?),
        8 => be64(data, *pos).ok_or_else(cut)?,
        _ => return Err(corrupt("HEIF iloc has an invalid field size")),
    };
    *pos += size;
    Ok(v)
}

#[derive(Debug, Clone, Copy)]
struct Location {
    item: u32,
    idat: bool,
    /// Range in [`Container::extents`].
    first: usize,
    count: usize,
}

/// The parsed `meta` box: item types, locations, references and properties.
#[derive(Debug, Default)]
struct Container<'a> {
    file: &'a [u8],
    primary: Option<u32>,
    items: Vec<(u32, [u8; 4])>,
    locations: Vec<Location>,
    /// (offset, length); length 0 means "to the end".
    extents: Vec<(u64, u64)>,
    /// (type, from, to), in file order.
    refs: Vec<([u8; 4], u32, u32)>,
    properties: Vec<([u8; 4], &'a [u8])>,
    /// (item, property index from 1).
    associations: Vec<(u32, u16)>,
    idat: &'a [u8],
}

impl<'a> Container<'a> {
    fn parse(file: &'a [u8], codec: Codec) -> Result<Container<'a>> {
        let mut meta = None;
        for (i, b) in boxes(file).enumerate() {
            let (kind, payload) = b?;
            match &kind {
                b"ftyp" if i == 0 => {}
                _ if i == 0 => return Err(corrupt("HEIF does not start with an ftyp box")),
                b"meta" if meta.is_some() => return Err(corrupt("HEIF has more than one meta box")),
                b"meta" => meta = Some(payload),
                _ => {}
            }
        }
        let Some(meta) = meta else {
            return Err(unsupported(format!(
                "{0} image sequence without a still image (animated {0} is not supported)",
                codec.name()
            )));
        };
        let mut c = Container { file, ..Container::default() };
        let (_, _, children) = full_box(meta)?;
        let mut handler = None;
        for b in boxes(children) {
            let (kind, payload) = b?;
            match &kind {
                b"hdlr" => handler = full_box(payload)?.2.get(4..8),
                b"pitm" => {
                    let (version, _, rest) = full_box(payload)?;
                    c.primary = Some(if version == 0 {
                        u32::from(be16(rest, 0).ok_or_else(cut)?)
                    } else {
                        be32(rest, 0).ok_or_else(cut)?
                    });
                }
                b"iinf" => c.parse_iinf(payload)?,
                b"iloc" => c.parse_iloc(payload)?,
                b"iref" => c.parse_iref(payload)?,
                b"iprp" => c.parse_iprp(payload)?,
                b"idat" => c.idat = payload,
                _ => {}
            }
        }
        if handler != Some(b"pict") {
            return Err(corrupt("HEIF meta box has no 'pict' handler"));
        }
        Ok(c)
    }

    fn parse_iinf(&mut self, payload: &'a [u8]) -> Result<()> {
        let (version, _, rest) = full_box(payload)?;
        let entries = if version == 0 { rest.get(2..) } else { rest.get(4..) }.ok_or_else(cut)?;
        for b in boxes(entries) {
            let (kind, infe) = b?;
            if &kind != b"infe" {
                continue;
            }
            let (version, _, rest) = full_box(infe)?;
            let (id, at) = match version {
                2 => (u32::from(be16(rest, 0).ok_or_else(cut)?), 2),
                3 => (be32(rest, 0).ok_or_else(cut)?, 4),
                _ => continue,
            };
            // Item protection index (2 bytes), then the item type.
            let kind: [u8; 4] = rest.get(at + 2..at + 6).ok_or_else(cut)?.try_into().map_err(|_| cut())?;
            if self.items.len() >= MAX_ITEMS {
                return Err(unsupported(format!("HEIF with more than {MAX_ITEMS} items")));
            }
            self.items.push((id, kind));
        }
        Ok(())
    }

    fn parse_iloc(&mut self, payload: &'a [u8]) -> Result<()> {
        let (version, _, data) = full_box(payload)?;
        if version > 2 {
            return Err(unsupported("HEIF iloc version over 2"));
        }
        let sizes = be16(data, 0).ok_or_else(cut)?;
        let offset_size = usize::from(sizes >> 12);
        let length_size = usize::from((sizes >> 8) & 0xF);
        let base_size = usize::from((sizes >> 4) & 0xF);
        let index_size = if version == 0 { 0 } else { usize::from(sizes & 0xF) };
        let mut pos = 2;
        let count = if version < 2 { read_sized(data, &mut pos, 2)? } else { read_sized(data, &mut pos, 4)? };
        for _ in 0..count {
            let item =
                if version < 2 { read_sized(data, &mut pos, 2)? } else { read_sized(data, &mut pos, 4)? }
                    as u32;
            let method = if version == 0 { 0 } else { read_sized(data, &mut pos, 2)? & 0xF };
            let data_reference = read_sized(data, &mut pos, 2)?;
            let base = read_sized(data, &mut pos, base_size)?;
            let extent_count = read_sized(data, &mut pos, 2)? as usize;
            if method > 1 || data_reference != 0 {
                return Err(unsupported("HEIF item stored by reference to another item or file"));
            }
            if self.locations.len() >= MAX_ITEMS || self.extents.len() + extent_count > MAX_EXTENTS {
                return Err(unsupported(format!("HEIF with more than {MAX_EXTENTS} item extents")));
            }
            let first = self.extents.len();
            for _ in 0..extent_count {
                read_sized(data, &mut pos, index_size)?;
                let offset = read_sized(data, &mut pos, offset_size)?;
                let length = read_sized(data, &mut pos, length_size)?;
                let offset =
                    base.checked_add(offset).ok_or_else(|| corrupt("HEIF extent offset overflows"))?;
                self.extents.push((offset, length));
            }
            self.locations.push(Location { item, idat: method == 1, first, count: extent_count });
        }
        Ok(())
    }

    fn parse_iref(&mut self, payload: &'a [u8]) -> Result<()> {
        let (version, _, rest) = full_box(payload)?;
        let id_size = if version == 0 { 2 } else { 4 };
        for b in boxes(rest) {
            let (kind, data) = b?;
            let mut pos = 0;
            let from = read_sized(data, &mut pos, id_size)? as u32;
            let count = read_sized(data, &mut pos, 2)?;
            for _ in 0..count {
                let to = read_sized(data, &mut pos, id_size)? as u32;
                if self.refs.len() >= MAX_REFS {
                    return Err(unsupported(format!("HEIF with more than {MAX_REFS} item references")));
                }
                self.refs.push((kind, from, to));
            }
        }
        Ok(())
    }

    fn parse_iprp(&mut self, payload: &'a [u8]) -> Result<()> {
        for b in boxes(payload) {
            let (kind, data) = b?;
            match &kind {
                b"ipco" => {
                    for p in boxes(data) {
                        if self.properties.len() >= MAX_PROPERTIES {
                            return Err(unsupported(format!(
                                "HEIF with more than {MAX_PROPERTIES} properties"
                            )));
                        }
                        self.properties.push(p?);
                    }
                }
                b"ipma" => {
                    let (version, flags, rest) = full_box(data)?;
                    let mut pos = 0;
                    let entries = read_sized(rest, &mut pos, 4)?;
                    for _ in 0..entries {
                        let item = read_sized(rest, &mut pos, if version < 1 { 2 } else { 4 })? as u32;
                        let n = *rest.get(pos).ok_or_else(cut)?;
                        pos += 1;
                        for _ in 0..n {
                            let index = if flags & 1 == 1 {
                                read_sized(rest, &mut pos, 2)? as u16 & 0x7FFF
                            } else {
                                let b = *rest.get(pos).ok_or_else(cut)?;
                                pos += 1;
                                u16::from(b & 0x7F)
                            };
                            if self.associations.len() >= MAX_REFS {
                                return Err(unsupported(format!(
                                    "HEIF with more than {MAX_REFS} property associations"
                                )));
                            }
                            self.associations.push((item, index));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn item_type(&self, id: u32) -> Option<[u8; 4]> {
        self.items.iter().find(|(i, _)| *i == id).map(|(_, t)| *t)
    }

    /// Every property of `kind` associated with `item`, in association order.
    fn properties_of(&self, item: u32, kind: &'a [u8; 4]) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.associations
            .iter()
            .filter(move |(i, _)| *i == item)
            .filter_map(|&(_, index)| self.properties.get(usize::from(index).checked_sub(1)?))
            .filter(move |(k, _)| k == kind)
            .map(|(_, p)| *p)
    }

    /// The items `from` references with `kind`, in order.
    fn refs_from(&self, kind: &'a [u8; 4], from: u32) -> impl Iterator<Item = u32> + '_ {
        self.refs.iter().filter(move |(k, f, _)| k == kind && *f == from).map(|(_, _, t)| *t)
    }

    /// The items that reference `to` with `kind`.
    fn refs_to(&self, kind: &'a [u8; 4], to: u32) -> impl Iterator<Item = u32> + '_ {
        self.refs.iter().filter(move |(k, _, t)| k == kind && *t == to).map(|(_, f, _)| *f)
    }

    /// The item's data: one extent is borrowed; several are joined (at most the file's size in
    /// all, checked before allocating).
    fn data(&self, item: u32) -> Result<Cow<'a, [u8]>> {
        let loc = self
            .locations
            .iter()
            .find(|l| l.item == item)
            .ok_or_else(|| corrupt(format!("HEIF item {item} has no location")))?;
        let source = if loc.idat { self.idat } else { self.file };
        let mut parts = Vec::with_capacity(loc.count.min(16));
        let mut total = 0usize;
        for &(offset, length) in &self.extents[loc.first..loc.first + loc.count] {
            let start = usize::try_from(offset).ok().filter(|&s| s <= source.len());
            let end = if length == 0 {
                Some(source.len())
            } else {
                start.and_then(|s| s.checked_add(usize::try_from(length).ok()?))
            };
            let part = match (start, end) {
                (Some(s), Some(e)) if e <= source.len() => &source[s..e],
                _ => return Err(corrupt(format!("HEIF item {item} lies outside the file (cut short?)"))),
            };
            total = total.saturating_add(part.len());
            parts.push(part);
        }
        if total > self.file.len() {
            return Err(corrupt(format!("HEIF item {item} is larger than the file")));
        }
        match parts.as_slice() {
            [] => Err(corrupt(format!("HEIF item {item} has no data"))),
            [one] => Ok(Cow::Borrowed(one)),
            _ => Ok(Cow::Owned(parts.concat())),
        }
    }

    /// `ispe` of an item.
    fn size(&self, item: u32) -> Result<(u32, u32)> {
        let ispe = self
            .properties_of(item, b"ispe")
            .next()
            .ok_or_else(|| corrupt(format!("HEIF item {item} has no ispe (image size) property")))?;
        let (_, _, rest) = full_box(ispe)?;
        Ok((be32(rest, 0).ok_or_else(cut)?, be32(rest, 4).ok_or_else(cut)?))
    }
}

/// The codec of a file's image items: AV1 (AVIF) or HEVC (HEIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Av1,
    Hevc,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Av1 => "AVIF",
            Codec::Hevc => "HEIC",
        }
    }

    /// The item type of a coded image.
    fn item_type(self) -> [u8; 4] {
        match self {
            Codec::Av1 => *b"av01",
            Codec::Hevc => *b"hvc1",
        }
    }

    fn format(self) -> InputFormat {
        match self {
            Codec::Av1 => InputFormat::Avif,
            Codec::Hevc => InputFormat::Heic,
        }
    }
}

/// One coded image: its data, and for HEVC its decoder configuration (`hvcC`).
#[derive(Debug)]
struct Item<'a> {
    data: Cow<'a, [u8]>,
    hevc: Option<hevc::Config<'a>>,
}

/// How an image item is coded: one coded item, or a grid of them.
#[derive(Debug)]
enum Coded<'a> {
    Single(Item<'a>),
    Grid { columns: u32, tile: (u32, u32), tiles: Vec<Item<'a>> },
}

/// An image item (the colour image or its alpha), with its size.
#[derive(Debug)]
struct Plane<'a> {
    width: u32,
    height: u32,
    coded: Coded<'a>,
}

/// `nclx` colour information: CICP colour primaries, transfer characteristics, matrix
/// coefficients and full range.
#[derive(Debug, Clone, Copy)]
struct Nclx {
    primaries: u32,
    transfer: u32,
    matrix: u32,
    full_range: bool,
}

/// What an AVIF or HEIC holds, checked against the limits, before anything is decoded.
#[derive(Debug)]
pub(super) struct Heif<'a> {
    codec: Codec,
    pub(super) width: u32,
    pub(super) height: u32,
    colour: Plane<'a>,
    alpha: Option<Plane<'a>>,
    premultiplied: bool,
    /// `irot`: anti-clockwise quarter turns; `imir`: axis (0: top and bottom exchanged, 1:
    /// left and right exchanged, as ISO/IEC 23008-12:2022 and libavif read it).
    rotation: u8,
    mirror: Option<u8>,
    /// The clean aperture (`clap`) as a crop rectangle (x, y, width, height) of the stored
    /// image, applied before `irot` and `imir`; `None` without one, or with one that is not
    /// a whole number of pixels inside the image (ignored, as Chromium ignores it).
    aperture: Option<[u32; 4]>,
    nclx: Option<Nclx>,
    icc: Option<&'a [u8]>,
    /// The TIFF structure of the primary item's `Exif` item (`cdsc`), if it can be read.
    exif: Option<Cow<'a, [u8]>>,
}

/// Parses the container and checks every size the decoder will allocate by against `limits`:
/// the image's (`ispe`, or the grid's output size), each tile's, and the size in every AV1
/// sequence header or HEVC sequence parameter set of every item that will be decoded, which
/// must equal its item's `ispe` (and, for HEVC, whose coded size must be within the limits).
/// `format` (AVIF or HEIC, from the brands) says which codec the image items must be.
pub(super) fn parse<'a>(bytes: &'a [u8], format: InputFormat, limits: &Limits) -> Result<Heif<'a>> {
    let codec = match format {
        InputFormat::Heic => Codec::Hevc,
        _ => Codec::Av1,
    };
    let c = Container::parse(bytes, codec)?;
    let primary = c.primary.ok_or_else(|| corrupt("HEIF has no primary item (pitm)"))?;
    let colour = plane(&c, codec, primary, limits)?;
    let alpha_id = c.refs_to(b"auxl", primary).find(|&id| {
        c.properties_of(id, b"auxC").any(|p| {
            full_box(p).is_ok_and(|(_, _, urn)| {
                urn.split(|&b| b == 0).next().is_some_and(|u| ALPHA_URNS.contains(&u))
            })
        })
    });
    let alpha = alpha_id.map(|id| plane(&c, codec, id, limits)).transpose()?;
    if let Some(a) = &alpha {
        if (a.width, a.height) != (colour.width, colour.height) {
            return Err(corrupt(format!(
                "HEIF alpha is {}x{}, its image {}x{}",
                a.width, a.height, colour.width, colour.height
            )));
        }
    }
    let premultiplied = alpha_id.is_some_and(|a| c.refs_from(b"prem", primary).any(|to| to == a));
    let rotation = c.properties_of(primary, b"irot").next().and_then(|p| p.first()).map_or(0, |a| a & 3);
    let mirror = c.properties_of(primary, b"imir").next().map(|p| p.first().map_or(0, |a| a & 1));
    let aperture =
        c.properties_of(primary, b"clap").next().and_then(|p| clean_aperture(p, colour.width, colour.height));
    let mut nclx = None;
    let mut icc = None;
    // The primary item's colour, else (a grid without one) its first tile's, which is where
    // libheif 1.15 reads a grid's colour from.
    let described = std::iter::once(primary)
        .chain(c.refs_from(b"dimg", primary).take(1))
        .find(|&id| c.properties_of(id, b"colr").next().is_some())
        .unwrap_or(primary);
    for colr in c.properties_of(described, b"colr") {
        match colr.get(..4) {
            Some(b"nclx") if nclx.is_none() => {
                let primaries = u32::from(be16(colr, 4).ok_or_else(cut)?);
                let transfer = u32::from(be16(colr, 6).ok_or_else(cut)?);
                let matrix = u32::from(be16(colr, 8).ok_or_else(cut)?);
                let full_range = colr.get(10).ok_or_else(cut)? & 0x80 != 0;
                nclx = Some(Nclx { primaries, transfer, matrix, full_range });
            }
            Some(b"prof" | b"rICC") if icc.is_none() => icc = colr.get(4..),
            _ => {}
        }
    }
    // An Exif item starts with the offset of its TIFF header from the end of that field.
    let exif = c
        .refs_to(b"cdsc", primary)
        .find(|&id| c.item_type(id) == Some(*b"Exif"))
        .and_then(|id| c.data(id).ok())
        .and_then(|data| {
            let skip = usize::try_from(be32(&data, 0)?).ok()?.checked_add(4)?;
            Some(match data {
                Cow::Borrowed(d) => Cow::Borrowed(d.get(skip..)?),
                Cow::Owned(d) => Cow::Owned(d.get(skip..)?.to_vec()),
            })
        });
    Ok(Heif {
        codec,
        width: colour.width,
        height: colour.height,
        colour,
        alpha,
        premultiplied,
        rotation,
        mirror,
        aperture,
        nclx,
        icc,
        exif,
    })
}

/// The crop rectangle (x, y, width, height) a `clap` box's payload gives for an image of
/// `width` x `height` (ISO/IEC 14496-12: a clean aperture of the given size centred at the
/// image's centre plus the offsets; fractions, offsets signed), when it is a whole number of
/// pixels inside the image (as MIAF requires and libavif checks); else `None`.
fn clean_aperture(p: &[u8], width: u32, height: u32) -> Option<[u32; 4]> {
    // In i128: no product of these 32-bit fields can overflow it.
    let field = |i: usize| be32(p, 4 * i);
    let fraction = |n: i128, d: u32| (d != 0).then_some((n, i128::from(d)));
    let (cw, ch) = (fraction(field(0)?.into(), field(1)?)?, fraction(field(2)?.into(), field(3)?)?);
    let signed = |v: u32| i128::from(v as i32);
    let (ho, vo) = (fraction(signed(field(4)?), field(5)?)?, fraction(signed(field(6)?), field(7)?)?);
    let whole = |(n, d): (i128, i128)| (n % d == 0).then_some(n / d);
    let (cw, ch) = (whole(cw)?, whole(ch)?);
    // The left edge: offset + (W - w) / 2, in halves of the offset's denominator.
    let edge =
        |(n, d): (i128, i128), full: u32, size: i128| whole((2 * n + d * (i128::from(full) - size), 2 * d));
    let (x, y) = (edge(ho, width, cw)?, edge(vo, height, ch)?);
    let inside = |at: i128, size: i128, full: u32| at >= 0 && size > 0 && at + size <= i128::from(full);
    if !inside(x, cw, width) || !inside(y, ch, height) {
        return None;
    }
    Some([x, y, cw, ch].map(|v| v as u32))
}

/// An image item: its size checked against the limits, then its AV1 data (or its grid's tiles)
/// checked to code that size.
fn plane<'a>(c: &Container<'a>, codec: Codec, id: u32, limits: &Limits) -> Result<Plane<'a>> {
    let kind = c.item_type(id).ok_or_else(|| corrupt(format!("HEIF item {id} has no item info")))?;
    match &kind {
        k if *k == codec.item_type() => {
            let (width, height) = c.size(id)?;
            let item = coded_item(c, codec, id, (width, height), limits)?;
            Ok(Plane { width, height, coded: Coded::Single(item) })
        }
        b"grid" => {
            let desc = c.data(id)?;
            let flags = *desc.get(1).ok_or_else(cut)?;
            if desc.first() != Some(&0) {
                return Err(unsupported("HEIF grid version over 0"));
            }
            let rows = u32::from(*desc.get(2).ok_or_else(cut)?) + 1;
            let columns = u32::from(*desc.get(3).ok_or_else(cut)?) + 1;
            let (width, height) = if flags & 1 == 0 {
                (u32::from(be16(&desc, 4).ok_or_else(cut)?), u32::from(be16(&desc, 6).ok_or_else(cut)?))
            } else {
                (be32(&desc, 4).ok_or_else(cut)?, be32(&desc, 8).ok_or_else(cut)?)
            };
            if width == 0 || height == 0 {
                return Err(corrupt("HEIF grid has a zero output size"));
            }
            check_size(width, height, 1, limits)?;
            let ids: Vec<u32> = c.refs_from(b"dimg", id).collect();
            if ids.len() as u64 != u64::from(rows) * u64::from(columns) {
                return Err(corrupt(format!(
                    "HEIF grid of {rows}x{columns} tiles references {} images",
                    ids.len()
                )));
            }
            let mut tile = None;
            let mut tiles = Vec::with_capacity(ids.len());
            for &t in &ids {
                if c.item_type(t) != Some(codec.item_type()) {
                    return Err(unsupported(format!(
                        "{} grid whose tiles are not '{}' images",
                        codec.name(),
                        fourcc(&codec.item_type())
                    )));
                }
                let size = c.size(t)?;
                if *tile.get_or_insert(size) != size {
                    return Err(corrupt("HEIF grid tiles differ in size"));
                }
                tiles.push(coded_item(c, codec, t, size, limits)?);
            }
            let tile = tile.ok_or_else(|| corrupt("HEIF grid has no tiles"))?;
            // As libavif (and MIAF) require: the tiles cover the output, and the last column
            // and row are not wholly outside it.
            let fits = |n: u32, t: u32, out: u32| {
                let n = u64::from(n);
                n * u64::from(t) >= u64::from(out) && (n - 1) * u64::from(t) < u64::from(out)
            };
            if !fits(columns, tile.0, width) || !fits(rows, tile.1, height) {
                return Err(corrupt(format!(
                    "HEIF grid of {rows}x{columns} tiles of {}x{} does not make {width}x{height}",
                    tile.0, tile.1
                )));
            }
            Ok(Plane { width, height, coded: Coded::Grid { columns, tile, tiles } })
        }
        _ => Err(unsupported(format!(
            "{} primary item of type '{}' (not {} or grid)",
            codec.name(),
            fourcc(&kind),
            fourcc(&codec.item_type())
        ))),
    }
}

/// A coded item of `size` (its `ispe`), checked: the size against the limits, then its
/// bitstream's headers against the size (AV1 sequence headers; HEVC parameter sets).
fn coded_item<'a>(
    c: &Container<'a>,
    codec: Codec,
    id: u32,
    size: (u32, u32),
    limits: &Limits,
) -> Result<Item<'a>> {
    check_size(size.0, size.1, 1, limits)?;
    let data = c.data(id)?;
    let hevc = match codec {
        Codec::Av1 => {
            av1::check_bitstream(&data, size)?;
            None
        }
        Codec::Hevc => {
            let hvcc = c
                .properties_of(id, b"hvcC")
                .next()
                .ok_or_else(|| corrupt(format!("HEIC item {id} has no hvcC (decoder configuration)")))?;
            let config = hevc::config(hvcc)?;
            hevc::check(&config, &data, size, limits)?;
            Some(config)
        }
    };
    Ok(Item { data, hevc })
}

/// Decodes what [`parse`] described into an upright sRGB [`Image`].
///
/// Memory: the colour picture (at most 6 bytes a pixel: 12-bit 4:4:4) and the RGB(A) buffer
/// it is converted into live together; the alpha picture is decoded after the colour one is
/// released. Grids decode one tile at a time into the output buffer.
pub(super) fn decode(
    bytes: &[u8],
    format: InputFormat,
    limits: &Limits,
    options: &DecodeOptions<'_>,
) -> Result<Image> {
    let heif = parse(bytes, format, limits)?;
    let (w, h) = (heif.width, heif.height);
    let alpha = heif.alpha.is_some();
    let channels = if alpha { 4 } else { 3 };
    let mut out = Vec::new();
    let len = (w as usize).checked_mul(h as usize).and_then(|n| n.checked_mul(channels)).ok_or_else(cut)?;
    out.try_reserve_exact(len).map_err(|_| corrupt("out of memory"))?;
    out.resize(len, 255);
    let mut monochrome = true;
    // The sequence header's primaries and transfer (of the first tile), for when there is no nclx.
    let mut coded_cicp = None;
    // Premultiplied colour is divided by alpha as it is converted, before it is rounded to 8
    // bits, so alpha comes first then; otherwise colour first, so that the colour picture (the
    // larger) is released before the alpha picture is allocated.
    let premultiplied = heif.premultiplied && alpha;
    let alpha_pass = |out: &mut Vec<u8>| match &heif.alpha {
        Some(a) => {
            for_each_picture(a, heif.codec, |picture, x0, y0| alpha_into(picture, out, (w, h), (x0, y0)))
        }
        None => Ok(()),
    };
    if premultiplied {
        alpha_pass(&mut out)?;
    }
    for_each_picture(&heif.colour, heif.codec, |picture, x0, y0| {
        let info = picture.info();
        monochrome &= info.layout == Layout::Mono;
        coded_cicp.get_or_insert((info.primaries, info.transfer));
        let to = Target { out: &mut out, size: (w, h), channels, at: (x0, y0), premultiplied };
        colour_into(picture, heif.nclx, to)
    })?;
    if !premultiplied {
        alpha_pass(&mut out)?;
    }
    // An ICC profile wins over nclx's primaries and transfer, as in libavif and browsers.
    let (primaries, transfer) = heif.nclx.map(|n| (n.primaries, n.transfer)).or(coded_cicp).unwrap_or((2, 2));
    // A kept profile (DecodeOptions::keep_icc) leaves the samples in its colour space; without
    // an ICC profile, one made from the CICP codes is kept.
    let (convert, mut kept) = split_profile(heif.icc, options.keep_icc);
    if options.keep_icc && heif.icc.is_none() && !monochrome {
        kept = cicp_icc(primaries, transfer);
    }
    let to_srgb = |samples: &mut [u8], layout: IccLayout| match convert {
        Some(icc) => convert_in_place(samples, icc, layout),
        None if kept.is_some() => {}
        None => cicp_in_place(samples, primaries, transfer, layout),
    };
    let pixels = if alpha {
        let mut img = RgbaImage::from_raw(w, h, out).ok_or_else(cut)?;
        to_srgb(img.as_mut(), IccLayout::Rgba);
        Pixels::Rgba(img)
    } else if let (true, Some(icc)) = (monochrome, heif.icc) {
        // A grey image with a grey profile: through the grey path of colour.rs.
        let grey: Vec<u8> = out.chunks_exact(3).map(|p| p[0]).collect();
        gray_to_pixels(GrayImage::from_raw(w, h, grey).ok_or_else(cut)?, Some(icc))
    } else {
        let mut img = RgbImage::from_raw(w, h, out).ok_or_else(cut)?;
        to_srgb(img.as_mut(), IccLayout::Rgb);
        Pixels::Rgb(img)
    };
    let pixels = match heif.aperture {
        Some([x, y, w, h]) if (x, y, w, h) != (0, 0, pixels.width(), pixels.height()) => {
            pixels.crop(x, y, w, h).ok_or_else(cut)?
        }
        _ => pixels,
    };
    let rotated = orient(
        pixels,
        match heif.rotation {
            1 => Orientation::Rotate270,
            2 => Orientation::Rotate180,
            3 => Orientation::Rotate90,
            _ => Orientation::NoTransforms,
        },
    );
    let upright = match heif.mirror {
        Some(0) => orient(rotated, Orientation::FlipVertical),
        Some(_) => orient(rotated, Orientation::FlipHorizontal),
        None => rotated,
    };
    let mut image = Image::still(upright, heif.codec.format());
    image.metadata.icc = kept;
    if options.keep_copyright {
        let copyright = heif.exif.as_deref().and_then(crate::metadata::copyright_exif);
        image.metadata.copyright = copyright.map(std::sync::Arc::from);
    }
    Ok(image)
}

/// Decodes the item (or each tile of the grid, one at a time) and hands each picture to `f`
/// with where its top-left corner goes in the output. Each picture must have its item's size.
/// HEVC tiles are decoded as many at a time as this process has threads (one on a Lambda
/// function up to 1,769 MB), then handed over in order; AV1 tiles one at a time.
fn for_each_picture(
    plane: &Plane<'_>,
    codec: Codec,
    mut f: impl FnMut(&dyn Picture, u32, u32) -> Result<()>,
) -> Result<()> {
    let fits = |picture: &dyn Picture, size: (u32, u32)| {
        let info = picture.info();
        if (info.width, info.height) == size {
            return Ok(());
        }
        Err(corrupt(format!(
            "{} picture is {}x{}, its image item {}x{}",
            if codec == Codec::Hevc { "HEVC" } else { "AV1" },
            info.width,
            info.height,
            size.0,
            size.1
        )))
    };
    let decode = |item: &Item<'_>, size: (u32, u32)| -> Result<Box<dyn Picture>> {
        Ok(match &item.hevc {
            Some(config) => Box::new(hevc::decode(config, &item.data)?),
            None => Box::new(av1::decode(&item.data, u64::from(size.0) * u64::from(size.1))?),
        })
    };
    match &plane.coded {
        Coded::Single(item) => {
            let picture = decode(item, (plane.width, plane.height))?;
            fits(picture.as_ref(), (plane.width, plane.height))?;
            f(picture.as_ref(), 0, 0)
        }
        Coded::Grid { columns, tile, tiles } => {
            let threads = crate::parallel::threads();
            let batch = if codec == Codec::Hevc { threads } else { 1 };
            for (n, chunk) in tiles.chunks(batch).enumerate() {
                let pictures: Vec<Box<dyn Picture>> = if batch > 1 {
                    let decoded = crate::parallel::map_on(threads, chunk, |item| {
                        hevc::decode(item.hevc.as_ref().ok_or_else(cut)?, &item.data)
                    })?;
                    decoded.into_iter().map(|p| Box::new(p) as Box<dyn Picture>).collect()
                } else {
                    chunk.iter().map(|item| decode(item, *tile)).collect::<Result<_>>()?
                };
                for (j, picture) in pictures.iter().enumerate() {
                    let i = (n * batch + j) as u32;
                    fits(picture.as_ref(), *tile)?;
                    f(picture.as_ref(), i % columns * tile.0, i / columns * tile.1)?;
                }
            }
            Ok(())
        }
    }
}

/// How samples of `bits` bits map to [0, 1] (luma) and [-0.5, 0.5] (chroma).
#[derive(Debug, Clone, Copy)]
struct Range {
    y_offset: f32,
    y_scale: f32,
    c_offset: f32,
    c_scale: f32,
}

impl Range {
    fn new(bits: u8, full: bool) -> Range {
        let max = f32::from((1u16 << bits) - 1);
        let unit = f32::from(1u16 << (bits - 8));
        if full {
            Range {
                y_offset: 0.0,
                y_scale: 1.0 / max,
                c_offset: f32::from(1u16 << (bits - 1)),
                c_scale: 1.0 / max,
            }
        } else {
            Range {
                y_offset: 16.0 * unit,
                y_scale: 1.0 / (219.0 * unit),
                c_offset: 128.0 * unit,
                c_scale: 1.0 / (224.0 * unit),
            }
        }
    }
}

/// The YUV → RGB conversion for the CICP matrix coefficients `matrix`.
#[derive(Debug, Clone, Copy)]
enum Matrix {
    /// Kr, Kb of a luma/colour-difference matrix.
    Luma(f32, f32),
    /// Samples are G, B, R (matrix 0, 4:4:4).
    Identity,
    YCgCo,
}

impl Matrix {
    fn from_cicp(matrix: u32) -> Matrix {
        match matrix {
            0 => Matrix::Identity,
            1 => Matrix::Luma(0.2126, 0.0722),
            4 => Matrix::Luma(0.30, 0.11),
            7 => Matrix::Luma(0.212, 0.087),
            8 => Matrix::YCgCo,
            9 | 10 => Matrix::Luma(0.2627, 0.0593),
            // 5 and 6 (BT.601), 2 (unspecified) and anything else: BT.601, as libavif.
            _ => Matrix::Luma(0.299, 0.114),
        }
    }

    /// RGB in [0, 1] from luma in [0, 1] and chroma in [-0.5, 0.5].
    fn rgb(self, y: f32, u: f32, v: f32) -> [f32; 3] {
        match self {
            Matrix::Luma(kr, kb) => {
                let r = y + 2.0 * (1.0 - kr) * v;
                let b = y + 2.0 * (1.0 - kb) * u;
                let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
                [r, g, b]
            }
            Matrix::Identity => [v + 0.5, y, u + 0.5],
            Matrix::YCgCo => {
                let t = y - u;
                [t + v, y + u, t - v]
            }
        }
    }
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// Chroma sample for luma position `x` at half resolution: libavif's bilinear upsampling
/// (weights 3/4 and 1/4 from the two nearest samples, centre-sited), as (index, index, weight
/// of the first).
fn half_taps(x: usize, len: usize) -> (usize, usize, f32) {
    let last = len - 1;
    let c = x / 2;
    if x.is_multiple_of(2) {
        (c.min(last), c.saturating_sub(1).min(last), 0.75)
    } else {
        (c.min(last), (c + 1).min(last), 0.75)
    }
}

/// Where a picture goes: the output buffer, its size and channels, the picture's top-left
/// corner in it, and whether colour is premultiplied by the alpha already in the buffer.
struct Target<'a> {
    out: &'a mut [u8],
    size: (u32, u32),
    channels: usize,
    at: (u32, u32),
    premultiplied: bool,
}

/// Converts a colour picture into the RGB(A) output, clipped to the output.
fn colour_into(picture: &dyn Picture, nclx: Option<Nclx>, to: Target<'_>) -> Result<()> {
    let p = *picture.info();
    let Target { out, size: (w, h), channels, at: (x0, y0), premultiplied } = to;
    // The container's nclx wins over the sequence header, as libavif does.
    let (matrix, full) = nclx.map_or((p.matrix, p.full_range), |n| (n.matrix, n.full_range));
    let matrix = Matrix::from_cicp(matrix);
    let range = Range::new(p.bits, full);
    let cols = (w - x0).min(p.width) as usize;
    let rows = (h - y0).min(p.height) as usize;
    let (cw, ch) = p.plane_size(1);
    let half_x = matches!(p.layout, Layout::I420 | Layout::I422);
    let half_y = p.layout == Layout::I420;
    let width = w as usize;
    // One row at a time, as floats: luma, and each chroma plane at luma resolution (or, for
    // the identity matrix, the R and B planes). The chroma samples a row needs: those under
    // its columns, and one more for the interpolation at its right edge.
    let mut luma = vec![0f32; cols];
    let (mut first, mut second) = (vec![0f32; cols], vec![0f32; cols]);
    let needed = if half_x { cw.min(cols.div_ceil(2) + 1) } else { cw.min(cols) };
    let mut blend = [vec![0f32; needed], vec![0f32; needed]];
    let (y_norm, c_norm) = ((range.y_offset, range.y_scale), (range.c_offset, range.c_scale));
    for y in 0..rows {
        normalised(picture.row(0, y), y_norm, &mut luma);
        let start = ((y0 as usize + y) * width + x0 as usize) * channels;
        let line = &mut out[start..start + cols * channels];
        let put = |px: &mut [u8], rgb: [f32; 3]| {
            let scale = if premultiplied { straight(px[3]) } else { 1.0 };
            px[0] = to_u8(rgb[0] * scale);
            px[1] = to_u8(rgb[1] * scale);
            px[2] = to_u8(rgb[2] * scale);
        };
        match (p.layout, matrix) {
            (Layout::Mono, _) => {
                for (x, px) in line.chunks_exact_mut(channels).enumerate() {
                    put(px, [luma[x]; 3]);
                }
            }
            // Identity: every plane is full-resolution luma-like samples (G, B, R).
            (_, Matrix::Identity) => {
                normalised(picture.row(2, y), y_norm, &mut first);
                normalised(picture.row(1, y), y_norm, &mut second);
                for (x, px) in line.chunks_exact_mut(channels).enumerate() {
                    put(px, [first[x], luma[x], second[x]]);
                }
            }
            (_, m) => {
                // The chroma rows this luma row samples, and the weight of the first.
                let (ya, yb, wy) = if half_y { half_taps(y, ch) } else { (y, y, 1.0) };
                for (plane, line) in [(1, &mut first), (2, &mut second)] {
                    let rows = (picture.row(plane, ya), picture.row(plane, yb));
                    chroma_line(rows, wy, c_norm, half_x, &mut blend, line);
                }
                for (x, px) in line.chunks_exact_mut(channels).enumerate() {
                    put(px, m.rgb(luma[x], first[x], second[x]));
                }
            }
        }
    }
    Ok(())
}

/// The first `out.len()` samples of `row` as floats, `(sample - offset) * scale`.
fn normalised(row: Row<'_>, (offset, scale): (f32, f32), out: &mut [f32]) {
    match row {
        Row::Eight(r) => out.iter_mut().zip(r).for_each(|(o, &v)| *o = (f32::from(v) - offset) * scale),
        Row::High(r) => out.iter_mut().zip(r).for_each(|(o, &v)| *o = (f32::from(v) - offset) * scale),
    }
}

/// One chroma line at luma resolution, in [-0.5, 0.5]: chroma rows `a` and `b` blended with
/// weight `wy` of `a` (into `blend[0]`, at chroma resolution; `blend[1]` is scratch), then,
/// for half-width chroma, libavif's bilinear upsampling across (3/4 of the nearest sample, 1/4
/// of the next one out).
fn chroma_line(
    (a, b): (Row<'_>, Row<'_>),
    wy: f32,
    norm: (f32, f32),
    half_x: bool,
    blend: &mut [Vec<f32>; 2],
    out: &mut [f32],
) {
    let [blend, below] = blend;
    normalised(a, norm, blend);
    if wy < 1.0 {
        normalised(b, norm, below);
        blend.iter_mut().zip(below.iter()).for_each(|(t, &u)| *t = wy * *t + (1.0 - wy) * u);
    }
    if !half_x {
        out.copy_from_slice(&blend[..out.len()]);
        return;
    }
    for (x, o) in out.iter_mut().enumerate() {
        let (i, j, wx) = half_taps(x, blend.len());
        *o = wx * blend[i] + (1.0 - wx) * blend[j];
    }
}

/// Puts an alpha picture's luma (full range, as libavif reads alpha) into the output's fourth
/// channel at (x0, y0), reduced to 8 bits with rounding.
fn alpha_into(picture: &dyn Picture, out: &mut [u8], (w, h): (u32, u32), (x0, y0): (u32, u32)) -> Result<()> {
    let p = *picture.info();
    let max = f32::from((1u16 << p.bits) - 1);
    let cols = (w - x0).min(p.width) as usize;
    let rows = (h - y0).min(p.height) as usize;
    for y in 0..rows {
        let row = picture.row(0, y);
        let start = ((y0 as usize + y) * w as usize + x0 as usize) * 4;
        for (x, px) in out[start..start + cols * 4].chunks_exact_mut(4).enumerate() {
            px[3] = to_u8(f32::from(row.get(x)) / max);
        }
    }
    Ok(())
}

/// The factor that makes colour premultiplied by `alpha` (`prem`) straight again: 1 / alpha,
/// and 0 for a fully transparent pixel (its colour is lost).
fn straight(alpha: u8) -> f32 {
    if alpha == 0 {
        0.0
    } else {
        255.0 / f32::from(alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clap(fields: [i64; 8]) -> Vec<u8> {
        fields.iter().flat_map(|&v| (v as u32).to_be_bytes()).collect()
    }

    #[test]
    fn clean_apertures_are_whole_pixels_inside_the_image() {
        // 40x30 at (5, 7) of 64x48: centre offsets -7 and -2, written in halves.
        assert_eq!(clean_aperture(&clap([40, 1, 30, 1, -14, 2, -4, 2]), 64, 48), Some([5, 7, 40, 30]));
        // Centred, in quarters; the whole image.
        assert_eq!(clean_aperture(&clap([80, 2, 60, 2, 0, 4, 0, 4]), 64, 48), Some([12, 9, 40, 30]));
        assert_eq!(clean_aperture(&clap([64, 1, 48, 1, 0, 1, 0, 1]), 64, 48), Some([0, 0, 64, 48]));
        // Half pixels (an odd margin, a fractional size or offset), outside, empty, zero
        // denominators, a payload cut short: ignored.
        for bad in [
            clap([41, 1, 30, 1, 0, 1, 0, 1]),
            clap([81, 2, 30, 1, -14, 2, -4, 2]),
            clap([40, 1, 30, 1, -13, 2, -4, 2]),
            clap([40, 1, 30, 1, 13, 1, 0, 1]),
            clap([0, 1, 30, 1, 0, 1, 0, 1]),
            clap([40, 0, 30, 1, 0, 1, 0, 1]),
            clap([40, 1, 30, 1, 0, 0, 0, 1]),
            clap([u32::MAX.into(), 1, 30, 1, i32::MIN.into(), u32::MAX.into(), 0, 1]),
        ] {
            assert_eq!(clean_aperture(&bad, 64, 48), None, "{bad:?}");
        }
        assert_eq!(clean_aperture(&clap([40, 1, 30, 1, -14, 2, -4, 2])[..28], 64, 48), None);
    }

    #[test]
    fn boxes_must_fit_their_parent() {
        let ok: Vec<_> =
            boxes(b"\0\0\0\x0cabcdXXXX\0\0\0\x08efgh").collect::<Result<_>>().unwrap_or_default();
        assert_eq!(ok, vec![(*b"abcd", &b"XXXX"[..]), (*b"efgh", &b""[..])]);
        assert!(boxes(b"\0\0\0\x0dabcdXXXX").any(|b| b.is_err()), "one byte past the end");
        assert!(boxes(b"\0\0\0\x07abcd").any(|b| b.is_err()), "smaller than its header");
        assert!(boxes(b"\0\0\0\x01abcd\xff\0\0\0\0\0\0\0").any(|b| b.is_err()), "a huge largesize");
        assert!(boxes(b"\0\0\0").any(|b| b.is_err()), "a cut header");
    }

    #[test]
    fn matrices_keep_grey_grey() {
        for m in [0, 1, 2, 5, 6, 7, 8, 9] {
            let rgb = Matrix::from_cicp(m);
            if matches!(rgb, Matrix::Identity) {
                continue;
            }
            let [r, g, b] = rgb.rgb(0.5, 0.0, 0.0);
            assert!((r - 0.5).abs() < 1e-5 && (g - 0.5).abs() < 1e-5 && (b - 0.5).abs() < 1e-5, "{m}");
        }
        // BT.709 pure red: Y = 0.2126, Cb = -0.1146, Cr = 0.5.
        let [r, g, b] = Matrix::from_cicp(1).rgb(0.2126, -0.114_572, 0.5);
        assert!((r - 1.0).abs() < 1e-3 && g.abs() < 1e-3 && b.abs() < 1e-3, "{r} {g} {b}");
    }

    #[test]
    fn ten_bit_ranges_reduce_with_rounding() {
        let full = Range::new(10, true);
        assert_eq!(to_u8((1023.0 - full.y_offset) * full.y_scale), 255);
        assert_eq!(to_u8((514.0 - full.y_offset) * full.y_scale), 128); // 514/1023*255 = 128.1
        assert_eq!(to_u8((512.0 - full.y_offset) * full.y_scale), 128); // 127.6 rounds up
        let limited = Range::new(10, false);
        assert_eq!(to_u8((64.0 - limited.y_offset) * limited.y_scale), 0);
        assert_eq!(to_u8((940.0 - limited.y_offset) * limited.y_scale), 255);
    }

    #[test]
    fn unpremultiplying() {
        // Premultiplied 0.25 at alpha 128 is straight 0.498.
        assert_eq!(to_u8(0.25 * straight(128)), 127);
        assert_eq!(to_u8(0.5 * straight(128)), 254);
        assert_eq!(to_u8(0.9 * straight(0)), 0);
        assert_eq!(to_u8(0.3 * straight(255)), 77);
    }
}
