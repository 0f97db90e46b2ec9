//! Smart crops of `thumbnail` with `fit: cover`: `gravity` `entropy` and `attention`, and a
//! focal point (`focus_x`, `focus_y`).
//!
//! A corpus of synthetic photos with one obvious subject whose pixels are known (a textured
//! object, a skin-toned face, a saturated flower) on a plain or a smooth background, at several
//! positions, landscape and portrait: each strategy's crop must keep the subject. The overlap
//! (the fraction of the subject's pixels inside the crop) of every strategy on every scene is
//! printed (`cargo test -p image-ops --test smartcrop -- --nocapture`).
#![allow(clippy::unwrap_used)]

mod common;

use image::RgbaImage;
use image_ops::ops::resize::{self, cover_crop, Crop, CropGravity, Fit, ResizeParams};
use image_ops::{Gravity, Image, InputFormat, Limits, OutputFormat, Pipeline, PipelineSpec, Pixels};
use proptest::prelude::*;

#[path = "smartcrop/scenes.rs"]
mod scenes;

use scenes::{corpus, overlap, scene, Background, Scene, Subject};
// `proptest::prelude` brings a trait named `Rng` too.
use scenes::Rng as XorShift;

fn cover(width: u32, height: u32, gravity: CropGravity) -> ResizeParams {
    ResizeParams { gravity, ..ResizeParams::new(Some(width), Some(height), Fit::Cover) }
}

fn crop_of(scene: &Scene, p: &ResizeParams) -> Option<Crop> {
    cover_crop(p, &Pixels::Rgb(scene.image.clone())).unwrap()
}

#[test]
fn smart_crops_keep_the_subject() {
    let strategies = [
        ("center", CropGravity::Anchor(Gravity::Center)),
        ("entropy", CropGravity::Entropy),
        ("attention", CropGravity::Attention),
    ];
    // What each strategy must find: entropy the most detailed part (the texture anywhere; the
    // others where the background has less detail than they do), attention edges, skin and
    // saturated colour everywhere.
    let must = |strategy: &str, subject: Subject, background: Background| match strategy {
        "entropy" => subject == Subject::Textured || background != Background::Busy,
        "attention" => true,
        _ => false,
    };
    let mut failures = Vec::new();
    // Two crops of each scene (scenes::BOXES).
    for (box_name, size) in scenes::BOXES {
        let shape = format!("{box_name} {}x{}", size.0, size.1);
        let mut sums = vec![0.0; strategies.len()];
        let mut n = 0;
        println!(
            "\n{:<44} {:>7} {:>7} {:>9}",
            format!("scene ({shape} cover)"),
            "center",
            "entropy",
            "attention"
        );
        for (name, subject, background, scene) in corpus() {
            let (w, h) = scene.image.dimensions();
            let (bw, bh) = scenes::box_for(size, w, h);
            let mut row = format!("{name:<44}");
            for (i, (label, gravity)) in strategies.iter().enumerate() {
                let o = overlap(&scene, crop_of(&scene, &cover(bw, bh, *gravity)));
                sums[i] += o;
                row.push_str(&format!(" {:>width$.2}", o, width = label.len().max(7)));
                if must(label, subject, background) && o < 0.95 {
                    failures.push(format!("{label} on {name}, {shape}: overlap {o:.2}"));
                }
            }
            n += 1;
            println!("{row}");
        }
        let means: Vec<String> =
            strategies.iter().zip(&sums).map(|((l, _), s)| format!("{l} {:.3}", s / f64::from(n))).collect();
        println!("mean overlap, {shape}: {}", means.join(", "));
    }
    assert!(failures.is_empty(), "crops that lose the subject:\n{}", failures.join("\n"));
}

#[test]
fn a_subject_that_fits_is_centred_in_the_crop() {
    // Plain background: every window that holds the whole subject scores about the same; the
    // subject (108 px wide in a 360 px crop) ends up near the middle of the crop, not at an edge:
    // within 2 px where the image leaves room (x = 0.5), within a tenth of the crop (36 px) where
    // an edge is close.
    for gravity in [CropGravity::Entropy, CropGravity::Attention] {
        for (at, within) in [(0.3, 36.0), (0.5, 2.0), (0.7, 36.0)] {
            let s = scene(640, 360, Subject::Textured, Background::Plain, (640.0 * at, 180.0));
            let crop = crop_of(&s, &cover(200, 200, gravity)).unwrap();
            let middle = crop.left + crop.width / 2.0;
            println!("{gravity:?}: subject at {}, crop centred at {middle:.1}", 640.0 * at);
            assert!((middle - 640.0 * at).abs() <= within, "{gravity:?} at {at}: crop centred at {middle}");
        }
    }
}

#[test]
fn smart_crops_golden() {
    let cases = [
        ("smartcrop_attention_skin", Subject::Skin, Background::Smooth, 0.82, CropGravity::Attention),
        ("smartcrop_entropy_texture", Subject::Textured, Background::Plain, 0.18, CropGravity::Entropy),
    ];
    for (name, subject, background, at, gravity) in cases {
        let s = scene(640, 360, subject, background, (640.0 * at, 180.0));
        let mut image = Image::still(Pixels::Rgb(s.image.clone()), InputFormat::Jpeg);
        resize::resize(&mut image, &cover(160, 160, gravity), &Limits::default()).unwrap();
        assert_eq!(image.first().dimensions(), (160, 160));
        common::assert_golden(name, &image.first().to_rgba(), 2);
    }
}

#[test]
fn focal_point_is_as_central_as_the_box_allows() {
    let s = scene(600, 300, Subject::Saturated, Background::Plain, (480.0, 150.0));
    let focus = |fx: f64, fy: f64| ResizeParams {
        focus_x: Some(fx),
        focus_y: Some(fy),
        ..ResizeParams::new(Some(200), Some(200), Fit::Cover)
    };
    // The 300x300 window centred on x = 0.4 * 600 = 240: left 90 (snapped to output px: 60 of
    // 400 at scale 2/3 is exact).
    let c = crop_of(&s, &focus(0.4, 0.5)).unwrap();
    assert!((c.left - 90.0).abs() < 1e-9 && c.top == 0.0 && (c.width - 300.0).abs() < 1e-9, "{c:?}");
    // Near an edge the crop stops at the edge.
    let c = crop_of(&s, &focus(0.97, 0.1)).unwrap();
    assert!((c.left + c.width - 600.0).abs() < 1e-9, "{c:?}");
    let c = crop_of(&s, &focus(0.0, 1.0)).unwrap();
    assert_eq!(c.left, 0.0);
    // The middle is the centre gravity's crop.
    assert_eq!(crop_of(&s, &focus(0.5, 0.5)), crop_of(&s, &cover(200, 200, CropGravity::default())));
    // And the output is that part of the image: all of the flower (its red petals, scaled by
    // 2/3 on each axis) with the focal point on it, none of it with the focal point on the left.
    let red_in = |fx: f64| {
        let mut image = Image::still(Pixels::Rgb(s.image.clone()), InputFormat::Jpeg);
        resize::resize(&mut image, &focus(fx, 0.5), &Limits::default()).unwrap();
        red(&image.first().to_rgba())
    };
    let expected = red(&image::DynamicImage::ImageRgb8(s.image.clone()).into_rgba8()) as f64 * 4.0 / 9.0;
    assert!(red_in(0.8) as f64 > 0.9 * expected, "the flower is in the crop: {} of {expected}", red_in(0.8));
    assert_eq!(red_in(0.2), 0);
}

/// Pixels of the flower's red petals.
fn red(img: &RgbaImage) -> usize {
    img.pixels().filter(|p| p[0] > 150 && p[1] < 80).count()
}

#[test]
fn transparent_borders_are_not_detail() {
    // A transparent canvas (random colours under alpha 0, as some editors leave them) with an
    // opaque textured subject: both strategies find the subject, not the invisible noise.
    let s = scene(640, 360, Subject::Textured, Background::Plain, (640.0 * 0.8, 180.0));
    let mut rng = XorShift(7);
    let rgba = RgbaImage::from_fn(640, 360, |x, y| {
        let i = (y * 640 + x) as usize;
        if s.subject[i] {
            let p = s.image.get_pixel(x, y);
            image::Rgba([p[0], p[1], p[2], 255])
        } else {
            image::Rgba([rng.next() as u8, rng.next() as u8, rng.next() as u8, 0])
        }
    });
    for gravity in [CropGravity::Entropy, CropGravity::Attention] {
        let crop = cover_crop(&cover(200, 200, gravity), &Pixels::Rgba(rgba.clone())).unwrap();
        assert!(overlap(&s, crop) > 0.95, "{gravity:?}: {crop:?}");
    }
}

#[test]
fn smart_crop_through_a_pipeline_with_shrink_on_load() {
    // A 1280x720 JPEG (decoded at a DCT scale, then cropped): the flower on the right is kept.
    let s = scene(1280, 720, Subject::Saturated, Background::Smooth, (1280.0 * 0.86, 360.0));
    let jpeg = common::jpeg_bytes(&s.image);
    let source_red = red(&image::DynamicImage::ImageRgb8(s.image.clone()).into_rgba8());
    let expected = source_red as f64 / 36.0; // 720 px to 120 px: 1/6 on each axis.
    for gravity in ["attention", "entropy"] {
        let json = format!(
            r#"{{"ops":[{{"op":"thumbnail","width":120,"height":120,"fit":"cover","gravity":"{gravity}"}}],
                "output":{{"format":"png"}}}}"#
        );
        let spec: PipelineSpec = serde_json::from_str(&json).unwrap();
        let out = Pipeline::new(spec, Limits::default()).unwrap().run(&jpeg, &Default::default()).unwrap();
        let image_ops::Output::Image(encoded) = out.output else { panic!("an image") };
        assert_eq!((encoded.format, encoded.width, encoded.height), (OutputFormat::Png, 120, 120));
        let got = red(&common::decode_independent(&encoded.bytes));
        println!("{gravity}: {got} red pixels of the flower's {expected:.0} (scaled) in the crop");
        assert!(got as f64 > 0.9 * expected, "{gravity} keeps the flower: {got} of {expected:.0}");
    }
}

fn field_of(json: &str) -> (String, String) {
    let spec: PipelineSpec = serde_json::from_str(json).unwrap();
    let err = spec.validate(&Limits::default()).unwrap_err();
    assert_eq!(err.code(), "invalid_params", "{json}");
    (err.field().unwrap().to_string(), err.to_string())
}

#[test]
fn validation_names_the_field() {
    let op = |rest: &str| format!(r#"{{"ops":[{{"op":"thumbnail","width":100,"height":100,{rest}}}]}}"#);
    let cases = [
        (op(r#""fit":"cover","focus_x":0.5"#), "ops[0].focus_y", "required with focus_x"),
        (op(r#""fit":"cover","focus_y":0.5"#), "ops[0].focus_x", "required with focus_y"),
        (op(r#""fit":"cover","focus_x":1.5,"focus_y":0.5"#), "ops[0].focus_x", "between 0 and 1"),
        (op(r#""fit":"cover","focus_x":0.5,"focus_y":-0.1"#), "ops[0].focus_y", "between 0 and 1"),
        (op(r#""focus_x":0.5,"focus_y":0.5"#), "ops[0].focus_x", "only with fit cover"),
        (op(r#""fit":"fill","focus_x":0.5,"focus_y":0.5"#), "ops[0].focus_x", "only with fit cover"),
        (op(r#""fit":"cover","gravity":"top","focus_x":0.5,"focus_y":0.5"#), "ops[0].gravity", "not both"),
        (
            op(r#""fit":"cover","gravity":"entropy","focus_x":0.5,"focus_y":0.5"#),
            "ops[0].gravity",
            "not both",
        ),
        (op(r#""gravity":"attention""#), "ops[0].gravity", "attention applies only with fit cover"),
        (op(r#""fit":"fill","gravity":"entropy""#), "ops[0].gravity", "entropy applies only with fit cover"),
    ];
    for (json, field, message) in cases {
        let (f, m) = field_of(&json);
        assert_eq!(f, field, "{json}");
        assert!(m.contains(message), "{json}: {m}");
    }
    for ok in [
        op(r#""fit":"cover","gravity":"entropy""#),
        op(r#""fit":"cover","gravity":"attention""#),
        op(r#""fit":"cover","gravity":"centre","focus_x":0,"focus_y":1"#),
        op(r#""fit":"cover","focus_x":0.25,"focus_y":0.75"#),
        // Anchors with other fits are ignored, as before.
        op(r#""gravity":"top""#),
    ] {
        let spec: PipelineSpec = serde_json::from_str(&ok).unwrap();
        spec.validate(&Limits::default()).unwrap();
    }
    // An unknown gravity lists every spelling.
    let err = serde_json::from_str::<PipelineSpec>(&op(r#""fit":"cover","gravity":"smart""#)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("entropy") && msg.contains("attention") && msg.contains("bottom_right"), "{msg}");
}

#[test]
fn gravity_round_trips_through_json() {
    for name in resize::CROP_GRAVITIES {
        let p: ResizeParams = serde_json::from_str(&format!(r#"{{"width":9,"gravity":"{name}"}}"#)).unwrap();
        assert_eq!(serde_json::to_value(p.gravity).unwrap(), serde_json::json!(name));
    }
    // The canonical form of params without a focal point is unchanged (no new keys): cached
    // results of existing pipelines keep their keys.
    let p: ResizeParams = serde_json::from_str(r#"{"width":9}"#).unwrap();
    let keys: Vec<String> = serde_json::to_value(&p).unwrap().as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["filter", "fit", "gravity", "height", "upscale", "width"]);
}

/// A random scene: a background colour and a few random rectangles, some translucent.
fn random_pixels(w: u32, h: u32, seed: u64, alpha: bool) -> Pixels {
    let mut rng = XorShift(seed | 1);
    let rects: Vec<(u32, u32, u32, u32, [u8; 4])> = (0..(rng.next() % 5))
        .map(|_| {
            let (x, y) = ((rng.next() % u64::from(w)) as u32, (rng.next() % u64::from(h)) as u32);
            let (rw, rh) = (1 + (rng.next() % u64::from(w)) as u32, 1 + (rng.next() % u64::from(h)) as u32);
            let c = rng.next().to_le_bytes();
            (x, y, rw, rh, [c[0], c[1], c[2], c[3]])
        })
        .collect();
    let bg = rng.next().to_le_bytes();
    let img = RgbaImage::from_fn(w, h, |x, y| {
        let mut px = [bg[0], bg[1], bg[2], if alpha { bg[3] } else { 255 }];
        for &(rx, ry, rw, rh, c) in &rects {
            if x >= rx && y >= ry && x < rx + rw && y < ry + rh {
                px = [c[0], c[1], c[2], if alpha { c[3] } else { 255 }];
            }
        }
        image::Rgba(px)
    });
    if alpha {
        Pixels::Rgba(img)
    } else {
        Pixels::Rgb(image::DynamicImage::ImageRgba8(img).into_rgb8())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every smart crop lies inside the image and has exactly the size of the anchored crop
    /// (the box's aspect ratio, filling one side of the image); the resized result is the box.
    #[test]
    fn prop_smart_crop_lies_inside_and_has_the_box_size(
        w in 1u32..300, h in 1u32..300, bw in 1u32..300, bh in 1u32..300,
        strategy in 0usize..3, fx in 0.0f64..=1.0, fy in 0.0f64..=1.0,
        seed: u64, alpha: bool, upscale: bool,
    ) {
        let base = ResizeParams { upscale, ..ResizeParams::new(Some(bw), Some(bh), Fit::Cover) };
        let p = match strategy {
            0 => ResizeParams { gravity: CropGravity::Entropy, ..base.clone() },
            1 => ResizeParams { gravity: CropGravity::Attention, ..base.clone() },
            _ => ResizeParams { focus_x: Some(fx), focus_y: Some(fy), ..base.clone() },
        };
        let pixels = random_pixels(w, h, seed, alpha);
        let smart = cover_crop(&p, &pixels).unwrap();
        let anchored = cover_crop(&base, &pixels).unwrap();
        prop_assert_eq!(smart.is_some(), anchored.is_some());
        if let (Some(s), Some(a)) = (smart, anchored) {
            let (wf, hf) = (f64::from(w), f64::from(h));
            prop_assert!(s.left >= 0.0 && s.top >= 0.0, "{:?}", s);
            prop_assert!(s.left + s.width <= wf + 1e-9 && s.top + s.height <= hf + 1e-9, "{:?} in {}x{}", s, w, h);
            prop_assert!((s.width - a.width).abs() < 1e-9 && (s.height - a.height).abs() < 1e-9, "{:?} vs {:?}", s, a);
            prop_assert!((s.width - wf).abs() < 1e-9 || (s.height - hf).abs() < 1e-9, "{:?} fills a side", s);
        }
        let mut image = Image::still(pixels, InputFormat::Png);
        resize::resize(&mut image, &p, &Limits::default()).unwrap();
        let mut anchored_image = Image::still(random_pixels(w, h, seed, alpha), InputFormat::Png);
        resize::resize(&mut anchored_image, &base, &Limits::default()).unwrap();
        prop_assert_eq!(image.first().dimensions(), anchored_image.first().dimensions());
        if upscale || (bw <= w && bh <= h) {
            prop_assert_eq!(image.first().dimensions(), (bw, bh));
        }
    }
}
