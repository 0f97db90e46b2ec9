//! EXIF orientation, applied to the pixels so that every decoded image is upright.

use image::metadata::Orientation;
use image::DynamicImage;

use crate::Pixels;

/// Whether the orientation swaps width and height.
pub(super) fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Applies an EXIF orientation to the pixels.
pub(super) fn orient(pixels: Pixels, orientation: Orientation) -> Pixels {
    if orientation == Orientation::NoTransforms {
        return pixels;
    }
    let mut img = match pixels {
        Pixels::Rgb(i) => DynamicImage::ImageRgb8(i),
        Pixels::Rgba(i) => DynamicImage::ImageRgba8(i),
    };
    img.apply_orientation(orientation);
    match img {
        DynamicImage::ImageRgba8(i) => Pixels::Rgba(i),
        DynamicImage::ImageRgb8(i) => Pixels::Rgb(i),
        other => Pixels::Rgb(other.into_rgb8()),
    }
}
