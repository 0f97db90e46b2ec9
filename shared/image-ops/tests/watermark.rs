//! Text and image watermarks: golden images and behavioural checks on decoded pixels.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_golden, photo, photo_rgba};
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use image_ops::ops::watermark_image::{watermark_image, ImageWatermarkParams};
use image_ops::ops::watermark_text::{watermark_text, TextWatermarkParams};
use image_ops::{Frame, Image, InputFormat, Limits, Pixels, Validate};
use serde_json::{json, Value};

const CJK_FONT: &[u8] = include_bytes!("fixtures/NotoSansCJKsc-subset.otf");

fn still(rgb: RgbImage) -> Image {
    Image::still(Pixels::Rgb(rgb), InputFormat::Jpeg)
}

/// Params as the HTTP API would receive them (defaults filled in by serde).
fn text_params(v: Value) -> TextWatermarkParams {
    let p: TextWatermarkParams = serde_json::from_value(v).unwrap();
    p.validate("ops[0]", &Limits::default()).unwrap();
    p
}

fn image_params(v: Value) -> ImageWatermarkParams {
    let mut v = v;
    v["image"] = json!("logo");
    let p: ImageWatermarkParams = serde_json::from_value(v).unwrap();
    p.validate("ops[0]", &Limits::default()).unwrap();
    p
}

fn rgba_of(img: &Image) -> RgbaImage {
    img.first().to_rgba()
}

/// A synthetic logo: an anti-aliased orange disc with a translucent blue ring and a fully
/// transparent (but green-coloured) background, so that colour bleeding would show.
fn logo(size: u32) -> RgbaImage {
    let c = size as f32 / 2.0;
    RgbaImage::from_fn(size, size, |x, y| {
        let d = ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - c).powi(2)).sqrt();
        let disc = (c * 0.6 - d + 0.5).clamp(0.0, 1.0);
        let ring = ((c * 0.95 - d + 0.5).clamp(0.0, 1.0) - (c * 0.75 - d + 0.5).clamp(0.0, 1.0)).max(0.0);
        if disc > 0.0 {
            Rgba([250, 140, 20, (disc * 255.0).round() as u8])
        } else if ring > 0.0 {
            Rgba([30, 60, 220, (ring * 160.0).round() as u8])
        } else {
            Rgba([0, 255, 0, 0])
        }
    })
}

/// Pixels that differ between two same-sized images, as (x, y).
fn changed(a: &RgbaImage, b: &RgbaImage) -> Vec<(u32, u32)> {
    a.enumerate_pixels().filter(|(x, y, p)| b.get_pixel(*x, *y) != *p).map(|(x, y, _)| (x, y)).collect()
}

fn bbox(points: &[(u32, u32)]) -> (u32, u32, u32, u32) {
    let x0 = points.iter().map(|p| p.0).min().unwrap();
    let y0 = points.iter().map(|p| p.1).min().unwrap();
    let x1 = points.iter().map(|p| p.0).max().unwrap();
    let y1 = points.iter().map(|p| p.1).max().unwrap();
    (x0, y0, x1, y1)
}

// ---- golden images -------------------------------------------------------------------------

#[test]
fn golden_text_default_font_bottom_right() {
    let mut img = still(photo(240, 160));
    let p = text_params(
        json!({"text": "© imgfn 2025", "size": 22, "opacity": 0.85, "offset_x": 12, "offset_y": 10}),
    );
    watermark_text(&mut img, &p, None).unwrap();
    assert!(matches!(img.first(), Pixels::Rgb(_)), "an RGB frame stays RGB");
    assert_golden("watermark_text_bottom_right", &rgba_of(&img), 2);
}

#[test]
fn golden_text_multiline_centred_aligned() {
    for (align, name) in
        [("left", "watermark_text_multiline_left"), ("right", "watermark_text_multiline_right")]
    {
        let mut img = still(photo(260, 180));
        let p = text_params(json!({
            "text": "Sample\nmulti-line watermark\nAVATAR WAVE", "size": 20, "gravity": "center",
            "align": align, "color": "#202040", "opacity": 0.9
        }));
        watermark_text(&mut img, &p, None).unwrap();
        assert_golden(name, &rgba_of(&img), 2);
    }
}

#[test]
fn golden_text_percent_size() {
    let mut img = still(photo(300, 120));
    let p = text_params(json!({"text": "10% of width", "size": "10%", "gravity": "top_left", "offset_x": 8,
        "offset_y": 8, "color": "#ffee00", "opacity": 1.0}));
    watermark_text(&mut img, &p, None).unwrap();
    let out = rgba_of(&img);
    // 10% of 300 px = 30 px per em: DejaVu's cap height is 0.73 em, so "1" is ~22 px tall.
    let ink = changed(&out, &photo_rgba(300, 120));
    let (_, y0, _, y1) = bbox(&ink);
    assert!((20..=32).contains(&(y1 - y0 + 1)), "text height {}", y1 - y0 + 1);
    assert_golden("watermark_text_percent", &out, 2);
}

#[test]
fn golden_text_tiled() {
    let mut img = still(photo(240, 180));
    let p = text_params(json!({"text": "imgfn", "size": 16, "opacity": 0.5, "tile": {"spacing": 20}}));
    watermark_text(&mut img, &p, None).unwrap();
    let out = rgba_of(&img);
    // Repeated all over: every 60x60 cell has ink.
    let ink = changed(&out, &photo_rgba(240, 180));
    for cy in 0..3 {
        for cx in 0..4 {
            let n = ink.iter().filter(|(x, y)| x / 60 == cx && y / 60 == cy).count();
            assert!(n > 30, "cell ({cx}, {cy}) has {n} changed pixels");
        }
    }
    assert_golden("watermark_text_tiled", &out, 2);
}

#[test]
fn golden_text_cjk() {
    let mut img = still(photo(240, 160));
    let p = text_params(json!({"text": "水印测试\n你好世界", "font": "cjk", "size": 28, "gravity": "bottom",
        "offset_y": 10, "opacity": 0.9}));
    watermark_text(&mut img, &p, Some(CJK_FONT)).unwrap();
    assert_golden("watermark_text_cjk", &rgba_of(&img), 2);
}

#[test]
fn golden_image_watermark_corners() {
    let mut img = still(photo(280, 200));
    let overlay = logo(64);
    let corners = [
        json!({"gravity": "top_left", "offset_x": 8, "offset_y": 8, "opacity": 1.0}),
        json!({"gravity": "top_right", "scale": 0.1, "offset_x": 8, "offset_y": 8, "opacity": 0.5}),
        json!({"gravity": "bottom_left", "scale": 0.3, "offset_x": 0, "offset_y": 0, "opacity": 0.8}),
        json!({"gravity": "bottom_right", "scale": 0.2, "offset_x": 16, "offset_y": 16}),
    ];
    for c in corners {
        watermark_image(&mut img, &image_params(c), &overlay).unwrap();
    }
    assert_golden("watermark_image_corners", &rgba_of(&img), 2);
}

#[test]
fn golden_image_watermark_tiled() {
    let mut img = still(photo(240, 180));
    let p = image_params(json!({"scale": 0.12, "opacity": 0.7, "tile": {"spacing": 16}}));
    watermark_image(&mut img, &p, &logo(48)).unwrap();
    assert_golden("watermark_image_tiled", &rgba_of(&img), 2);
}

#[test]
fn golden_watermarks_on_rgba_keep_alpha_right() {
    // A photo whose alpha falls from opaque (left) to fully transparent (x >= 150).
    let mut base = photo_rgba(220, 140);
    for (x, _, p) in base.enumerate_pixels_mut() {
        p[3] = (255 - x.min(150) * 255 / 150) as u8;
    }
    let mut img = Image::still(Pixels::Rgba(base.clone()), InputFormat::Png);
    let text = text_params(json!({"text": "alpha", "size": 30, "gravity": "left", "offset_x": 6,
        "opacity": 1.0, "color": "#ffffffc0"}));
    watermark_text(&mut img, &text, None).unwrap();
    let logo_p = image_params(json!({"gravity": "right", "offset_x": 4, "opacity": 0.6}));
    watermark_image(&mut img, &logo_p, &logo(56)).unwrap();
    let out = rgba_of(&img);
    // Where the logo is fully opaque and the base fully transparent, alpha is exactly 0.6.
    let p = out.get_pixel(219 - 4 - 28, 70);
    assert_eq!(p.0, [250, 140, 20, 153], "logo centre over transparency");
    // Alpha never decreases (source over).
    for (x, y, p) in out.enumerate_pixels() {
        assert!(p[3] >= base.get_pixel(x, y)[3], "alpha dropped at ({x}, {y})");
    }
    assert_golden("watermark_rgba", &out, 2);
}

// ---- behaviour -----------------------------------------------------------------------------

#[test]
fn cjk_needs_the_cjk_font() {
    let base = photo(200, 120);
    let p = text_params(
        json!({"text": "你好世界", "font": "cjk", "size": 36, "gravity": "center", "opacity": 1.0}),
    );
    let mut with_cjk = still(base.clone());
    watermark_text(&mut with_cjk, &p, Some(CJK_FONT)).unwrap();
    let orig = image::DynamicImage::ImageRgb8(base.clone()).into_rgba8();
    let ink = changed(&rgba_of(&with_cjk), &orig);
    assert!(ink.len() > 400, "CJK text has ink: {} pixels", ink.len());
    // The CJK glyphs are drawn from the font: 4 glyphs of ~36 px each, side by side.
    let (x0, y0, x1, y1) = bbox(&ink);
    assert!(
        (120..=150).contains(&(x1 - x0 + 1)) && (28..=38).contains(&(y1 - y0 + 1)),
        "{:?}",
        (x0, y0, x1, y1)
    );
    // DejaVu has no CJK glyphs: refused, naming the characters, never drawn as .notdef boxes.
    let mut with_default = still(base.clone());
    let err = watermark_text(&mut with_default, &TextWatermarkParams { font: None, ..p }, None).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("text")), "{err}");
    assert!(err.to_string().contains("the font has no glyph for '你', '好', '世', '界'"), "{err}");
    assert_eq!(rgba_of(&with_default), orig, "nothing drawn");
}

#[test]
fn missing_glyphs_are_refused_before_decoding_naming_them() {
    // The bundled font: at validation, under the op's field.
    let p: TextWatermarkParams = serde_json::from_value(json!({"text": "© 2026 水印 ✓ 水"})).unwrap();
    let err = p.validate("ops[1]", &Limits::default()).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("ops[1].text")), "{err}");
    // Each missing character once, in order; the ones DejaVu has (©, ✓) are not listed.
    assert!(
        err.to_string().contains("the font has no glyph for '水', '印' (the bundled DejaVu Sans"),
        "{err}"
    );
    // Many missing characters are listed up to a dozen.
    let many: String = ('\u{4e00}'..='\u{4e1f}').collect();
    let err = TextWatermarkParams::new(many).validate("ops[0]", &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("and 20 more"), "{err}");
    // Control characters other than \n are not missing glyphs (a tab is a space, the rest are not
    // drawn), and invisible format characters a font lacks are left out.
    for ok in ["tab\there\r\nbell\u{7} nul\u{0}", "zero\u{200b}width\u{200d}joiner\u{fe0f}\u{feff}"] {
        TextWatermarkParams::new(ok).validate("ops[0]", &Limits::default()).unwrap();
        let mut img = still(photo(200, 80));
        watermark_text(&mut img, &TextWatermarkParams::new(ok), None).unwrap();
    }
    // A whitespace character the font lacks is named by its code point.
    let err = TextWatermarkParams::new("a\u{3000}b").validate("ops[0]", &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("U+3000"), "{err}");

    // A font asset: when the pipeline runs, after the assets load and before the input is even
    // probed (the input here is not an image at all).
    let spec: image_ops::PipelineSpec = serde_json::from_value(json!({
        "ops": [{"op": "thumbnail", "width": 50},
                {"op": "watermark", "text": "水印 ok", "font": "cjk.otf"}]}))
    .unwrap();
    let pipeline = image_ops::Pipeline::new(spec, Limits::default()).unwrap();
    let assets = image_ops::Assets::from([("cjk.otf".to_owned(), CJK_FONT.to_vec())]);
    let err = pipeline.run(b"not an image", &assets).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("ops[1].text")), "{err}");
    // The subset has only its eight CJK characters: not even a space.
    assert!(
        err.to_string().contains("the font has no glyph for U+0020, 'o', 'k' (font asset \"cjk.otf\")"),
        "{err}"
    );
}

#[test]
fn text_is_never_clipped() {
    let long = "This watermark text is far too long to fit on such a small image at this size";
    let cases = [
        (json!({"text": long, "size": 40, "offset_x": 10, "offset_y": 10}), (10, 10)),
        (json!({"text": long, "size": "50%", "gravity": "top_left", "offset_x": 5, "offset_y": 20}), (5, 20)),
        (json!({"text": format!("{long}\n{long}\nWWW"), "size": 300, "gravity": "center"}), (0, 0)),
        (
            json!({"text": "Tall\nstack\nof\nlines\nhere\nyes", "size": 60, "gravity": "top", "offset_y": 4}),
            (0, 4),
        ),
    ];
    for (v, (mx, my)) in cases {
        let (w, h) = (120u32, 80u32);
        // A flat grey base: any coverage changes it.
        let base = RgbImage::from_pixel(w, h, Rgb([100, 100, 100]));
        let mut p = text_params(v.clone());
        p.opacity = 1.0;
        let mut img = still(base.clone());
        watermark_text(&mut img, &p, None).unwrap();
        let ink = changed(&rgba_of(&img), &image::DynamicImage::ImageRgb8(base).into_rgba8());
        assert!(ink.len() > 40, "{v}: text still drawn ({} pixels)", ink.len());
        let (x0, y0, x1, y1) = bbox(&ink);
        assert!(
            x0 >= mx && y0 >= my && x1 < w - mx && y1 < h - my,
            "{v}: ink {:?} outside margins",
            (x0, y0, x1, y1)
        );
        // Shrunk to fit, not to nothing: it spans most of the limiting dimension.
        assert!(x1 - x0 + 1 >= (w - 2 * mx) / 2 || y1 - y0 + 1 >= (h - 2 * my) / 2, "{v}: needlessly small");
    }
}

#[test]
fn opacity_zero_changes_nothing() {
    let base = photo(120, 90);
    let mut img = still(base.clone());
    watermark_text(&mut img, &text_params(json!({"text": "invisible", "opacity": 0.0, "size": 30})), None)
        .unwrap();
    let p = image_params(json!({"opacity": 0.0, "tile": {}}));
    watermark_image(&mut img, &p, &logo(40)).unwrap();
    assert_eq!(img, still(base));
    // A fully transparent colour is invisible too.
    let mut img = still(photo(120, 90));
    let p = text_params(json!({"text": "invisible", "opacity": 1.0, "color": "#ff000000"}));
    watermark_text(&mut img, &p, None).unwrap();
    assert_eq!(img, still(photo(120, 90)));
}

#[test]
fn opaque_white_text_has_pure_white_interiors() {
    let base = photo(200, 100);
    // The photo has no pure white pixel.
    assert!(!base.pixels().any(|p| p.0 == [255, 255, 255]));
    let mut img = still(base.clone());
    let p = text_params(json!({"text": "HIH", "size": 70, "gravity": "center", "opacity": 1.0}));
    watermark_text(&mut img, &p, None).unwrap();
    let out = rgba_of(&img);
    let white = out.pixels().filter(|p| p.0 == [255, 255, 255, 255]).count();
    // Three stems-and-bars glyphs of ~50 px height and ~9 px stroke: well over 1,000 px.
    assert!(white > 1000, "{white} pure white pixels");
    // Anti-aliased edges: some pixels lie between the photo and white.
    let ink = changed(&out, &image::DynamicImage::ImageRgb8(base).into_rgba8());
    assert!(ink.len() > white + 50, "edges are anti-aliased");
    // At 0.5 opacity no pixel becomes pure white and interiors are halfway.
    let mut half = still(photo(200, 100));
    let p = text_params(json!({"text": "HIH", "size": 70, "gravity": "center", "opacity": 0.5}));
    watermark_text(&mut half, &p, None).unwrap();
    let half = rgba_of(&half);
    let orig = photo_rgba(200, 100);
    let mut checked = 0;
    for (x, y, q) in out.enumerate_pixels() {
        if q.0 == [255, 255, 255, 255] {
            let (o, h) = (orig.get_pixel(x, y), half.get_pixel(x, y));
            for c in 0..3 {
                let want = (f32::from(o[c]) + 255.0) / 2.0;
                assert!((f32::from(h[c]) - want).abs() <= 1.0, "({x}, {y}) {h:?} vs {o:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, white);
}

#[test]
fn image_watermark_lands_on_the_expected_rectangle() {
    let base = photo(200, 150);
    let overlay = RgbaImage::from_pixel(30, 20, Rgba([255, 0, 0, 255]));
    let mut img = still(base.clone());
    let p = image_params(json!({"gravity": "bottom_right", "offset_x": 24, "offset_y": 24, "opacity": 1.0}));
    watermark_image(&mut img, &p, &overlay).unwrap();
    let Pixels::Rgb(out) = img.first() else { panic!("RGB stays RGB") };
    for (x, y, px) in out.enumerate_pixels() {
        let inside = (146..176).contains(&x) && (106..126).contains(&y);
        if inside {
            assert_eq!(px, &Rgb([255, 0, 0]), "({x}, {y})");
        } else {
            assert_eq!(px, base.get_pixel(x, y), "({x}, {y}) changed");
        }
    }
    // Same with half opacity: exactly the average, same rectangle.
    let mut img = still(base.clone());
    let p = image_params(json!({"gravity": "bottom_right", "offset_x": 24, "offset_y": 24, "opacity": 0.5}));
    watermark_image(&mut img, &p, &overlay).unwrap();
    let out = rgba_of(&img);
    let ch = changed(&out, &image::DynamicImage::ImageRgb8(base.clone()).into_rgba8());
    assert_eq!(bbox(&ch), (146, 106, 175, 125));
    let (o, q) = (base.get_pixel(150, 110), out.get_pixel(150, 110));
    // Effective alpha round(0.5 * 255) = 128.
    assert_eq!(u32::from(q[0]), (255 * 128 + u32::from(o[0]) * 127 + 127) / 255);
}

#[test]
fn image_watermark_is_shrunk_to_fit_and_scaled() {
    // A 300x100 overlay on a 200x150 image with offsets 10: at most 180 px wide.
    let overlay = RgbaImage::from_pixel(300, 100, Rgba([0, 0, 255, 255]));
    let base = RgbImage::from_pixel(200, 150, Rgb([0, 0, 0]));
    let mut img = still(base.clone());
    let p = image_params(json!({"gravity": "top_left", "offset_x": 10, "offset_y": 10, "opacity": 1.0}));
    watermark_image(&mut img, &p, &overlay).unwrap();
    let ch = changed(&rgba_of(&img), &image::DynamicImage::ImageRgb8(base.clone()).into_rgba8());
    assert_eq!(bbox(&ch), (10, 10, 189, 69));
    // scale = 0.25 of the width: 50 x 17, centred.
    let mut img = still(base.clone());
    let p = image_params(json!({"gravity": "center", "scale": 0.25, "opacity": 1.0}));
    watermark_image(&mut img, &p, &overlay).unwrap();
    let ch = changed(&rgba_of(&img), &image::DynamicImage::ImageRgb8(base).into_rgba8());
    assert_eq!(bbox(&ch), (75, 66, 124, 82));
}

#[test]
fn every_frame_is_watermarked() {
    let frames: Vec<Frame> = (0..3)
        .map(|i| {
            let rgb = RgbImage::from_fn(90, 60, |x, y| Rgb([(x * 2 + i * 40) as u8, (y * 3) as u8, 90]));
            Frame { pixels: Pixels::Rgb(rgb), delay_ms: 100 }
        })
        .collect();
    let mut anim = Image {
        frames: frames.clone(),
        format: InputFormat::Gif,
        loop_count: 0,
        shrunk_from: None,
        metadata: Default::default(),
    };
    let text = text_params(json!({"text": "anim", "size": 14}));
    let logo_p = image_params(json!({"gravity": "top_left", "scale": 0.2}));
    watermark_text(&mut anim, &text, None).unwrap();
    watermark_image(&mut anim, &logo_p, &logo(32)).unwrap();
    for (i, f) in frames.into_iter().enumerate() {
        assert_ne!(anim.frames[i].pixels, f.pixels, "frame {i} is watermarked");
        let mut single = Image::still(f.pixels, InputFormat::Gif);
        watermark_text(&mut single, &text, None).unwrap();
        watermark_image(&mut single, &logo_p, &logo(32)).unwrap();
        assert_eq!(anim.frames[i].pixels, single.frames[0].pixels, "frame {i}");
        assert_eq!(anim.frames[i].delay_ms, 100);
    }
}

#[test]
fn bad_font_bytes_name_the_font() {
    let mut img = still(photo(64, 64));
    let p = text_params(json!({"text": "x", "font": "brand"}));
    for bytes in [&b""[..], b"not a font at all", &[0u8; 64][..]] {
        let err = watermark_text(&mut img, &p, Some(bytes)).unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        assert_eq!(err.field(), Some("font"), "{err}");
    }
}

/// Wraps a single OpenType font into a one-font TrueType collection (`ttcf` header; table
/// offsets are from the start of the file, so they move by the header's 16 bytes).
fn as_collection(otf: &[u8]) -> Vec<u8> {
    let mut font = otf.to_vec();
    let tables = usize::from(u16::from_be_bytes([font[4], font[5]]));
    for i in 0..tables {
        let at = 12 + 16 * i + 8;
        let off = u32::from_be_bytes(font[at..at + 4].try_into().unwrap()) + 16;
        font[at..at + 4].copy_from_slice(&off.to_be_bytes());
    }
    let mut ttc = b"ttcf\0\x01\0\0\0\0\0\x01\0\0\0\x10".to_vec();
    ttc.extend_from_slice(&font);
    ttc
}

#[test]
fn a_font_collection_uses_its_first_face() {
    let p = text_params(json!({"text": "水印", "font": "cjk", "size": 30, "opacity": 1.0}));
    let mut from_otf = still(photo(100, 60));
    watermark_text(&mut from_otf, &p, Some(CJK_FONT)).unwrap();
    let mut from_ttc = still(photo(100, 60));
    watermark_text(&mut from_ttc, &p, Some(&as_collection(CJK_FONT))).unwrap();
    assert_ne!(from_otf, still(photo(100, 60)));
    assert_eq!(from_otf, from_ttc);
}

#[test]
fn offsets_leaving_no_room_are_reported() {
    let mut img = still(photo(40, 40));
    let p = text_params(json!({"text": "x", "offset_x": 20}));
    assert_eq!(watermark_text(&mut img, &p, None).unwrap_err().field(), Some("offset_x"));
    let p = image_params(json!({"gravity": "center", "offset_y": -20}));
    assert_eq!(watermark_image(&mut img, &p, &logo(8)).unwrap_err().field(), Some("offset_y"));
    let p = image_params(json!({}));
    let err = watermark_image(&mut img, &p, &RgbaImage::new(0, 5)).unwrap_err();
    assert_eq!(err.field(), Some("image"));
}

#[test]
fn params_are_validated_with_field_names() {
    let limits = Limits::default();
    let text_err = |v: Value| {
        let p: TextWatermarkParams = serde_json::from_value(v).unwrap();
        p.validate("ops[2]", &limits).unwrap_err().field().map(str::to_owned)
    };
    assert_eq!(text_err(json!({"text": ""})).as_deref(), Some("ops[2].text"));
    assert_eq!(text_err(json!({"text": "  \n "})).as_deref(), Some("ops[2].text"));
    assert_eq!(text_err(json!({"text": "a".repeat(1001)})).as_deref(), Some("ops[2].text"));
    assert_eq!(text_err(json!({"text": "a\n".repeat(50)})).as_deref(), Some("ops[2].text"));
    assert_eq!(text_err(json!({"text": "a", "opacity": 1.5})).as_deref(), Some("ops[2].opacity"));
    assert_eq!(text_err(json!({"text": "a", "opacity": -0.1})).as_deref(), Some("ops[2].opacity"));
    assert_eq!(text_err(json!({"text": "a", "size": 0})).as_deref(), Some("ops[2].size"));
    assert_eq!(text_err(json!({"text": "a", "size": "51%"})).as_deref(), Some("ops[2].size"));
    assert_eq!(text_err(json!({"text": "a", "size": 100_000})).as_deref(), Some("ops[2].size"));
    assert_eq!(text_err(json!({"text": "a", "font": ""})).as_deref(), Some("ops[2].font"));
    assert_eq!(text_err(json!({"text": "a", "offset_x": 1_000_000})).as_deref(), Some("ops[2].offset_x"));
    assert_eq!(
        text_err(json!({"text": "a", "tile": {"spacing": 10_001}})).as_deref(),
        Some("ops[2].tile.spacing")
    );
    // At the limits: fine.
    let ok: TextWatermarkParams = serde_json::from_value(
        json!({"text": format!("{}b", "a\n".repeat(49)), "size": "50%", "opacity": 0, "tile": {"spacing": 10_000}}),
    )
    .unwrap();
    ok.validate("ops[2]", &limits).unwrap();

    let image_err = |v: Value| {
        let p: ImageWatermarkParams = serde_json::from_value(v).unwrap();
        p.validate("ops[1]", &limits).unwrap_err().field().map(str::to_owned)
    };
    assert_eq!(image_err(json!({"image": "l", "scale": 0.0})).as_deref(), Some("ops[1].scale"));
    assert_eq!(image_err(json!({"image": "l", "scale": 1.01})).as_deref(), Some("ops[1].scale"));
    assert_eq!(image_err(json!({"image": "l", "opacity": 2})).as_deref(), Some("ops[1].opacity"));
    assert_eq!(image_err(json!({"image": ""})).as_deref(), Some("ops[1].image"));
    assert_eq!(image_err(json!({"image": "l", "offset_y": -20_000})).as_deref(), Some("ops[1].offset_y"));
    let ok: ImageWatermarkParams = serde_json::from_value(json!({"image": "l", "scale": 1.0})).unwrap();
    ok.validate("ops[1]", &limits).unwrap();
}

#[test]
fn corrupted_fonts_never_panic() {
    // Random bytes overwritten anywhere in the CFF font (outlines included), and truncations.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let p = text_params(json!({"text": "水印测试\n你好世界", "font": "cjk", "size": 24, "opacity": 1.0}));
    let (mut ok, mut rejected) = (0, 0);
    for i in 0..400 {
        let mut font = CJK_FONT.to_vec();
        if i % 10 == 0 {
            font.truncate((next() % CJK_FONT.len() as u64) as usize);
        } else {
            for _ in 0..(1 + next() % 6) {
                let at = (next() % font.len() as u64) as usize;
                font[at] = next() as u8;
            }
        }
        let mut img = still(photo(64, 48));
        match watermark_text(&mut img, &p, Some(&font)) {
            Ok(()) => ok += 1,
            Err(e) => {
                // A corrupted cmap loses glyphs: the text is then refused, never drawn as boxes.
                assert!(matches!(e.field(), Some("font" | "size" | "text")), "{e}");
                rejected += 1;
            }
        }
    }
    assert!(ok > 0 && rejected > 0, "{ok} drawn, {rejected} rejected");
}
