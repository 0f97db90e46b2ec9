//! Slicing into tiles.

use serde::{Deserialize, Serialize};

use crate::geometry::check_range;
use crate::Error;

/// The registry's one-line summary.
pub const SUMMARY: &str = "Cut into tiles, plus a manifest that lists them (the last operation).";
/// The registry's params doc.
pub const PARAMS: &str = "`rows` + `cols` (a grid; the last row and column take the remainder), or \
    `tile_width` + `tile_height` (fixed tiles; the last row and column are smaller). Produces tiles \
    plus a manifest listing each tile's `row`, `col`, `x`, `y`, `width`, `height`.";

/// The name of a tile, in a folder or under a key prefix: `r<row>-c<col>.<ext>`.
pub fn tile_name(row: u32, col: u32, extension: &str) -> String {
    format!("r{row}-c{col}.{extension}")
}

impl crate::ops::Operation for SliceParams {
    /// Slicing is not a transformation: the pipeline cuts the image when it reaches this
    /// operation, which validation keeps last ([`crate::ops::Operation::tiles`]).
    fn apply(&self, _image: &mut crate::Image, _cx: &crate::ops::Context<'_>) -> crate::Result<()> {
        Err(Error::invalid("op", "slice must be the last operation"))
    }

    fn tiles(&self) -> Option<&SliceParams> {
        Some(self)
    }
}

/// Params of `slice`: either a `rows` x `cols` grid, or a `tile_width` x `tile_height` size.
///
/// Remainder rule: with a grid, every tile is `floor(W / cols)` x `floor(H / rows)` and the
/// last column/row also takes the remainder; with a tile size, tiles are exactly that size and
/// the last column/row is narrower/shorter when the image does not divide evenly.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SliceParams {
    #[serde(default)]
    pub rows: Option<u32>,
    #[serde(default)]
    pub cols: Option<u32>,
    #[serde(default)]
    pub tile_width: Option<u32>,
    #[serde(default)]
    pub tile_height: Option<u32>,
}

/// One tile: where it is in the grid and in the source image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TileInfo {
    pub row: u32,
    pub col: u32,
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// The manifest of a sliced image, serialised next to the tiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub width: u32,
    pub height: u32,
    pub rows: u32,
    pub cols: u32,
    pub format: crate::OutputFormat,
    pub tiles: Vec<TileInfo>,
}

/// Most tiles a slice may produce.
pub const MAX_TILES: u64 = 1024;
/// Most rows or columns of a grid.
pub const MAX_GRID: u32 = 64;

impl crate::Validate for SliceParams {
    fn validate(&self, field: &str, limits: &crate::Limits) -> crate::Result<()> {
        let grid = self.rows.is_some() || self.cols.is_some();
        let size = self.tile_width.is_some() || self.tile_height.is_some();
        if grid && size {
            return Err(Error::invalid(
                field,
                "give either rows and cols, or tile_width and tile_height, not both",
            ));
        }
        if grid {
            let rows =
                self.rows.ok_or_else(|| Error::invalid(format!("{field}.rows"), "required with cols"))?;
            let cols =
                self.cols.ok_or_else(|| Error::invalid(format!("{field}.cols"), "required with rows"))?;
            check_range(&format!("{field}.rows"), rows, 1, MAX_GRID)?;
            check_range(&format!("{field}.cols"), cols, 1, MAX_GRID)?;
            if u64::from(rows) * u64::from(cols) > MAX_TILES {
                return Err(Error::invalid(
                    format!("{field}.rows"),
                    format!("{rows} x {cols} is more than {MAX_TILES} tiles"),
                ));
            }
            Ok(())
        } else if size {
            let tw = self
                .tile_width
                .ok_or_else(|| Error::invalid(format!("{field}.tile_width"), "required with tile_height"))?;
            let th = self
                .tile_height
                .ok_or_else(|| Error::invalid(format!("{field}.tile_height"), "required with tile_width"))?;
            check_range(&format!("{field}.tile_width"), tw, 1, limits.max_side.max(1))?;
            check_range(&format!("{field}.tile_height"), th, 1, limits.max_side.max(1))
        } else {
            Err(Error::invalid(field, "give rows and cols, or tile_width and tile_height"))
        }
    }
}

/// The tiles of a `width` x `height` image, row-major, following the remainder rule above.
/// The tiles cover the image exactly without overlap. Errors (at apply time, as they depend on
/// the image): a grid with more columns/rows than the image has pixels, more than
/// [`MAX_TILES`] tiles, or params that fail validation.
pub fn plan(width: u32, height: u32, p: &SliceParams) -> crate::Result<Vec<TileInfo>> {
    if width == 0 || height == 0 {
        return Err(Error::invalid("slice", "the image is empty"));
    }
    // (tile size, count) per axis; the last tile ends at the image edge.
    let (cols, rows, tw, th) = match (p.rows, p.cols, p.tile_width, p.tile_height) {
        (Some(rows), Some(cols), None, None) => {
            if cols == 0 || cols > width {
                return Err(Error::invalid("cols", format!("{cols} columns do not fit {width} px")));
            }
            if rows == 0 || rows > height {
                return Err(Error::invalid("rows", format!("{rows} rows do not fit {height} px")));
            }
            (cols, rows, width / cols, height / rows)
        }
        (None, None, Some(tw), Some(th)) => {
            if tw == 0 {
                return Err(Error::invalid("tile_width", "must be greater than 0"));
            }
            if th == 0 {
                return Err(Error::invalid("tile_height", "must be greater than 0"));
            }
            (width.div_ceil(tw), height.div_ceil(th), tw.min(width), th.min(height))
        }
        _ => {
            return Err(Error::invalid("slice", "give rows and cols, or tile_width and tile_height"));
        }
    };
    let count = u64::from(cols) * u64::from(rows);
    if count > MAX_TILES {
        return Err(Error::invalid(
            "tile_width",
            format!("{cols} x {rows} tiles of {tw} x {th} px is more than {MAX_TILES} tiles"),
        ));
    }
    // Start and length of tile `i` of `n` along an axis of `len` px with tiles of `size` px.
    let span = |i: u32, n: u32, size: u32, len: u32| {
        let start = i * size;
        let end = if i + 1 == n { len } else { (start + size).min(len) };
        (start, end - start)
    };
    let mut tiles = Vec::with_capacity(count as usize);
    for row in 0..rows {
        let (y, tile_h) = span(row, rows, th, height);
        for col in 0..cols {
            let (x, tile_w) = span(col, cols, tw, width);
            tiles.push(TileInfo { row, col, x, y, width: tile_w, height: tile_h });
        }
    }
    Ok(tiles)
}

/// Cuts the (first frame of the) image into tiles, row-major. Each tile is a still [`Image`]
/// of the same input format, copied row by row from the source.
///
/// [`Image`]: crate::Image
pub fn slice(image: &crate::Image, p: &SliceParams) -> crate::Result<Vec<(TileInfo, crate::Image)>> {
    let (width, height) = image.first().dimensions();
    plan(width, height, p)?.into_iter().map(|tile| cut(image, &tile).map(|piece| (tile, piece))).collect()
}

/// One tile of [`plan`]: the `tile` rectangle of the (first frame of the) image, copied into a
/// still [`Image`] of the same input format.
///
/// [`Image`]: crate::Image
pub fn cut(image: &crate::Image, tile: &TileInfo) -> crate::Result<crate::Image> {
    let pixels = image
        .first()
        .crop(tile.x, tile.y, tile.width, tile.height)
        .ok_or_else(|| Error::invalid("slice", "tile outside the image"))?;
    let mut tile = crate::Image::still(pixels, image.format);
    tile.metadata = image.metadata.clone();
    Ok(tile)
}
