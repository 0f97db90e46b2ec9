//! The pipeline as the HTTP API and the CLI use it: JSON in, validated before decoding, one
//! decode, ops in order, one encode.
#![allow(clippy::unwrap_used)]

mod common;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{AnimationDecoder, Delay, Frame as GifFrame};
use image_ops::{Assets, Error, Limits, Output, OutputFormat, Pipeline, PipelineSpec};

fn spec(json: &str) -> PipelineSpec {
    serde_json::from_str(json).unwrap()
}

fn pipeline(json: &str) -> Pipeline {
    Pipeline::new(spec(json), Limits::default()).unwrap()
}

/// Validates and runs under the default limits: params errors come first.
fn run(json: &str, input: &[u8]) -> image_ops::Result<Output> {
    run_with(json, input, Limits::default())
}

fn run_with(json: &str, input: &[u8], limits: Limits) -> image_ops::Result<Output> {
    Ok(Pipeline::new(spec(json), limits)?.run(input, &Assets::new())?.output)
}

fn single(out: Output) -> image_ops::Encoded {
    match out {
        Output::Image(e) => e,
        Output::Tiles { .. } => panic!("expected one image"),
    }
}

#[test]
fn json_shape_is_strict() {
    // Unknown top-level field, unknown op field, unknown op: all rejected by serde.
    for bad in [
        r#"{"ops": [], "outptu": {}}"#,
        r#"{"ops": [{"op": "thumbnail", "widht": 10}]}"#,
        r#"{"ops": [{"op": "sharpen"}]}"#,
        r#"{"ops": [{"op": "qr-overlay"}]}"#,
        r#"{"ops": [{"op": "thumbnail", "width": "wide"}]}"#,
        r#"{"output": {"format": "bmp"}}"#,
        r#"{"ops": [{"op": "round-corner", "radius": "10 percent"}]}"#,
        r#"{"ops": [{"op": "watermark", "text": "x", "color": "red"}]}"#,
    ] {
        assert!(serde_json::from_str::<PipelineSpec>(bad).is_err(), "{bad} should not parse");
    }
    // Names, aliases and defaults.
    for (op, name) in [
        ("thumbnail", "thumbnail"),
        ("resize", "thumbnail"),
        ("watermark_text", "watermark"),
        ("round_corners", "round-corner"),
        ("round-corners", "round-corner"),
        ("qr", "qr-overlay"),
    ] {
        let minimal = match name {
            "thumbnail" => r#"{"width": 10}"#,
            "watermark" => r#"{"text": "x"}"#,
            "round-corner" => r#"{"radius": 3}"#,
            _ => r#"{"data": "x"}"#,
        };
        let step = minimal.replacen('{', &format!(r#"{{"op": "{op}", "#), 1);
        let p = spec(&format!(r#"{{"ops": [{step}]}}"#));
        assert_eq!(p.ops[0].spec().name, name, "{op}");
        // Serialised under its one name, whatever it was written as.
        assert_eq!(serde_json::to_value(&p.ops[0]).unwrap()["op"], name);
    }
    let p = pipeline(r#"{"ops": [{"op": "thumbnail", "width": 10}], "output": {"format": "jpg"}}"#);
    assert_eq!(p.output().format, Some(OutputFormat::Jpeg));
    assert_eq!(p.output().quality, image_ops::Quality::Level(80));
}

#[test]
fn params_are_validated_before_decoding_and_name_the_field() {
    // The input is garbage: a params error must still win, proving nothing was decoded.
    let garbage = b"not an image at all";
    let cases = [
        (r#"{"ops": [{"op": "thumbnail", "width": 0}]}"#, "ops[0].width"),
        (
            r#"{"ops": [{"op": "thumbnail", "width": 10}, {"op": "round-corner", "radius": "80%"}]}"#,
            "ops[1].radius",
        ),
        (r#"{"output": {"quality": 0}}"#, "output.quality"),
        (r#"{"ops": [{"op": "slice", "rows": 2, "cols": 2}, {"op": "thumbnail", "width": 5}]}"#, "ops[0]"),
        (r#"{"ops": [{"op": "watermark", "text": ""}]}"#, "ops[0].text"),
        (r#"{"ops": [{"op": "qr-overlay", "data": "https://example.com", "size": 20}]}"#, "ops[0].size"),
    ];
    for (json, field) in cases {
        match run(json, garbage) {
            Err(Error::InvalidParams { field: f, .. }) => assert!(f.starts_with(field), "{json}: field {f}"),
            other => panic!("{json}: expected invalid params on {field}, got {other:?}"),
        }
    }
}

#[test]
fn missing_asset_is_invalid_params() {
    let photo = common::jpeg_bytes(&common::photo(64, 48));
    let err = run(r#"{"ops": [{"op": "watermark", "image": "logo.png"}]}"#, &photo).unwrap_err();
    assert_eq!(err.field(), Some("ops[0].image"));
    let err = run(r#"{"ops": [{"op": "watermark", "text": "x", "font": "brand.ttf"}]}"#, &photo).unwrap_err();
    assert_eq!(err.field(), Some("ops[0].font"));
}

#[test]
fn corrupt_overlay_is_invalid_params() {
    let photo = common::jpeg_bytes(&common::photo(64, 48));
    let mut assets = Assets::new();
    assets.insert("logo.png".into(), b"\x89PNG\r\n\x1a\nbroken".to_vec());
    let p = pipeline(r#"{"ops": [{"op": "watermark", "image": "logo.png"}]}"#);
    let err = p.run(&photo, &assets).unwrap_err();
    assert_eq!(err.field(), Some("ops[0].image"));
}

#[test]
fn chain_applies_ops_in_order_and_encodes_once() {
    let photo = common::jpeg_bytes(&common::photo(1200, 800));
    let mut assets = Assets::new();
    assets.insert("logo".into(), common::png_bytes(&common::photo_rgba(120, 40)));
    let out = pipeline(
        r#"{"ops": [{"op": "thumbnail", "width": 600},
                    {"op": "watermark", "image": "logo", "opacity": 1, "gravity": "top_left"},
                    {"op": "watermark", "text": "hello"},
                    {"op": "round-corner", "radius": 20}],
            "output": {"format": "png"}}"#,
    )
    .run(&photo, &assets)
    .unwrap();
    let enc = single(out.output);
    assert_eq!((enc.format, enc.width, enc.height, enc.frames), (OutputFormat::Png, 600, 400, 1));
    let img = common::decode_independent(&enc.bytes);
    assert_eq!(img.dimensions(), (600, 400));
    assert_eq!(img.get_pixel(0, 0)[3], 0, "round corners ran last");
    assert_eq!(img.get_pixel(300, 200)[3], 255);
}

#[test]
fn output_format_defaults_to_input_format() {
    let png = common::png_bytes(&common::photo_rgba(40, 30));
    let enc = single(run(r#"{"ops": [{"op": "thumbnail", "width": 20}]}"#, &png).unwrap());
    assert_eq!(enc.format, OutputFormat::Png);
    assert_eq!(&enc.bytes[1..4], b"PNG");
}

#[test]
fn shrink_on_load_gives_the_same_size_as_a_full_decode() {
    // A large JPEG thumbnailed through the pipeline (shrink-on-load) must land on exactly the
    // requested size and look like a thumbnail of the full-size image.
    let src = common::photo(3000, 2000);
    let jpeg = common::jpeg_bytes(&src);
    let enc = single(
        run(
            r#"{"ops": [{"op": "thumbnail", "width": 256, "height": 256}], "output": {"format": "png"}}"#,
            &jpeg,
        )
        .unwrap(),
    );
    assert_eq!((enc.width, enc.height), (256, 171));
    let got = common::decode_independent(&enc.bytes);
    let reference =
        image::imageops::resize(&common::photo_rgba(3000, 2000), 256, 171, image::imageops::Lanczos3);
    let diff = common::mean_abs_diff(&got, &reference);
    assert!(diff < 6.0, "thumbnail differs from a full-resolution reference by {diff}");
}

fn animated_gif(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let mut img = common::photo_rgba(60, 40);
            for p in img.pixels_mut() {
                p[0] = (i * 80) as u8;
            }
            enc.encode_frame(GifFrame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(100, 1))).unwrap();
        }
    }
    out
}

#[test]
fn animation_survives_gif_and_webp_output_and_flattens_for_jpeg() {
    let gif = animated_gif(3);
    let to_gif = single(run(r#"{"ops": [{"op": "thumbnail", "width": 30}]}"#, &gif).unwrap());
    assert_eq!((to_gif.format, to_gif.frames, to_gif.width, to_gif.height), (OutputFormat::Gif, 3, 30, 20));
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&to_gif.bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[1].delay().numer_denom_ms().0 / frames[1].delay().numer_denom_ms().1.max(1), 100);

    let to_webp = single(
        run(r#"{"ops": [{"op": "thumbnail", "width": 30}], "output": {"format": "webp"}}"#, &gif).unwrap(),
    );
    assert_eq!(to_webp.frames, 3);
    let dec = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&to_webp.bytes)).unwrap();
    assert!(dec.has_animation());

    let to_jpeg = single(run(r#"{"output": {"format": "jpeg"}}"#, &gif).unwrap());
    assert_eq!(to_jpeg.frames, 1);
    assert_eq!(common::decode_independent(&to_jpeg.bytes).dimensions(), (60, 40));
}

#[test]
fn slice_returns_tiles_and_a_manifest() {
    let jpeg = common::jpeg_bytes(&common::photo(403, 301));
    let out = run(r#"{"ops": [{"op": "slice", "rows": 3, "cols": 4}], "output": {"format": "png"}}"#, &jpeg)
        .unwrap();
    let Output::Tiles { manifest, tiles } = out else { panic!("expected tiles") };
    assert_eq!((manifest.width, manifest.height, manifest.rows, manifest.cols), (403, 301, 3, 4));
    assert_eq!(tiles.len(), 12);
    for (info, tile) in manifest.tiles.iter().zip(&tiles) {
        let img = common::decode_independent(&tile.bytes);
        assert_eq!(img.dimensions(), (info.width, info.height));
    }
    let area: u32 = manifest.tiles.iter().map(|t| t.width * t.height).sum();
    assert_eq!(area, 403 * 301);
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["tiles"][11]["row"], 2);
    assert_eq!(json["format"], "png");
    // Tiles are encoded on every core the process may use: each is still its own rectangle of
    // the source, byte for byte what encoding that rectangle alone writes.
    let options = image_ops::decode::DecodeOptions::default();
    let source = image_ops::decode::decode(&jpeg, &Limits::default(), &options).unwrap();
    for (info, tile) in manifest.tiles.iter().zip(&tiles) {
        let alone = image_ops::ops::slice::cut(&source, info).unwrap();
        let alone = image_ops::encode::encode(&alone, OutputFormat::Png, &image_ops::OutputParams::default())
            .unwrap();
        assert!(alone.bytes == tile.bytes, "tile {},{} differs", info.row, info.col);
    }
}

#[test]
fn limits_are_configurable() {
    let jpeg = common::jpeg_bytes(&common::photo(300, 200));
    let limits = Limits { max_pixels: 10_000, ..Limits::default() };
    let err = run_with("{}", &jpeg, limits).unwrap_err();
    assert_eq!(err.code(), "too_many_pixels");
    let limits = Limits { max_input_bytes: 100, ..Limits::default() };
    let err = run_with("{}", &jpeg, limits).unwrap_err();
    assert_eq!(err.code(), "input_too_large");
}

#[test]
fn shrink_on_load_keeps_the_exact_output_size() {
    // 1001 x 3001 decodes at 1/8 scale as 126 x 376, whose aspect ratio would give 100 x 298;
    // a full-size decode gives 100 x 300, and so must shrink-on-load.
    let jpeg = common::jpeg_bytes(&common::photo(1001, 3001));
    let enc = single(run(r#"{"ops": [{"op": "thumbnail", "width": 100}]}"#, &jpeg).unwrap());
    assert_eq!((enc.width, enc.height), (100, 300));
    let enc = single(
        run(r#"{"ops": [{"op": "thumbnail", "width": 90, "height": 400, "fit": "fill"}]}"#, &jpeg).unwrap(),
    );
    assert_eq!((enc.width, enc.height), (90, 400));
}
