//! Decoding: EXIF orientation, shrink-on-load, CMYK, ICC conversion, pixel formats,
//! animations, and mutated inputs that must never panic.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

mod common;
mod craft;

use std::cell::Cell;

use image::codecs::gif::{GifEncoder, Repeat};
use image::codecs::png::PngEncoder;
use image::{Delay, ImageBuffer, ImageEncoder, Luma, LumaA, Rgb, RgbImage, Rgba, RgbaImage};
use image_ops::decode::{decode, probe, DecodeOptions, MAX_JPEG_SCANS};
use image_ops::{Error, Image, InputFormat, Limits, Pixels};

fn full() -> DecodeOptions<'static> {
    DecodeOptions::default()
}

fn decode_ok(bytes: &[u8]) -> Image {
    decode(bytes, &Limits::default(), &full()).unwrap()
}

fn rgba_of(img: &Image) -> RgbaImage {
    img.first().to_rgba()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)).unwrap()
}

// ------------------------------------------------------------------------------------------
// EXIF orientation
// ------------------------------------------------------------------------------------------

/// Where stored pixel (x, y) of a `w`x`h` stored image appears in the upright image, for each
/// EXIF orientation (TIFF/EXIF 2.3, tag 0x0112), written from the spec's row/column wording.
fn stored_to_upright(o: u16, x: u32, y: u32, w: u32, h: u32) -> (u32, u32) {
    match o {
        1 => (x, y),
        2 => (w - 1 - x, y),
        3 => (w - 1 - x, h - 1 - y),
        4 => (x, h - 1 - y),
        5 => (y, x),
        6 => (h - 1 - y, x),
        7 => (h - 1 - y, w - 1 - x),
        8 => (y, w - 1 - x),
        _ => unreachable!(),
    }
}

/// The stored image that shows `upright` when displayed with orientation `o`.
fn stored_for(o: u16, upright: &RgbImage) -> RgbImage {
    let (uw, uh) = upright.dimensions();
    let (w, h) = if o >= 5 { (uh, uw) } else { (uw, uh) };
    RgbImage::from_fn(w, h, |x, y| {
        let (ux, uy) = stored_to_upright(o, x, y, w, h);
        *upright.get_pixel(ux, uy)
    })
}

#[test]
fn exif_orientation_all_eight_jpeg() {
    let upright = common::photo(64, 48);
    let upright_rgba = image::DynamicImage::ImageRgb8(upright.clone()).into_rgba8();
    let plain = common::jpeg_bytes(&upright);
    let reference = rgba_of(&decode_ok(&plain));
    // Our libjpeg decode agrees with the independent decoder.
    assert!(common::mean_abs_diff(&reference, &common::decode_independent(&plain)) < 1.5);
    for o in 1..=8u16 {
        let stored = stored_for(o, &upright);
        let jpeg = craft::jpeg_insert_after_soi(&common::jpeg_bytes(&stored), &craft::exif_app1(o));
        let p = probe(&jpeg, &Limits::default()).unwrap();
        assert_eq!((p.width, p.height), stored.dimensions(), "probe reports the stored size");
        let img = decode_ok(&jpeg);
        assert!(matches!(img.first(), Pixels::Rgb(_)));
        let got = rgba_of(&img);
        assert_eq!(got.dimensions(), (64, 48), "orientation {o}");
        let d_src = common::mean_abs_diff(&got, &upright_rgba);
        let d_ref = common::mean_abs_diff(&got, &reference);
        assert!(d_src < 3.0 && d_ref < 2.0, "orientation {o}: diff {d_src} vs source, {d_ref} vs o=1");
    }
}

#[test]
fn exif_orientation_png_exif_chunk() {
    let upright = common::photo(40, 24);
    for o in [3u16, 6, 7] {
        let stored = stored_for(o, &upright);
        let mut png = Vec::new();
        let mut enc = PngEncoder::new(&mut png);
        enc.set_exif_metadata(craft::exif_tiff(o)).unwrap();
        enc.write_image(stored.as_raw(), stored.width(), stored.height(), image::ExtendedColorType::Rgb8)
            .unwrap();
        let img = decode_ok(&png);
        assert_eq!(img.first(), &Pixels::Rgb(upright.clone()), "orientation {o}");
    }
}

// ------------------------------------------------------------------------------------------
// Shrink-on-load
// ------------------------------------------------------------------------------------------

/// Box-averages by an integer factor (the reference for DCT scaling).
fn box_down(img: &RgbaImage, f: u32) -> RgbaImage {
    RgbaImage::from_fn(img.width() / f, img.height() / f, |x, y| {
        let mut sum = [0u32; 4];
        for dy in 0..f {
            for dx in 0..f {
                let p = img.get_pixel(x * f + dx, y * f + dy);
                for c in 0..4 {
                    sum[c] += u32::from(p[c]);
                }
            }
        }
        let n = f * f;
        Rgba(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}

#[test]
fn shrink_on_load_picks_dct_scale() {
    let jpeg = common::jpeg_bytes(&common::photo(1600, 1200));
    let full_img = rgba_of(&decode_ok(&jpeg));
    assert_eq!(full_img.dimensions(), (1600, 1200));
    for (hint, size, factor) in [(0.1, (200, 150), 8), (0.3, (800, 600), 2), (1.0, (1600, 1200), 1)] {
        let f = move |_w: u32, _h: u32| hint;
        let img = decode(
            &jpeg,
            &Limits::default(),
            &DecodeOptions { first_frame_only: false, shrink: Some(&f), ..Default::default() },
        )
        .unwrap();
        let got = rgba_of(&img);
        assert_eq!(got.dimensions(), size, "hint {hint}");
        let expected = if factor == 1 { full_img.clone() } else { box_down(&full_img, factor) };
        let d = common::mean_abs_diff(&got, &expected);
        assert!(d < 2.5, "hint {hint}: mean diff {d}");
    }
}

#[test]
fn shrink_on_load_uses_upright_size() {
    let jpeg =
        craft::jpeg_insert_after_soi(&common::jpeg_bytes(&common::photo(1600, 1200)), &craft::exif_app1(6));
    let seen = Cell::new((0, 0));
    // The first op wants an upright width of 160: 160/1200 needs 1/4 (300 px); computed on the
    // stored width (1600) it would wrongly allow 1/8.
    let f = |w: u32, h: u32| {
        seen.set((w, h));
        160.0 / f64::from(w)
    };
    let img = decode(
        &jpeg,
        &Limits::default(),
        &DecodeOptions { first_frame_only: false, shrink: Some(&f), ..Default::default() },
    )
    .unwrap();
    assert_eq!(seen.get(), (1200, 1600));
    let got = rgba_of(&img);
    assert_eq!(got.dimensions(), (300, 400));
    let full_upright = rgba_of(&decode_ok(&jpeg));
    assert_eq!(full_upright.dimensions(), (1200, 1600));
    let d = common::mean_abs_diff(&got, &box_down(&full_upright, 4));
    assert!(d < 2.5, "mean diff {d}");
}

// ------------------------------------------------------------------------------------------
// CMYK
// ------------------------------------------------------------------------------------------

/// The patches of tests/fixtures/cmyk_*.jpg (see the fixtures README) and their RGB colours.
const CMYK_PATCHES: [[u8; 3]; 8] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [127, 127, 127],
    [255, 127, 0],
];

#[test]
fn cmyk_jpegs_from_pillow_and_imagemagick() {
    for name in ["cmyk_pillow.jpg", "cmyk_imagemagick.jpg"] {
        let img = decode_ok(&fixture(name));
        let Pixels::Rgb(rgb) = img.first() else { panic!("{name}: CMYK decodes to RGB") };
        assert_eq!(rgb.dimensions(), (64, 32));
        for (i, want) in CMYK_PATCHES.iter().enumerate() {
            let (x, y) = ((i as u32 % 4) * 16 + 8, (i as u32 / 4) * 16 + 8);
            let got = rgb.get_pixel(x, y).0;
            let worst = (0..3).map(|c| got[c].abs_diff(want[c])).max().unwrap();
            assert!(worst <= 8, "{name} patch {i}: got {got:?}, want {want:?}");
        }
    }
}

#[test]
fn cmyk_jpeg_with_a_cmyk_profile_is_converted_through_it() {
    // Pillow's JPEG with a CMYK profile embedded, and littlecms' conversion of its samples to
    // sRGB (tests/fixtures/README.md).
    let img = decode_ok(&fixture("cmyk_profile.jpg"));
    let Pixels::Rgb(rgb) = img.first() else { panic!("CMYK decodes to RGB") };
    let lcms = image::load_from_memory(&fixture("cmyk_profile_lcms.png")).unwrap().into_rgba8();
    let ours = image::DynamicImage::ImageRgb8(rgb.clone()).into_rgba8();
    assert_eq!(ours.dimensions(), (64, 48));
    let diff = common::mean_abs_diff(&ours, &lcms);
    let worst = ours
        .pixels()
        .zip(lcms.pixels())
        .map(|(a, b)| (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap())
        .max()
        .unwrap();
    println!("moxcms vs littlecms: mean abs diff {diff:.2}, worst {worst}");
    // Measured 0.75 and 8: the two CMMs interpolate the 5^4-node table differently, and
    // libjpeg-turbo and Pillow's libjpeg may differ by a level on the samples.
    assert!(diff <= 1.0 && worst <= 10, "mean abs diff {diff:.2}, worst {worst}");
    // The profile matters here: the naive conversion is far from littlecms' (its cyan patch is
    // (0, 255, 255), the profile's (37, 255, 250); its black is (0, 0, 0), the profile's not).
    let cyan = ours.get_pixel(44, 8).0;
    assert!(cyan[0].abs_diff(37) <= 4 && cyan[2].abs_diff(250) <= 4, "{cyan:?}");
    let naive = decode_ok(&strip_app2(&fixture("cmyk_profile.jpg")));
    let naive = naive.first().to_rgba();
    let naive_diff = common::mean_abs_diff(&naive, &lcms);
    assert!(naive_diff > 4.0 * diff.max(1.0), "naive {naive_diff:.2} vs profile {diff:.2}");
    // Shrunk on load (to 0.3: a half-scale decode leaves the resampler 1.6x), the same
    // conversion on the smaller samples.
    let half = |_: u32, _: u32| 0.3;
    let small = decode(
        &fixture("cmyk_profile.jpg"),
        &Limits::default(),
        &DecodeOptions { first_frame_only: true, shrink: Some(&half), ..Default::default() },
    )
    .unwrap();
    assert_eq!((small.width(), small.height()), (32, 24));
    let c = small.first().to_rgba().get_pixel(22, 4).0;
    assert!(c[0].abs_diff(37) <= 6 && c[2].abs_diff(250) <= 6, "{c:?}");
}

/// A JPEG without its APP2 (ICC profile) segments.
fn strip_app2(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF && jpeg[pos + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
        if jpeg[pos + 1] != 0xE2 {
            out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
        }
        pos += 2 + len;
    }
    out.extend_from_slice(&jpeg[pos..]);
    out
}

// ------------------------------------------------------------------------------------------
// ICC
// ------------------------------------------------------------------------------------------

/// Display P3 (sRGB transfer curve, D65) to sRGB, computed independently of moxcms.
fn p3_to_srgb(p: [u8; 3]) -> [u8; 3] {
    common::primaries_to_srgb(p, common::P3_PRIMARIES)
}

fn p3_profile() -> Vec<u8> {
    moxcms::ColorProfile::new_display_p3().encode().unwrap()
}

const ICC_COLOURS: [[u8; 3]; 6] =
    [[200, 100, 50], [50, 150, 200], [128, 128, 128], [255, 255, 255], [0, 0, 0], [30, 200, 90]];

#[test]
fn icc_display_p3_png_is_converted() {
    let src = RgbaImage::from_fn(6, 1, |x, _| {
        let c = ICC_COLOURS[x as usize];
        Rgba([c[0], c[1], c[2], if x == 2 { 77 } else { 255 }])
    });
    let mut png = Vec::new();
    let mut enc = PngEncoder::new(&mut png);
    enc.set_icc_profile(p3_profile()).unwrap();
    enc.write_image(src.as_raw(), 6, 1, image::ExtendedColorType::Rgba8).unwrap();
    let img = decode_ok(&png);
    let Pixels::Rgba(got) = img.first() else { panic!("alpha kept") };
    for (x, c) in ICC_COLOURS.iter().enumerate() {
        let want = p3_to_srgb(*c);
        let g = got.get_pixel(x as u32, 0).0;
        let worst = (0..3).map(|i| g[i].abs_diff(want[i])).max().unwrap();
        assert!(worst <= 2, "P3 {c:?}: got {g:?}, want {want:?}");
        assert_eq!(g[3], if x == 2 { 77 } else { 255 });
    }
    // The conversion is visible: P3 (200,100,50) is not sRGB (200,100,50).
    assert!(got.get_pixel(0, 0)[0] >= 210);
}

#[test]
fn icc_display_p3_jpeg_multi_segment_is_converted() {
    let c = [200u8, 100, 50];
    let plain = common::jpeg_bytes(&RgbImage::from_pixel(16, 16, Rgb(c)));
    let jpeg = craft::jpeg_insert_after_soi(&plain, &craft::icc_app2(&p3_profile(), 2));
    // Colours as stored, from the independent decoder.
    let stored = common::decode_independent(&plain).get_pixel(8, 8).0;
    let want = p3_to_srgb([stored[0], stored[1], stored[2]]);
    let got = rgba_of(&decode_ok(&jpeg)).get_pixel(8, 8).0;
    let worst = (0..3).map(|i| got[i].abs_diff(want[i])).max().unwrap();
    assert!(worst <= 3, "got {got:?}, want {want:?}");
    // Missing second segment: profile ignored, pixels kept as stored.
    let half = craft::icc_app2(&p3_profile(), 2);
    let first_len = 2 + usize::from(u16::from_be_bytes([half[2], half[3]]));
    let broken = craft::jpeg_insert_after_soi(&plain, &half[..first_len]);
    let kept = rgba_of(&decode_ok(&broken)).get_pixel(8, 8).0;
    assert!((0..3).all(|i| kept[i].abs_diff(stored[i]) <= 2), "{kept:?} vs {stored:?}");
}

#[test]
fn icc_unparseable_or_srgb_profile_keeps_pixels() {
    let src = common::photo(24, 16);
    for icc in
        [b"not a profile at all, just bytes".repeat(8), moxcms::ColorProfile::new_srgb().encode().unwrap()]
    {
        let mut png = Vec::new();
        let mut enc = PngEncoder::new(&mut png);
        enc.set_icc_profile(icc).unwrap();
        enc.write_image(src.as_raw(), 24, 16, image::ExtendedColorType::Rgb8).unwrap();
        assert_eq!(decode_ok(&png).first(), &Pixels::Rgb(src.clone()));
    }
}

// ------------------------------------------------------------------------------------------
// Pixel formats
// ------------------------------------------------------------------------------------------

fn encode_png<P: image::PixelWithColorType>(img: &ImageBuffer<P, Vec<P::Subpixel>>) -> Vec<u8>
where
    [P::Subpixel]: image::EncodableLayout,
{
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

#[test]
fn png_16bit_grey_and_grey_alpha() {
    let vals = [0u16, 65535, 257 * 100, 257 * 200 + 100];
    let img16 = ImageBuffer::<Rgb<u16>, Vec<u16>>::from_fn(4, 1, |x, _| {
        let v = vals[x as usize];
        Rgb([v, 65535 - v, v / 2])
    });
    let Pixels::Rgb(got) = decode_ok(&encode_png(&img16)).first().clone() else { panic!("rgb") };
    for x in 0..4 {
        let want = img16.get_pixel(x, 0).0.map(|v| (f64::from(v) / 257.0).round() as u8);
        let g = got.get_pixel(x, 0).0;
        assert!((0..3).all(|i| g[i].abs_diff(want[i]) <= 1), "{g:?} vs {want:?}");
    }

    let grey = ImageBuffer::<Luma<u8>, Vec<u8>>::from_fn(5, 2, |x, y| Luma([(x * 50 + y) as u8]));
    let Pixels::Rgb(got) = decode_ok(&encode_png(&grey)).first().clone() else { panic!("grey -> rgb") };
    for (x, y, p) in grey.enumerate_pixels() {
        assert_eq!(got.get_pixel(x, y).0, [p[0]; 3]);
    }

    let grey_alpha =
        ImageBuffer::<LumaA<u8>, Vec<u8>>::from_fn(5, 2, |x, y| LumaA([(x * 50) as u8, (y * 100 + x) as u8]));
    let Pixels::Rgba(got) = decode_ok(&encode_png(&grey_alpha)).first().clone() else { panic!("alpha") };
    for (x, y, p) in grey_alpha.enumerate_pixels() {
        assert_eq!(got.get_pixel(x, y).0, [p[0], p[0], p[0], p[1]]);
    }

    let grey16 = ImageBuffer::<Luma<u16>, Vec<u16>>::from_fn(3, 1, |x, _| Luma([x as u16 * 30000]));
    let Pixels::Rgb(got) = decode_ok(&encode_png(&grey16)).first().clone() else { panic!("rgb") };
    for x in 0..3 {
        let want = (f64::from(x * 30000) / 257.0).round() as u8;
        assert!(got.get_pixel(x, 0).0.iter().all(|&v| v.abs_diff(want) <= 1));
    }
}

#[test]
fn png_palette_with_trns_keeps_alpha() {
    let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
    let trns = [255, 128, 0];
    // Two rows of 4 indices, filter byte 0 each.
    let raw = [0, 0, 1, 2, 3, 0, 3, 2, 1, 0];
    let png = craft::png_file(
        &craft::ihdr(4, 2, 8, 3),
        &[(b"PLTE", palette.to_vec()), (b"tRNS", trns.to_vec())],
        &craft::zlib_stored(&raw),
    );
    let Pixels::Rgba(got) = decode_ok(&png).first().clone() else { panic!("palette+tRNS -> rgba") };
    let colour = |i: u8| {
        let i = usize::from(i);
        Rgba([palette[i * 3], palette[i * 3 + 1], palette[i * 3 + 2], trns.get(i).copied().unwrap_or(255)])
    };
    let expected = RgbaImage::from_fn(4, 2, |x, y| colour(raw[(y * 5 + 1 + x) as usize]));
    assert_eq!(got, expected);
    // Without tRNS a palette PNG is opaque RGB.
    let opaque =
        craft::png_file(&craft::ihdr(4, 2, 8, 3), &[(b"PLTE", palette.to_vec())], &craft::zlib_stored(&raw));
    assert!(matches!(decode_ok(&opaque).first(), Pixels::Rgb(_)));
}

#[test]
fn png_rgba_is_exact() {
    let src = RgbaImage::from_fn(33, 17, |x, y| {
        let p = common::photo(33, 17).get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], ((x * 7 + y * 13) % 256) as u8])
    });
    let img = decode_ok(&common::png_bytes(&src));
    assert_eq!(img.format, InputFormat::Png);
    assert_eq!(img.first(), &Pixels::Rgba(src));
}

#[test]
fn webp_lossless_and_lossy() {
    let photo = common::photo(48, 32);
    let rgba = RgbaImage::from_fn(48, 32, |x, y| {
        let p = photo.get_pixel(x, y).0;
        Rgba([p[0], p[1], p[2], if x < 8 { 0 } else { 255 - (y as u8) }])
    });
    let lossless = webp::Encoder::from_rgba(rgba.as_raw(), 48, 32).encode_lossless().to_vec();
    let img = decode_ok(&lossless);
    assert_eq!(img.format, InputFormat::Webp);
    let Pixels::Rgba(got) = img.first() else { panic!("alpha kept") };
    // libwebp may change the colour of fully transparent pixels; compare where visible.
    for (x, y, p) in rgba.enumerate_pixels() {
        let g = got.get_pixel(x, y);
        assert_eq!(g[3], p[3]);
        if p[3] > 0 {
            assert_eq!(g, p);
        }
    }

    let lossy = webp::Encoder::from_rgb(photo.as_raw(), 48, 32).encode(90.0).to_vec();
    let img = decode_ok(&lossy);
    let Pixels::Rgb(got) = img.first() else { panic!("opaque lossy webp -> rgb") };
    let src_rgba = image::DynamicImage::ImageRgb8(photo).into_rgba8();
    let got_rgba = image::DynamicImage::ImageRgb8(got.clone()).into_rgba8();
    let d = common::mean_abs_diff(&got_rgba, &src_rgba);
    assert!(d < 4.0, "lossy webp mean diff {d}");
}

fn gif_bytes(frames: Vec<image::Frame>, repeat: Repeat) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(repeat).unwrap();
        enc.encode_frames(frames).unwrap();
    }
    out
}

fn four_colours(transparent: bool) -> RgbaImage {
    RgbaImage::from_fn(8, 6, |x, y| match (x / 4, y / 3) {
        (0, 0) => Rgba([255, 0, 0, 255]),
        (1, 0) => Rgba([0, 0, 255, 255]),
        (0, 1) => Rgba([255, 255, 255, 255]),
        _ if transparent => Rgba([0, 0, 0, 0]),
        _ => Rgba([0, 128, 0, 255]),
    })
}

#[test]
fn gif_still_opaque_and_transparent() {
    let opaque = four_colours(false);
    let gif = gif_bytes(vec![image::Frame::new(opaque.clone())], Repeat::Infinite);
    let img = decode_ok(&gif);
    assert_eq!(img.format, InputFormat::Gif);
    assert_eq!(img.frames.len(), 1);
    assert_eq!(img.first(), &Pixels::Rgb(image::DynamicImage::ImageRgba8(opaque).into_rgb8()));

    let transparent = four_colours(true);
    let gif = gif_bytes(vec![image::Frame::new(transparent.clone())], Repeat::Infinite);
    let Pixels::Rgba(got) = decode_ok(&gif).first().clone() else { panic!("alpha kept") };
    for (x, y, p) in transparent.enumerate_pixels() {
        let g = got.get_pixel(x, y);
        assert_eq!(g[3], p[3]);
        if p[3] > 0 {
            assert_eq!(g, p);
        }
    }
}

#[test]
fn gif_animation_frames_delays_and_first_frame_only() {
    let colours = [[255u8, 0, 0], [0, 255, 0], [0, 0, 255]];
    let frames: Vec<image::Frame> = colours
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let buf = RgbaImage::from_pixel(10, 7, Rgba([c[0], c[1], c[2], 255]));
            image::Frame::from_parts(buf, 0, 0, Delay::from_numer_denom_ms(100 * (i as u32 + 1), 1))
        })
        .collect();
    let gif = gif_bytes(frames, Repeat::Finite(3));
    let p = probe(&gif, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.frames), (10, 7, 3));
    let img = decode_ok(&gif);
    assert_eq!(img.frames.len(), 3);
    assert_eq!(img.loop_count, 3);
    assert_eq!(img.frames.iter().map(|f| f.delay_ms).collect::<Vec<_>>(), [100, 200, 300]);
    for (f, c) in img.frames.iter().zip(colours) {
        assert_eq!(f.pixels, Pixels::Rgb(RgbImage::from_pixel(10, 7, Rgb(c))));
    }
    let first = decode(
        &gif,
        &Limits::default(),
        &DecodeOptions { first_frame_only: true, shrink: None, ..Default::default() },
    )
    .unwrap();
    assert_eq!(first.frames.len(), 1);
    assert_eq!(first.frames[0], img.frames[0]);
    // The frame limit applies to the header count.
    let limits = Limits { max_frames: 2, ..Limits::default() };
    assert!(matches!(decode(&gif, &limits, &full()), Err(Error::TooManyPixels(_))));
}

fn solid(w: u32, h: u32, c: [u8; 4]) -> RgbaImage {
    RgbaImage::from_pixel(w, h, Rgba(c))
}

fn frame(
    image: RgbaImage,
    (x, y): (u32, u32),
    delay: (u16, u16),
    dispose: u8,
    blend: u8,
) -> craft::ApngFrame {
    craft::ApngFrame { image, x, y, delay, dispose, blend }
}

/// A 20x16 APNG: red, then a translucent blue 8x6 patch blended over it at (4, 4) and disposed
/// back to the background (transparent), then a green patch replacing (source) the canvas at
/// (10, 8).
fn apng_three(default: Option<&RgbaImage>) -> Vec<u8> {
    let frames = [
        frame(solid(20, 16, [255, 0, 0, 255]), (0, 0), (1, 10), 0, 0),
        frame(solid(8, 6, [0, 0, 255, 128]), (4, 4), (1, 20), 1, 1),
        frame(solid(10, 8, [0, 255, 0, 255]), (10, 8), (0, 0), 0, 0),
    ];
    craft::apng(20, 16, &frames, 3, 2, default)
}

#[test]
fn apng_is_animated_with_frames_delays_and_loops() {
    let png = apng_three(None);
    let p = probe(&png, &Limits::default()).unwrap();
    assert_eq!((p.format, p.width, p.height, p.frames), (InputFormat::Png, 20, 16, 3));
    let img = decode_ok(&png);
    assert_eq!(img.frames.len(), 3);
    assert_eq!(img.loop_count, 2);
    // 1/10 s, 1/20 s, and 0 (shown for no time, as the file says).
    assert_eq!(img.frames.iter().map(|f| f.delay_ms).collect::<Vec<_>>(), [100, 50, 0]);
    let rgba: Vec<RgbaImage> = img.frames.iter().map(|f| f.pixels.to_rgba()).collect();
    // Frame 1: red.
    assert!(rgba[0].pixels().all(|p| p.0 == [255, 0, 0, 255]));
    // Frame 2: the blue patch blended over red (straight alpha "over": (0*128 + 255*127)/255;
    // image's compositor rounds the alpha of 128 over 255 to 254).
    let over = rgba[1].get_pixel(5, 5).0;
    assert!(
        over[0].abs_diff(127) <= 1 && over[1] == 0 && over[2].abs_diff(128) <= 1 && over[3] >= 254,
        "{over:?}"
    );
    assert_eq!(rgba[1].get_pixel(0, 0).0, [255, 0, 0, 255]);
    // Frame 3: the blue patch's region was disposed to transparent, and green replaced a corner.
    assert_eq!(rgba[2].get_pixel(5, 5).0[3], 0, "disposed to the background");
    assert_eq!(rgba[2].get_pixel(0, 0).0, [255, 0, 0, 255]);
    assert_eq!(rgba[2].get_pixel(15, 12).0, [0, 255, 0, 255]);
    assert!(img.frames.iter().all(|f| f.pixels.has_alpha()), "a transparent pixel keeps alpha");
    // Only the first frame, when that is all the output needs.
    let first = decode(
        &png,
        &Limits::default(),
        &DecodeOptions { first_frame_only: true, shrink: None, ..Default::default() },
    )
    .unwrap();
    assert_eq!(first.frames.len(), 1);
    assert!(first.first().to_rgba().pixels().all(|p| p.0 == [255, 0, 0, 255]));
    // The frame limit applies to the acTL count, before decoding.
    let limits = Limits { max_frames: 2, ..Limits::default() };
    assert!(matches!(probe(&png, &limits), Err(Error::TooManyPixels(_))));
    assert!(matches!(decode(&png, &limits, &full()), Err(Error::TooManyPixels(_))));
    let limits = Limits { max_total_pixels: 20 * 16 * 3 - 1, ..Limits::default() };
    assert!(matches!(probe(&png, &limits), Err(Error::TooManyPixels(_))));
}

#[test]
fn apng_default_image_outside_the_animation_is_skipped() {
    // The IDAT is a still "poster" (white), not a frame: the animation is the three fcTL frames.
    let poster = solid(20, 16, [255, 255, 255, 255]);
    let png = apng_three(Some(&poster));
    assert_eq!(probe(&png, &Limits::default()).unwrap().frames, 3);
    let img = decode_ok(&png);
    assert_eq!(img.frames.len(), 3);
    assert!(
        img.first().to_rgba().pixels().all(|p| p.0 == [255, 0, 0, 255]),
        "the first frame, not the poster"
    );
}

#[test]
fn apng_edge_cases() {
    // acTL declaring 0 frames is ignored (as the png crate and browsers do): a still PNG.
    let mut zero = apng_three(None);
    let at = zero.windows(4).position(|w| w == b"acTL").unwrap();
    zero[at + 4..at + 8].copy_from_slice(&0u32.to_be_bytes());
    let crc = craft::crc32(&[&zero[at..at + 12]]);
    zero[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(probe(&zero, &Limits::default()).unwrap().frames, 1);
    let img = decode_ok(&zero);
    assert_eq!(img.frames.len(), 1);
    // Fewer frames than declared: the file is cut short of its animation.
    let short =
        craft::apng(20, 16, &[frame(solid(20, 16, [255, 0, 0, 255]), (0, 0), (1, 10), 0, 0)], 4, 0, None);
    assert!(
        matches!(decode(&short, &Limits::default(), &full()), Err(Error::CorruptImage(_))),
        "{:?}",
        decode(&short, &Limits::default(), &full()).err()
    );
    // A sub-frame outside the canvas is refused by the png crate, never composited.
    let outside = craft::apng(
        20,
        16,
        &[
            frame(solid(20, 16, [255, 0, 0, 255]), (0, 0), (1, 10), 0, 0),
            frame(solid(8, 8, [0, 0, 255, 255]), (16, 12), (1, 10), 0, 0),
        ],
        2,
        0,
        None,
    );
    assert!(matches!(decode(&outside, &Limits::default(), &full()), Err(Error::CorruptImage(_))));
    // 16-bit animated PNG: refused on purpose (image composites 8-bit frames only).
    let mut deep = apng_three(None);
    deep[24] = 16;
    let crc = craft::crc32(&[&deep[12..29]]);
    deep[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = decode(&deep, &Limits::default(), &full()).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedFormat(m) if m.contains("16-bit")), "{err:?}");
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let jpeg = common::jpeg_bytes(&common::photo(64, 64));
    for cut in [jpeg.len() - 2, jpeg.len() - 1, jpeg.len() * 3 / 4, jpeg.len() / 2] {
        match decode(&jpeg[..cut], &Limits::default(), &full()) {
            Err(Error::CorruptImage(_)) => {}
            other => panic!("cut at {cut}: {:?}", other.map(|i| i.frames.len())),
        }
    }
    // Trailing bytes after EOI are fine.
    let mut padded = jpeg.clone();
    padded.extend_from_slice(b"trailing garbage");
    assert_eq!(decode_ok(&padded).width(), 64);
}

#[test]
fn zlib_zero_stream_is_valid_deflate() {
    // The bomb generator used in hostile.rs, checked through the PNG decoder on a small size:
    // 100 rows of filter byte 0 + 100 zero samples.
    let idat = craft::zlib_zeros(100 * 101);
    let png = craft::png_file(&craft::ihdr(100, 100, 8, 0), &[], &idat);
    assert_eq!(decode_ok(&png).first(), &Pixels::Rgb(RgbImage::new(100, 100)));
}

// ------------------------------------------------------------------------------------------
// Mutated inputs never panic
// ------------------------------------------------------------------------------------------

fn valid_samples() -> Vec<Vec<u8>> {
    let photo = common::photo(40, 24);
    let rgba = common::photo_rgba(40, 24);
    let anim: Vec<image::Frame> = (0..3)
        .map(|i| image::Frame::new(RgbaImage::from_pixel(6, 5, Rgba([i * 80, 40, 200, 255]))))
        .collect();
    let mut progressive = Vec::new();
    {
        let mut comp = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        comp.set_size(40, 24);
        comp.set_progressive_mode();
        let mut started = comp.start_compress(&mut progressive).unwrap();
        started.write_scanlines(photo.as_raw()).unwrap();
        started.finish().unwrap();
    }
    vec![
        craft::jpeg_insert_after_soi(&common::jpeg_bytes(&photo), &craft::exif_app1(6)),
        progressive,
        common::png_bytes(&rgba),
        gif_bytes(anim, Repeat::Infinite),
        webp::Encoder::from_rgba(rgba.as_raw(), 40, 24).encode_lossless().to_vec(),
        webp::Encoder::from_rgb(photo.as_raw(), 40, 24).encode(70.0).to_vec(),
        fixture("cmyk_pillow.jpg"),
        apng_three(None),
        apng_three(Some(&solid(20, 16, [9, 9, 9, 255]))),
        fixture("heic/yuv420_8.heic"),
        fixture("heic/alpha_8.heic"),
        fixture("heic/grid_2x2.heic"),
    ]
}

#[test]
fn mutated_inputs_never_panic() {
    let limits = Limits::default();
    let mut rng = craft::Rng(0x9E37_79B9_7F4A_7C15);
    let mut outcomes = [0usize; 2];
    for sample in valid_samples() {
        assert!(decode(&sample, &limits, &full()).is_ok(), "sample itself decodes");
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for i in 0..40 {
            cases.push(sample[..sample.len() * i / 40].to_vec());
        }
        for _ in 0..150 {
            let mut m = sample.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                match rng.below(3) {
                    0 => m[at] = rng.next_u64() as u8,
                    1 => m[at] ^= 1 << rng.below(8),
                    _ => {
                        let n = 1 + rng.below(8);
                        let extra = rng.bytes(n);
                        m.splice(at..at, extra);
                    }
                }
            }
            cases.push(m);
        }
        for case in cases {
            let result = decode(&case, &limits, &full());
            if let Ok(img) = &result {
                assert!(img.width() > 0 && img.height() > 0 && !img.frames.is_empty());
            }
            outcomes[usize::from(result.is_ok())] += 1;
        }
    }
    // Both outcomes occur: the mutations really exercise the error paths.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn icc_grey_profile_is_applied_to_grey_png() {
    // A linear (gamma 1.0) grey profile: stored v means linear light v/255.
    let icc = moxcms::ColorProfile::new_gray_with_gamma(1.0).encode().unwrap();
    let src =
        ImageBuffer::<Luma<u8>, Vec<u8>>::from_fn(5, 1, |x, _| Luma([[0u8, 20, 64, 128, 255][x as usize]]));
    let mut png = Vec::new();
    let mut enc = PngEncoder::new(&mut png);
    enc.set_icc_profile(icc).unwrap();
    enc.write_image(src.as_raw(), 5, 1, image::ExtendedColorType::L8).unwrap();
    let Pixels::Rgb(got) = decode_ok(&png).first().clone() else { panic!("grey -> rgb") };
    for (x, _, p) in src.enumerate_pixels() {
        let want = (common::linear_to_srgb(f64::from(p[0]) / 255.0) * 255.0).round() as u8;
        let g = got.get_pixel(x, 0).0;
        assert!(g.iter().all(|&v| v.abs_diff(want) <= 2), "linear {}: got {g:?}, want {want}", p[0]);
    }
}

/// A progressive JPEG (our encoder's standard script) with `extra` more scans before EOI, each
/// only an SOS header: a DC refinement of all three components with no data. libjpeg warns (a
/// bogus progression, data cut by a marker) and goes on, and each scan is a pass over every
/// block of the image, however few bytes it takes.
fn progressive_with_empty_scans(side: u32, extra: usize) -> Vec<u8> {
    let image = Image::still(Pixels::Rgb(common::photo(side, side)), InputFormat::Jpeg);
    let out = image_ops::OutputParams { progressive: true, ..Default::default() };
    let jpeg = image_ops::encode::encode(&image, image_ops::OutputFormat::Jpeg, &out).unwrap().bytes;
    let eoi = jpeg.len() - 2;
    let mut bytes = jpeg[..eoi].to_vec();
    for _ in 0..extra {
        bytes.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 0, 0x10]);
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    bytes
}

#[test]
fn jpeg_with_too_many_scans_is_refused_before_decoding() {
    let scans = |b: &[u8]| b.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
    let standard = scans(&progressive_with_empty_scans(64, 0));
    // Up to the limit, the empty scans are tolerated (libjpeg only warns).
    let at_limit = progressive_with_empty_scans(64, MAX_JPEG_SCANS - standard);
    assert_eq!(scans(&at_limit), MAX_JPEG_SCANS);
    assert_eq!(decode_ok(&at_limit).width(), 64);
    // Before the limit, 2000 such scans made a 4 MP decode take 3.6 s instead of 0.1 s; at the
    // 50 MP limit a 25 MB input holds 1.8 million of them.
    for (side, extra) in [(64, MAX_JPEG_SCANS - standard + 1), (2048, 2000)] {
        let bomb = progressive_with_empty_scans(side, extra);
        assert!(probe(&bomb, &Limits::default()).is_ok(), "the header is fine");
        let started = std::time::Instant::now();
        match decode(&bomb, &Limits::default(), &full()) {
            Err(Error::CorruptImage(m)) => assert!(m.contains("scans"), "{m}"),
            other => panic!("{side} px, {extra} extra scans: {:?}", other.map(|i| i.width())),
        }
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }
}
