//! What an output may keep of its source's metadata, and writing it into encoded files.
//!
//! By default an output carries no metadata at all: no Exif (GPS positions, camera serial
//! numbers and capture times are private data), no XMP, no ICC profile (the pixels are converted
//! to sRGB on decoding). Two output params, both off by default, keep a part of it:
//!
//! - **`keep_icc`**: an embedded RGB ICC profile that does not behave as sRGB (an iPhone's
//!   Display P3, Adobe RGB) is kept instead of being converted to sRGB: the pixels stay in the
//!   profile's colour space, every operation works in that space (as sharp's `keepIccProfile`;
//!   watermark, text and QR colours are then that space's values), and the output carries the
//!   profile, so wide-gamut colours survive. JPEG (APP2 `ICC_PROFILE`), PNG (`iCCP`), WebP
//!   (`ICCP`) and AVIF (`colr` of type `prof`, beside the encoder's `nclx`) carry it; GIF cannot,
//!   so a GIF output is converted to sRGB as without the param. An AVIF or HEIC whose colour
//!   only CICP codes describe (`nclx`: Display P3 or BT.2020 primaries, a gamma transfer) keeps
//!   an ICC profile made from them (by moxcms). Grey and CMYK profiles and HDR transfers (PQ,
//!   HLG) are handled as without the param.
//! - **`keep_copyright`**: the Exif `Artist` and `Copyright` tags of the source's first IFD
//!   (JPEG APP1, PNG `eXIf`, WebP `EXIF`, the HEIF `Exif` item of AVIF and HEIC) are written into
//!   a new Exif block that holds those two tags and nothing else: no GPS, no other tag, no
//!   orientation (the pixels are upright), never the source's block copied. JPEG (APP1), PNG
//!   (`eXIf`), WebP (`EXIF`) and AVIF (an `Exif` item) carry it; GIF has no place for it.
//!
//! The embedding here works on the encoders' own output (the JFIF APP0, IHDR, the RIFF chunks,
//! the `ipco`/`ipma`/`iloc` boxes of the AVIF writer's one layout) and fails with
//! [`Error::Encode`] on anything else, never writing a broken file.

use std::sync::Arc;

use crate::{Error, OutputFormat, Result};

/// What the decoded image keeps for its output (see the module docs). Empty unless the output
/// params ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The ICC profile the pixels are in; `None`: they are sRGB.
    pub icc: Option<Arc<[u8]>>,
    /// A big-endian TIFF (Exif) block holding only `Artist` and `Copyright`.
    pub copyright: Option<Arc<[u8]>>,
}

impl Metadata {
    pub fn is_empty(&self) -> bool {
        self.icc.is_none() && self.copyright.is_none()
    }
}

/// Exif tag `Artist` (ASCII).
const ARTIST: u16 = 0x013B;
/// Exif tag `Copyright` (ASCII).
const COPYRIGHT: u16 = 0x8298;
/// Longest value kept per tag, in bytes: a copyright notice, not a document.
const MAX_VALUE: usize = 4096;

/// A new Exif block with the `Artist` and `Copyright` tags (ASCII) of the first IFD of `tiff`
/// (an Exif TIFF structure, after JPEG's `Exif\0\0`, which may be there too), or `None` when it has neither (or they
/// are empty). Nothing else of `tiff` is copied.
pub(crate) fn copyright_exif(tiff: &[u8]) -> Option<Vec<u8>> {
    // Some writers keep JPEG's prefix in PNG's and WebP's Exif chunks.
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    let mut kept: Vec<(u16, &[u8])> = Vec::new();
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        let tag = u16_at(entry)?;
        // Type 2 is ASCII.
        if !matches!(tag, ARTIST | COPYRIGHT) || u16_at(entry + 2)? != 2 || kept.iter().any(|k| k.0 == tag) {
            continue;
        }
        let len = usize::try_from(u32_at(entry + 4)?).ok()?;
        let at = if len <= 4 { entry + 8 } else { usize::try_from(u32_at(entry + 8)?).ok()? };
        let Some(value) = tiff.get(at..at.saturating_add(len)) else { continue };
        // Up to the last non-NUL byte (Copyright may hold two NUL-separated notices).
        let end = value.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let value = &value[..end.min(MAX_VALUE)];
        if !value.is_empty() && value.iter().any(|b| !b.is_ascii_whitespace()) {
            kept.push((tag, value));
        }
    }
    if kept.is_empty() {
        return None;
    }
    kept.sort_by_key(|k| k.0);
    // Header, then one IFD (count, 12-byte entries, next-IFD offset 0), then the values.
    let mut out = b"MM\0*\0\0\0\x08".to_vec();
    out.extend_from_slice(&(kept.len() as u16).to_be_bytes());
    let mut data_at = 8 + 2 + 12 * kept.len() + 4;
    let mut values = Vec::new();
    for (tag, value) in &kept {
        let len = value.len() + 1; // NUL-terminated
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        if len <= 4 {
            let mut inline = [0u8; 4];
            inline[..value.len()].copy_from_slice(value);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&(data_at as u32).to_be_bytes());
            values.extend_from_slice(value);
            values.push(0);
            if len % 2 == 1 {
                values.push(0); // values start on word boundaries
            }
            data_at = 8 + 2 + 12 * kept.len() + 4 + values.len();
        }
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&values);
    Some(out)
}

fn malformed(format: &str, what: &str) -> Error {
    Error::Encode(format!("cannot add metadata to the {format} output: {what}"))
}

/// Writes `meta` into `bytes`, an encoded `format` file from this crate's encoders. AVIF's
/// Exif is written by its encoder, so only its profile is added here; GIF gets nothing.
pub(crate) fn embed(bytes: Vec<u8>, format: OutputFormat, meta: &Metadata) -> Result<Vec<u8>> {
    if meta.is_empty() {
        return Ok(bytes);
    }
    let (icc, exif) = (meta.icc.as_deref(), meta.copyright.as_deref());
    match format {
        OutputFormat::Jpeg => jpeg(&bytes, icc, exif),
        OutputFormat::Png => png(&bytes, icc, exif),
        OutputFormat::Webp => webp(&bytes, icc, exif),
        OutputFormat::Avif => match icc {
            Some(icc) => avif_icc(&bytes, icc),
            None => Ok(bytes),
        },
        OutputFormat::Gif => Ok(bytes),
    }
}

/// Most bytes of profile per APP2 segment: 65,535 less the length field, `ICC_PROFILE\0` and
/// the sequence number and count.
const ICC_PER_SEGMENT: usize = 65_535 - 2 - 14;

/// After SOI and a leading JFIF APP0: APP1 `Exif`, then the profile in APP2 segments.
fn jpeg(bytes: &[u8], icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>> {
    let bad = |what| malformed("JPEG", what);
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("no SOI"));
    }
    let mut at = 2;
    if bytes.get(2..4) == Some(&[0xFF, 0xE0]) {
        let len = bytes
            .get(4..6)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
            .ok_or_else(|| bad("APP0"))?;
        at = 4 + len;
        if at > bytes.len() {
            return Err(bad("APP0 runs past the end"));
        }
    }
    let mut segments = Vec::new();
    let mut segment = |marker: u8, parts: &[&[u8]]| -> Result<()> {
        let len = 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        let len = u16::try_from(len).map_err(|_| bad("a segment over 64 KB"))?;
        segments.extend_from_slice(&[0xFF, marker]);
        segments.extend_from_slice(&len.to_be_bytes());
        for p in parts {
            segments.extend_from_slice(p);
        }
        Ok(())
    };
    if let Some(exif) = exif {
        segment(0xE1, &[b"Exif\0\0", exif])?;
    }
    if let Some(icc) = icc {
        let count = icc.len().div_ceil(ICC_PER_SEGMENT);
        let count = u8::try_from(count).map_err(|_| {
            Error::invalid("output.keep_icc", "the profile is over 16 MB, more than a JPEG can carry")
        })?;
        for (i, chunk) in icc.chunks(ICC_PER_SEGMENT).enumerate() {
            segment(0xE2, &[b"ICC_PROFILE\0", &[i as u8 + 1, count], chunk])?;
        }
    }
    let mut out = Vec::with_capacity(bytes.len() + segments.len());
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(&segments);
    out.extend_from_slice(&bytes[at..]);
    Ok(out)
}

/// A PNG chunk: length, type, data, CRC of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| malformed("PNG", "a chunk over 4 GB"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    Ok(())
}

/// After IHDR: `iCCP` (the profile deflated, as the format requires) and `eXIf`.
fn png(bytes: &[u8], icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    // The signature, then IHDR: 4 + 4 + 13 + 4 bytes.
    const AFTER_IHDR: usize = 8 + 25;
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16) != Some(b"IHDR") || bytes.len() < AFTER_IHDR {
        return Err(malformed("PNG", "no IHDR first"));
    }
    let mut chunks = Vec::new();
    if let Some(icc) = icc {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(icc).and_then(|()| z.flush()).map_err(|e| Error::Encode(e.to_string()))?;
        let deflated = z.finish().map_err(|e| Error::Encode(e.to_string()))?;
        // Profile name, NUL, compression method 0 (deflate), the stream.
        let mut data = b"ICC profile\0\0".to_vec();
        data.extend_from_slice(&deflated);
        png_chunk(&mut chunks, b"iCCP", &data)?;
    }
    if let Some(exif) = exif {
        png_chunk(&mut chunks, b"eXIf", exif)?;
    }
    let mut out = Vec::with_capacity(bytes.len() + chunks.len());
    out.extend_from_slice(&bytes[..AFTER_IHDR]);
    out.extend_from_slice(&chunks);
    out.extend_from_slice(&bytes[AFTER_IHDR..]);
    Ok(out)
}

/// A RIFF chunk, padded to an even length.
fn riff_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| malformed("WebP", "a chunk over 4 GB"))?;
    out.extend_from_slice(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

/// The extended format (`VP8X`, made from the bitstream's header when libwebp wrote the simple
/// one) with its ICC and EXIF flags, `ICCP` right after it and `EXIF` at the end, where the
/// container specification puts them.
fn webp(bytes: &[u8], icc: Option<&[u8]>, exif: Option<&[u8]>) -> Result<Vec<u8>> {
    let bad = |what| malformed("WebP", what);
    if bytes.get(..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
        return Err(bad("no RIFF WEBP header"));
    }
    let mut chunks: Vec<([u8; 4], &[u8])> = Vec::new();
    let mut at = 12;
    while at < bytes.len() {
        let head = bytes.get(at..at + 8).ok_or_else(|| bad("a chunk header is cut"))?;
        let kind: [u8; 4] = head[..4].try_into().map_err(|_| bad("chunk"))?;
        let len = u32::from_le_bytes(head[4..8].try_into().map_err(|_| bad("chunk"))?) as usize;
        let data = bytes.get(at + 8..at + 8 + len).ok_or_else(|| bad("a chunk runs past the end"))?;
        chunks.push((kind, data));
        at += 8 + len + len % 2;
    }
    let mut vp8x = match chunks.first() {
        Some((kind, data)) if kind == b"VP8X" && data.len() == 10 => {
            let mut d = [0u8; 10];
            d.copy_from_slice(data);
            chunks.remove(0);
            d
        }
        Some((kind, data)) if kind == b"VP8 " || kind == b"VP8L" => {
            let (w, h, alpha) = webp_size(kind, data).ok_or_else(|| bad("the bitstream header"))?;
            let mut d = [0u8; 10];
            d[0] = if alpha { 0x10 } else { 0 };
            d[4..7].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
            d[7..10].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
            d
        }
        _ => return Err(bad("no VP8X, VP8 or VP8L chunk first")),
    };
    if icc.is_some() {
        vp8x[0] |= 0x20;
    }
    if exif.is_some() {
        vp8x[0] |= 0x08;
    }
    let mut body = b"WEBP".to_vec();
    riff_chunk(&mut body, b"VP8X", &vp8x)?;
    if let Some(icc) = icc {
        riff_chunk(&mut body, b"ICCP", icc)?;
    }
    for (kind, data) in &chunks {
        riff_chunk(&mut body, kind, data)?;
    }
    if let Some(exif) = exif {
        riff_chunk(&mut body, b"EXIF", exif)?;
    }
    let len = u32::try_from(body.len()).map_err(|_| bad("over 4 GB"))?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Width, height and whether there is alpha, from a `VP8 ` or `VP8L` bitstream's header.
fn webp_size(kind: &[u8; 4], data: &[u8]) -> Option<(u32, u32, bool)> {
    if kind == b"VP8 " {
        // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
        if data.get(3..6)? != [0x9D, 0x01, 0x2A] {
            return None;
        }
        let w = u32::from(u16::from_le_bytes([data[6], *data.get(7)?]) & 0x3FFF);
        let h = u32::from(u16::from_le_bytes([*data.get(8)?, *data.get(9)?]) & 0x3FFF);
        return (w > 0 && h > 0).then_some((w, h, false));
    }
    // Signature 0x2f, then width - 1 and height - 1 in 14 bits each and the alpha hint.
    if *data.first()? != 0x2F {
        return None;
    }
    let bits = u32::from_le_bytes(data.get(1..5)?.try_into().ok()?);
    Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, (bits >> 28) & 1 == 1))
}

/// A box's (offset, size, type) at `at`, within `end`: 32-bit sizes only (what the AVIF
/// writer writes).
fn avif_box(bytes: &[u8], at: usize, end: usize) -> Option<(usize, [u8; 4])> {
    let size = usize::try_from(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?)).ok()?;
    let kind: [u8; 4] = bytes.get(at + 4..at + 8)?.try_into().ok()?;
    (size >= 8 && at.checked_add(size)? <= end).then_some((size, kind))
}

fn avif_children(bytes: &[u8], start: usize, end: usize) -> Option<Vec<(usize, usize, [u8; 4])>> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let (size, kind) = avif_box(bytes, at, end)?;
        out.push((at, size, kind));
        at += size;
    }
    Some(out)
}

fn put_u32(out: &mut [u8], at: usize, v: usize) -> Option<()> {
    out.get_mut(at..at + 4)?.copy_from_slice(&u32::try_from(v).ok()?.to_be_bytes());
    Some(())
}

/// Adds `colr` of type `prof` (the profile) to the primary item's properties: a new property
/// at the end of `ipco`, associated with the primary item in `ipma`; every box around them
/// grows by as much, and `iloc`'s offsets (absolute, into `mdat`) move by it.
fn avif_icc(bytes: &[u8], icc: &[u8]) -> Result<Vec<u8>> {
    avif_with_icc(bytes, icc).ok_or_else(|| malformed("AVIF", "not the layout its writer makes"))
}

fn avif_with_icc(bytes: &[u8], icc: &[u8]) -> Option<Vec<u8>> {
    let top = avif_children(bytes, 0, bytes.len())?;
    let &(meta_at, meta_size, _) = top.iter().find(|b| &b.2 == b"meta")?;
    // `meta` is a full box: its children start after version and flags.
    let children = avif_children(bytes, meta_at + 12, meta_at + meta_size)?;
    let &(pitm_at, _, _) = children.iter().find(|b| &b.2 == b"pitm")?;
    let primary = u16::from_be_bytes(bytes.get(pitm_at + 12..pitm_at + 14)?.try_into().ok()?);
    let &(iloc_at, iloc_size, _) = children.iter().find(|b| &b.2 == b"iloc")?;
    let &(iprp_at, iprp_size, _) = children.iter().find(|b| &b.2 == b"iprp")?;
    let props = avif_children(bytes, iprp_at + 8, iprp_at + iprp_size)?;
    let &(ipco_at, ipco_size, _) = props.iter().find(|b| &b.2 == b"ipco")?;
    let &(ipma_at, ipma_size, _) = props.iter().find(|b| &b.2 == b"ipma")?;
    if ipma_at < ipco_at || iloc_at > iprp_at || meta_at > top.iter().find(|b| &b.2 == b"mdat")?.0 {
        return None;
    }
    let index = avif_children(bytes, ipco_at + 8, ipco_at + ipco_size)?.len() + 1;
    // ipma version 0, flags 0: one-byte associations, seven bits of index.
    if bytes.get(ipma_at + 8..ipma_at + 12)? != [0, 0, 0, 0] || index > 0x7F {
        return None;
    }
    let mut colr = Vec::with_capacity(12 + icc.len());
    colr.extend_from_slice(&u32::try_from(12 + icc.len()).ok()?.to_be_bytes());
    colr.extend_from_slice(b"colrprof");
    colr.extend_from_slice(icc);
    let grow = colr.len() + 1;

    // The primary item's ipma entry: its association count goes up by one, the new index after
    // its last association.
    let entries = u32::from_be_bytes(bytes.get(ipma_at + 12..ipma_at + 16)?.try_into().ok()?);
    let mut at = ipma_at + 16;
    let mut insert = None;
    for _ in 0..entries {
        let id = u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?);
        let count = usize::from(*bytes.get(at + 2)?);
        if id == primary {
            insert = Some((at + 2, at + 3 + count));
        }
        at += 3 + count;
    }
    let (count_at, assoc_end) = insert?;
    if *bytes.get(count_at)? == u8::MAX || at != ipma_at + ipma_size {
        return None;
    }

    let mut out = Vec::with_capacity(bytes.len() + grow);
    out.extend_from_slice(&bytes[..ipco_at + ipco_size]);
    out.extend_from_slice(&colr);
    out.extend_from_slice(&bytes[ipco_at + ipco_size..assoc_end]);
    out.push(index as u8);
    out.extend_from_slice(&bytes[assoc_end..]);
    // Sizes: meta, iprp, ipco, ipma (which now starts `colr.len()` later); the count.
    put_u32(&mut out, meta_at, meta_size + grow)?;
    put_u32(&mut out, iprp_at, iprp_size + grow)?;
    put_u32(&mut out, ipco_at, ipco_size + colr.len())?;
    put_u32(&mut out, ipma_at + colr.len(), ipma_size + 1)?;
    let count_at = count_at + colr.len();
    out[count_at] += 1;

    // iloc version 0 with 4-byte offsets and lengths and no base offsets (the writer's):
    // item id, data reference index, extent count, then (offset, length) per extent.
    let iloc = &bytes[iloc_at..iloc_at + iloc_size];
    if iloc.get(8..14)? != [0, 0, 0, 0, 0x44, 0x00] {
        return None;
    }
    let items = usize::from(u16::from_be_bytes(iloc.get(14..16)?.try_into().ok()?));
    let mut at = 16;
    for _ in 0..items {
        let extents = usize::from(u16::from_be_bytes(iloc.get(at + 4..at + 6)?.try_into().ok()?));
        if iloc.get(at + 2..at + 4)? != [0, 0] {
            return None;
        }
        at += 6;
        for _ in 0..extents {
            let offset = u32::from_be_bytes(iloc.get(at..at + 4)?.try_into().ok()?) as usize;
            // iloc comes before iprp, so it has not moved in `out`.
            put_u32(&mut out, iloc_at + at, offset + grow)?;
            at += 8;
        }
    }
    (at == iloc_size).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A little-endian TIFF with Make, Artist, a GPS IFD pointer and Copyright in IFD0.
    fn camera_exif() -> Vec<u8> {
        let mut t = b"II*\0\x08\0\0\0".to_vec();
        let entries: [(u16, u16, u32, u32); 4] = [
            (0x010F, 2, 6, 62),                             // Make "Canon\0" at 62
            (0x013B, 2, 3, u32::from_le_bytes(*b"JA\0\0")), // Artist "JA\0", inline
            (0x8298, 2, 20, 68),                            // Copyright at 68, two NULs
            (0x8825, 4, 1, 88),                             // GPS IFD pointer
        ];
        t.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        for (tag, kind, count, value) in entries {
            t.extend_from_slice(&tag.to_le_bytes());
            t.extend_from_slice(&kind.to_le_bytes());
            t.extend_from_slice(&count.to_le_bytes());
            t.extend_from_slice(&value.to_le_bytes());
        }
        t.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(t.len(), 62);
        t.extend_from_slice(b"Canon\0");
        t.extend_from_slice(b"(c) 2026 Jo Bloggs\0\0");
        t.extend_from_slice(&[0; 8]);
        t
    }

    #[test]
    fn copyright_keeps_artist_and_copyright_only() {
        let exif = camera_exif();
        let kept = copyright_exif(&exif).unwrap();
        assert_eq!(&kept[..8], b"MM\0*\0\0\0\x08");
        assert_eq!(u16::from_be_bytes([kept[8], kept[9]]), 2);
        // Artist inline ("JA\0", 3 bytes), Copyright at 8 + 2 + 24 + 4 = 38.
        assert_eq!(&kept[10..22], &[0x01, 0x3B, 0, 2, 0, 0, 0, 3, b'J', b'A', 0, 0]);
        assert_eq!(&kept[22..30], &[0x82, 0x98, 0, 2, 0, 0, 0, 19]);
        assert_eq!(u32::from_be_bytes(kept[30..34].try_into().unwrap()), 38);
        assert_eq!(&kept[38..57], b"(c) 2026 Jo Bloggs\0");
        assert!(!kept.windows(5).any(|w| w == b"Canon"));
        assert!(!kept.windows(2).any(|w| w == [0x88, 0x25]));
    }

    #[test]
    fn no_copyright_no_block() {
        let mut exif = camera_exif();
        // Turn Artist and Copyright into other tags.
        exif[10..12].copy_from_slice(&0x0110u16.to_le_bytes());
        exif[22..24].copy_from_slice(&0x0110u16.to_le_bytes());
        exif[34..36].copy_from_slice(&0x0131u16.to_le_bytes());
        assert_eq!(copyright_exif(&exif), None);
        assert_eq!(copyright_exif(b"II*\0\xff\xff\xff\xff"), None);
        assert_eq!(copyright_exif(b"nonsense"), None);
        assert_eq!(copyright_exif(&[]), None);
    }

    #[test]
    fn large_profiles_span_app2_segments_in_order() {
        let icc: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
        let plain = [0xFF, 0xD8, 0xFF, 0xD9];
        let out = jpeg_segments_icc(&jpeg(&plain, Some(&icc), None).unwrap());
        assert_eq!(out, icc);
    }

    fn jpeg_segments_icc(bytes: &[u8]) -> Vec<u8> {
        let mut at = 2;
        let mut parts = Vec::new();
        let mut segments = 0;
        while bytes[at] == 0xFF && bytes[at + 1] == 0xE2 {
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            let seg = &bytes[at + 4..at + 2 + len];
            assert!(seg.starts_with(b"ICC_PROFILE\0"));
            segments += 1;
            assert_eq!(usize::from(seg[12]), segments);
            assert_eq!(seg[13], 3, "150,000 bytes take three segments");
            parts.extend_from_slice(&seg[14..]);
            at += 2 + len;
        }
        assert_eq!(&bytes[at..], &[0xFF, 0xD9]);
        parts
    }
}
