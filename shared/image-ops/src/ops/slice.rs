//! Slicing into tiles.

use serde::{Deserialize, Serialize};

/// Params of `slice`: either a `rows` x `cols` grid, or a `tile_width` x `tile_height` size.
///
/// Remainder rule: with a grid, every tile is `floor(W / cols)` x `floor(H / rows)` and the
/// last column/row also takes the remainder; with a tile size, tiles are exactly that size and
/// the last column/row is narrower/shorter when the image does not divide evenly.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    pub format: crate::encode::OutputFormat,
    pub tiles: Vec<TileInfo>,
}

impl crate::Validate for SliceParams {
    fn validate(&self, field: &str, _limits: &crate::Limits) -> crate::Result<()> {
        let _ = field;
        todo!("helper: slice")
    }
}

/// The tiles of a `width` x `height` image, row-major.
pub fn plan(width: u32, height: u32, p: &SliceParams) -> crate::Result<Vec<TileInfo>> {
    let _ = (width, height, p);
    todo!("helper: slice")
}

/// Cuts the (first frame of the) image into tiles, row-major.
pub fn slice(image: &crate::Image, p: &SliceParams) -> crate::Result<Vec<(TileInfo, crate::Image)>> {
    let _ = (image, p);
    todo!("helper: slice")
}
