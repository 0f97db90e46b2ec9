//! QR overlay tests: codes are read back with `rqrr` from the final encoded bytes, decoded by
//! the independent decoders in `image`.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_golden, decode_independent, photo, photo_rgba};
use image::{GrayImage, Rgba, RgbaImage};
use image_ops::ops::qr::{qr_overlay, EcLevel, QrParams};
use image_ops::{
    encode::encode, Color, Error, Frame, Gravity, Image, InputFormat, Limits, OutputFormat, OutputParams,
    Pixels, Validate,
};

const URL: &str = "https://example.com/p/12345?ref=imgfn";

fn qr(data: &str, size: u32) -> QrParams {
    serde_json::from_value(serde_json::json!({ "data": data, "size": size })).unwrap()
}

fn photo_image(w: u32, h: u32) -> Image {
    Image::still(Pixels::Rgb(photo(w, h)), InputFormat::Jpeg)
}

/// Validates, then overlays.
fn overlay(image: &mut Image, p: &QrParams) {
    p.validate("ops[0]", &Limits::default()).unwrap();
    qr_overlay(image, p).unwrap();
}

/// Every code `rqrr` finds: payload and the bounding box (min x, min y, max x, max y) of its corners.
fn read_codes(img: &RgbaImage) -> Vec<(String, (i32, i32, i32, i32))> {
    let grey = GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let p = img.get_pixel(x, y);
        let l = (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000;
        image::Luma([l as u8])
    });
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(grey.width() as usize, grey.height() as usize, |x, y| {
            grey.get_pixel(x as u32, y as u32)[0]
        });
    prepared
        .detect_grids()
        .into_iter()
        .map(|grid| {
            let xs = grid.bounds.iter().map(|p| p.x);
            let ys = grid.bounds.iter().map(|p| p.y);
            let bbox =
                (xs.clone().min().unwrap(), ys.clone().min().unwrap(), xs.max().unwrap(), ys.max().unwrap());
            let (_, content) = grid.decode().expect("grid decodes");
            (content, bbox)
        })
        .collect()
}

/// Reads exactly one code and checks it lies inside `square` (x, y, side) of the image.
fn read_one(img: &RgbaImage, square: (u32, u32, u32)) -> String {
    let codes = read_codes(img);
    assert_eq!(codes.len(), 1, "expected one code, found {codes:?}");
    let (content, (x0, y0, x1, y1)) = codes.into_iter().next().unwrap();
    let (sx, sy, side) = (square.0 as i32, square.1 as i32, square.2 as i32);
    assert!(
        x0 >= sx - 2 && y0 >= sy - 2 && x1 <= sx + side + 2 && y1 <= sy + side + 2,
        "code at {:?} is outside the expected square {square:?}",
        (x0, y0, x1, y1)
    );
    content
}

#[test]
fn qr_survives_every_output_format() {
    let mut image = photo_image(1200, 800);
    let mut p = qr(URL, 300);
    p.offset_x = 24;
    p.offset_y = 24;
    overlay(&mut image, &p);
    let square = (1200 - 300 - 24, 800 - 300 - 24, 300);
    let out = |quality: u8| OutputParams { quality: quality.into(), ..OutputParams::default() };
    let cases = [
        ("jpeg q80", OutputFormat::Jpeg, out(80)),
        ("jpeg q40", OutputFormat::Jpeg, out(40)),
        ("jpeg progressive", OutputFormat::Jpeg, OutputParams { progressive: true, ..out(80) }),
        ("png", OutputFormat::Png, out(80)),
        ("webp q75", OutputFormat::Webp, out(75)),
        ("webp lossless", OutputFormat::Webp, OutputParams { lossless: true, ..out(80) }),
        ("gif", OutputFormat::Gif, out(80)),
    ];
    for (name, format, params) in cases {
        let encoded = encode(&image, format, &params).unwrap();
        let decoded = decode_independent(&encoded.bytes);
        assert_eq!(decoded.dimensions(), (1200, 800), "{name}");
        assert_eq!(read_one(&decoded, square), URL, "{name}");
    }
}

#[test]
fn qr_paints_exact_modules_and_leaves_the_rest() {
    let before = photo_image(400, 300);
    let mut image = before.clone();
    let mut p = qr("imgfn", 100);
    p.gravity = Gravity::TopLeft;
    p.offset_x = 10;
    p.offset_y = 20;
    overlay(&mut image, &p);
    let (Pixels::Rgb(after), Pixels::Rgb(orig)) = (image.first(), before.first()) else { panic!("rgb") };
    // Version 1 (21 modules) + 2 * 4 quiet: 29 modules of 3 px = 87 px, centred in 100 px.
    for (x, y, px) in after.enumerate_pixels() {
        let inside = (10..110).contains(&x) && (20..120).contains(&y);
        if !inside {
            assert_eq!(px, orig.get_pixel(x, y), "untouched outside the square at {x},{y}");
        } else {
            assert!(px.0 == [0, 0, 0] || px.0 == [255, 255, 255], "only dark and light at {x},{y}");
        }
    }
    // Margin + quiet zone are light; the top-left finder's corner is dark.
    let code_x = 10 + 6 + 4 * 3; // square x + margin (13 / 2) + quiet zone
    let code_y = 20 + 6 + 4 * 3;
    assert_eq!(after.get_pixel(code_x - 1, code_y - 1).0, [255, 255, 255]);
    assert_eq!(after.get_pixel(code_x, code_y).0, [0, 0, 0]);
    assert_eq!(after.get_pixel(code_x + 2, code_y + 2).0, [0, 0, 0]);
    // Whole-pixel modules: every 3x3 module cell is one colour.
    for my in 0..21 {
        for mx in 0..21 {
            let c = after.get_pixel(code_x + mx * 3, code_y + my * 3);
            for d in 0..9 {
                assert_eq!(after.get_pixel(code_x + mx * 3 + d % 3, code_y + my * 3 + d / 3), c);
            }
        }
    }
    let decoded =
        decode_independent(&encode(&image, OutputFormat::Png, &OutputParams::default()).unwrap().bytes);
    assert_eq!(read_one(&decoded, (10, 20, 100)), "imgfn");
}

#[test]
fn qr_golden() {
    let mut image = Image::still(Pixels::Rgba(photo_rgba(180, 140)), InputFormat::Png);
    // Version 2: 25 modules + 2 * 4 quiet = 33 modules of 3 px = 99 px in a 100 px square.
    let mut p = qr("https://imgfn.dev", 100);
    p.gravity = Gravity::BottomRight;
    p.offset_x = 6;
    p.offset_y = 6;
    p.dark = Color([0x1a, 0x23, 0x7e, 0xff]);
    p.light = Color([0xff, 0xf8, 0xe1, 0xff]);
    overlay(&mut image, &p);
    let bytes = encode(&image, OutputFormat::Png, &OutputParams::default()).unwrap().bytes;
    let decoded = decode_independent(&bytes);
    assert_golden("qr_overlay", &decoded, 0);
    assert_eq!(read_one(&decoded, (180 - 100 - 6, 140 - 100 - 6, 100)), "https://imgfn.dev");
}

#[test]
fn qr_every_ec_level_reads_back() {
    for level in [EcLevel::L, EcLevel::M, EcLevel::Q, EcLevel::H] {
        let mut image = photo_image(500, 400);
        let mut p = qr(URL, 240);
        p.ec_level = level;
        overlay(&mut image, &p);
        let bytes = encode(&image, OutputFormat::Jpeg, &OutputParams::default()).unwrap().bytes;
        assert_eq!(read_one(&decode_independent(&bytes), (260, 160, 240)), URL, "{level:?}");
    }
}

#[test]
fn qr_unicode_and_long_payloads_read_back() {
    let unicode = "Grüße aus Zürich — 東京 🚀 ñ";
    let long = "x".repeat(300);
    for data in [unicode, long.as_str()] {
        let mut image = photo_image(700, 600);
        let mut p = qr(data, 500);
        p.gravity = Gravity::Center;
        overlay(&mut image, &p);
        let bytes = encode(&image, OutputFormat::Webp, &OutputParams::default()).unwrap().bytes;
        assert_eq!(read_one(&decode_independent(&bytes), (100, 50, 500)), data);
    }
}

#[test]
fn qr_coloured_with_enough_contrast_reads_back() {
    let pairs = [
        ("#1a237e", "#fff8e1"), // navy on cream
        ("#004d40", "#e0f2f1"), // dark teal on pale teal
        ("#b71c1c", "#ffffff"), // dark red on white
    ];
    for (dark, light) in pairs {
        let mut image = photo_image(600, 400);
        let mut p = qr(URL, 260);
        p.dark = Color::parse(dark).unwrap();
        p.light = Color::parse(light).unwrap();
        overlay(&mut image, &p);
        let bytes = encode(&image, OutputFormat::Jpeg, &OutputParams::default()).unwrap().bytes;
        assert_eq!(read_one(&decode_independent(&bytes), (340, 140, 260)), URL, "{dark} on {light}");
    }
}

#[test]
fn qr_gravity_variants_place_the_code() {
    let (w, h, s, o) = (640u32, 480u32, 200u32, 16i32);
    let cases = [
        (Gravity::TopLeft, (16, 16)),
        (Gravity::Top, ((640 - 200) / 2, 16)),
        (Gravity::TopRight, (640 - 200 - 16, 16)),
        (Gravity::Left, (16, (480 - 200) / 2)),
        (Gravity::Center, ((640 - 200) / 2 + 16, (480 - 200) / 2 + 16)),
        (Gravity::Right, (640 - 200 - 16, (480 - 200) / 2)),
        (Gravity::BottomLeft, (16, 480 - 200 - 16)),
        (Gravity::Bottom, ((640 - 200) / 2, 480 - 200 - 16)),
        (Gravity::BottomRight, (640 - 200 - 16, 480 - 200 - 16)),
    ];
    for (gravity, (x, y)) in cases {
        let mut image = photo_image(w, h);
        let mut p = qr("gravity test", s);
        p.gravity = gravity;
        p.offset_x = o;
        p.offset_y = o;
        overlay(&mut image, &p);
        let bytes = encode(&image, OutputFormat::Png, &OutputParams::default()).unwrap().bytes;
        assert_eq!(read_one(&decode_independent(&bytes), (x, y, s)), "gravity test", "{gravity:?}");
    }
}

#[test]
fn qr_draws_on_rgba_and_every_animation_frame() {
    let frames = (0..3)
        .map(|i| {
            let mut img = photo_rgba(300, 240);
            for px in img.pixels_mut() {
                px[3] = 60 * i as u8; // frame 0 fully transparent
            }
            Frame { pixels: Pixels::Rgba(img), delay_ms: 100 }
        })
        .collect();
    let mut image = Image {
        frames,
        format: InputFormat::Gif,
        loop_count: 0,
        shrunk_from: None,
        metadata: Default::default(),
    };
    let p = qr(URL, 160);
    overlay(&mut image, &p);
    for (i, frame) in image.frames.iter().enumerate() {
        let Pixels::Rgba(img) = &frame.pixels else { panic!("stays rgba") };
        // The square is opaque whatever the frame's alpha.
        for y in 80..240 {
            for x in 140..300 {
                assert_eq!(img.get_pixel(x, y)[3], 255, "frame {i} at {x},{y}");
            }
        }
        // Read it back flattened onto white.
        let flat = RgbaImage::from_fn(300, 240, |x, y| {
            let p = img.get_pixel(x, y);
            let a = u32::from(p[3]);
            let c = |c: usize| ((u32::from(p[c]) * a + 255 * (255 - a)) / 255) as u8;
            Rgba([c(0), c(1), c(2), 255])
        });
        assert_eq!(read_one(&flat, (140, 80, 160)), URL, "frame {i}");
    }
    // And through an animated GIF, every frame.
    let bytes = encode(&image, OutputFormat::Gif, &OutputParams::default()).unwrap().bytes;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    let frames = image::AnimationDecoder::into_frames(decoder).collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    for (i, f) in frames.iter().enumerate() {
        let flat = RgbaImage::from_fn(300, 240, |x, y| {
            let p = f.buffer().get_pixel(x, y);
            if p[3] == 0 {
                Rgba([255, 255, 255, 255])
            } else {
                *p
            }
        });
        assert_eq!(read_one(&flat, (140, 80, 160)), URL, "gif frame {i}");
    }
}

fn field_of(result: Result<(), Error>) -> String {
    match result {
        Err(Error::InvalidParams { field, message }) => {
            assert!(!message.is_empty());
            field
        }
        other => panic!("expected InvalidParams, got {other:?}"),
    }
}

#[test]
fn qr_validation_names_the_field() {
    let limits = Limits::default();
    let check = |p: &QrParams| field_of(p.validate("ops[2]", &limits));

    // Too small for the payload: the message gives the minimum.
    let small = qr(URL, 60);
    let err = small.validate("ops[2]", &limits).unwrap_err();
    assert_eq!(err.field(), Some("ops[2].size"));
    // 37 URL bytes at M: version 3, 29 modules + 8 quiet = 37 modules * 3 px = 111 px.
    assert!(err.to_string().contains("111 px"), "{err}");
    qr(URL, 111).validate("ops[2]", &limits).unwrap();
    assert_eq!(check(&qr(URL, 110)), "ops[2].size");
    assert_eq!(check(&qr(URL, 4097)), "ops[2].size");

    // Data: empty, over 1000 bytes, or more than a QR code holds at this level.
    assert_eq!(check(&qr("", 200)), "ops[2].data");
    assert_eq!(check(&qr(&"a".repeat(1001), 4000)), "ops[2].data");
    // 1000 bytes is the cap because it always fits: version 40-H holds 1273 bytes.
    let mut dense = qr(&"a".repeat(1000), 4000);
    dense.ec_level = EcLevel::H;
    dense.validate("ops[2]", &limits).unwrap();

    // Quiet zone.
    let mut p = qr(URL, 400);
    p.quiet_zone = 17;
    assert_eq!(check(&p), "ops[2].quiet_zone");
    p.quiet_zone = 0;
    p.validate("ops[2]", &limits).unwrap();

    // Colours: translucent, low contrast, inverted.
    let mut p = qr(URL, 300);
    p.dark = Color([0, 0, 0, 0x80]);
    assert_eq!(check(&p), "ops[2].dark");
    let mut p = qr(URL, 300);
    p.light = Color([255, 255, 255, 0]);
    assert_eq!(check(&p), "ops[2].light");
    let mut p = qr(URL, 300);
    p.dark = Color::parse("#aaaaaa").unwrap(); // WCAG ratio 2.3 on white
    assert_eq!(check(&p), "ops[2].dark");
    let mut p = qr(URL, 300);
    (p.dark, p.light) = (Color::WHITE, Color::BLACK);
    assert_eq!(check(&p), "ops[2].dark");
    let mut p = qr(URL, 300);
    p.dark = Color::parse("#767676").unwrap(); // WCAG ratio 4.54 on white: enough
    p.validate("ops[2]", &limits).unwrap();
}

#[test]
fn qr_params_deserialize_with_defaults() {
    let p: QrParams = serde_json::from_str(r#"{"data":"hi"}"#).unwrap();
    assert_eq!((p.size, p.quiet_zone, p.ec_level, p.gravity), (200, 4, EcLevel::M, Gravity::BottomRight));
    assert_eq!((p.dark, p.light, p.offset_x, p.offset_y), (Color::BLACK, Color::WHITE, 0, 0));
    let p: QrParams =
        serde_json::from_str(r##"{"data":"hi","ec_level":"H","dark":"#102030","gravity":"top_left"}"##)
            .unwrap();
    assert_eq!(
        (p.ec_level, p.dark, p.gravity),
        (EcLevel::H, Color([0x10, 0x20, 0x30, 255]), Gravity::TopLeft)
    );
    assert!(serde_json::from_str::<QrParams>(r##"{"data":"hi","colour":"#000"}"##).is_err());
}

#[test]
fn qr_that_does_not_fit_is_an_error() {
    let cases: [(u32, u32, u32, Gravity, i32); 4] = [
        (200, 150, 160, Gravity::Center, 0),        // larger than the image
        (400, 300, 200, Gravity::BottomRight, 120), // pushed out by the offset
        (400, 300, 200, Gravity::TopLeft, -1),      // negative offset
        (400, 300, 200, Gravity::Center, 101),      // centre offset beyond the edge
    ];
    for (w, h, size, gravity, offset) in cases {
        let before = photo_image(w, h);
        let mut image = before.clone();
        let mut p = qr("fit", size);
        p.gravity = gravity;
        p.offset_x = offset;
        p.offset_y = offset;
        p.validate("ops[0]", &Limits::default()).unwrap();
        let err = qr_overlay(&mut image, &p).unwrap_err();
        assert_eq!(err.field(), Some("size"), "{err}");
        assert!(
            err.to_string().contains(&format!("QR code of {size} px does not fit in a {w}x{h} image")),
            "{err}"
        );
        assert_eq!(image, before, "nothing drawn");
    }
    // Exactly filling the image is fine.
    let mut image = photo_image(120, 120);
    let mut p = qr("fit", 120);
    p.gravity = Gravity::TopLeft;
    overlay(&mut image, &p);
}

#[test]
fn qr_overlay_rechecks_params_it_is_given() {
    // Called without validation (a library user), bad params are still errors, not panics.
    let mut image = photo_image(300, 300);
    assert_eq!(qr_overlay(&mut image, &qr(URL, 50)).unwrap_err().field(), Some("size"));
    assert_eq!(qr_overlay(&mut image, &qr("", 200)).unwrap_err().field(), Some("data"));
    let mut p = qr(URL, 200);
    p.quiet_zone = 1000;
    assert_eq!(qr_overlay(&mut image, &p).unwrap_err().field(), Some("quiet_zone"));
}
