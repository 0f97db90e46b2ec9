//! Encoder tests. Inputs are built directly as `Image` values; every output is checked with the
//! independent decoders in `image` (zune-jpeg, png, image-webp, gif), never with our own.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;

use common::{decode_independent, mean_abs_diff, photo, photo_rgba};
use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::metadata::LoopCount;
use image::{AnimationDecoder, Rgb, RgbImage, Rgba, RgbaImage};
use image_ops::{
    encode::encode, Color, Encoded, Error, Frame, Image, InputFormat, Limits, OutputFormat, OutputParams,
    Pixels, Validate,
};

const ALL: [OutputFormat; 4] = [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp, OutputFormat::Gif];

fn still_rgb(w: u32, h: u32) -> Image {
    Image::still(Pixels::Rgb(photo(w, h)), InputFormat::Jpeg)
}

/// A photo whose alpha varies: a fully transparent left quarter, a half-transparent band, a
/// horizontal alpha ramp below, opaque elsewhere.
fn rgba_with_alpha(w: u32, h: u32) -> RgbaImage {
    let mut img = photo_rgba(w, h);
    for (x, y, px) in img.enumerate_pixels_mut() {
        px[3] = if x < w / 4 {
            0
        } else if y < h / 4 {
            128
        } else if y < h / 2 {
            (x * 255 / (w - 1)) as u8
        } else {
            255
        };
    }
    img
}

fn params(quality: u8) -> OutputParams {
    OutputParams { quality: quality.into(), ..OutputParams::default() }
}

fn enc(image: &Image, format: OutputFormat, out: &OutputParams) -> Encoded {
    encode(image, format, out).unwrap_or_else(|e| panic!("{format:?}: {e}"))
}

/// JPEG segments (marker, payload) up to the first SOS.
fn jpeg_markers(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    assert_eq!(&bytes[..2], &[0xFF, 0xD8], "SOI");
    let mut out = Vec::new();
    let mut i = 2;
    loop {
        assert_eq!(bytes[i], 0xFF, "marker expected at {i}");
        let marker = bytes[i + 1];
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        out.push((marker, bytes[i + 4..i + 2 + len].to_vec()));
        if marker == 0xDA {
            return out;
        }
        i += 2 + len;
    }
}

/// PNG chunk types in order.
fn png_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let mut out = Vec::new();
    let mut i = 8;
    while i + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[i + 4..i + 8]).into_owned());
        i += 12 + len;
    }
    assert_eq!(i, bytes.len(), "chunks end at the end of the file");
    out
}

/// Top-level RIFF chunk ids of a WebP file.
fn webp_chunks(bytes: &[u8]) -> Vec<String> {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WEBP");
    let mut out = Vec::new();
    let mut i = 12;
    while i + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[i..i + 4]).into_owned());
        i += 8 + len + (len & 1);
    }
    out
}

#[test]
fn every_format_round_trips_close_to_the_input() {
    let image = still_rgb(320, 240);
    let expected = photo_rgba(320, 240);
    // (format, params, mean abs diff bound). The photo has +-8 grain, the hardest case for
    // lossy codecs. Bounds leave ~40 % headroom over measured values (JPEG 2.1, WebP 2.4, GIF 3.7).
    let cases = [
        (OutputFormat::Png, params(80), 0.0),
        (OutputFormat::Webp, OutputParams { lossless: true, ..params(80) }, 0.0),
        (OutputFormat::Jpeg, params(90), 3.0),
        (OutputFormat::Webp, params(80), 4.0),
        (OutputFormat::Gif, params(80), 6.0),
    ];
    for (format, out, bound) in cases {
        let e = enc(&image, format, &out);
        assert_eq!((e.format, e.width, e.height, e.frames), (format, 320, 240, 1));
        let decoded = decode_independent(&e.bytes);
        assert_eq!(decoded.dimensions(), (320, 240), "{format:?}");
        let diff = mean_abs_diff(&decoded, &expected);
        eprintln!(
            "{format:?} lossless={} q{}: {} bytes, mean abs diff {diff:.3}",
            out.lossless,
            out.quality,
            e.bytes.len()
        );
        assert!(diff <= bound, "{format:?} lossless={}: mean abs diff {diff} > {bound}", out.lossless);
    }
}

#[test]
fn rgba_keeps_alpha_in_png_and_webp() {
    let src = rgba_with_alpha(200, 160);
    let image = Image::still(Pixels::Rgba(src.clone()), InputFormat::Png);

    let png = decode_independent(&enc(&image, OutputFormat::Png, &params(80)).bytes);
    assert_eq!(png, src, "PNG is exact, colour under transparency included");

    let lossless = decode_independent(
        &enc(&image, OutputFormat::Webp, &OutputParams { lossless: true, ..params(80) }).bytes,
    );
    for (a, b) in lossless.pixels().zip(src.pixels()) {
        assert_eq!(a[3], b[3], "lossless WebP alpha is exact");
        if b[3] > 0 {
            assert_eq!(a, b, "lossless WebP colour is exact where visible");
        }
    }

    let lossy = decode_independent(&enc(&image, OutputFormat::Webp, &params(80)).bytes);
    let alpha_diff: f64 =
        lossy.pixels().zip(src.pixels()).map(|(a, b)| f64::from(a[3].abs_diff(b[3]))).sum::<f64>()
            / f64::from(200 * 160);
    assert!(alpha_diff < 1.0, "lossy WebP alpha mean abs diff {alpha_diff}");
    assert_eq!(lossy.get_pixel(10, 100)[3], 0, "transparent stays transparent");
    assert_eq!(lossy.get_pixel(150, 150)[3], 255, "opaque stays opaque");
}

#[test]
fn rgba_to_gif_thresholds_alpha() {
    let src = rgba_with_alpha(120, 80);
    let image = Image::still(Pixels::Rgba(src.clone()), InputFormat::Png);
    let gif = decode_independent(&enc(&image, OutputFormat::Gif, &params(80)).bytes);
    for (x, y, px) in gif.enumerate_pixels() {
        let a = src.get_pixel(x, y)[3];
        assert_eq!(px[3], if a < 128 { 0 } else { 255 }, "alpha at {x},{y} (source {a})");
    }
}

#[test]
fn rgba_to_jpeg_is_flattened_onto_the_background() {
    let src = rgba_with_alpha(160, 128);
    let image = Image::still(Pixels::Rgba(src.clone()), InputFormat::Png);
    let background = Color([0x33, 0x66, 0xcc, 0xff]);
    let e = enc(&image, OutputFormat::Jpeg, &OutputParams { background, ..params(95) });
    let jpeg = decode_independent(&e.bytes);
    // Fully transparent region (away from its edge): the background colour.
    for y in 0..128 {
        for x in 0..32 {
            let px = jpeg.get_pixel(x, y);
            for c in 0..3 {
                assert!(px[c].abs_diff(background.0[c]) <= 4, "{x},{y}: {px:?} vs background");
            }
        }
    }
    // Everywhere: close to the straight-alpha blend.
    let expected = RgbaImage::from_fn(160, 128, |x, y| {
        let p = src.get_pixel(x, y);
        let a = u32::from(p[3]);
        let mix =
            |c: usize| ((u32::from(p[c]) * a + u32::from(background.0[c]) * (255 - a) + 127) / 255) as u8;
        Rgba([mix(0), mix(1), mix(2), 255])
    });
    let diff = mean_abs_diff(&jpeg, &expected);
    assert!(diff < 3.0, "mean abs diff to the flattened image {diff}");
}

#[test]
fn jpeg_is_baseline_or_progressive_with_jfif_only() {
    let image = still_rgb(128, 96);
    for progressive in [false, true] {
        let e = enc(&image, OutputFormat::Jpeg, &OutputParams { progressive, ..params(80) });
        let markers = jpeg_markers(&e.bytes);
        let kinds: Vec<u8> = markers.iter().map(|m| m.0).collect();
        let (sof, other) = if progressive { (0xC2, 0xC0) } else { (0xC0, 0xC2) };
        assert!(kinds.contains(&sof), "progressive={progressive}: SOF{:x} in {kinds:x?}", sof - 0xC0);
        assert!(!kinds.contains(&other), "progressive={progressive}: no SOF{:x}", other - 0xC0);
        // Only one APPn segment: APP0 JFIF. No APP1 (Exif/XMP), no APP2 (ICC).
        let apps: Vec<&(u8, Vec<u8>)> = markers.iter().filter(|m| (0xE0..=0xEF).contains(&m.0)).collect();
        assert_eq!(apps.len(), 1, "{kinds:x?}");
        assert_eq!(apps[0].0, 0xE0);
        assert!(apps[0].1.starts_with(b"JFIF\0"));
        // 4:2:0: luma sampled 2x2, chroma 1x1 (SOF payload: P, Y, X, Nf, then 3 bytes per component).
        let sof_payload = &markers.iter().find(|m| m.0 == sof).unwrap().1;
        assert_eq!(sof_payload[5], 3, "three components");
        assert_eq!([sof_payload[7], sof_payload[10], sof_payload[13]], [0x22, 0x11, 0x11]);
        let decoded = decode_independent(&e.bytes);
        assert!(mean_abs_diff(&decoded, &photo_rgba(128, 96)) < 5.0);
    }
}

#[test]
fn outputs_carry_no_metadata() {
    let image = Image::still(Pixels::Rgba(rgba_with_alpha(64, 48)), InputFormat::Png);
    let png = enc(&image, OutputFormat::Png, &params(80)).bytes;
    assert_eq!(png_chunks(&png), ["IHDR", "IDAT", "IEND"]);
    let jpeg = enc(&image, OutputFormat::Jpeg, &params(80)).bytes;
    assert!(!jpeg_markers(&jpeg).iter().any(|m| m.0 == 0xE1 && m.1.starts_with(b"Exif")));
    for lossless in [false, true] {
        let webp = enc(&image, OutputFormat::Webp, &OutputParams { lossless, ..params(80) }).bytes;
        for chunk in webp_chunks(&webp) {
            assert!(["VP8 ", "VP8L", "VP8X", "ALPH"].contains(&chunk.as_str()), "WebP chunk {chunk}");
        }
    }
}

#[test]
fn jpeg_and_webp_size_grows_with_quality() {
    let image = still_rgb(256, 192);
    for format in [OutputFormat::Jpeg, OutputFormat::Webp] {
        let low = enc(&image, format, &params(30)).bytes.len();
        let high = enc(&image, format, &params(90)).bytes.len();
        assert!(low < high, "{format:?}: q30 {low} bytes, q90 {high} bytes");
    }
}

/// A flat-colour graphic, like a screenshot of a page: an orange title bar, then lines of
/// "text" (8x10 glyphs of two strokes from a set of 7, on a 10x16 grid; every third line blank)
/// in 12 px margins. fdeflate compresses it to about 4% of its raw bytes (as it does real
/// screenshots), zlib several times better.
fn graphic(w: u32, h: u32) -> RgbaImage {
    RgbaImage::from_fn(w, h, |x, y| {
        if y < 20 {
            return Rgba([230, 90, 30, 255]);
        }
        let ink = x >= 12 && x + 12 < w && {
            let (gx, gy, line) = ((x - 12) % 10, (y - 20) % 16, (y - 20) / 16);
            let glyph = ((x - 12) / 10 * 5 + line * 3) % 7;
            let (stem, bar) = (glyph % 3, glyph * 3 % 10);
            line % 3 != 2 && gx < 8 && gy < 10 && (gx == stem || gx == stem + 1 || gy == bar || gy == bar + 1)
        };
        if ink {
            Rgba([20, 40, 90, 255])
        } else {
            Rgba([255, 255, 255, 255])
        }
    })
}

#[test]
fn png_compression_level_trades_size() {
    let size = |image: &Image, compression_level| {
        enc(image, OutputFormat::Png, &OutputParams { compression_level, ..params(80) }).bytes.len()
    };
    // A photo: fdeflate (levels 1-6) against zlib-rs level 9.
    let image = still_rgb(256, 192);
    let (stored, fast, default, best) = (size(&image, 0), size(&image, 1), size(&image, 6), size(&image, 9));
    eprintln!("photo: stored {stored}, level 1 {fast}, level 6 {default}, level 9 {best}");
    assert!(best <= fast && fast < stored, "{stored} {fast} {best}");
    assert_eq!(default, fast, "a photo at level 6 is fdeflate's");
    // A graphic: levels 2-6 also try zlib-rs, which finds the repeats fdeflate cannot.
    let image = Image::still(Pixels::Rgba(graphic(256, 192)), InputFormat::Png);
    let (stored, fast, default) = (size(&image, 0), size(&image, 1), size(&image, 6));
    eprintln!("graphic: stored {stored}, level 1 {fast}, level 6 {default}");
    assert!(
        fast * image_ops::encode::PNG_ZLIB_BELOW < stored,
        "fdeflate compresses the graphic below the zlib threshold: {fast} of {stored}"
    );
    assert!(default * 2 < fast, "zlib-rs at level 6 beats fdeflate by half: {default} vs {fast}");
}

/// Every level writes the exact pixels back: RGB, RGBA with transparent and translucent pixels,
/// and a graphic (the zlib-rs path of levels 2-6), each decoded with the independent decoder.
#[test]
fn png_is_lossless_at_every_level() {
    let cases = [
        (Image::still(Pixels::Rgb(photo(97, 61)), InputFormat::Jpeg), photo_rgba(97, 61)),
        (Image::still(Pixels::Rgba(rgba_with_alpha(97, 61)), InputFormat::Png), rgba_with_alpha(97, 61)),
        (Image::still(Pixels::Rgba(graphic(203, 111)), InputFormat::Png), graphic(203, 111)),
    ];
    for (image, expected) in &cases {
        for compression_level in 0..=9 {
            let out = OutputParams { compression_level, ..params(80) };
            let bytes = enc(image, OutputFormat::Png, &out).bytes;
            assert_eq!(png_chunks(&bytes), ["IHDR", "IDAT", "IEND"]);
            let decoded = decode_independent(&bytes);
            assert!(
                decoded == *expected,
                "level {compression_level}: pixels differ ({:?})",
                expected.dimensions()
            );
        }
    }
}

/// Three visibly different frames with different delays.
fn animation(rgba: bool) -> Image {
    let frames = (0..3u32)
        .map(|i| {
            let mut img = photo(96, 64);
            for (x, y, px) in img.enumerate_pixels_mut() {
                if x / 16 == i * 2 && y > 8 {
                    *px = Rgb([250, 20 + 100 * i as u8, 20]);
                }
            }
            let pixels = if rgba {
                let mut img = image::DynamicImage::ImageRgb8(img).into_rgba8();
                for (x, _, px) in img.enumerate_pixels_mut() {
                    if x >= 88 {
                        px[3] = 0;
                    }
                }
                Pixels::Rgba(img)
            } else {
                Pixels::Rgb(img)
            };
            Frame { pixels, delay_ms: 100 * (i + 1) }
        })
        .collect();
    Image { frames, format: InputFormat::Gif, loop_count: 0, shrunk_from: None, metadata: Default::default() }
}

/// A loop count as stored: 0 = forever.
fn loops(count: LoopCount) -> u32 {
    match count {
        LoopCount::Infinite => 0,
        LoopCount::Finite(n) => n.get(),
    }
}

/// Frame `i` as RGBA, with fully transparent pixels made transparent black.
fn frame_rgba(image: &Image, i: usize) -> RgbaImage {
    visible(image.frames[i].pixels.to_rgba())
}

/// Makes fully transparent pixels transparent black: their colour is not part of the image.
fn visible(mut img: RgbaImage) -> RgbaImage {
    for px in img.pixels_mut() {
        if px[3] == 0 {
            *px = Rgba([0, 0, 0, 0]);
        }
    }
    img
}

#[test]
fn animation_to_gif_keeps_frames_delays_and_loop() {
    for (rgba, loop_count) in [(false, 0u16), (true, 3)] {
        let mut image = animation(rgba);
        image.loop_count = loop_count;
        let e = enc(&image, OutputFormat::Gif, &params(80));
        assert_eq!(e.frames, 3);
        let decoder = GifDecoder::new(Cursor::new(&e.bytes)).unwrap();
        let frames = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 3);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.delay().numer_denom_ms(), (100 * (i as u32 + 1), 1), "frame {i} delay");
            let diff = mean_abs_diff(&visible(f.buffer().clone()), &frame_rgba(&image, i));
            eprintln!("GIF rgba={rgba} frame {i}: mean abs diff {diff:.3}");
            assert!(diff < 8.0, "rgba={rgba} frame {i}: mean abs diff {diff}");
        }
        let decoder = GifDecoder::new(Cursor::new(&e.bytes)).unwrap();
        assert_eq!(loops(decoder.loop_count()), u32::from(loop_count), "loop count");
    }
}

#[test]
fn animation_to_webp_keeps_frames_delays_and_loop() {
    for (rgba, lossless, loop_count) in [(false, false, 0u16), (true, true, 5), (true, false, 0)] {
        let mut image = animation(rgba);
        image.loop_count = loop_count;
        let e = enc(&image, OutputFormat::Webp, &OutputParams { lossless, ..params(85) });
        assert_eq!((e.frames, e.width, e.height), (3, 96, 64));
        let chunks = webp_chunks(&e.bytes);
        assert!(chunks.contains(&"ANIM".to_string()) && chunks.contains(&"ANMF".to_string()), "{chunks:?}");
        let decoder = WebPDecoder::new(Cursor::new(&e.bytes)).unwrap();
        assert!(decoder.has_animation());
        assert_eq!(loops(decoder.loop_count()), u32::from(loop_count), "loop count");
        let frames = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), 3, "rgba={rgba} lossless={lossless}");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.delay().numer_denom_ms(), (100 * (i as u32 + 1), 1), "frame {i} delay");
            let diff = mean_abs_diff(&visible(f.buffer().clone()), &frame_rgba(&image, i));
            eprintln!("WebP rgba={rgba} lossless={lossless} frame {i}: mean abs diff {diff:.3}");
            if lossless {
                // Lossless, but decoders (image-webp, like libwebp's demux) alpha-blend
                // sub-frames with an approximate 1/255 that can lose one level on opaque pixels.
                let (a, b) = (visible(f.buffer().clone()), frame_rgba(&image, i));
                for (p, q) in a.pixels().zip(b.pixels()) {
                    assert_eq!(p[3], q[3], "frame {i}: alpha is exact");
                    assert!((0..3).all(|c| p[c].abs_diff(q[c]) <= 1), "frame {i}: {p:?} vs {q:?}");
                }
            }
            let bound = if lossless { 0.5 } else { 4.0 };
            assert!(diff <= bound, "rgba={rgba} lossless={lossless} frame {i}: mean abs diff {diff}");
        }
    }
}

#[test]
fn animation_to_jpeg_and_png_keeps_the_first_frame() {
    let image = animation(false);
    for format in [OutputFormat::Jpeg, OutputFormat::Png] {
        let e = enc(&image, format, &params(95));
        assert_eq!((e.frames, e.width, e.height), (1, 96, 64));
        let decoded = decode_independent(&e.bytes);
        let first = mean_abs_diff(&decoded, &frame_rgba(&image, 0));
        let second = mean_abs_diff(&decoded, &frame_rgba(&image, 1));
        assert!(first < 4.0 && first < second, "{format:?}: first {first}, second {second}");
    }
    let png = enc(&image, OutputFormat::Png, &params(80)).bytes;
    assert_eq!(png_chunks(&png), ["IHDR", "IDAT", "IEND"], "not an APNG");
}

#[test]
fn still_webp_and_gif_are_not_animated() {
    let image = still_rgb(64, 48);
    let webp = enc(&image, OutputFormat::Webp, &params(80)).bytes;
    assert!(!WebPDecoder::new(Cursor::new(&webp)).unwrap().has_animation());
    let gif = enc(&image, OutputFormat::Gif, &params(80)).bytes;
    let frames = GifDecoder::new(Cursor::new(&gif)).unwrap().into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 1);
}

#[test]
fn tiny_and_odd_sizes_encode() {
    for (w, h) in [(1, 1), (1, 17), (17, 1), (33, 19)] {
        for rgba in [false, true] {
            let pixels = if rgba { Pixels::Rgba(photo_rgba(w, h)) } else { Pixels::Rgb(photo(w, h)) };
            let image = Image::still(pixels, InputFormat::Png);
            for format in ALL {
                let e = enc(&image, format, &params(80));
                assert_eq!(decode_independent(&e.bytes).dimensions(), (w, h), "{format:?} {w}x{h}");
            }
        }
    }
}

#[test]
fn unencodable_images_are_errors_not_panics() {
    let empty = Image::still(Pixels::Rgb(RgbImage::new(0, 0)), InputFormat::Png);
    let none = Image {
        frames: vec![],
        format: InputFormat::Gif,
        loop_count: 0,
        shrunk_from: None,
        metadata: Default::default(),
    };
    for format in ALL {
        assert!(matches!(encode(&empty, format, &params(80)), Err(Error::Encode(_))), "{format:?}");
        assert!(matches!(encode(&none, format, &params(80)), Err(Error::Encode(_))), "{format:?}");
    }
    let wide = Image::still(Pixels::Rgb(RgbImage::new(16_384, 1)), InputFormat::Png);
    let err = encode(&wide, OutputFormat::Webp, &params(80)).unwrap_err();
    assert_eq!(err.field(), Some("output.format"), "{err}");
    let png = enc(&wide, OutputFormat::Png, &params(80));
    assert_eq!((png.width, png.height), (16_384, 1));

    // Frames of different sizes (never produced by our decoder) are refused, not read out of bounds.
    let mut odd = animation(false);
    odd.frames[2].pixels = Pixels::Rgb(photo(10, 10));
    for format in [OutputFormat::Webp, OutputFormat::Gif] {
        assert!(matches!(encode(&odd, format, &params(80)), Err(Error::Encode(_))), "{format:?}");
    }
}

#[test]
fn output_params_validate_and_default() {
    let limits = Limits::default();
    let parsed: OutputParams = serde_json::from_str("{}").unwrap();
    assert_eq!(parsed, OutputParams::default());
    assert_eq!((parsed.quality, parsed.compression_level, parsed.effort), (80.into(), 6, 4));
    parsed.validate("output", &limits).unwrap();
    let parsed: OutputParams =
        serde_json::from_str(r#"{"format":"jpg","quality":100,"compression_level":0,"effort":6}"#).unwrap();
    parsed.validate("output", &limits).unwrap();
    assert_eq!(parsed.format, Some(OutputFormat::Jpeg));
    for (json, field) in [
        (r#"{"quality":0}"#, "output.quality"),
        (r#"{"quality":101}"#, "output.quality"),
        (r#"{"compression_level":10}"#, "output.compression_level"),
        (r#"{"effort":7}"#, "output.effort"),
    ] {
        let p: OutputParams = serde_json::from_str(json).unwrap();
        assert_eq!(p.validate("output", &limits).unwrap_err().field(), Some(field), "{json}");
    }
    assert!(serde_json::from_str::<OutputParams>(r#"{"qualty":50}"#).is_err());
}

#[test]
fn one_megapixel_gif_and_webp_frames_are_reasonably_fast() {
    // Not a benchmark: a guard against pathological settings (e.g. NeuQuant at speed 1 or
    // WebP method 6), with a bound loose enough for a loaded 2-core machine.
    let image = still_rgb(1000, 1000);
    for format in ALL {
        let start = std::time::Instant::now();
        let e = enc(&image, format, &params(80));
        let elapsed = start.elapsed();
        eprintln!("{format:?}: 1 MP in {elapsed:?}, {} bytes", e.bytes.len());
        assert!(elapsed.as_secs_f64() < 5.0, "{format:?} took {elapsed:?}");
    }
}

/// Lossy WebP imports the pixels straight to YUV instead of through the `webp` crate's ARGB
/// picture (a 4-byte-a-pixel copy); the bytes must stay exactly what that path writes with one
/// thread.
#[test]
fn webp_writes_the_webp_crates_bytes() {
    let reference = |raw: &[u8], layout: webp::PixelLayout, w: u32, h: u32, quality: u8, effort: u8| {
        let mut config = webp::WebPConfig::new().unwrap();
        config.lossless = 0;
        config.quality = f32::from(quality);
        config.method = i32::from(effort);
        config.alpha_compression = 1;
        config.alpha_quality = 100;
        webp::Encoder::new(raw, layout, w, h).encode_advanced(&config).unwrap().to_vec()
    };
    for (w, h) in [(1, 1), (3, 5), (17, 9), (640, 427), (1001, 603)] {
        for (quality, effort) in [(80, 4), (30, 0), (95, 6)] {
            let out = OutputParams { effort, ..params(quality) };
            let rgb = photo(w, h);
            let ours =
                enc(&Image::still(Pixels::Rgb(rgb.clone()), InputFormat::Jpeg), OutputFormat::Webp, &out);
            let theirs = reference(rgb.as_raw(), webp::PixelLayout::Rgb, w, h, quality, effort);
            assert!(ours.bytes == theirs, "RGB {w}x{h} q{quality} m{effort}: bytes differ");
            let rgba = rgba_with_alpha(w.max(4), h.max(4));
            let (rw, rh) = rgba.dimensions();
            let ours =
                enc(&Image::still(Pixels::Rgba(rgba.clone()), InputFormat::Png), OutputFormat::Webp, &out);
            let theirs = reference(rgba.as_raw(), webp::PixelLayout::Rgba, rw, rh, quality, effort);
            assert!(ours.bytes == theirs, "RGBA {rw}x{rh} q{quality} m{effort}: bytes differ");
        }
    }
    // Lossless keeps the crate's path; with more than one core it runs libwebp on a second
    // thread (`thread_level`), which must not change the bytes either.
    for (w, h) in [(17, 9), (320, 213)] {
        for effort in [0, 4, 6] {
            let rgba = rgba_with_alpha(w, h);
            let out = OutputParams { effort, lossless: true, ..params(80) };
            let ours =
                enc(&Image::still(Pixels::Rgba(rgba.clone()), InputFormat::Png), OutputFormat::Webp, &out);
            let mut config = webp::WebPConfig::new().unwrap();
            config.lossless = 1;
            config.quality = 75.0;
            config.method = i32::from(effort);
            let theirs = webp::Encoder::new(rgba.as_raw(), webp::PixelLayout::Rgba, w, h)
                .encode_advanced(&config)
                .unwrap();
            assert!(ours.bytes == theirs.to_vec(), "lossless {w}x{h} m{effort}: bytes differ");
        }
    }
}
