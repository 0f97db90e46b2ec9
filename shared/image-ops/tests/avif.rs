//! AVIF output (rav1e, avif-serialize): read back by an independent decoder (libavif's `avifdec`, with
//! dav1d), the speed and size policy, and the container written.
//!
//! The tests that decode need `avifdec` (`apt-get install libavif-bin`; or set
//! `IMGFN_AVIFDEC`). They are `#[ignore]`d: `cargo test -- --ignored` runs them, and then a
//! missing `avifdec` fails them.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use image::{Rgba, RgbaImage};
use image_ops::encode::{
    self, avif_speed, encode, encode_limited, ChromaSubsampling, AVIF_BUDGET_MS, AVIF_NS_PER_PIXEL,
};
use image_ops::{
    Image, InputFormat, Limits, Output, OutputFormat, OutputParams, Pipeline, PipelineSpec, Pixels,
};

const HOW: &str = "apt-get install libavif-bin";

fn params(quality: u8) -> OutputParams {
    OutputParams { quality: quality.into(), ..OutputParams::default() }
}

/// Decodes `avif` with `avifdec` into RGBA (8-bit PNG in between), and returns what
/// `avifdec --info` says about it too.
fn avifdec(avif: &[u8], name: &str) -> (RgbaImage, String) {
    let tool = common::outside_tool("IMGFN_AVIFDEC", "avifdec", HOW);
    let dir = common::scratch("avif");
    let (input, output) = (dir.join(format!("{name}.avif")), dir.join(format!("{name}.png")));
    std::fs::write(&input, avif).unwrap();
    let run = |args: &[&Path]| {
        let out = Command::new(&tool).args(args).output().unwrap();
        assert!(out.status.success(), "avifdec failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let info = run(&[Path::new("--info"), &input]);
    run(&[Path::new("--depth"), Path::new("8"), &input, &output]);
    let decoded = image::open(&output).unwrap().into_rgba8();
    (decoded, info)
}

/// The `ispe` (image spatial extents) box: the width and height the container declares.
fn ispe(avif: &[u8]) -> (u32, u32) {
    let at = avif.windows(4).position(|w| w == b"ispe").expect("an ispe box");
    let be = |i: usize| u32::from_be_bytes(avif[i..i + 4].try_into().unwrap());
    (be(at + 8), be(at + 12))
}

/// What every AVIF imgfn writes looks like, without decoding it: an `ftyp` box with the
/// `avif` brand, the declared size, and no metadata items (Exif, XMP) or ICC profile.
fn assert_plain_avif(avif: &[u8], size: (u32, u32)) {
    assert_eq!(&avif[4..12], b"ftypavif", "an AVIF file");
    assert_eq!(ispe(avif), size);
    for item in [&b"Exif"[..], b"mime", b"colr\0\0\0\0prof", b"rICC"] {
        assert!(
            !avif.windows(item.len()).any(|w| w == item),
            "no {:?} in the file",
            String::from_utf8_lossy(item)
        );
    }
}

/// A photo with a transparent hole and a soft alpha ramp on the right.
fn photo_with_alpha(w: u32, h: u32) -> RgbaImage {
    let photo = common::photo(w, h);
    RgbaImage::from_fn(w, h, |x, y| {
        let p = photo.get_pixel(x, y);
        let (dx, dy) = (x as f32 - w as f32 * 0.3, y as f32 - h as f32 * 0.5);
        let a = if dx * dx + dy * dy < (h as f32 * 0.2).powi(2) {
            0
        } else if x > w * 2 / 3 {
            (255 * (w - 1 - x) / (w - w * 2 / 3)).min(255) as u8
        } else {
            255
        };
        Rgba([p[0], p[1], p[2], a])
    })
}

#[test]
fn avif_files_are_plain_and_sized() {
    let rgb = Image::still(Pixels::Rgb(common::photo(96, 64)), InputFormat::Jpeg);
    let e = encode(&rgb, OutputFormat::Avif, &params(80)).unwrap();
    assert_eq!((e.format, e.width, e.height, e.frames), (OutputFormat::Avif, 96, 64, 1));
    assert_plain_avif(&e.bytes, (96, 64));
    // With alpha: a second image (the alpha plane) is referenced by an `auxC` property.
    let rgba = Image::still(Pixels::Rgba(photo_with_alpha(96, 64)), InputFormat::Png);
    let e = encode(&rgba, OutputFormat::Avif, &params(80)).unwrap();
    assert_plain_avif(&e.bytes, (96, 64));
    assert!(e.bytes.windows(4).any(|w| w == b"auxC"), "an alpha plane");
    // All-opaque RGBA needs no alpha plane.
    let opaque = Image::still(Pixels::Rgba(common::photo_rgba(96, 64)), InputFormat::Png);
    let e = encode(&opaque, OutputFormat::Avif, &params(80)).unwrap();
    assert!(!e.bytes.windows(4).any(|w| w == b"auxC"), "no alpha plane for opaque pixels");
    // Quality changes the size.
    let small = encode(&rgb, OutputFormat::Avif, &params(30)).unwrap().bytes.len();
    let large = encode(&rgb, OutputFormat::Avif, &params(95)).unwrap().bytes.len();
    assert!(small < large, "q30 {small} B, q95 {large} B");
}

#[test]
fn the_speed_follows_effort_within_the_budget() {
    let l = Limits::default();
    // The default effort (4) is speed 9 for a 1024 px rendition; effort 0 is speed 10.
    assert_eq!(avif_speed(4, 8, (1024, 684), 1024 * 684, &l).unwrap(), 9);
    assert_eq!(avif_speed(0, 8, (1024, 684), 1024 * 684, &l).unwrap(), 10);
    assert_eq!(avif_speed(6, 8, (256, 256), 256 * 256, &l).unwrap(), 4);
    // Larger images step to faster speeds to stay inside the budget...
    assert_eq!(avif_speed(6, 8, (1024, 684), 1024 * 684, &l).unwrap(), 4, "speed 4 takes ~4.9 s");
    assert_eq!(avif_speed(6, 8, (1200, 900), 1200 * 900, &l).unwrap(), 6, "speed 4 would take ~7.6 s");
    assert_eq!(
        avif_speed(4, 8, (4240, 2832), 4240 * 2832, &l).unwrap(),
        10,
        "12 MP: speed 9 would take ~6.6 s"
    );
    // 10 bits: the same effort, slower per pixel, so faster speeds sooner.
    assert_eq!(avif_speed(4, 10, (1024, 684), 1024 * 684, &l).unwrap(), 9);
    assert_eq!(avif_speed(6, 10, (1024, 684), 1024 * 684, &l).unwrap(), 6, "speed 4 would take ~14.7 s");
    assert_eq!(avif_speed(4, 10, (2400, 1800), 2400 * 1800, &l).unwrap(), 10, "speed 9 would take ~7.8 s");
    // ... and tiles share it: 16 tiles of a 12 MP image are as costly as the image.
    assert_eq!(avif_speed(4, 8, (1060, 708), 4240 * 2832, &l).unwrap(), 10);
    // Every choice fits the budget.
    for effort in 0..=6u8 {
        for side in [64u32, 512, 1024, 2048, 3000, 3600] {
            let px = u64::from(side) * u64::from(side);
            if let Ok(speed) = avif_speed(effort, 8, (side, side), px, &l) {
                assert!(speed >= encode::AVIF_SPEEDS[usize::from(effort)]);
                assert!(px * AVIF_NS_PER_PIXEL[usize::from(speed) - 1] <= AVIF_BUDGET_MS * 1_000_000);
            }
            if let Ok(speed) = avif_speed(effort, 10, (side, side), px, &l) {
                let ns = AVIF_NS_PER_PIXEL[usize::from(speed) - 1] * encode::AVIF_TEN_BIT_PERCENT / 100;
                assert!(px * ns <= AVIF_BUDGET_MS * 1_000_000);
            }
        }
    }
}

#[test]
fn too_large_for_avif_is_refused_naming_the_limit() {
    // Over the time budget at speed 10 (6 s at 450 ns/px: 13.3 MP).
    let err = avif_speed(4, 8, (4000, 3500), 14_000_000, &Limits::default()).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("output.format")));
    let msg = err.to_string();
    assert!(
        msg.contains("at most 13.3 MP (the encode must take") && msg.contains("4000x3500 (14.0 MP)"),
        "{msg}"
    );
    // Over the memory it needs (a third of max_pixels: 16.7 MP by default).
    let err = avif_speed(4, 8, (6000, 4000), 24_000_000, &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("at most 16.7 MP (the encoder needs about 30 bytes per pixel at 8 bits)"),
        "{err}"
    );
    // Over what the memory allows: a third of max_pixels (here 3 MP: 1 MP).
    let small = Limits { max_pixels: 3_000_000, ..Limits::default() };
    let err = avif_speed(0, 8, (1200, 1000), 1_200_000, &small).unwrap_err();
    assert!(
        err.to_string().contains("at most 1.0 MP (the encoder needs about 30 bytes per pixel at 8 bits)"),
        "{err}"
    );
    // 10 bits cost AVIF_TEN_BIT_PERCENT of the time and more memory: a 12 MP photo is refused
    // (at most 4.4 MP), a rendition is not.
    let err = avif_speed(4, 10, (4240, 2832), 4240 * 2832, &Limits::default()).unwrap_err();
    assert!(
        err.to_string().contains("at most 4.4 MP (the encode must take at most 6 s of one core)"),
        "{err}"
    );
    let err = avif_speed(0, 10, (4000, 3000), 12_000_000, &Limits::default()).unwrap_err();
    assert!(err.code() == "invalid_params", "{err}");
    let err = avif_speed(0, 10, (1200, 1000), 1_200_000, &small).unwrap_err();
    assert!(err.to_string().contains("(the encoder needs about 40 bytes per pixel at 10 bits)"), "{err}");
    // Through encode: refused before any encoding starts (this would take minutes).
    let huge = Image::still(Pixels::Rgb(image::RgbImage::new(5000, 3000)), InputFormat::Png);
    let err = encode_limited(&huge, OutputFormat::Avif, &params(80), &Limits::default()).unwrap_err();
    assert_eq!(err.field(), Some("output.format"), "{err}");
}

fn run(json: &str, input: &[u8]) -> image_ops::Encoded {
    let spec: PipelineSpec = serde_json::from_str(json).unwrap();
    match Pipeline::new(spec, Limits::default()).unwrap().run(input, &Default::default()).unwrap().output {
        Output::Image(e) => e,
        Output::Tiles { .. } => panic!("an image"),
    }
}

/// A 3-frame animated GIF: red, green, blue 40x30 frames.
fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
        for c in [[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255]] {
            let frame = RgbaImage::from_pixel(40, 30, Rgba(c));
            enc.encode_frame(image::Frame::from_parts(
                frame,
                0,
                0,
                image::Delay::from_numer_denom_ms(100, 1),
            ))
            .unwrap();
        }
    }
    out
}

#[test]
fn depth_is_8_or_10() {
    for depth in [0u8, 1, 9, 12, 16] {
        let spec: PipelineSpec =
            serde_json::from_str(&format!(r#"{{"output": {{"format": "avif", "depth": {depth}}}}}"#))
                .unwrap();
        let err = Pipeline::new(spec, Limits::default()).unwrap_err();
        assert_eq!((err.code(), err.field()), ("invalid_params", Some("output.depth")), "{err}");
    }
    // 10 bits: the AV1 sequence header says so (high_bitdepth), and the `pixi` box 3 x 10.
    let rgb = Image::still(Pixels::Rgb(common::photo(64, 48)), InputFormat::Jpeg);
    let ten = encode(&rgb, OutputFormat::Avif, &OutputParams { depth: 10, ..params(80) }).unwrap();
    let eight = encode(&rgb, OutputFormat::Avif, &params(80)).unwrap();
    let pixi = |b: &[u8]| {
        let at = b.windows(4).position(|w| w == b"pixi").expect("a pixi box");
        b[at + 8..at + 12].to_vec()
    };
    assert_eq!(pixi(&ten.bytes), [3, 10, 10, 10]);
    assert_eq!(pixi(&eight.bytes), [3, 8, 8, 8]);
}

#[test]
fn an_animation_to_avif_keeps_the_first_frame() {
    let e = run(r#"{"output": {"format": "avif"}}"#, &animated_gif());
    assert_eq!((e.format, e.width, e.height, e.frames), (OutputFormat::Avif, 40, 30, 1));
    assert_plain_avif(&e.bytes, (40, 30));
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn avifdec_reads_back_the_pixels() {
    let src = common::photo(320, 200);
    let image = Image::still(Pixels::Rgb(src.clone()), InputFormat::Jpeg);
    let expected = image::DynamicImage::ImageRgb8(src).into_rgba8();
    // Quality against fidelity: mean absolute difference per channel (0-255).
    // Either chroma on request.
    for (chroma, format, tolerances) in [
        (ChromaSubsampling::Cs420, "YUV420", [(50, 6.0), (80, 3.5), (95, 1.5)]),
        (ChromaSubsampling::Cs444, "YUV444", [(50, 6.0), (80, 3.5), (95, 1.5)]),
    ] {
        let mut last = f64::INFINITY;
        for (quality, tolerance) in tolerances {
            let out = OutputParams { chroma_subsampling: chroma, ..params(quality) };
            let e = encode(&image, OutputFormat::Avif, &out).unwrap();
            let (decoded, info) = avifdec(&e.bytes, &format!("photo_{format}_q{quality}"));
            assert_eq!(decoded.dimensions(), (320, 200));
            assert!(info.contains("Bit Depth      : 8") && info.contains(format), "{info}");
            for absent in ["ICC Profile    : Absent", "XMP Metadata   : Absent", "Exif Metadata  : Absent"] {
                assert!(info.contains(absent), "{absent}: {info}");
            }
            let diff = common::mean_abs_diff(&decoded, &expected);
            println!("{format} q{quality}: {} bytes, mean abs diff {diff:.2}", e.bytes.len());
            assert!(diff <= tolerance, "{format} q{quality}: mean abs diff {diff:.2} over {tolerance}");
            assert!(diff < last, "higher quality is closer");
            last = diff;
            // Opaque: no alpha plane, so every decoded pixel is opaque.
            assert!(decoded.pixels().all(|p| p[3] == 255));
        }
    }
    // By default, 4:2:0 below quality 90 and 4:4:4 from there.
    for (quality, format) in [(80, "YUV420"), (89, "YUV420"), (90, "YUV444"), (95, "YUV444")] {
        let e = encode(&image, OutputFormat::Avif, &params(quality)).unwrap();
        let (decoded, info) = avifdec(&e.bytes, &format!("photo_auto_q{quality}"));
        assert!(info.contains(format), "q{quality}: {info}");
        assert!(common::mean_abs_diff(&decoded, &expected) <= 3.5);
    }
    // Every effort gives a decodable image of the same size.
    for effort in 0..=6u8 {
        let out = OutputParams { effort, ..params(80) };
        let e = encode(
            &Image::still(Pixels::Rgb(common::photo(64, 48)), InputFormat::Jpeg),
            OutputFormat::Avif,
            &out,
        )
        .unwrap();
        assert_eq!(avifdec(&e.bytes, &format!("effort{effort}")).0.dimensions(), (64, 48));
    }
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn four_four_four_keeps_colour_detail_that_four_two_zero_halves() {
    // One-pixel stripes of red and blue (a graphic's coloured edges, small coloured text): at
    // 4:2:0 each pair shares one chroma sample, so both come out a purple mix; 4:4:4 keeps
    // them. On the photo above the two are within 0.1 of each other.
    let stripes =
        RgbaImage::from_fn(
            128,
            64,
            |x, _| if x % 2 == 0 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 255, 255]) },
        );
    let image = Image::still(
        Pixels::Rgb(image::DynamicImage::ImageRgba8(stripes.clone()).into_rgb8()),
        InputFormat::Png,
    );
    let diff = |chroma: ChromaSubsampling, name: &str| {
        let out = OutputParams { chroma_subsampling: chroma, ..params(90) };
        let e = encode(&image, OutputFormat::Avif, &out).unwrap();
        let (decoded, info) = avifdec(&e.bytes, name);
        assert!(info.contains(name), "{info}");
        let diff = common::mean_abs_diff(&decoded, &stripes);
        println!("{name}: {} bytes, mean abs diff {diff:.2}", e.bytes.len());
        diff
    };
    let (half, full) = (diff(ChromaSubsampling::Cs420, "YUV420"), diff(ChromaSubsampling::Cs444, "YUV444"));
    assert!(full <= 2.0, "4:4:4 stripes: mean abs diff {full:.2}");
    assert!(half >= 30.0, "4:2:0 stripes: mean abs diff {half:.2} (4:4:4: {full:.2})");
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn avifdec_reads_back_ten_bits() {
    // A smooth gradient (where 10 bits matter) and a photo, with and without alpha.
    let gradient = RgbaImage::from_fn(256, 64, |x, y| Rgba([x as u8, (x / 2 + y) as u8, 255 - x as u8, 255]));
    let ten = |pixels: Pixels| {
        let image = Image::still(pixels, InputFormat::Png);
        encode(&image, OutputFormat::Avif, &OutputParams { depth: 10, ..params(90) }).unwrap()
    };
    let opaque = Pixels::Rgb(image::DynamicImage::ImageRgba8(gradient.clone()).into_rgb8());
    let (decoded, info) = avifdec(&ten(opaque).bytes, "ten_gradient");
    // Quality 90: full chroma by default.
    assert!(info.contains("Bit Depth      : 10") && info.contains("YUV444"), "{info}");
    let diff = common::mean_abs_diff(&decoded, &gradient);
    println!("10-bit gradient q90: mean abs diff {diff:.2}");
    assert!(diff <= 0.8, "10-bit gradient: mean abs diff {diff:.2}");
    // Alpha at 10 bits: the hole and the ramp survive.
    let src = photo_with_alpha(240, 160);
    let (decoded, info) = avifdec(&ten(Pixels::Rgba(src.clone())).bytes, "ten_alpha");
    assert!(
        info.contains("Bit Depth      : 10") && info.contains("Alpha          : Not premultiplied"),
        "{info}"
    );
    assert!(decoded.get_pixel(72, 80)[3] <= 8, "{:?}", decoded.get_pixel(72, 80));
    assert!(decoded.get_pixel(20, 10)[3] >= 247, "{:?}", decoded.get_pixel(20, 10));
    let alpha_diff: f64 =
        decoded.pixels().zip(src.pixels()).map(|(a, b)| f64::from(a[3].abs_diff(b[3]))).sum::<f64>()
            / f64::from(240 * 160);
    println!("10-bit alpha mean abs diff {alpha_diff:.2}");
    assert!(alpha_diff <= 1.5, "10-bit alpha: mean abs diff {alpha_diff:.2}");
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn avifdec_reads_back_the_alpha() {
    let src = photo_with_alpha(240, 160);
    let e =
        encode(&Image::still(Pixels::Rgba(src.clone()), InputFormat::Png), OutputFormat::Avif, &params(80))
            .unwrap();
    let (decoded, info) = avifdec(&e.bytes, "alpha");
    assert_eq!(decoded.dimensions(), (240, 160));
    assert!(info.contains("Alpha          : Not premultiplied"), "{info}");
    let alpha = |img: &RgbaImage| {
        RgbaImage::from_fn(240, 160, |x, y| {
            let a = img.get_pixel(x, y)[3];
            Rgba([a, a, a, 255])
        })
    };
    let alpha_diff = common::mean_abs_diff(&alpha(&decoded), &alpha(&src));
    println!("alpha mean abs diff {alpha_diff:.2}");
    assert!(alpha_diff <= 1.5, "alpha mean abs diff {alpha_diff:.2}");
    // The hole stays transparent and the opaque part opaque (within coding error).
    assert!(decoded.get_pixel(72, 80)[3] <= 8, "{:?}", decoded.get_pixel(72, 80));
    assert!(decoded.get_pixel(20, 10)[3] >= 247, "{:?}", decoded.get_pixel(20, 10));
    // Colour where the pixels are opaque matches the source.
    let opaque = |img: &RgbaImage| {
        RgbaImage::from_fn(240, 160, |x, y| {
            let (p, s) = (img.get_pixel(x, y), src.get_pixel(x, y));
            if s[3] == 255 {
                Rgba([p[0], p[1], p[2], 255])
            } else {
                Rgba([0, 0, 0, 255])
            }
        })
    };
    let colour_diff = common::mean_abs_diff(&opaque(&decoded), &opaque(&src));
    println!("colour (opaque pixels) mean abs diff {colour_diff:.2}");
    assert!(colour_diff <= 3.5, "colour mean abs diff {colour_diff:.2}");
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn avifdec_reads_a_smart_thumbnail_and_the_first_frame_of_an_animation() {
    // The pipeline's output as the functions store it: a JPEG, a cover thumbnail, AVIF.
    let jpeg = common::jpeg_bytes(&common::photo(800, 500));
    let e = run(
        r#"{"ops": [{"op": "thumbnail", "width": 200, "height": 200, "fit": "cover", "gravity": "attention"}],
            "output": {"format": "avif"}}"#,
        &jpeg,
    );
    let (decoded, _) = avifdec(&e.bytes, "thumbnail");
    assert_eq!(decoded.dimensions(), (200, 200));
    // An animation keeps its first frame (red).
    let e = run(r#"{"output": {"format": "avif", "quality": 90}}"#, &animated_gif());
    let (decoded, _) = avifdec(&e.bytes, "first_frame");
    let red = RgbaImage::from_pixel(40, 30, Rgba([255, 0, 0, 255]));
    let diff = common::mean_abs_diff(&decoded, &red);
    assert!(diff <= 2.0, "first frame: mean abs diff {diff:.2}");
}
