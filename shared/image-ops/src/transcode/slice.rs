//! A JPEG cut into JPEG tiles without going through RGB: libjpeg decodes the source's Y, Cb and
//! Cr planes at their own resolution (the inverse DCT only), and each tile is encoded from its
//! rectangle of those planes (the forward DCT only). The chroma upsampling and YCbCr-to-RGB
//! conversion of a full decode, and every tile's RGB-to-YCbCr conversion and chroma
//! downsampling, are not done; the planes take half the memory of RGB; and a tile's chroma is
//! the source's own samples rather than a resampled copy of them.
//!
//! It applies where the overlay transcode does (an upright, complete 8-bit YCbCr 4:2:0 JPEG
//! without an Adobe marker or a profile the decode would convert from), when every tile starts
//! on an even pixel (a chroma sample then never straddles two tiles) and the tiles are baseline
//! JPEGs at a quality level; otherwise the pipeline decodes in full.

use super::ffi::{PixelEncoder, Plane};
use super::Skip;
use crate::encode::Encoded;
use crate::ops::slice::TileInfo;
use crate::{Metadata, OutputFormat, OutputParams, Quality};

/// Rows of each component in one iMCU row of 4:2:0: 16 of Y, 8 of Cb and of Cr.
const LINES: [usize; 3] = [16, 8, 8];

/// The JPEG tiles `tiles` (a plan of the `probed` image) of the JPEG `input`, encoded with
/// `out`, whose quality must be a level already; see the module docs for when it applies.
pub(crate) fn tiles(
    input: &[u8],
    probed: (u32, u32),
    tiles: &[TileInfo],
    out: &OutputParams,
) -> Result<Vec<Encoded>, Skip> {
    let Quality::Level(quality) = out.quality else {
        return Err("the quality is not a level yet".into());
    };
    if out.progressive {
        return Err("progressive tiles are left to libjpeg's own statistics".into());
    }
    if let Some(t) = tiles.iter().find(|t| t.x % 2 != 0 || t.y % 2 != 0) {
        return Err(format!("the tile at {},{} splits chroma samples", t.x, t.y));
    }
    let (mut t, icc) = super::open_plain(input, probed, out.keep_icc)?;
    let planes = t.read_planes(8)?;
    drop(t);
    let copyright = if out.keep_copyright { crate::decode::jpeg::copyright(input) } else { None };
    let meta = Metadata { icc, copyright };
    let encode = |tile: &TileInfo| encode_tile(&planes, tile, quality, &meta).map_err(crate::Error::Encode);
    crate::parallel::map_all(tiles, encode).map_err(|e| e.to_string())
}

/// One tile from the planes (see [`encode_rects`]).
fn encode_tile(planes: &[Plane], tile: &TileInfo, quality: u8, meta: &Metadata) -> Result<Encoded, String> {
    let [x, y, w, h] = [tile.x, tile.y, tile.width, tile.height].map(|v| v as usize);
    // Each component's rectangle at its own resolution (x and y are even: checked by the
    // caller).
    let chroma = (x / 2, y / 2, w.div_ceil(2), h.div_ceil(2));
    encode_rects(planes, [(x, y, w, h), chroma, chroma], (tile.width, tile.height), quality, meta)
}

/// A `width` x `height` 4:2:0 JPEG of the rectangles `rects` (x, y, width, height) of the Y, Cb
/// and Cr `planes`, each copied an iMCU row at a time into rows padded as libjpeg pads an image
/// it downsamples itself: the last sample of a row repeated to whole blocks, and the last row
/// repeated below the image.
pub(super) fn encode_rects(
    planes: &[Plane],
    rects: [(usize, usize, usize, usize); 3],
    (width, height): (u32, u32),
    quality: u8,
    meta: &Metadata,
) -> Result<Encoded, String> {
    let (w, h) = (width as usize, height as usize);
    let sizes = [(w, h), (w.div_ceil(2), h.div_ceil(2)), (w.div_ceil(2), h.div_ceil(2))];
    if planes.len() != 3 || w == 0 || h == 0 || rects.iter().zip(sizes).any(|(r, s)| (r.2, r.3) != s) {
        return Err("no planes, or rectangles that are not a 4:2:0 image's".into());
    }
    let capacity = w.saturating_mul(h) / 8 + 4096;
    let Some(mut encoder) = PixelEncoder::start_planes(width, height, quality, capacity)? else {
        return Err("libjpeg is not set up for counted statistics".into());
    };
    // Each component's rows padded to the whole MCUs libjpeg reads.
    let padded = [w.div_ceil(16) * 16, w.div_ceil(16) * 8, w.div_ceil(16) * 8];
    let mut bufs: [Vec<u8>; 3] = std::array::from_fn(|c| vec![0; padded[c] * LINES[c]]);
    for r in 0..h.div_ceil(16) {
        for (c, buf) in bufs.iter_mut().enumerate() {
            let (x0, y0, cw, ch) = rects[c];
            let plane = &planes[c];
            if x0 + cw > plane.width || y0 + ch > plane.height {
                return Err("a tile reaches outside the image".into());
            }
            for (i, dst) in buf.chunks_exact_mut(padded[c]).enumerate() {
                let row = y0 + (r * LINES[c] + i).min(ch - 1);
                let src = &plane.data[row * plane.stride + x0..][..cw];
                dst[..cw].copy_from_slice(src);
                dst[cw..].fill(src[cw - 1]);
            }
        }
        let rows: [Vec<&[u8]>; 3] = std::array::from_fn(|c| bufs[c].chunks_exact(padded[c]).collect());
        encoder.write_planes([&rows[0], &rows[1], &rows[2]])?;
    }
    let bytes = encoder.finish()?;
    let bytes = crate::metadata::embed(bytes, OutputFormat::Jpeg, meta).map_err(|e| e.to_string())?;
    Ok(Encoded { bytes, format: OutputFormat::Jpeg, width, height, frames: 1 })
}
