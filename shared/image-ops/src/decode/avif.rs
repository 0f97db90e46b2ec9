//! AVIF: a bounded parser of the container (ISO-BMFF / HEIF boxes, read in place from the
//! input slice), the checks made before any pixel buffer is allocated, and the conversion of
//! the decoded AV1 pictures (rav1d, in `av1`) to 8-bit RGB(A).
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

use super::av1::{self, Layout, Picture};
use super::colour::{cicp_in_place, convert_in_place, gray_to_pixels};
use super::header::{be16, be32};
use super::orient::orient;
use super::{check_size, corrupt, unsupported};
use crate::{Image, InputFormat, Limits, Pixels, Result};

/// Most items (image tiles, metadata, ...) a file may declare.
const MAX_ITEMS: usize = 4096;
/// Most extents over all items.
const MAX_EXTENTS: usize = 8192;
/// Most item references and property associations.
const MAX_REFS: usize = 16384;
/// Most properties.
const MAX_PROPERTIES: usize = 4096;

const ALPHA_URN: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";

fn cut() -> crate::Error {
    corrupt("AVIF is cut short")
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
                return Err(corrupt(format!("AVIF box '{}' has an invalid size", fourcc(&kind))));
            }
            if size > rest.len() as u64 {
                return Err(corrupt(format!("AVIF box '{}' runs past the end of its parent", fourcc(&kind))));
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
        _ => return Err(corrupt("AVIF iloc has an invalid field size")),
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
    fn parse(file: &'a [u8]) -> Result<Container<'a>> {
        let mut meta = None;
        for (i, b) in boxes(file).enumerate() {
            let (kind, payload) = b?;
            match &kind {
                b"ftyp" if i == 0 => {}
                _ if i == 0 => return Err(corrupt("AVIF does not start with an ftyp box")),
                b"meta" if meta.is_some() => return Err(corrupt("AVIF has more than one meta box")),
                b"meta" => meta = Some(payload),
                _ => {}
            }
        }
        let Some(meta) = meta else {
            return Err(unsupported(
                "AVIF image sequence without a still image (animated AVIF is not supported)",
            ));
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
            return Err(corrupt("AVIF meta box has no 'pict' handler"));
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
                return Err(unsupported(format!("AVIF with more than {MAX_ITEMS} items")));
            }
            self.items.push((id, kind));
        }
        Ok(())
    }

    fn parse_iloc(&mut self, payload: &'a [u8]) -> Result<()> {
        let (version, _, data) = full_box(payload)?;
        if version > 2 {
            return Err(unsupported("AVIF iloc version over 2"));
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
                return Err(unsupported("AVIF item stored by reference to another item or file"));
            }
            if self.locations.len() >= MAX_ITEMS || self.extents.len() + extent_count > MAX_EXTENTS {
                return Err(unsupported(format!("AVIF with more than {MAX_EXTENTS} item extents")));
            }
            let first = self.extents.len();
            for _ in 0..extent_count {
                read_sized(data, &mut pos, index_size)?;
                let offset = read_sized(data, &mut pos, offset_size)?;
                let length = read_sized(data, &mut pos, length_size)?;
                let offset =
                    base.checked_add(offset).ok_or_else(|| corrupt("AVIF extent offset overflows"))?;
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
                    return Err(unsupported(format!("AVIF with more than {MAX_REFS} item references")));
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
                                "AVIF with more than {MAX_PROPERTIES} properties"
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
                                    "AVIF with more than {MAX_REFS} property associations"
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
            .ok_or_else(|| corrupt(format!("AVIF item {item} has no location")))?;
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
                _ => return Err(corrupt(format!("AVIF item {item} lies outside the file (cut short?)"))),
            };
            total = total.saturating_add(part.len());
            parts.push(part);
        }
        if total > self.file.len() {
            return Err(corrupt(format!("AVIF item {item} is larger than the file")));
        }
        match parts.as_slice() {
            [] => Err(corrupt(format!("AVIF item {item} has no data"))),
            [one] => Ok(Cow::Borrowed(one)),
            _ => Ok(Cow::Owned(parts.concat())),
        }
    }

    /// `ispe` of an item.
    fn size(&self, item: u32) -> Result<(u32, u32)> {
        let ispe = self
            .properties_of(item, b"ispe")
            .next()
            .ok_or_else(|| corrupt(format!("AVIF item {item} has no ispe (image size) property")))?;
        let (_, _, rest) = full_box(ispe)?;
        Ok((be32(rest, 0).ok_or_else(cut)?, be32(rest, 4).ok_or_else(cut)?))
    }
}

/// How an image item is coded: one AV1 item, or a grid of them.
#[derive(Debug)]
enum Coded<'a> {
    Single(Cow<'a, [u8]>),
    Grid { columns: u32, tile: (u32, u32), tiles: Vec<Cow<'a, [u8]>> },
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

/// What an AVIF holds, checked against the limits, before anything is decoded.
#[derive(Debug)]
pub(super) struct Avif<'a> {
    pub(super) width: u32,
    pub(super) height: u32,
    colour: Plane<'a>,
    alpha: Option<Plane<'a>>,
    premultiplied: bool,
    /// `irot`: anti-clockwise quarter turns; `imir`: axis (0: top and bottom exchanged, 1:
    /// left and right exchanged, as ISO/IEC 23008-12:2022 and libavif read it).
    rotation: u8,
    mirror: Option<u8>,
    nclx: Option<Nclx>,
    icc: Option<&'a [u8]>,
}

/// Parses the container and checks every size the decoder will allocate by against `limits`:
/// the image's (`ispe`, or the grid's output size), each tile's, and the size in every AV1
/// sequence header of every item that will be decoded, which must equal its item's `ispe`.
pub(super) fn parse<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Avif<'a>> {
    let c = Container::parse(bytes)?;
    let primary = c.primary.ok_or_else(|| corrupt("AVIF has no primary item (pitm)"))?;
    let colour = plane(&c, primary, limits)?;
    let alpha_id = c.refs_to(b"auxl", primary).find(|&id| {
        c.properties_of(id, b"auxC")
            .any(|p| full_box(p).is_ok_and(|(_, _, urn)| urn.split(|&b| b == 0).next() == Some(ALPHA_URN)))
    });
    let alpha = alpha_id.map(|id| plane(&c, id, limits)).transpose()?;
    if let Some(a) = &alpha {
        if (a.width, a.height) != (colour.width, colour.height) {
            return Err(corrupt(format!(
                "AVIF alpha is {}x{}, its image {}x{}",
                a.width, a.height, colour.width, colour.height
            )));
        }
    }
    let premultiplied = alpha_id.is_some_and(|a| c.refs_from(b"prem", primary).any(|to| to == a));
    let rotation = c.properties_of(primary, b"irot").next().and_then(|p| p.first()).map_or(0, |a| a & 3);
    let mirror = c.properties_of(primary, b"imir").next().map(|p| p.first().map_or(0, |a| a & 1));
    let mut nclx = None;
    let mut icc = None;
    for colr in c.properties_of(primary, b"colr") {
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
    Ok(Avif {
        width: colour.width,
        height: colour.height,
        colour,
        alpha,
        premultiplied,
        rotation,
        mirror,
        nclx,
        icc,
    })
}

/// An image item: its size checked against the limits, then its AV1 data (or its grid's tiles)
/// checked to code that size.
fn plane<'a>(c: &Container<'a>, id: u32, limits: &Limits) -> Result<Plane<'a>> {
    let kind = c.item_type(id).ok_or_else(|| corrupt(format!("AVIF item {id} has no item info")))?;
    match &kind {
        b"av01" => {
            let (width, height) = c.size(id)?;
            check_size(width, height, 1, limits)?;
            let data = c.data(id)?;
            check_bitstream(&data, (width, height))?;
            Ok(Plane { width, height, coded: Coded::Single(data) })
        }
        b"grid" => {
            let desc = c.data(id)?;
            let flags = *desc.get(1).ok_or_else(cut)?;
            if desc.first() != Some(&0) {
                return Err(unsupported("AVIF grid version over 0"));
            }
            let rows = u32::from(*desc.get(2).ok_or_else(cut)?) + 1;
            let columns = u32::from(*desc.get(3).ok_or_else(cut)?) + 1;
            let (width, height) = if flags & 1 == 0 {
                (u32::from(be16(&desc, 4).ok_or_else(cut)?), u32::from(be16(&desc, 6).ok_or_else(cut)?))
            } else {
                (be32(&desc, 4).ok_or_else(cut)?, be32(&desc, 8).ok_or_else(cut)?)
            };
            if width == 0 || height == 0 {
                return Err(corrupt("AVIF grid has a zero output size"));
            }
            check_size(width, height, 1, limits)?;
            let ids: Vec<u32> = c.refs_from(b"dimg", id).collect();
            if ids.len() as u64 != u64::from(rows) * u64::from(columns) {
                return Err(corrupt(format!(
                    "AVIF grid of {rows}x{columns} tiles references {} images",
                    ids.len()
                )));
            }
            let mut tile = None;
            let mut tiles = Vec::with_capacity(ids.len());
            for &t in &ids {
                if c.item_type(t) != Some(*b"av01") {
                    return Err(unsupported("AVIF grid whose tiles are not AV1 images"));
                }
                let size = c.size(t)?;
                if *tile.get_or_insert(size) != size {
                    return Err(corrupt("AVIF grid tiles differ in size"));
                }
                check_size(size.0, size.1, 1, limits)?;
                let data = c.data(t)?;
                check_bitstream(&data, size)?;
                tiles.push(data);
            }
            let tile = tile.ok_or_else(|| corrupt("AVIF grid has no tiles"))?;
            // As libavif (and MIAF) require: the tiles cover the output, and the last column
            // and row are not wholly outside it.
            let fits = |n: u32, t: u32, out: u32| {
                let n = u64::from(n);
                n * u64::from(t) >= u64::from(out) && (n - 1) * u64::from(t) < u64::from(out)
            };
            if !fits(columns, tile.0, width) || !fits(rows, tile.1, height) {
                return Err(corrupt(format!(
                    "AVIF grid of {rows}x{columns} tiles of {}x{} does not make {width}x{height}",
                    tile.0, tile.1
                )));
            }
            Ok(Plane { width, height, coded: Coded::Grid { columns, tile, tiles } })
        }
        _ => Err(unsupported(format!("AVIF primary item of type '{}' (not av01 or grid)", fourcc(&kind)))),
    }
}

/// Reads an OBU's leb128 value at `*pos`.
fn leb128(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(*pos).ok_or_else(cut)?;
        *pos += 1;
        value |= u64::from(b & 0x7F) << (i * 7);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt("AV1 OBU size is too long"))
}

/// Walks the OBUs of an AV1 image item: every sequence header must give `size` as its
/// maximum frame size (the decoder allocates by the bitstream, not by `ispe`), and the item
/// must hold exactly one frame (layered images, several frames in one item, are refused).
fn check_bitstream(data: &[u8], size: (u32, u32)) -> Result<()> {
    let mut pos = 0usize;
    let mut sequence_headers = 0;
    let mut frames = 0;
    while pos < data.len() {
        let header = data[pos];
        let kind = (header >> 3) & 0xF;
        let extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        if header & 0x80 != 0 {
            return Err(corrupt("AV1 OBU header has its forbidden bit set"));
        }
        pos += 1 + usize::from(extension);
        let len = if has_size {
            usize::try_from(leb128(data, &mut pos)?).map_err(|_| cut())?
        } else {
            data.len().saturating_sub(pos)
        };
        let end = pos.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(cut)?;
        let payload = &data[pos..end];
        match kind {
            1 => {
                let found = sequence_size(payload)?;
                if found != size {
                    return Err(corrupt(format!(
                        "AV1 sequence header is {}x{}, its image item {}x{}",
                        found.0, found.1, size.0, size.1
                    )));
                }
                sequence_headers += 1;
            }
            // A frame header or a frame (header and tile group).
            3 | 6 => frames += 1,
            _ => {}
        }
        pos = end;
    }
    if sequence_headers == 0 {
        return Err(corrupt("AV1 image item has no sequence header"));
    }
    match frames {
        0 => Err(corrupt("AV1 image item has no frame")),
        1 => Ok(()),
        _ => Err(unsupported("AVIF item with more than one AV1 frame (layered or progressive AVIF)")),
    }
}

/// A big-endian bit reader over an OBU payload.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte =
                *self.data.get(self.pos / 8).ok_or_else(|| corrupt("AV1 sequence header is cut short"))?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }

    /// `uvlc()`: only skipped here.
    fn skip_uvlc(&mut self) -> Result<()> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(());
            }
        }
        self.read(zeros)?;
        Ok(())
    }
}

/// The maximum frame size (`max_frame_width_minus_1 + 1`, ...) of an AV1 sequence header
/// (AV1 specification 5.5.1, read up to that field).
fn sequence_size(payload: &[u8]) -> Result<(u32, u32)> {
    let mut b = Bits { data: payload, pos: 0 };
    let _profile = b.read(3)?;
    let _still = b.flag()?;
    let reduced = b.flag()?;
    if reduced {
        b.read(5)?; // seq_level_idx[0]
    } else {
        let timing_info = b.flag()?;
        let mut decoder_model_info = false;
        let mut buffer_delay_bits = 0;
        if timing_info {
            b.read(32)?; // num_units_in_display_tick
            b.read(32)?; // time_scale
            if b.flag()? {
                b.skip_uvlc()?; // num_ticks_per_picture_minus_1
            }
            decoder_model_info = b.flag()?;
            if decoder_model_info {
                buffer_delay_bits = b.read(5)? + 1;
                b.read(32)?; // num_units_in_decoding_tick
                b.read(5)?; // buffer_removal_time_length_minus_1
                b.read(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = b.flag()?;
        let operating_points = b.read(5)? + 1;
        for _ in 0..operating_points {
            b.read(12)?; // operating_point_idc
            if b.read(5)? > 7 {
                b.read(1)?; // seq_tier
            }
            if decoder_model_info && b.flag()? {
                b.read(buffer_delay_bits)?; // decoder_buffer_delay
                b.read(buffer_delay_bits)?; // encoder_buffer_delay
                b.read(1)?; // low_delay_mode_flag
            }
            if initial_display_delay && b.flag()? {
                b.read(4)?;
            }
        }
    }
    let width_bits = b.read(4)? + 1;
    let height_bits = b.read(4)? + 1;
    let width = b.read(width_bits)? + 1;
    let height = b.read(height_bits)? + 1;
    Ok((width, height))
}

/// Decodes what [`parse`] described into an upright sRGB [`Image`].
///
/// Memory: the colour picture (at most 6 bytes a pixel: 12-bit 4:4:4) and the RGB(A) buffer
/// it is converted into live together; the alpha picture is decoded after the colour one is
/// released. Grids decode one tile at a time into the output buffer.
pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Image> {
    let avif = parse(bytes, limits)?;
    let (w, h) = (avif.width, avif.height);
    let alpha = avif.alpha.is_some();
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
    let premultiplied = avif.premultiplied && alpha;
    let alpha_pass = |out: &mut Vec<u8>| match &avif.alpha {
        Some(a) => for_each_picture(a, |picture, x0, y0| alpha_into(picture, out, (w, h), (x0, y0))),
        None => Ok(()),
    };
    if premultiplied {
        alpha_pass(&mut out)?;
    }
    for_each_picture(&avif.colour, |picture, x0, y0| {
        monochrome &= picture.layout == Layout::Mono;
        coded_cicp.get_or_insert((picture.primaries, picture.transfer));
        let to = Target { out: &mut out, size: (w, h), channels, at: (x0, y0), premultiplied };
        colour_into(picture, avif.nclx, to)
    })?;
    if !premultiplied {
        alpha_pass(&mut out)?;
    }
    // An ICC profile wins over nclx's primaries and transfer, as in libavif and browsers.
    let (primaries, transfer) = avif.nclx.map(|n| (n.primaries, n.transfer)).or(coded_cicp).unwrap_or((2, 2));
    let to_srgb = |samples: &mut [u8], layout: IccLayout| match avif.icc {
        Some(icc) => convert_in_place(samples, icc, layout),
        None => cicp_in_place(samples, primaries, transfer, layout),
    };
    let pixels = if alpha {
        let mut img = RgbaImage::from_raw(w, h, out).ok_or_else(cut)?;
        to_srgb(img.as_mut(), IccLayout::Rgba);
        Pixels::Rgba(img)
    } else if let (true, Some(icc)) = (monochrome, avif.icc) {
        // A grey image with a grey profile: through the grey path of colour.rs.
        let grey: Vec<u8> = out.chunks_exact(3).map(|p| p[0]).collect();
        gray_to_pixels(GrayImage::from_raw(w, h, grey).ok_or_else(cut)?, Some(icc))
    } else {
        let mut img = RgbImage::from_raw(w, h, out).ok_or_else(cut)?;
        to_srgb(img.as_mut(), IccLayout::Rgb);
        Pixels::Rgb(img)
    };
    let rotated = orient(
        pixels,
        match avif.rotation {
            1 => Orientation::Rotate270,
            2 => Orientation::Rotate180,
            3 => Orientation::Rotate90,
            _ => Orientation::NoTransforms,
        },
    );
    let upright = match avif.mirror {
        Some(0) => orient(rotated, Orientation::FlipVertical),
        Some(_) => orient(rotated, Orientation::FlipHorizontal),
        None => rotated,
    };
    Ok(Image::still(upright, InputFormat::Avif))
}

/// Decodes the item (or each tile of the grid, one at a time) and hands each picture to `f`
/// with where its top-left corner goes in the output. Each picture must have its item's size.
fn for_each_picture(plane: &Plane<'_>, mut f: impl FnMut(&Picture, u32, u32) -> Result<()>) -> Result<()> {
    let mut one = |data: &[u8], size: (u32, u32), x0: u32, y0: u32| -> Result<()> {
        let picture = av1::decode(data, u64::from(size.0) * u64::from(size.1))?;
        if (picture.width, picture.height) != size {
            return Err(corrupt(format!(
                "AV1 picture is {}x{}, its image item {}x{}",
                picture.width, picture.height, size.0, size.1
            )));
        }
        f(&picture, x0, y0)
    };
    match &plane.coded {
        Coded::Single(data) => one(data, (plane.width, plane.height), 0, 0),
        Coded::Grid { columns, tile, tiles } => {
            for (i, data) in tiles.iter().enumerate() {
                let i = i as u32;
                one(data, *tile, i % columns * tile.0, i / columns * tile.1)?;
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
fn colour_into(p: &Picture, nclx: Option<Nclx>, to: Target<'_>) -> Result<()> {
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
    for y in 0..rows {
        let luma = p.row(0, y);
        let start = ((y0 as usize + y) * width + x0 as usize) * channels;
        let line = &mut out[start..start + cols * channels];
        if p.layout == Layout::Mono {
            for (x, px) in line.chunks_exact_mut(channels).enumerate() {
                let scale = if premultiplied { straight(px[3]) } else { 1.0 };
                let g = to_u8((f32::from(luma.get(x)) - range.y_offset) * range.y_scale * scale);
                px[..3].copy_from_slice(&[g, g, g]);
            }
            continue;
        }
        // The chroma rows this luma row samples, and the weight of the first.
        let (ya, yb, wy) = if half_y { half_taps(y, ch) } else { (y, y, 1.0) };
        let (ua, ub, va, vb) = (p.row(1, ya), p.row(1, yb), p.row(2, ya), p.row(2, yb));
        for (x, px) in line.chunks_exact_mut(channels).enumerate() {
            let (xa, xb, wx) = if half_x { half_taps(x, cw) } else { (x, x, 1.0) };
            let sample = |a: super::av1::Row<'_>, b: super::av1::Row<'_>| {
                let top = wx * f32::from(a.get(xa)) + (1.0 - wx) * f32::from(a.get(xb));
                let bottom = wx * f32::from(b.get(xa)) + (1.0 - wx) * f32::from(b.get(xb));
                (wy * top + (1.0 - wy) * bottom - range.c_offset) * range.c_scale
            };
            let (u, v) = (sample(ua, ub), sample(va, vb));
            let yv = (f32::from(luma.get(x)) - range.y_offset) * range.y_scale;
            let rgb = match matrix {
                // Identity: every plane is full-resolution luma-like samples.
                Matrix::Identity => [
                    (f32::from(p.row(2, y).get(x)) - range.y_offset) * range.y_scale,
                    yv,
                    (f32::from(p.row(1, y).get(x)) - range.y_offset) * range.y_scale,
                ],
                m => m.rgb(yv, u, v),
            };
            let scale = if premultiplied { straight(px[3]) } else { 1.0 };
            px[0] = to_u8(rgb[0] * scale);
            px[1] = to_u8(rgb[1] * scale);
            px[2] = to_u8(rgb[2] * scale);
        }
    }
    Ok(())
}

/// Puts an alpha picture's luma (full range, as libavif reads alpha) into the output's fourth
/// channel at (x0, y0), reduced to 8 bits with rounding.
fn alpha_into(p: &Picture, out: &mut [u8], (w, h): (u32, u32), (x0, y0): (u32, u32)) -> Result<()> {
    let max = f32::from((1u16 << p.bits) - 1);
    let cols = (w - x0).min(p.width) as usize;
    let rows = (h - y0).min(p.height) as usize;
    for y in 0..rows {
        let row = p.row(0, y);
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
    fn sequence_header_sizes() {
        // rav1e's reduced still-picture header for 64x48: profile 0, still, reduced,
        // level 0, 6+1 and 6+1 bits of size.
        let mut bits: Vec<u8> = Vec::new();
        let mut push = |v: u32, n: u32| (0..n).rev().for_each(|i| bits.push(((v >> i) & 1) as u8));
        push(0, 3);
        push(1, 1);
        push(1, 1);
        push(0, 5);
        push(6, 4);
        push(6, 4);
        push(63, 7);
        push(47, 7);
        let bytes: Vec<u8> =
            bits.chunks(8).map(|c| c.iter().enumerate().fold(0, |a, (i, b)| a | b << (7 - i))).collect();
        assert_eq!(sequence_size(&bytes).ok(), Some((64, 48)));
        assert!(sequence_size(&bytes[..3]).is_err());
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
