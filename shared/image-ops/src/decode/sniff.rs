//! The magic-byte allowlist: JPEG, PNG, GIF, WebP, AVIF and HEIC/HEIF are accepted; SVG/XML,
//! TIFF, BMP, PDF and other ISO-BMFF files (video) are refused by name.

use super::unsupported;
use crate::{InputFormat, Result};

pub(super) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Identifies the format from magic bytes (allowlist: JPEG, PNG, WebP, GIF, AVIF, HEIC).
pub fn sniff(bytes: &[u8]) -> Result<InputFormat> {
    if bytes.is_empty() {
        return Err(unsupported("empty input"));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(InputFormat::Jpeg);
    }
    if bytes.starts_with(&PNG_SIGNATURE) {
        return Ok(InputFormat::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(InputFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(InputFormat::Webp);
    }
    if let Some(Some(format)) = iso_bmff_kind(bytes) {
        return Ok(format);
    }
    Err(unsupported(name_unsupported(bytes)))
}

/// A message naming a known unsupported format, or "unrecognised".
fn name_unsupported(bytes: &[u8]) -> String {
    if iso_bmff_kind(bytes).is_some() {
        let brand = String::from_utf8_lossy(&bytes[8..12]).into_owned();
        return format!("ISO-BMFF file of brand {brand:?} (a video?) is not supported ({ACCEPTED})");
    }
    if looks_like_xml(bytes) {
        return format!("SVG/XML is not supported ({ACCEPTED})");
    }
    let named = if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("TIFF")
    } else if bytes.starts_with(b"BM") {
        Some("BMP")
    } else if bytes.starts_with(b"%PDF-") {
        Some("PDF")
    } else if bytes.starts_with(b"RIFF") {
        Some("RIFF container (not WebP)")
    } else {
        None
    };
    match named {
        Some(name) => format!("{name} is not supported ({ACCEPTED})"),
        None => {
            let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("unrecognised format (first bytes {})", head.join(" "))
        }
    }
}

const ACCEPTED: &str = "accepted: JPEG, PNG, GIF, WebP, AVIF, HEIC";

/// AVIF / HEIC detection from an ISO-BMFF `ftyp` box (major and compatible brands): AVIF when
/// `avif` or `avis` is among them (an AVIF may list `mif1` and `miaf` too), else HEIC for the
/// HEIF brands (`mif1` alone included: the image items then say which codec, and one that is
/// not HEVC is refused by name). `Some(None)`: an `ftyp` box with neither (MP4, QuickTime, ...).
fn iso_bmff_kind(bytes: &[u8]) -> Option<Option<InputFormat>> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let end = size.clamp(12, 256).min(bytes.len());
    let mut brands = vec![bytes.get(8..12)?];
    // Compatible brands follow the major brand and its 4-byte minor version.
    let mut pos = 16;
    while pos + 4 <= end {
        brands.push(&bytes[pos..pos + 4]);
        pos += 4;
    }
    if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
        return Some(Some(InputFormat::Avif));
    }
    let heif: [&[u8]; 8] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"];
    if brands.iter().any(|b| heif.contains(b)) {
        return Some(Some(InputFormat::Heic));
    }
    Some(None)
}

/// SVG or other XML: optional UTF-8 BOM and whitespace, then `<?xml`, `<svg` or `<!DOCTYPE svg`.
fn looks_like_xml(bytes: &[u8]) -> bool {
    let rest = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let start = rest.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(rest.len());
    let head: Vec<u8> = rest[start..].iter().take(14).map(u8::to_ascii_lowercase).collect();
    head.starts_with(b"<?xml") || head.starts_with(b"<svg") || head.starts_with(b"<!doctype svg")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn sniff_names_formats() {
        let msg = |b: &[u8]| match sniff(b) {
            Err(Error::UnsupportedFormat(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(msg(b""), "empty input");
        assert!(msg(b"\xEF\xBB\xBF  \n<svg xmlns=''>").contains("SVG"));
        assert!(msg(b"<?xml version='1.0'?>").contains("SVG/XML"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").ok(), Some(InputFormat::Heic));
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1miaf").ok(), Some(InputFormat::Heic));
        assert!(msg(b"\0\0\0\x18ftypisom\0\0\0\0isomavc1").contains("\"isom\" (a video?)"));
        assert!(msg(b"II*\0\x08\0\0\0").contains("TIFF"));
        assert!(msg(b"MM\0*\0\0\0\x08").contains("TIFF"));
        assert!(msg(b"BM\x36\0\0\0").contains("BMP"));
        assert!(msg(b"%PDF-1.7").contains("PDF"));
        assert!(msg(b"hello world").starts_with("unrecognised"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).ok(), Some(InputFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a....").ok(), Some(InputFormat::Gif));
        assert_eq!(sniff(b"GIF87a....").ok(), Some(InputFormat::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ").ok(), Some(InputFormat::Webp));
        assert_eq!(sniff(&PNG_SIGNATURE).ok(), Some(InputFormat::Png));
        assert!(sniff(b"RIFF\0\0\0\0WAVEfmt ").is_err());
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1").ok(), Some(InputFormat::Avif));
        assert_eq!(sniff(b"\0\0\0\x1cftypavis\0\0\0\0avismsf1").ok(), Some(InputFormat::Avif));
        assert_eq!(sniff(b"\0\0\0\x1cftypmif1\0\0\0\0miafavif").ok(), Some(InputFormat::Avif));
        assert!(msg(b"BM\x36\0\0\0").contains("accepted: JPEG, PNG, GIF, WebP, AVIF, HEIC"));
    }
}
