//! What an output keeps of its source's metadata (`keep_icc`, `keep_copyright`; both off by
//! default): read back by decoders other than imgfn's (the `image` crate's for JPEG, PNG and
//! WebP; libavif's `avifdec` for AVIF; ExifTool for the tags in every format).
//!
//! The tests that need `avifdec` (`apt-get install libavif-bin`, or `IMGFN_AVIFDEC`) or
//! `exiftool` (`apt-get install libimage-exiftool-perl`, or `IMGFN_EXIFTOOL`) are `#[ignore]`d:
//! `cargo test -- --ignored` runs them (CI does), and then a missing tool fails them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;
use std::process::Command;

use image::codecs::png::PngEncoder;
use image::{ImageDecoder, ImageEncoder, RgbImage, RgbaImage};
use image_ops::{Assets, Output, OutputFormat, Pipeline, PipelineSpec};
use serde_json::json;

/// moxcms's Display P3, made once: its header holds the time it was made.
fn p3_profile() -> Vec<u8> {
    static PROFILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PROFILE.get_or_init(|| moxcms::ColorProfile::new_display_p3().encode().unwrap()).clone()
}

/// A photo stored in Display P3 (its samples as they are, tagged with the profile).
fn p3_png(width: u32, height: u32) -> (Vec<u8>, RgbImage) {
    let pixels = common::photo(width, height);
    let mut png = Vec::new();
    let mut enc = PngEncoder::new(&mut png);
    enc.set_icc_profile(p3_profile()).unwrap();
    enc.write_image(pixels.as_raw(), width, height, image::ExtendedColorType::Rgb8).unwrap();
    (png, pixels)
}

/// A little-endian Exif block as a camera writes it: Make, Orientation, Artist, Copyright (two
/// notices, NUL-separated) and a GPS IFD with a latitude reference.
fn camera_exif(orientation: u16) -> Vec<u8> {
    let strings: [(u16, &[u8]); 3] =
        [(0x010F, b"Canon\0"), (0x013B, b"Jo Bloggs\0"), (0x8298, b"(c) 2026 ACME Photo\0Editor X\0")];
    let entries = 5usize;
    let ifd_end = 8 + 2 + 12 * entries + 4;
    let mut values = Vec::new();
    let mut ifd = Vec::new();
    let mut entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        ifd.extend_from_slice(&tag.to_le_bytes());
        ifd.extend_from_slice(&kind.to_le_bytes());
        ifd.extend_from_slice(&count.to_le_bytes());
        ifd.extend_from_slice(&value);
    };
    let mut at = |v: &[u8]| {
        let offset = (ifd_end + values.len()) as u32;
        values.extend_from_slice(v);
        offset.to_le_bytes()
    };
    let make = at(strings[0].1);
    entry(0x010F, 2, strings[0].1.len() as u32, make);
    let o = orientation.to_le_bytes();
    entry(0x0112, 3, 1, [o[0], o[1], 0, 0]);
    let artist = at(strings[1].1);
    entry(0x013B, 2, strings[1].1.len() as u32, artist);
    let copyright = at(strings[2].1);
    entry(0x8298, 2, strings[2].1.len() as u32, copyright);
    // The GPS IFD: one entry, GPSLatitudeRef "N".
    let gps_at = (ifd_end + values.len()) as u32;
    values.extend_from_slice(&1u16.to_le_bytes());
    values.extend_from_slice(&1u16.to_le_bytes());
    values.extend_from_slice(&2u16.to_le_bytes());
    values.extend_from_slice(&2u32.to_le_bytes());
    values.extend_from_slice(b"N\0\0\0");
    values.extend_from_slice(&0u32.to_le_bytes());
    entry(0x8825, 4, 1, gps_at.to_le_bytes());
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&(entries as u16).to_le_bytes());
    tiff.extend_from_slice(&ifd);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&values);
    tiff
}

/// A JPEG (from the `image` crate's encoder) with `exif` in APP1 right after SOI.
fn jpeg_with_exif(pixels: &RgbImage, exif: &[u8]) -> Vec<u8> {
    let plain = common::jpeg_bytes(pixels);
    let len = u16::try_from(2 + 6 + exif.len()).unwrap();
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(exif);
    out.extend_from_slice(&plain[2..]);
    out
}

fn run(input: &[u8], spec: serde_json::Value) -> Vec<u8> {
    let spec: PipelineSpec = serde_json::from_value(spec).unwrap();
    let pipeline = Pipeline::new(spec, image_ops::Limits::default()).unwrap();
    match pipeline.run(input, &Assets::new()).unwrap().output {
        Output::Image(encoded) => encoded.bytes,
        Output::Tiles { .. } => panic!("one image"),
    }
}

/// The profile and the Exif block the `image` crate reads from a JPEG, PNG or WebP.
fn read_back(bytes: &[u8], format: OutputFormat) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    fn both(mut d: impl ImageDecoder) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        (d.icc_profile().unwrap(), d.exif_metadata().unwrap())
    }
    match format {
        OutputFormat::Jpeg => both(image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).unwrap()),
        OutputFormat::Png => both(image::codecs::png::PngDecoder::new(Cursor::new(bytes)).unwrap()),
        OutputFormat::Webp => both(image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).unwrap()),
        other => panic!("{other:?} is read back elsewhere"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn rgb_of(bytes: &[u8]) -> RgbImage {
    image::load_from_memory(bytes).unwrap().into_rgb8()
}

fn mean_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
    sum as f64 / a.as_raw().len() as f64
}

#[test]
fn keep_icc_leaves_the_pixels_in_their_profile_and_writes_it() {
    let (png, stored) = p3_png(96, 64);
    let converted = rgb_of(&run(&png, json!({"output": {"format": "png"}})));
    // The conversion is visible on this photo: P3 samples are not sRGB ones.
    assert!(mean_diff(&converted, &stored) > 3.0, "{}", mean_diff(&converted, &stored));
    for (format, extra) in
        [("png", json!({})), ("webp", json!({"lossless": true})), ("jpeg", json!({"quality": 95}))]
    {
        let mut output = json!({"format": format, "keep_icc": true});
        output.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let kept = run(&png, json!({"output": output}));
        let format = OutputFormat::from_extension(format).unwrap();
        let (icc, exif) = read_back(&kept, format);
        assert_eq!(icc.as_deref(), Some(&p3_profile()[..]), "{format:?} carries the profile");
        assert_eq!(exif, None, "{format:?}: no Exif was asked for");
        let pixels = rgb_of(&kept);
        if format == OutputFormat::Jpeg {
            // Lossy: nearer the stored samples than the converted ones, by far.
            let (to_stored, to_converted) = (mean_diff(&pixels, &stored), mean_diff(&pixels, &converted));
            assert!(
                to_stored * 2.0 < to_converted,
                "JPEG: {to_stored} from stored, {to_converted} from sRGB"
            );
        } else {
            assert_eq!(pixels, stored, "{format:?}: the samples as stored");
        }
        // Without the param: sRGB, no profile.
        let plain = run(&png, json!({"output": {"format": format.name()}}));
        assert_eq!(read_back(&plain, format), (None, None), "{format:?} by default");
    }
    // GIF cannot carry it: the same file as without the param.
    let gif = |keep: bool| run(&png, json!({"output": {"format": "gif", "keep_icc": keep}}));
    assert_eq!(gif(true), gif(false));
}

#[test]
fn keep_icc_goes_through_operations_and_slices() {
    let (png, _) = p3_png(96, 64);
    let spec = json!({
        "ops": [{"op": "thumbnail", "width": 48}, {"op": "round_corners", "radius": 8},
                {"op": "slice", "rows": 1, "cols": 2}],
        "output": {"format": "webp", "keep_icc": true}});
    let pipeline =
        Pipeline::new(serde_json::from_value(spec).unwrap(), image_ops::Limits::default()).unwrap();
    let Output::Tiles { tiles, .. } = pipeline.run(&png, &Assets::new()).unwrap().output else {
        panic!("tiles")
    };
    assert_eq!(tiles.len(), 2);
    for tile in tiles {
        assert_eq!(read_back(&tile.bytes, OutputFormat::Webp).0.as_deref(), Some(&p3_profile()[..]));
    }
}

#[test]
fn keep_icc_has_nothing_to_keep_from_srgb_or_untagged_sources() {
    let pixels = common::photo(32, 24);
    let mut srgb = Vec::new();
    let mut enc = PngEncoder::new(&mut srgb);
    enc.set_icc_profile(moxcms::ColorProfile::new_srgb().encode().unwrap()).unwrap();
    enc.write_image(pixels.as_raw(), 32, 24, image::ExtendedColorType::Rgb8).unwrap();
    let untagged = common::jpeg_bytes(&pixels);
    for source in [&srgb, &untagged] {
        let out = run(source, json!({"output": {"format": "jpeg", "keep_icc": true}}));
        assert_eq!(read_back(&out, OutputFormat::Jpeg).0, None);
    }
}

#[test]
fn keep_copyright_writes_artist_and_copyright_and_nothing_else() {
    // Orientation 6: the pixels come out upright, and no orientation is written with them.
    let source = jpeg_with_exif(&common::photo(64, 48), &camera_exif(6));
    for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Avif] {
        let spec = |keep: bool| {
            json!({"ops": [{"op": "thumbnail", "width": 32}],
                   "output": {"format": format.name(), "keep_copyright": keep}})
        };
        let out = run(&source, spec(true));
        let exif = match format {
            OutputFormat::Avif => out.clone(),
            _ => read_back(&out, format).1.unwrap_or_else(|| panic!("{format:?} has Exif")),
        };
        for kept in [&b"Jo Bloggs"[..], b"(c) 2026 ACME Photo\0Editor X"] {
            assert!(contains(&exif, kept), "{format:?} keeps {}", String::from_utf8_lossy(kept));
        }
        assert!(!contains(&out, b"Canon"), "{format:?}: no Make");
        if format != OutputFormat::Avif {
            // Big-endian tags: no GPS IFD pointer, no orientation.
            assert!(!contains(&exif, &[0x88, 0x25]) && !contains(&exif, &[0x01, 0x12]), "{format:?}");
            let upright = image::DynamicImage::from_decoder(decoder(&out, format)).unwrap();
            assert_eq!((upright.width(), upright.height()), (32, 43), "{format:?}: a portrait");
        }
        let plain = run(&source, spec(false));
        assert!(!contains(&plain, b"Jo Bloggs"), "{format:?} by default");
    }
}

fn decoder(bytes: &[u8], format: OutputFormat) -> Box<dyn ImageDecoder + '_> {
    match format {
        OutputFormat::Jpeg => Box::new(image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).unwrap()),
        OutputFormat::Png => Box::new(image::codecs::png::PngDecoder::new(Cursor::new(bytes)).unwrap()),
        _ => Box::new(image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).unwrap()),
    }
}

#[test]
fn keep_copyright_on_the_overlay_path_that_does_not_decode() {
    // Upright and untagged: a watermark on it is painted on the JPEG's blocks (transcode).
    let source = jpeg_with_exif(&common::photo(64, 48), &camera_exif(1));
    let spec = |keep: bool| {
        json!({"ops": [{"op": "watermark", "text": "x", "size": 12}],
               "output": {"format": "jpeg", "quality": "source", "keep_copyright": keep}})
    };
    let exif = read_back(&run(&source, spec(true)), OutputFormat::Jpeg).1.expect("Exif");
    assert!(contains(&exif, b"Jo Bloggs") && !contains(&exif, b"Canon"));
    assert_eq!(read_back(&run(&source, spec(false)), OutputFormat::Jpeg).1, None);
}

/// The `colr` `prof` payload of a HEIF file (the first).
fn heif_profile(heif: &[u8]) -> Vec<u8> {
    let at = heif.windows(8).position(|w| w == b"colrprof").expect("a colr prof box");
    let size = u32::from_be_bytes(heif[at - 4..at].try_into().unwrap()) as usize;
    heif[at + 8..at - 4 + size].to_vec()
}

#[test]
fn an_iphone_style_heic_keeps_its_display_p3_profile() {
    let heic =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/heic/iphone_style.heic")).unwrap();
    let icc = heif_profile(&heic);
    for format in ["jpeg", "webp", "png"] {
        let out = run(
            &heic,
            json!({"ops": [{"op": "thumbnail", "width": 64}],
                                    "output": {"format": format, "keep_icc": true}}),
        );
        let format = OutputFormat::from_extension(format).unwrap();
        assert_eq!(read_back(&out, format).0, Some(icc.clone()), "{format:?}");
        // Upright: a portrait.
        let img = rgb_of(&out);
        assert!(img.height() > img.width(), "{format:?} {}x{}", img.width(), img.height());
    }
}

fn exiftool(bytes: &[u8], name: &str) -> serde_json::Value {
    let tool = common::outside_tool("IMGFN_EXIFTOOL", "exiftool", "apt-get install libimage-exiftool-perl");
    let path = common::scratch("metadata").join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(tool).args(["-j", "-G1", "-a"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "exiftool failed: {}", String::from_utf8_lossy(&out.stderr));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    all[0].clone()
}

#[test]
#[ignore = "needs exiftool: apt-get install libimage-exiftool-perl"]
fn exiftool_reads_the_kept_profile_and_tags_in_every_format() {
    let (png, _) = p3_png(64, 48);
    let with_exif = jpeg_with_exif(&common::photo(64, 48), &camera_exif(6));
    let source = exiftool(&png, "source.png");
    let description =
        source["ICC_Profile:ProfileDescription"].as_str().expect("a described profile").to_owned();
    for format in ["jpeg", "png", "webp", "avif"] {
        let tagged = run(&png, json!({"output": {"format": format, "keep_icc": true}}));
        let read = exiftool(&tagged, &format!("icc.{format}"));
        assert_eq!(
            read["ICC_Profile:ProfileDescription"].as_str(),
            Some(&description[..]),
            "{format}: {read}"
        );
        let out = run(&with_exif, json!({"output": {"format": format, "keep_copyright": true}}));
        let read = exiftool(&out, &format!("copyright.{format}"));
        let tags: Vec<(&String, &serde_json::Value)> = read
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("IFD0:") || k.starts_with("GPS:"))
            .collect();
        let names: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["IFD0:Artist", "IFD0:Copyright"], "{format}: only these ({read})");
        assert_eq!(read["IFD0:Artist"], "Jo Bloggs", "{format}");
        // ExifTool joins Copyright's two notices (photographer, editor) with " - ".
        assert!(
            read["IFD0:Copyright"].as_str().unwrap().starts_with("(c) 2026 ACME Photo"),
            "{format}: {read}"
        );
        assert!(read.get("ICC_Profile:ProfileDescription").is_none(), "{format}: no profile asked");
    }
    // Both at once, from a PNG (its iCCP and eXIf written by the `image` crate's encoder).
    let pixels = common::photo(64, 48);
    let mut both = Vec::new();
    let mut enc = PngEncoder::new(&mut both);
    enc.set_icc_profile(p3_profile()).unwrap();
    enc.set_exif_metadata(camera_exif(1)).unwrap();
    enc.write_image(pixels.as_raw(), 64, 48, image::ExtendedColorType::Rgb8).unwrap();
    for format in ["jpeg", "png", "webp", "avif"] {
        let out = run(&both, json!({"output": {"format": format, "keep_icc": true, "keep_copyright": true}}));
        let read = exiftool(&out, &format!("both.{format}"));
        assert_eq!(
            read["ICC_Profile:ProfileDescription"].as_str(),
            Some(&description[..]),
            "{format}: {read}"
        );
        assert_eq!(read["IFD0:Artist"], "Jo Bloggs", "{format}: {read}");
        assert!(read.get("IFD0:Make").is_none() && read.get("GPS:GPSLatitudeRef").is_none(), "{format}");
    }
}

#[test]
#[ignore = "needs avifdec: apt-get install libavif-bin"]
fn avifdec_reads_the_kept_profile() {
    let (png, stored) = p3_png(96, 64);
    // The same photo with a transparent band: an AVIF with an alpha item beside the colour one.
    let mut rgba: RgbaImage = image::DynamicImage::ImageRgb8(stored.clone()).into_rgba8();
    for y in 20..30 {
        for x in 0..96 {
            rgba.get_pixel_mut(x, y)[3] = 0;
        }
    }
    let mut with_alpha = Vec::new();
    let mut enc = PngEncoder::new(&mut with_alpha);
    enc.set_icc_profile(p3_profile()).unwrap();
    enc.write_image(rgba.as_raw(), 96, 64, image::ExtendedColorType::Rgba8).unwrap();
    let tool = common::outside_tool("IMGFN_AVIFDEC", "avifdec", "apt-get install libavif-bin");
    let dir = common::scratch("metadata-avif");
    for (name, source) in [("opaque", &png), ("alpha", &with_alpha)] {
        let avif = run(source, json!({"output": {"format": "avif", "quality": 95, "keep_icc": true}}));
        let (input, output) = (dir.join(format!("{name}.avif")), dir.join(format!("{name}.png")));
        std::fs::write(&input, &avif).unwrap();
        let out = Command::new(&tool).args(["--depth", "8"]).arg(&input).arg(&output).output().unwrap();
        assert!(out.status.success(), "avifdec on {name}: {}", String::from_utf8_lossy(&out.stderr));
        let decoded = std::fs::read(&output).unwrap();
        // avifdec writes the profile it read into its PNG.
        assert_eq!(read_back(&decoded, OutputFormat::Png).0.as_deref(), Some(&p3_profile()[..]), "{name}");
        let pixels = common::decode_independent(&decoded);
        let opaque = |img: &RgbaImage| {
            RgbImage::from_fn(96, 10, |x, y| {
                let p = img.get_pixel(x, y + 40).0;
                image::Rgb([p[0], p[1], p[2]])
            })
        };
        let want = opaque(&image::DynamicImage::ImageRgb8(stored.clone()).into_rgba8());
        let diff = mean_diff(&opaque(&pixels), &want);
        assert!(diff < 2.0, "{name}: {diff}");
        let alpha_at = |y| pixels.get_pixel(50, y)[3];
        assert_eq!((alpha_at(25), alpha_at(45)), (if name == "alpha" { 0 } else { 255 }, 255), "{name}");
    }
}

#[test]
fn keep_icc_on_an_avif_described_by_nclx_writes_a_profile_made_from_it() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/avif/");
    let avif = std::fs::read(format!("{dir}nclx_p3.avif")).unwrap();
    // avifdec's decode: the samples as stored (Display P3 primaries, sRGB transfer), unconverted.
    let stored = image::open(format!("{dir}nclx_p3.png")).unwrap().into_rgb8();
    let kept = run(&avif, json!({"output": {"format": "png", "keep_icc": true}}));
    let icc = read_back(&kept, OutputFormat::Png).0.expect("a profile made from the nclx codes");
    let profile = moxcms::ColorProfile::new_from_slice(&icc).unwrap();
    let p3 = moxcms::ColorProfile::new_display_p3();
    for (got, want) in [(profile.red_colorant, p3.red_colorant), (profile.blue_colorant, p3.blue_colorant)] {
        let close =
            (got.x - want.x).abs() < 1e-3 && (got.y - want.y).abs() < 1e-3 && (got.z - want.z).abs() < 1e-3;
        assert!(close, "{got:?} against Display P3's {want:?}");
    }
    let diff = mean_diff(&rgb_of(&kept), &stored);
    assert!(diff < 1.0, "the samples as stored: {diff}");
    // Read through its profile, it is the sRGB output of the default.
    let converted = run(&avif, json!({"output": {"format": "png"}}));
    let through_profile = run(&kept, json!({"output": {"format": "png"}}));
    let diff = mean_diff(&rgb_of(&through_profile), &rgb_of(&converted));
    assert!(diff < 0.5, "{diff}");
    assert_eq!(read_back(&converted, OutputFormat::Png).0, None);
}
