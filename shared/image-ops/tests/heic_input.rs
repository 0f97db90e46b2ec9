//! HEIC input: files written by libheif's heif-enc (x265), decoded by imgfn (heic-rs's HEVC
//! decoder inside imgfn's own HEIF container parser) and compared with libheif's own decode
//! (heif-convert: libde265), stored beside them as PNG. See tests/fixtures/README.md.
#![allow(clippy::unwrap_used)]

mod common;

use image::{imageops, RgbaImage};
use image_ops::decode::{decode, probe, DecodeOptions};
use image_ops::{Assets, Error, InputFormat, Limits, Output, OutputFormat, Pipeline, PipelineSpec};

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heic");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ours(name: &str) -> image_ops::Image {
    decode(&fixture(name), &Limits::default(), &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reference(name: &str) -> RgbaImage {
    image::load_from_memory(&fixture(&name.replace(".heic", ".png"))).unwrap().into_rgba8()
}

/// Peak signal-to-noise ratio of `a` against `b` in dB (colour channels where `b`'s alpha is at
/// least `min_alpha`), of all three channels and of BT.601 luma.
fn psnr(a: &RgbaImage, b: &RgbaImage, min_alpha: u8) -> (f64, f64) {
    assert_eq!(a.dimensions(), b.dimensions());
    let luma =
        |p: &image::Rgba<u8>| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]);
    let (mut rgb, mut y, mut n) = (0.0, 0.0, 0.0);
    for (p, q) in a.pixels().zip(b.pixels()).filter(|(_, q)| q[3] >= min_alpha) {
        rgb += (0..3).map(|c| (f64::from(p[c]) - f64::from(q[c])).powi(2)).sum::<f64>() / 3.0;
        y += (luma(p) - luma(q)).powi(2);
        n += 1.0;
    }
    let db = |mse: f64| 10.0 * (255.0f64 * 255.0 / (mse / n).max(1e-9)).log10();
    (db(rgb), db(y))
}

/// Decodes `name` and compares it with heif-convert's decode, whose HEVC samples are the same
/// (libde265's, bit for bit: checked when heic-rs was chosen) but whose chroma upsampling is
/// not: libheif 1.15 repeats each chroma sample (nearest neighbour), imgfn interpolates
/// (bilinear, as libavif and browsers), so at a hard colour edge a channel differs by up to
/// 80. Hence floors on PSNR, of RGB and of luma (which upsampling barely moves), rather than a
/// largest difference; alpha (a luma plane) within 1.
fn matches_libheif(name: &str, rgb_floor: f64, alpha: bool, min_alpha: u8) -> image_ops::Image {
    let img = ours(name);
    assert_eq!(img.format, InputFormat::Heic);
    assert_eq!(img.first().has_alpha(), alpha, "{name}");
    let (got, want) = (img.first().to_rgba(), reference(name));
    let (_, alpha_diff, mean) = common::max_diff(&got, &want, min_alpha);
    let (rgb, luma) = psnr(&got, &want, min_alpha);
    eprintln!("{name}: PSNR {rgb:.1} dB (luma {luma:.1} dB), mean colour diff {mean:.3}, max alpha diff {alpha_diff}");
    assert!(rgb >= rgb_floor && luma >= 40.0 && alpha_diff <= 1, "{name}: {rgb:.1} {luma:.1} {alpha_diff}");
    img
}

#[test]
fn eight_bit_420() {
    // heif-enc stores this 64x48 image as a 1x1 grid of one 64x64 tile: the grid crops it.
    let p = probe(&fixture("yuv420_8.heic"), &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.format), (64, 48, InputFormat::Heic));
    matches_libheif("yuv420_8.heic", 32.0, false, 0);
}

#[test]
fn ten_bit_420() {
    matches_libheif("yuv420_10.heic", 32.0, false, 0);
}

#[test]
fn monochrome() {
    let img = matches_libheif("mono_8.heic", 60.0, false, 0);
    assert!(img.first().to_rgba().pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn textured_photo() {
    // 256x192 of noise and edges: most of x265's intra tools (split CUs, transform sizes, SAO).
    matches_libheif("texture_8.heic", 40.0, false, 0);
}

#[test]
fn alpha_auxiliary_image() {
    // libheif names HEVC alpha `urn:mpeg:hevc:2015:auxid:1` (AVIF's URN is accepted too).
    matches_libheif("alpha_8.heic", 31.5, true, 16);
}

#[test]
fn a_clean_aperture_crops_before_the_turn() {
    let name = "clap_irot1.heic";
    let p = probe(&fixture(name), &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (64, 48), "probe reports the stored size");
    // `clap` 40x30 at (5, 7) of the stored 64x48, then irot 1: heif-convert crops, then turns.
    let img = matches_libheif(name, 32.0, false, 0);
    assert_eq!((img.width(), img.height()), (30, 40));
    let stored = reference("yuv420_8.heic");
    let cropped = imageops::crop_imm(&stored, 5, 7, 40, 30).to_image();
    assert_eq!(imageops::rotate270(&cropped), reference(name), "the reference is the crop turned");
    // Ours is the same crop of our own full decode, turned.
    let full = ours("yuv420_8.heic").first().to_rgba();
    let want = imageops::rotate270(&imageops::crop_imm(&full, 5, 7, 40, 30).to_image());
    assert_eq!(img.first().to_rgba(), want);
}

#[test]
fn irot_and_imir_are_applied() {
    let name = "irot1_imir1.heic";
    let p = probe(&fixture(name), &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (64, 48), "probe reports the stored size");
    // heif-convert applies the transforms, so its decode is upright: irot 1 (90 degrees
    // anti-clockwise), then imir 1 (left and right exchanged).
    let img = matches_libheif(name, 32.0, false, 0);
    assert_eq!((img.width(), img.height()), (48, 64));
    let stored = reference("yuv420_8.heic");
    let turned = imageops::flip_horizontal(&imageops::rotate270(&stored));
    assert_eq!(turned, reference(name), "the reference is the stored image turned");
}

#[test]
fn icc_profile_is_converted_to_srgb() {
    let name = "icc_p3.heic";
    let got = ours(name).first().to_rgba();
    // heif-convert keeps the stored (Display P3) values; imgfn converts them to sRGB. Compared
    // at the centre of each 16x16 patch, away from the edges where the chroma upsamplers differ.
    let stored = reference(name);
    let expected = common::icc_to_srgb(&stored, &fixture("../avif/p3_gamma22.icc"));
    let (mut worst, mut moved) = (0u8, 0u8);
    for i in 0..6u32 {
        let (x, y) = ((i % 3) * 16 + 8, (i / 3) * 16 + 8);
        let (g, e, s) = (got.get_pixel(x, y), expected.get_pixel(x, y), stored.get_pixel(x, y));
        eprintln!(
            "{name} patch {i}: stored {:?}, expected {:?}, imgfn {:?}",
            &s.0[..3],
            &e.0[..3],
            &g.0[..3]
        );
        for c in 0..3 {
            worst = worst.max(g[c].abs_diff(e[c]));
            moved = moved.max(g[c].abs_diff(s[c]));
        }
    }
    assert!(worst <= 2, "{worst} from the sRGB conversion");
    assert!(moved >= 10, "the profile was not applied ({moved})");
}

#[test]
fn nclx_matrix_and_range_are_used() {
    // The same bitstream as yuv420_8.heic (x265 was given BT.601 full range) with an nclx box
    // that says BT.709 limited: libheif follows the box, and so does imgfn.
    let img = matches_libheif("nclx_bt709_limited.heic", 30.5, false, 0);
    let (moved, _, _) = common::max_diff(&img.first().to_rgba(), &reference("yuv420_8.heic"), 0);
    assert!(moved >= 10, "the nclx box was not used ({moved})");
}

#[test]
fn grid_tiles_are_assembled() {
    let bytes = fixture("grid_2x2.heic");
    let p = probe(&bytes, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (128, 128));
    matches_libheif("grid_2x2.heic", 36.5, false, 0);
}

#[test]
fn an_iphone_style_portrait_comes_out_upright_in_srgb() {
    // A grid of tiles stored landscape with `irot` 3, a Display P3 profile and an Exif
    // orientation of 6 that repeats the turn: turned once (portrait), converted to sRGB.
    let name = "iphone_style.heic";
    let p = probe(&fixture(name), &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (128, 64), "stored landscape");
    let got = ours(name).first().to_rgba();
    assert_eq!(got.dimensions(), (64, 128), "shown portrait, turned once");
    // heif-convert turns it (and leaves Exif alone) but keeps the P3 values.
    let expected = common::icc_to_srgb(&reference(name), &fixture("../avif/p3_gamma22.icc"));
    let (rgb, luma) = psnr(&got, &expected, 0);
    let (unconverted, _) = psnr(&got, &reference(name), 0);
    eprintln!(
        "{name}: PSNR {rgb:.1} dB (luma {luma:.1} dB) to the sRGB conversion, {unconverted:.1} dB to P3"
    );
    assert!(rgb >= 32.0 && luma >= 40.0 && unconverted < rgb - 3.0, "{rgb:.1} {luma:.1} {unconverted:.1}");
}

#[test]
fn four_four_four_is_refused_by_name() {
    // heic-rs does not decode HEVC's range extensions as libde265 does; refused, not guessed.
    match probe(&fixture("yuv444_8.heic"), &Limits::default()) {
        Err(Error::UnsupportedFormat(m)) => assert!(m.contains("4:4:4"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_files_are_corrupt() {
    for name in ["yuv420_8.heic", "texture_8.heic"] {
        let bytes = fixture(name);
        for cut in [bytes.len() - 1, bytes.len() - 100, bytes.len() / 2, 40, 20] {
            let r = decode(&bytes[..cut], &Limits::default(), &DecodeOptions::default());
            assert!(matches!(r, Err(Error::CorruptImage(_))), "{name} cut at {cut}: {:?}", r.err());
        }
    }
}

#[test]
fn sizes_are_checked_before_decoding() {
    let bytes = fixture("texture_8.heic");
    let small = Limits { max_pixels: 256 * 192 - 1, ..Limits::default() };
    assert!(matches!(probe(&bytes, &small), Err(Error::TooManyPixels(_))));
    let huge = common::with_ispe(bytes.clone(), 60_000, 60_000);
    assert!(matches!(probe(&huge, &Limits::default()), Err(Error::TooManyPixels(_))));
    // The decoder allocates by the sequence parameter set, which must say what ispe says.
    let lying = common::with_ispe(bytes, 16, 12);
    match probe(&lying, &Limits::default()) {
        Err(Error::CorruptImage(m)) => assert!(m.contains("parameter set is 256x192"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn heic_through_the_pipeline_to_every_format() {
    let bytes = fixture("alpha_8.heic");
    for format in ["webp", "jpeg", "png", "gif", "avif"] {
        let spec: PipelineSpec = serde_json::from_value(serde_json::json!({
            "ops": [{"op": "thumbnail", "width": 32}],
            "output": {"format": format},
        }))
        .unwrap();
        let rendered = Pipeline::new(spec, Limits::default()).unwrap().run(&bytes, &Assets::new()).unwrap();
        assert_eq!(rendered.input.format, InputFormat::Heic);
        let Output::Image(out) = rendered.output else { panic!("not an image") };
        assert_eq!(out.format, OutputFormat::from_extension(format).unwrap());
        if format == "avif" {
            // The image crate reads no AVIF; tests/avif.rs reads imgfn's AVIF with avifdec.
            assert_eq!(out.bytes.get(4..12), Some(&b"ftypavif"[..]));
            continue;
        }
        let img = common::decode_independent(&out.bytes);
        assert_eq!(img.dimensions(), (32, 24), "{format}");
        // The left edge is opaque in the source; its colour survives the trip.
        let expected = reference("alpha_8.heic");
        let (got, want) = (img.get_pixel(0, 12), expected.get_pixel(0, 24));
        assert!(got[0].abs_diff(want[0]) < 24 && got[1].abs_diff(want[1]) < 24, "{format}: {got:?} {want:?}");
    }
    // Without an output format, HEIC becomes JPEG (what every browser shows).
    let spec: PipelineSpec =
        serde_json::from_value(serde_json::json!({"ops": [{"op": "thumbnail", "width": 32}]})).unwrap();
    let rendered = Pipeline::new(spec, Limits::default())
        .unwrap()
        .run(&fixture("yuv420_8.heic"), &Assets::new())
        .unwrap();
    let Output::Image(out) = rendered.output else { panic!("not an image") };
    assert_eq!(out.format, OutputFormat::Jpeg);
}
