//! Images made on the fly: photo-like JPEGs (smooth gradients with soft bands: no flat areas, no
//! sharp edges) and a PNG logo.

use std::sync::OnceLock;

/// A 4000x3000 (12 MP) JPEG photo-like image, made once per test binary.
pub fn photo_12mp() -> &'static [u8] {
    static PHOTO: OnceLock<Vec<u8>> = OnceLock::new();
    PHOTO.get_or_init(|| jpeg(4000, 3000))
}

/// A small JPEG for the failure cases.
pub fn photo_small() -> &'static [u8] {
    static PHOTO: OnceLock<Vec<u8>> = OnceLock::new();
    PHOTO.get_or_init(|| jpeg(640, 480))
}

/// A smooth gradient with soft diagonal bands: no flat areas, no sharp edges.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width as f32;
        let fy = y as f32 / height as f32;
        let band = ((fx + fy) * 12.0).sin() * 20.0;
        image::Rgb([
            (40.0 + 150.0 * fx + band) as u8,
            (60.0 + 120.0 * fy - band) as u8,
            (90.0 + 60.0 * (1.0 - fx) + band * 0.5) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 88).encode_image(&img).unwrap();
    out
}

/// An RGBA PNG logo: an opaque red rectangle.
pub fn logo_png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(width, height, image::Rgba([255, 0, 0, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A file of image-ops' decoding fixtures (`shared/image-ops/tests/fixtures/<name>`): HEIC and
/// AVIF written by libheif's and libavif's own encoders.
pub fn image_ops_fixture(name: &str) -> Vec<u8> {
    let path = crate::tools::root().join("shared/image-ops/tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
