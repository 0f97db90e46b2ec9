//! AVIF input: files written by libavif's avifenc (libaom), decoded by imgfn (rav1d) and
//! compared with libavif's own decode (avifdec: dav1d, bilinear chroma upsampling), stored
//! beside them as PNG. See tests/fixtures/README.md.
#![allow(clippy::unwrap_used)]

mod common;

use image::{imageops, RgbaImage};
use image_ops::decode::{decode, probe, DecodeOptions};
use image_ops::{Assets, Error, InputFormat, Limits, Output, OutputFormat, Pipeline, PipelineSpec};

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/avif");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ours(name: &str) -> image_ops::Image {
    decode(&fixture(name), &Limits::default(), &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reference(name: &str) -> RgbaImage {
    image::load_from_memory(&fixture(&name.replace(".avif", ".png"))).unwrap().into_rgba8()
}

/// Decodes `name` and compares it with avifdec's decode: colour within `tolerance` (where
/// alpha is at least `min_alpha`), alpha within 1, and a mean colour difference under 0.5.
fn matches_libavif(name: &str, tolerance: u8, alpha: bool, min_alpha: u8) -> image_ops::Image {
    let img = ours(name);
    assert_eq!(img.format, InputFormat::Avif);
    assert_eq!(img.first().has_alpha(), alpha, "{name}");
    let (colour, alpha_diff, mean) = common::max_diff(&img.first().to_rgba(), &reference(name), min_alpha);
    eprintln!("{name}: max colour diff {colour}, max alpha diff {alpha_diff}, mean {mean:.3}");
    assert!(colour <= tolerance && alpha_diff <= 1 && mean < 0.5, "{name}: {colour} {alpha_diff} {mean}");
    img
}

// Tolerances: imgfn converts YUV to RGB in floating point; libavif in fixed point (libyuv for
// 8-bit 4:2:0, with its own bilinear upsampling, its own code elsewhere), so a channel differs
// by at most 1 to 3 (3: 8-bit 4:2:0, at the hard edge of the yellow bar).
#[test]
fn eight_bit_420_limited_range() {
    matches_libavif("yuv420_8_limited.avif", 3, false, 0);
}

#[test]
fn ten_bit_444_full_range_bt709() {
    matches_libavif("yuv444_10_full_bt709.avif", 1, false, 0);
}

#[test]
fn twelve_bit_422_limited_range() {
    matches_libavif("yuv422_12_limited.avif", 1, false, 0);
}

#[test]
fn monochrome() {
    let img = matches_libavif("mono_8.avif", 1, false, 0);
    let rgba = img.first().to_rgba();
    assert!(rgba.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn alpha_auxiliary_image() {
    matches_libavif("alpha_444_8.avif", 1, true, 16);
}

#[test]
fn premultiplied_alpha_is_made_straight() {
    // Colour is compared where alpha >= 16: un-premultiplying divides by alpha, so a small
    // difference in premultiplied colour grows as alpha shrinks. The reference is avifdec's
    // 16-bit PNG: at 8 bits, libavif rounds the colour before dividing (imgfn divides first)
    // and differs by up to 30 at alpha 16.
    matches_libavif("alpha_premultiplied_10.avif", 3, true, 16);
}

#[test]
fn irot_and_imir_are_applied() {
    let name = "irot1_imir1.avif";
    let bytes = fixture(name);
    // Probe reports the stored size; the decode is upright.
    let p = probe(&bytes, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height, p.format), (64, 48, InputFormat::Avif));
    let img = ours(name);
    // irot 1: 90 degrees anti-clockwise; then imir 1: left and right exchanged. avifdec writes
    // the stored pixels, so the reference is turned here.
    let expected = imageops::flip_horizontal(&imageops::rotate270(&reference(name)));
    assert_eq!((img.width(), img.height()), (48, 64));
    let (colour, _, _) = common::max_diff(&img.first().to_rgba(), &expected, 0);
    assert!(colour <= 2, "{colour}");
}

#[test]
fn icc_profile_is_converted_to_srgb() {
    let name = "icc_p3.avif";
    let img = ours(name);
    let got = img.first().to_rgba();
    // avifdec keeps the stored (Display P3) values; imgfn converts them to sRGB with moxcms.
    let stored = reference(name);
    let expected = common::icc_to_srgb(&stored, &fixture("p3_gamma22.icc"));
    let (colour, _, _) = common::max_diff(&got, &expected, 0);
    let (unconverted, _, _) = common::max_diff(&got, &stored, 0);
    eprintln!("{name}: max diff {colour} from the sRGB conversion, {unconverted} from the stored values");
    assert!(colour <= 2, "{colour}");
    assert!(unconverted >= 10, "the profile was not applied ({unconverted})");
}

/// The six patches of `src_patches.png` (16x16 each, 3x2): imgfn's decode against the stored
/// values (avifdec does no colour management) converted from `primaries`, or left as they are.
fn patches_match(name: &str, primaries: Option<[(f64, f64); 3]>) {
    let got = ours(name).first().to_rgba();
    let stored = reference(name);
    let (mut worst, mut moved) = (0u8, 0u8);
    for i in 0..6u32 {
        let (x, y) = ((i % 3) * 16 + 8, (i / 3) * 16 + 8);
        let s = stored.get_pixel(x, y).0;
        let stored = [s[0], s[1], s[2]];
        let expected = primaries.map_or(stored, |p| common::primaries_to_srgb(stored, p));
        let g = got.get_pixel(x, y).0;
        eprintln!("{name} patch {i}: stored {:?}, expected {expected:?}, imgfn {:?}", &s[..3], &g[..3]);
        for c in 0..3 {
            worst = worst.max(g[c].abs_diff(expected[c]));
            moved = moved.max(g[c].abs_diff(s[c]));
        }
    }
    assert!(worst <= 2, "{name}: {worst} from the expected sRGB values");
    if primaries.is_some() {
        assert!(moved >= 10, "{name}: the primaries were not converted ({moved})");
    }
}

#[test]
fn nclx_display_p3_is_converted_to_srgb() {
    patches_match("nclx_p3.avif", Some(common::P3_PRIMARIES));
}

#[test]
fn nclx_bt2020_is_converted_to_srgb() {
    patches_match("nclx_bt2020.avif", Some(common::BT2020_PRIMARIES));
}

#[test]
fn without_nclx_the_sequence_header_describes_the_colour() {
    // The same file with its `colr` property renamed (an unknown property, ignored): the AV1
    // sequence header's colour description (avifenc writes 12/13/1 there too) is used instead.
    let mut bytes = fixture("nclx_p3.avif");
    let at = bytes.windows(8).position(|w| w == b"colrnclx").expect("an nclx colr box");
    assert_eq!(bytes.windows(4).filter(|w| *w == b"colr").count(), 1);
    bytes[at..at + 4].copy_from_slice(b"xolr");
    let img = decode(&bytes, &Limits::default(), &DecodeOptions::default()).unwrap();
    let with_nclx = ours("nclx_p3.avif");
    assert_eq!(img.first().to_rgba(), with_nclx.first().to_rgba(), "converted the same way");
    assert_ne!(img.first().to_rgba(), reference("nclx_p3.avif"), "converted, not as stored");
}

#[test]
fn nclx_hdr_pq_is_left_as_stored() {
    // No tone mapping: PQ's absolute light put into sRGB as is would only be darker.
    patches_match("nclx_bt2020_pq.avif", None);
}

#[test]
fn grid_tiles_are_assembled() {
    let bytes = fixture("grid_2x2.avif");
    let p = probe(&bytes, &Limits::default()).unwrap();
    assert_eq!((p.width, p.height), (128, 128));
    // 4, where 3 elsewhere for 8-bit 4:2:0: imgfn converts each tile on its own, so its chroma
    // at a tile seam is upsampled from that tile's samples only; libavif joins the tiles'
    // planes first. The largest difference is at x = 64.
    matches_libavif("grid_2x2.avif", 4, false, 0);
}

#[test]
fn truncated_files_are_corrupt() {
    let bytes = fixture("yuv420_8_limited.avif");
    for cut in [bytes.len() - 1, bytes.len() / 2, 40, 20] {
        let r = decode(&bytes[..cut], &Limits::default(), &DecodeOptions::default());
        assert!(matches!(r, Err(Error::CorruptImage(_))), "cut at {cut}: {:?}", r.err());
    }
}

#[test]
fn sizes_are_checked_before_decoding() {
    let bytes = fixture("yuv420_8_limited.avif");
    let small = Limits { max_pixels: 64 * 48 - 1, ..Limits::default() };
    assert!(matches!(probe(&bytes, &small), Err(Error::TooManyPixels(_))));
    let huge = common::with_ispe(bytes.clone(), 60_000, 60_000);
    assert!(matches!(probe(&huge, &Limits::default()), Err(Error::TooManyPixels(_))));
    // The decoder allocates by the AV1 sequence header, which must say what ispe says.
    let lying = common::with_ispe(bytes, 16, 12);
    match probe(&lying, &Limits::default()) {
        Err(Error::CorruptImage(m)) => assert!(m.contains("sequence header is 64x48"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn avif_through_the_pipeline_to_webp_and_jpeg() {
    let bytes = fixture("alpha_444_8.avif");
    for format in ["webp", "jpeg"] {
        let spec: PipelineSpec = serde_json::from_value(serde_json::json!({
            "ops": [{"op": "thumbnail", "width": 32}],
            "output": {"format": format},
        }))
        .unwrap();
        let rendered = Pipeline::new(spec, Limits::default()).unwrap().run(&bytes, &Assets::new()).unwrap();
        assert_eq!(rendered.input.format, InputFormat::Avif);
        let Output::Image(out) = rendered.output else { panic!("not an image") };
        assert_eq!(out.format, OutputFormat::from_extension(format).unwrap());
        let img = common::decode_independent(&out.bytes);
        assert_eq!(img.dimensions(), (32, 24), "{format}");
        // The left edge is opaque in the source; its colour survives the trip.
        let expected = reference("alpha_444_8.avif");
        let (got, want) = (img.get_pixel(0, 12), expected.get_pixel(0, 24));
        assert!(got[0].abs_diff(want[0]) < 24 && got[1].abs_diff(want[1]) < 24, "{format}: {got:?} {want:?}");
    }
}
