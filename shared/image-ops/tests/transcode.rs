//! Overlays on a JPEG written back into its DCT coefficients (the transcode path) against the
//! full decode-paint-encode path (`Pipeline::run_decoded`), both read by an independent decoder:
//! the transcode leaves every block the overlay does not reach exactly as it was, paints the
//! same overlay, matches the full path's quality and size when it requantises, and every input
//! it does not take gives the full path's bytes or error. The same for a JPEG sliced into JPEG
//! tiles, or resized, from its YCbCr planes.
#![allow(clippy::unwrap_used)]

mod common;
mod craft;

use image::{GrayImage, RgbaImage};
use image_ops::encode::{encode, OutputParams};
use image_ops::{Assets, Image, InputFormat, Limits, Output, OutputFormat, Pipeline, Pixels};

const W: u32 = 1200;
const H: u32 = 800;

/// The test photo as a 4:2:0 JPEG at `quality` (what phones and most encoders write).
fn source(quality: u8, progressive: bool) -> Vec<u8> {
    let image = Image::still(Pixels::Rgb(common::photo(W, H)), InputFormat::Png);
    let out = OutputParams { quality: quality.into(), progressive, ..OutputParams::default() };
    encode(&image, OutputFormat::Jpeg, &out).unwrap().bytes
}

fn pipeline(json: &str) -> Pipeline {
    Pipeline::new(serde_json::from_str(json).unwrap(), Limits::default()).unwrap()
}

fn bytes(out: Output) -> Vec<u8> {
    match out {
        Output::Image(e) => {
            assert_eq!(e.format, OutputFormat::Jpeg);
            e.bytes
        }
        Output::Tiles { .. } => panic!("expected one image"),
    }
}

/// The pipeline's result on `input`, which must be the full decode path's (`run_decoded`):
/// the same output or the same error.
fn as_the_full_path(name: &str, input: &[u8], json: &str) -> Result<Output, String> {
    let p = pipeline(json);
    let a = p.run(input, &Assets::new()).map(|r| r.output).map_err(|e| e.to_string());
    let b = p.run_decoded(input, &Assets::new()).map(|r| r.output).map_err(|e| e.to_string());
    assert!(a == b, "{name}: {:?} vs {:?}", a.as_ref().err(), b.as_ref().err());
    a
}

/// Both paths' outputs: (transcoded, fully decoded).
fn both(json: &str, input: &[u8], assets: &Assets) -> (Vec<u8>, Vec<u8>) {
    let p = pipeline(json);
    (bytes(p.run(input, assets).unwrap().output), bytes(p.run_decoded(input, assets).unwrap().output))
}

fn psnr(a: &RgbaImage, b: &RgbaImage, keep: impl Fn(u32, u32) -> bool) -> f64 {
    let (mut sum, mut n) = (0f64, 0f64);
    for (x, y, p) in a.enumerate_pixels() {
        if !keep(x, y) {
            continue;
        }
        let q = b.get_pixel(x, y);
        for c in 0..3 {
            let d = f64::from(p[c]) - f64::from(q[c]);
            sum += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0 * 255.0 / (sum / n)).log10()
}

/// Mean and largest channel difference inside the box (x0, y0, x1, y1).
fn diff_in(a: &RgbaImage, b: &RgbaImage, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> (f64, u8) {
    let (mut sum, mut n, mut max) = (0f64, 0f64, 0u8);
    for y in y0..y1 {
        for x in x0..x1 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            for c in 0..3 {
                let d = p[c].abs_diff(q[c]);
                max = max.max(d);
                sum += f64::from(d);
                n += 1.0;
            }
        }
    }
    (sum / n, max)
}

fn read_qr(img: &RgbaImage) -> Vec<String> {
    let grey = GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        image::Luma([((299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000) as u8])
    });
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(grey.width() as usize, grey.height() as usize, |x, y| {
            grey.get_pixel(x as u32, y as u32)[0]
        });
    prepared.detect_grids().into_iter().map(|g| g.decode().unwrap().1).collect()
}

#[test]
fn a_qr_code_changes_only_the_blocks_it_covers() {
    // Output quality = source quality: the same tables, so untouched blocks are copied.
    let input = source(80, false);
    let json = r#"{"ops": [{"op": "qr-overlay", "data": "https://example.com/t/1", "size": 200,
                             "offset_x": 30, "offset_y": 20}],
                   "output": {"quality": 80}}"#;
    let (fast, full) = both(json, &input, &Assets::new());
    assert_ne!(fast, full, "the transcode path was not taken");
    let (fast, full, src) = (
        common::decode_independent(&fast),
        common::decode_independent(&full),
        common::decode_independent(&input),
    );
    assert_eq!(read_qr(&fast), ["https://example.com/t/1"]);
    // The code's square (bottom right, 30/20 px in) in whole 16 px MCUs, and 16 px more for
    // the decoder's chroma upsampling, which reads neighbouring blocks.
    let (qx, qy) = (W - 30 - 200, H - 20 - 200);
    let near = |x: u32, y: u32| x + 32 >= qx / 16 * 16 && y + 32 >= qy / 16 * 16;
    for (x, y, p) in fast.enumerate_pixels() {
        if !near(x, y) {
            assert_eq!(p, src.get_pixel(x, y), "pixel {x},{y} outside the code changed");
        }
    }
    // Inside, the same code as the full path paints.
    let (mean, max) = diff_in(&fast, &full, (qx, qy, qx + 200, qy + 200));
    assert!(mean < 2.0 && max < 40, "code area differs from the full path: mean {mean:.2}, max {max}");
}

#[test]
fn requantised_output_matches_the_full_path_in_quality_and_size() {
    // Source q92, output q80: every block is requantised.
    let input = source(92, false);
    let json = r##"{"ops": [{"op": "watermark", "text": "© imgfn 2026", "size": 48, "color": "#ffffff",
                              "gravity": "bottom_right", "offset_x": 24, "offset_y": 24}],
                    "output": {"quality": 80}}"##;
    let (fast_bytes, full_bytes) = both(json, &input, &Assets::new());
    let ratio = fast_bytes.len() as f64 / full_bytes.len() as f64;
    assert!((0.9..=1.05).contains(&ratio), "bytes {} vs {} ({ratio:.3})", fast_bytes.len(), full_bytes.len());
    let (fast, full) = (common::decode_independent(&fast_bytes), common::decode_independent(&full_bytes));
    let src = common::decode_independent(&input);
    let away = |x: u32, y: u32| x < W / 2 || y < H / 2;
    let (pf, pp) = (psnr(&fast, &src, away), psnr(&full, &src, away));
    assert!(pf > pp - 0.5, "transcode PSNR {pf:.2} dB vs full path {pp:.2} dB");
    // The text: same as the full path's within JPEG noise.
    let all = |_: u32, _: u32| true;
    let between = psnr(&fast, &full, all);
    assert!(between > 38.0, "transcode vs full path: {between:.2} dB");
    let (mean, _) = diff_in(&fast, &full, (W / 2, H - 120, W, H));
    assert!(mean < 3.0, "text area mean difference {mean:.2}");
}

#[test]
fn a_translucent_logo_blends_like_the_full_path() {
    let input = source(85, true); // progressive source
    let logo = RgbaImage::from_fn(160, 60, |x, y| {
        image::Rgba([(x * 3) as u8, 40, (y * 4) as u8, if (x / 10 + y / 10) % 2 == 0 { 255 } else { 90 }])
    });
    let mut assets = Assets::new();
    assets.insert("logo".into(), common::png_bytes(&logo));
    let json = r#"{"ops": [{"op": "watermark", "image": "logo", "opacity": 0.7, "gravity": "top_left",
                             "offset_x": 37, "offset_y": 21}],
                   "output": {"quality": 85, "progressive": true}}"#;
    let (fast_bytes, full_bytes) = both(json, &input, &assets);
    assert_ne!(fast_bytes, full_bytes, "the transcode path was not taken");
    let (fast, full) = (common::decode_independent(&fast_bytes), common::decode_independent(&full_bytes));
    let (mean, max) = diff_in(&fast, &full, (37, 21, 37 + 160, 21 + 60));
    assert!(mean < 2.5 && max < 48, "logo area: mean {mean:.2}, max {max}");
    assert!(psnr(&fast, &full, |_, _| true) > 40.0);
}

#[test]
fn a_jpeg_to_jpeg_conversion_is_requantised_without_decoding() {
    let input = source(95, false);
    let (fast_bytes, full_bytes) =
        both(r#"{"output": {"format": "jpeg", "quality": 75}}"#, &input, &Assets::new());
    assert_ne!(fast_bytes, full_bytes, "the transcode path was not taken");
    let ratio = fast_bytes.len() as f64 / full_bytes.len() as f64;
    assert!((0.9..=1.05).contains(&ratio), "bytes ratio {ratio:.3}");
    let src = common::decode_independent(&input);
    let (fast, full) = (common::decode_independent(&fast_bytes), common::decode_independent(&full_bytes));
    let (pf, pp) = (psnr(&fast, &src, |_, _| true), psnr(&full, &src, |_, _| true));
    assert!(pf > pp - 0.5, "transcode {pf:.2} dB vs full path {pp:.2} dB");
}

#[test]
fn inputs_the_transcode_does_not_take_get_the_full_paths_bytes() {
    let plain = source(80, false);
    let qr = r#"{"ops": [{"op": "qr-overlay", "data": "x"}]}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // A tiled watermark covers the whole image.
        ("tiled", plain.clone(), r#"{"ops": [{"op": "watermark", "text": "imgfn", "tile": 64}]}"#),
        // A rotated photo.
        ("rotated", craft::jpeg_insert_after_soi(&plain, &craft::exif_app1(6)), qr),
        // Not only overlays.
        (
            "resized",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 600}, {"op": "qr-overlay", "data": "x"}]}"#,
        ),
        // Another output format.
        (
            "webp",
            plain.clone(),
            r#"{"ops": [{"op": "qr-overlay", "data": "x"}], "output": {"format": "png"}}"#,
        ),
        // 4:4:4 (written by the `image` crate's encoder).
        ("444", common::jpeg_bytes(&common::photo(W, H)), qr),
    ];
    for (name, input, json) in cases {
        as_the_full_path(name, &input, json).unwrap();
    }
}

#[test]
fn broken_jpegs_fail_as_the_full_path_fails() {
    let input = source(80, false);
    let qr = r#"{"ops": [{"op": "qr-overlay", "data": "x"}]}"#;
    let truncated = &input[..input.len() / 2];
    let mut corrupt = input.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 64] {
        *b = 0xA5;
    }
    for (name, bytes) in [("truncated", truncated.to_vec()), ("corrupt", corrupt)] {
        let _ = as_the_full_path(name, &bytes, qr);
    }
    // A code that does not fit: the full path's error, naming the field.
    let big = r#"{"ops": [{"op": "qr-overlay", "data": "x", "size": 4000}]}"#;
    let err = pipeline(big).run(&input, &Assets::new()).unwrap_err();
    assert_eq!(err.field(), Some("ops[0].size"), "{err}");
}

/// A slice's manifest and its tiles' bytes.
fn tiles(out: Output) -> (image_ops::ops::slice::Manifest, Vec<Vec<u8>>) {
    match out {
        Output::Tiles { manifest, tiles } => (manifest, tiles.into_iter().map(|t| t.bytes).collect()),
        Output::Image(_) => panic!("expected tiles"),
    }
}

#[test]
fn a_jpeg_sliced_from_its_planes_is_as_close_to_the_source_as_the_full_path() {
    let input = source(90, false);
    let reference = common::decode_independent(&input);
    // 4 x 3 tiles of 300 x 266 (268 in the last row): no width is whole blocks and no height
    // whole MCUs, so every tile is padded at its right and bottom edges.
    let p = pipeline(r#"{"ops": [{"op": "slice", "rows": 3, "cols": 4}], "output": {"quality": 80}}"#);
    let (manifest, planes) = tiles(p.run(&input, &Assets::new()).unwrap().output);
    let (full_manifest, full) = tiles(p.run_decoded(&input, &Assets::new()).unwrap().output);
    assert_eq!(manifest, full_manifest);
    assert_eq!(manifest.tiles.len(), 12);
    // Luma decodes alike on both paths; the chroma differs (the source's samples against a
    // resampled copy) except where the picture's colour is flat.
    let differ = planes.iter().zip(&full).filter(|(a, b)| a != b).count();
    assert!(differ >= 8, "{differ} of 12 tiles differ: the planes path was not taken");
    let all = |_: u32, _: u32| true;
    for ((info, a), b) in manifest.tiles.iter().zip(&planes).zip(&full) {
        let (da, db) = (common::decode_independent(a), common::decode_independent(b));
        assert_eq!(da.dimensions(), (info.width, info.height));
        let crop = image::imageops::crop_imm(&reference, info.x, info.y, info.width, info.height).to_image();
        let (pa, pb) = (psnr(&da, &crop, all), psnr(&db, &crop, all));
        assert!(pa > pb - 0.2, "tile {info:?}: {pa:.2} dB against the full path's {pb:.2}");
        assert!(psnr(&da, &db, all) > 36.0, "tile {info:?}");
        // The padded edges (the last column and row) are as good as the rest.
        let edge = |x: u32, y: u32| x + 1 == info.width || y + 1 == info.height;
        let (ea, eb) = (psnr(&da, &crop, edge), psnr(&db, &crop, edge));
        assert!(ea > eb - 1.0 && ea > 30.0, "tile {info:?}: edges {ea:.2} dB against {eb:.2}");
    }
    let (a, b) = (planes.iter().map(Vec::len).sum::<usize>(), full.iter().map(Vec::len).sum::<usize>());
    assert!(a as f64 <= b as f64 * 1.05, "{a} bytes against the full path's {b}");
}

#[test]
fn slices_the_planes_path_does_not_take_get_the_full_paths_tiles() {
    let plain = source(90, false);
    let grid = r#"{"ops": [{"op": "slice", "rows": 2, "cols": 2}]}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // Tiles that start on an odd column (1200 / 7 = 171) would split chroma samples.
        ("odd", plain.clone(), r#"{"ops": [{"op": "slice", "rows": 2, "cols": 7}]}"#),
        ("rotated", craft::jpeg_insert_after_soi(&plain, &craft::exif_app1(6)), grid),
        (
            "resized",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 600}, {"op": "slice", "rows": 2, "cols": 2}]}"#,
        ),
        (
            "progressive",
            plain.clone(),
            r#"{"ops": [{"op": "slice", "rows": 2, "cols": 2}], "output": {"progressive": true}}"#,
        ),
        (
            "png",
            plain.clone(),
            r#"{"ops": [{"op": "slice", "rows": 2, "cols": 2}], "output": {"format": "png"}}"#,
        ),
        ("444", common::jpeg_bytes(&common::photo(W, H)), grid),
    ];
    for (name, input, json) in cases {
        as_the_full_path(name, &input, json).unwrap();
    }
    broken_like_the_full_path(&plain, grid);
}

/// `plain` cut in half, and with 64 bytes in its middle overwritten, fail (or are read) as the
/// full path fails or reads them.
fn broken_like_the_full_path(plain: &[u8], json: &str) {
    let mut corrupt = plain.to_vec();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 64].fill(0xA5);
    for (name, bytes) in [("truncated", plain[..plain.len() / 2].to_vec()), ("corrupt", corrupt)] {
        let _ = as_the_full_path(name, &bytes, json);
    }
}

/// The reference for a resize of `input` to `w` x `h`: the full-size pixels (an independent
/// decoder's) resized by the `image` crate's Lanczos3.
fn resized_reference(input: &[u8], w: u32, h: u32) -> RgbaImage {
    let full = common::decode_independent(input);
    image::imageops::resize(&full, w, h, image::imageops::FilterType::Lanczos3)
}

#[test]
fn a_jpeg_resized_from_its_planes_is_as_close_to_the_source_as_the_full_path() {
    let baseline = source(90, false);
    let progressive = source(90, true);
    // (name, input, spec, whether the whole image is kept: then a Lanczos resize of it is the
    // reference). 1200 x 800 at 1/2 (600 x 400: 300 px and less), 1/4 (300 x 200: 170 px and
    // less) and full scale (600 px); odd sizes, a box, cover crops, other filters.
    let cases: Vec<(&str, &[u8], &str, bool)> = vec![
        ("half", &baseline, r#"{"op": "thumbnail", "width": 300}"#, true),
        ("quarter", &baseline, r#"{"op": "thumbnail", "width": 170}"#, true),
        ("full", &baseline, r#"{"op": "thumbnail", "width": 600}"#, true),
        ("odd", &baseline, r#"{"op": "thumbnail", "width": 301}"#, true),
        ("progressive", &progressive, r#"{"op": "thumbnail", "width": 299}"#, true),
        ("fill", &baseline, r#"{"op": "thumbnail", "width": 333, "height": 177, "fit": "fill"}"#, true),
        (
            "cover",
            &baseline,
            r#"{"op": "thumbnail", "width": 255, "height": 255, "fit": "cover", "gravity": "bottom_right"}"#,
            false,
        ),
        (
            "focus",
            &baseline,
            r#"{"op": "thumbnail", "width": 211, "height": 97, "fit": "cover", "focus_x": 0.3, "focus_y": 0.6}"#,
            false,
        ),
        ("mitchell", &baseline, r#"{"op": "thumbnail", "width": 280, "filter": "mitchell"}"#, true),
        ("nearest", &baseline, r#"{"op": "thumbnail", "width": 280, "filter": "nearest"}"#, true),
    ];
    let all = |_: u32, _: u32| true;
    for (name, input, op, whole) in cases {
        let p = pipeline(&format!(r#"{{"ops": [{op}], "output": {{"quality": 85}}}}"#));
        let (a, b) = (
            bytes(p.run(input, &Assets::new()).unwrap().output),
            bytes(p.run_decoded(input, &Assets::new()).unwrap().output),
        );
        assert_ne!(a, b, "{name}: the planes path was not taken");
        let (da, db) = (common::decode_independent(&a), common::decode_independent(&b));
        assert_eq!(da.dimensions(), db.dimensions(), "{name}");
        let between = psnr(&da, &db, all);
        let floor = if name == "nearest" { 30.0 } else { 38.0 };
        assert!(between > floor, "{name}: {between:.2} dB from the full path's");
        if whole {
            let reference = resized_reference(input, da.width(), da.height());
            let (pa, pb) = (psnr(&da, &reference, all), psnr(&db, &reference, all));
            // The luma is the full path's; the chroma is decoded at its own resolution (a 4 x 4
            // IDCT at 1/2 scale) where the full path decodes it at the luma's and the encoder
            // averages it down: within half a dB of it either way, a full dB with nearest.
            let margin = if name == "nearest" { 1.0 } else { 0.5 };
            assert!(pa > pb - margin, "{name}: {pa:.2} dB against the full path's {pb:.2}");
            // The last column and row (where the chroma crop meets the plane's edge).
            let (w, h) = da.dimensions();
            let edge = |x: u32, y: u32| x + 1 == w || y + 1 == h;
            let (ea, eb) = (psnr(&da, &reference, edge), psnr(&db, &reference, edge));
            assert!(ea > eb - 1.0, "{name}: edges {ea:.2} dB against {eb:.2}");
        }
        assert!(a.len() as f64 <= b.len() as f64 * 1.05, "{name}: {} bytes against {}", a.len(), b.len());
    }
}

#[test]
fn resizes_the_planes_path_does_not_take_get_the_full_paths_bytes() {
    let plain = source(90, false);
    let thumb = r#"{"ops": [{"op": "thumbnail", "width": 300}]}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("rotated", craft::jpeg_insert_after_soi(&plain, &craft::exif_app1(6)), thumb),
        ("444", common::jpeg_bytes(&common::photo(W, H)), thumb),
        (
            "smart crop",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 200, "height": 200, "fit": "cover", "gravity": "entropy"}]}"#,
        ),
        (
            "progressive output",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 300}], "output": {"progressive": true}}"#,
        ),
        (
            "png",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 300}], "output": {"format": "png"}}"#,
        ),
        ("enlarged", plain.clone(), r#"{"ops": [{"op": "thumbnail", "width": 1500, "upscale": true}]}"#),
        ("unchanged", plain.clone(), r#"{"ops": [{"op": "thumbnail", "width": 1500}]}"#),
        // 1/8 scale: the DC-only decode.
        ("eighth", plain.clone(), r#"{"ops": [{"op": "thumbnail", "width": 100}]}"#),
        (
            "two ops",
            plain.clone(),
            r#"{"ops": [{"op": "thumbnail", "width": 300}, {"op": "round-corner", "radius": 8}]}"#,
        ),
    ];
    for (name, input, json) in cases {
        as_the_full_path(name, &input, json).unwrap();
    }
    broken_like_the_full_path(&plain, thumb);
}

/// The file's DQT segments (quantisation tables), as written.
fn dqt(jpeg: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if jpeg[i + 1] == 0xDB {
            out.push(jpeg[i + 4..i + 2 + len].to_vec());
        }
        i += 2 + len;
    }
    out
}

#[test]
fn quality_source_keeps_the_sources_tables_and_every_block_the_overlay_misses() {
    let qr = |quality: &str| {
        format!(
            r#"{{"ops": [{{"op": "qr-overlay", "data": "https://example.com/s", "size": 180}}],
                "output": {{"quality": {quality}}}}}"#
        )
    };
    // A libjpeg-made source: "source" is its level, 85, and the transcode copies every block.
    let input = source(85, false);
    let (fast, full) = both(&qr(r#""source""#), &input, &Assets::new());
    assert_ne!(fast, full, "the transcode path was not taken");
    assert_eq!(dqt(&fast), dqt(&input));
    assert_eq!(fast, bytes(pipeline(&qr("85")).run(&input, &Assets::new()).unwrap().output));
    let (out, src) = (common::decode_independent(&fast), common::decode_independent(&input));
    assert_eq!(read_qr(&out), ["https://example.com/s"]);
    // The code sits bottom right (the default gravity, 0 offset): everything above and left
    // of its MCUs, and of the decoder's chroma upsampling 16 px further, is the source's.
    let (qx, qy) = ((W - 180) / 16 * 16 - 16, (H - 180) / 16 * 16 - 16);
    for (x, y, p) in out.enumerate_pixels() {
        if x < qx || y < qy {
            assert_eq!(p, src.get_pixel(x, y), "pixel {x},{y} changed");
        }
    }
    // A camera's tables (no libjpeg level makes them): kept as they are; a number requantises.
    let mut camera = input.clone();
    let at = camera.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap() + 5;
    camera[at] += 1;
    let kept = bytes(pipeline(&qr(r#""source""#)).run(&camera, &Assets::new()).unwrap().output);
    assert_eq!(dqt(&kept), dqt(&camera));
    let requantised = bytes(pipeline(&qr("85")).run(&camera, &Assets::new()).unwrap().output);
    assert_eq!(dqt(&requantised), dqt(&input));
}

#[test]
fn quality_source_on_the_full_path_is_the_sources_level() {
    let resize = |quality: &str| {
        format!(r#"{{"ops": [{{"op": "thumbnail", "width": 300}}], "output": {{"quality": {quality}}}}}"#)
    };
    let run = |json: &str, input: &[u8]| bytes(pipeline(json).run(input, &Assets::new()).unwrap().output);
    let input = source(62, false);
    assert_eq!(run(&resize(r#""source""#), &input), run(&resize("62"), &input));
    // Not a JPEG: the default level, 80.
    let png = common::png_bytes(&image::DynamicImage::ImageRgb8(common::photo(400, 300)).to_rgba8());
    let to_jpeg = |q: &str| resize(q).replace("}}", r#", "format": "jpeg"}}"#);
    assert_eq!(run(&to_jpeg(r#""source""#), &png), run(&to_jpeg("80"), &png));
    // What the params accept.
    for (quality, ok) in [
        (r#""source""#, true),
        ("1", true),
        ("100", true),
        ("0", false),
        ("101", false),
        (r#""high""#, false),
        ("80.5", false),
    ] {
        let json = format!(r#"{{"output": {{"quality": {quality}}}}}"#);
        let spec = serde_json::from_str(&json).map_err(|e| e.to_string());
        let result = spec.and_then(|s| Pipeline::new(s, Limits::default()).map_err(|e| e.to_string()));
        assert_eq!(result.is_ok(), ok, "{quality}: {:?}", result.err());
    }
    let spec: image_ops::PipelineSpec = serde_json::from_str(r#"{"output": {"quality": "source"}}"#).unwrap();
    assert_eq!(serde_json::to_value(&spec.output).unwrap()["quality"], "source");
}

/// A profile decoding would not apply (sRGB's) does not keep a JPEG from the transcode, and
/// neither does one the output keeps (`keep_icc`: the coefficients stay in its colour space and
/// the file carries it); one decoding converts from (Display P3) sends it down the full path.
#[test]
fn profiles_the_output_need_not_convert_take_the_transcode() {
    let plain = source(80, false);
    let with = |icc: Vec<u8>| craft::jpeg_insert_after_soi(&plain, &craft::icc_app2(&icc, 1));
    let srgb = with(moxcms::ColorProfile::new_srgb().encode().unwrap());
    let p3_profile = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let p3 = with(p3_profile.clone());
    let qr = r#"{"ops": [{"op": "qr-overlay", "data": "x"}]}"#;
    let (from_plain, _) = both(qr, &plain, &Assets::new());
    let (from_srgb, decoded) = both(qr, &srgb, &Assets::new());
    assert!(from_srgb == from_plain, "an sRGB profile: the plain file's transcode");
    assert!(from_srgb != decoded, "(which is not the full path's file)");
    let (a, b) = both(qr, &p3, &Assets::new());
    assert!(a == b, "Display P3, converted: the full path");
    let keep = r#"{"ops": [{"op": "qr-overlay", "data": "x"}], "output": {"keep_icc": true}}"#;
    let (kept, decoded) = both(keep, &p3, &Assets::new());
    assert!(kept != decoded, "Display P3, kept: transcoded");
    let mut d = image::codecs::jpeg::JpegDecoder::new(std::io::Cursor::new(&kept)).unwrap();
    assert_eq!(image::ImageDecoder::icc_profile(&mut d).unwrap(), Some(p3_profile));
    assert_eq!(common::decode_independent(&kept), common::decode_independent(&from_plain));
}
