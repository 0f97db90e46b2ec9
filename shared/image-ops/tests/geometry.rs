//! Geometry operations: resize (thumbnail), round corners, slice.
//!
//! Inputs are built directly as `Image` values (no decoding); outputs are compared on pixels
//! against golden images or checked by properties.
#![allow(clippy::unwrap_used)]

mod common;

use image::{Rgba, RgbaImage};
use image_ops::ops::resize::{self, Filter, Fit, ResizeParams};
use image_ops::ops::round_corners::{round_corners, RoundCornersParams};
use image_ops::ops::slice::{self, SliceParams, TileInfo};
use image_ops::{Color, Gravity, Image, InputFormat, Length, Limits, PipelineSpec, Pixels, Validate};
use proptest::prelude::*;

fn rgb_image(w: u32, h: u32) -> Image {
    Image::still(Pixels::Rgb(common::photo(w, h)), InputFormat::Jpeg)
}

fn rgba_image(img: RgbaImage) -> Image {
    Image::still(Pixels::Rgba(img), InputFormat::Png)
}

fn params(width: Option<u32>, height: Option<u32>, fit: Fit) -> ResizeParams {
    ResizeParams { filter: Filter::Lanczos3, ..ResizeParams::new(width, height, fit) }
}

fn resized(mut image: Image, p: &ResizeParams) -> Image {
    resize::resize(&mut image, p, &Limits::default()).unwrap();
    image
}

fn rounded(mut image: Image, radius: Length, background: Option<Color>) -> Image {
    round_corners(&mut image, &RoundCornersParams { radius, background }).unwrap();
    image
}

// ---------------------------------------------------------------- resize: golden images

#[test]
fn resize_inside_width_only() {
    let out = resized(rgb_image(240, 160), &params(Some(120), None, Fit::Inside));
    assert_eq!(out.first().dimensions(), (120, 80));
    assert!(!out.first().has_alpha(), "RGB stays RGB");
    common::assert_golden("resize_inside_width_120", &out.first().to_rgba(), 2);
}

#[test]
fn resize_inside_box_height_limited() {
    let out = resized(rgb_image(160, 240), &params(Some(100), Some(100), Fit::Inside));
    // 160 * 100 / 240 = 66.67 rounds to 67 (not truncated to 66).
    assert_eq!(out.first().dimensions(), (67, 100));
    common::assert_golden("resize_inside_box_100", &out.first().to_rgba(), 2);
}

#[test]
fn resize_cover_gravities() {
    for (gravity, name) in [
        (Gravity::Center, "resize_cover_center"),
        (Gravity::TopLeft, "resize_cover_top_left"),
        (Gravity::BottomRight, "resize_cover_bottom_right"),
    ] {
        let p = ResizeParams { gravity: gravity.into(), ..params(Some(100), Some(100), Fit::Cover) };
        let out = resized(rgb_image(240, 160), &p);
        assert_eq!(out.first().dimensions(), (100, 100));
        common::assert_golden(name, &out.first().to_rgba(), 2);
    }
    // Vertical overflow: a portrait image into a landscape box, anchored at the bottom.
    let p = ResizeParams { gravity: Gravity::Bottom.into(), ..params(Some(120), Some(60), Fit::Cover) };
    let out = resized(rgb_image(160, 240), &p);
    assert_eq!(out.first().dimensions(), (120, 60));
    common::assert_golden("resize_cover_bottom", &out.first().to_rgba(), 2);
}

#[test]
fn cover_gravity_picks_the_matching_part() {
    // Left half black, right half white: cover to a square keeps only one side.
    let src =
        RgbaImage::from_fn(200, 100, |x, _| if x < 100 { Rgba([0, 0, 0, 255]) } else { Rgba([255; 4]) });
    let crop = |gravity: Gravity| {
        let p = ResizeParams { gravity: gravity.into(), ..params(Some(50), Some(50), Fit::Cover) };
        resized(rgba_image(src.clone()), &p).first().to_rgba()
    };
    let left = crop(Gravity::Left);
    let right = crop(Gravity::Right);
    // The filter may reach a pixel or two past the crop edge (as when scaling first and
    // cropping after), so only the edge column next to the other half may be grey.
    for (x, _, p) in left.enumerate_pixels() {
        assert!(x >= 48 || p[0] <= 2, "left gravity keeps the black half: {x} {p:?}");
    }
    for (x, _, p) in right.enumerate_pixels() {
        assert!(x < 2 || p[0] >= 253, "right gravity keeps the white half: {x} {p:?}");
    }
}

#[test]
fn resize_fill_ignores_aspect() {
    let out = resized(rgb_image(240, 160), &params(Some(90), Some(120), Fit::Fill));
    assert_eq!(out.first().dimensions(), (90, 120));
    common::assert_golden("resize_fill_90x120", &out.first().to_rgba(), 2);
}

#[test]
fn resize_nearest_and_upscale() {
    let p = ResizeParams { upscale: true, filter: Filter::Nearest, ..params(Some(64), None, Fit::Inside) };
    let out = resized(rgb_image(16, 8), &p);
    assert_eq!(out.first().dimensions(), (64, 32));
    // Nearest neighbour x4: every output pixel is its source pixel.
    let src = common::photo(16, 8);
    let Pixels::Rgb(out) = out.first() else { panic!("RGB expected") };
    for (x, y, px) in out.enumerate_pixels() {
        assert_eq!(px, src.get_pixel(x / 4, y / 4));
    }
}

/// An RGBA photo in the middle of a fully transparent (black) border.
fn photo_with_transparent_border(size: u32, border: u32) -> RgbaImage {
    let photo = common::photo_rgba(size, size);
    RgbaImage::from_fn(size, size, |x, y| {
        let inside = x >= border && y >= border && x < size - border && y < size - border;
        if inside {
            *photo.get_pixel(x, y)
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

#[test]
fn resize_rgba_transparent_border() {
    let src = photo_with_transparent_border(240, 40);
    let out = resized(rgba_image(src), &params(Some(97), None, Fit::Inside));
    assert_eq!(out.first().dimensions(), (97, 97));
    assert!(out.first().has_alpha());
    common::assert_golden("resize_rgba_transparent_border", &out.first().to_rgba(), 2);
}

#[test]
fn premultiplied_alpha_keeps_edges_from_darkening() {
    // An opaque red square on transparent black.
    let src = RgbaImage::from_fn(100, 100, |x, y| {
        if (30..70).contains(&x) && (30..70).contains(&y) {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    // The fixture is meaningful: resampling straight alpha darkens the edge.
    let naive = {
        let src_view = fast_image_resize::images::ImageRef::new(
            100,
            100,
            src.as_raw(),
            fast_image_resize::PixelType::U8x4,
        )
        .unwrap();
        let mut dst = fast_image_resize::images::Image::new(33, 33, fast_image_resize::PixelType::U8x4);
        let options = fast_image_resize::ResizeOptions::new().use_alpha(false);
        fast_image_resize::Resizer::new().resize(&src_view, &mut dst, &options).unwrap();
        RgbaImage::from_raw(33, 33, dst.into_vec()).unwrap()
    };
    assert!(naive.pixels().any(|p| p[3] > 16 && p[0] < 200), "straight-alpha resize darkens the edge");

    for filter in [Filter::Lanczos3, Filter::Mitchell, Filter::CatmullRom, Filter::Bilinear] {
        let p = ResizeParams { filter, ..params(Some(33), None, Fit::Inside) };
        let out = resized(rgba_image(src.clone()), &p).first().to_rgba();
        assert_eq!(out.dimensions(), (33, 33));
        let mut partial = 0;
        for px in out.pixels() {
            if px[3] > 0 {
                assert!(px[0] >= 250 && px[1] <= 5 && px[2] <= 5, "{filter:?}: edge pixel {px:?} is not red");
                if px[3] < 255 {
                    partial += 1;
                }
            }
        }
        assert!(partial > 0, "{filter:?}: the edge is anti-aliased");
    }
}

#[test]
fn resize_keeps_format_and_every_frame() {
    let frame = |shift: u8| {
        let mut img = common::photo_rgba(60, 40);
        img.pixels_mut().for_each(|p| p[0] = p[0].wrapping_add(shift));
        image_ops::Frame { pixels: Pixels::Rgba(img), delay_ms: 80 }
    };
    let mut anim = Image {
        frames: vec![frame(0), frame(90)],
        format: InputFormat::Gif,
        loop_count: 3,
        shrunk_from: None,
        metadata: Default::default(),
    };
    let p = params(Some(30), Some(30), Fit::Cover);
    resize::resize(&mut anim, &p, &Limits::default()).unwrap();
    assert_eq!(anim.frames.len(), 2);
    assert_eq!((anim.format, anim.loop_count), (InputFormat::Gif, 3));
    for (i, f) in anim.frames.iter().enumerate() {
        assert_eq!(f.pixels.dimensions(), (30, 30));
        assert_eq!(f.delay_ms, 80);
        // Each frame equals the same resize applied to that frame alone.
        let alone = resized(rgba_image(frame([0, 90][i]).pixels.to_rgba()), &p);
        assert_eq!(&f.pixels, alone.first());
    }
}

#[test]
fn no_upscale_rules() {
    // Inside: an image that already fits is left as is (same pixels, same kind).
    let src = rgb_image(50, 40);
    assert_eq!(resized(src.clone(), &params(Some(100), Some(100), Fit::Inside)), src);
    assert_eq!(resized(src.clone(), &params(None, Some(40), Fit::Inside)), src);
    // Cover: the box shrinks proportionally and the crop is copied without resampling.
    let out = resized(rgb_image(100, 50), &params(Some(200), Some(200), Fit::Cover));
    assert_eq!(out.first().dimensions(), (50, 50));
    let full = common::photo(100, 50);
    let Pixels::Rgb(crop) = out.first() else { panic!("RGB expected") };
    for (x, y, px) in crop.enumerate_pixels() {
        assert_eq!(px, full.get_pixel(x + 25, y), "centred crop copies pixels");
    }
    // Fill: likewise the requested shape, at most the input size.
    let out = resized(rgb_image(100, 50), &params(Some(300), Some(100), Fit::Fill));
    assert_eq!(out.first().dimensions(), (100, 33));
    // With upscale the box is honoured exactly.
    let p = ResizeParams { upscale: true, ..params(Some(200), Some(200), Fit::Cover) };
    assert_eq!(resized(rgb_image(100, 50), &p).first().dimensions(), (200, 200));
}

#[test]
fn upscaled_output_over_limits_is_rejected_at_apply_time() {
    let limits = Limits { max_side: 1000, ..Limits::default() };
    // A 10 x 100 image to width 500 would be 5000 px tall.
    let p = ResizeParams { upscale: true, ..params(Some(500), None, Fit::Inside) };
    p.validate("ops[0]", &limits).unwrap();
    let mut image = rgb_image(10, 100);
    let err = resize::resize(&mut image, &p, &limits).unwrap_err();
    assert_eq!(err.code(), "invalid_params");
    assert_eq!(err.field(), Some("height"));
    let limits = Limits { max_pixels: 10_000, ..Limits::default() };
    let p = ResizeParams { upscale: true, ..params(Some(200), Some(200), Fit::Inside) };
    let err = resize::resize(&mut rgb_image(10, 10), &p, &limits).unwrap_err();
    assert_eq!(err.code(), "invalid_params");
}

#[test]
fn scale_factor_examples() {
    let inside = params(Some(800), None, Fit::Inside);
    assert!((resize::scale_factor(&inside, 4000, 3000) - 0.2).abs() < 1e-12);
    let both = params(Some(800), Some(800), Fit::Inside);
    assert!((resize::scale_factor(&both, 4000, 2000) - 0.2).abs() < 1e-12);
    assert!((resize::scale_factor(&both, 2000, 4000) - 0.2).abs() < 1e-12);
    let cover = params(Some(800), Some(800), Fit::Cover);
    assert!((resize::scale_factor(&cover, 4000, 2000) - 0.4).abs() < 1e-12);
    let fill = params(Some(100), Some(1000), Fit::Fill);
    assert!((resize::scale_factor(&fill, 4000, 2000) - 0.5).abs() < 1e-12);
    // Never more than 1, whatever the request.
    assert_eq!(resize::scale_factor(&inside, 400, 300), 1.0);
    assert_eq!(resize::scale_factor(&cover, 4000, 10), 1.0);
    let up = ResizeParams { upscale: true, ..inside };
    assert_eq!(resize::scale_factor(&up, 100, 100), 1.0);
}

// ---------------------------------------------------------------- resize: validation

fn validate_json(json: &str) -> image_ops::Result<()> {
    let spec: PipelineSpec = serde_json::from_str(json).unwrap();
    spec.validate(&Limits::default())
}

fn field_of(json: &str) -> String {
    let err = validate_json(json).unwrap_err();
    assert_eq!(err.code(), "invalid_params", "{json}");
    err.field().unwrap().to_string()
}

#[test]
fn resize_validation_names_the_field() {
    assert_eq!(field_of(r#"{"ops":[{"op":"resize","width":0}]}"#), "ops[0].width");
    assert_eq!(field_of(r#"{"ops":[{"op":"resize","height":16385}]}"#), "ops[0].height");
    assert_eq!(field_of(r#"{"ops":[{"op":"resize"}]}"#), "ops[0].width");
    assert_eq!(field_of(r#"{"ops":[{"op":"thumbnail","width":10,"fit":"cover"}]}"#), "ops[0].height");
    assert_eq!(field_of(r#"{"ops":[{"op":"resize","height":10,"fit":"fill"}]}"#), "ops[0].width");
    assert_eq!(
        field_of(
            r#"{"ops":[{"op":"resize","width":10},
                       {"op":"resize","width":16000,"height":16000,"fit":"fill","upscale":true}]}"#
        ),
        "ops[1].width"
    );
    validate_json(r#"{"ops":[{"op":"resize","width":16384,"height":16384}]}"#).unwrap();
    validate_json(r#"{"ops":[{"op":"resize","width":16000,"height":16000,"fit":"cover"}]}"#).unwrap();
    validate_json(r#"{"ops":[{"op":"resize","height":1,"filter":"nearest","gravity":"top"}]}"#).unwrap();
}

// ---------------------------------------------------------------- round corners

#[test]
fn round_corners_px_radius() {
    let out = rounded(rgb_image(200, 120), Length::Px(30), None);
    assert!(out.first().has_alpha());
    // Each corner cuts away r^2 (1 - pi / 4) of the image.
    let cut: f64 = out.first().to_rgba().pixels().map(|p| f64::from(255 - p[3]) / 255.0).sum();
    let expected = 4.0 * 30.0 * 30.0 * (1.0 - std::f64::consts::FRAC_PI_4);
    assert!((cut - expected).abs() < 1.0, "cut {cut} expected {expected}");
    common::assert_golden("round_corners_px30", &out.first().to_rgba(), 1);
}

#[test]
fn round_corners_percent_radius() {
    // 50% of the shorter side: the short ends are semicircles.
    let out = rounded(rgb_image(160, 90), Length::Percent(50.0), None);
    let img = out.first().to_rgba();
    // The middle of the top edge is opaque, the middle of the left edge too (radius 45).
    assert_eq!(img.get_pixel(80, 0)[3], 255);
    assert_eq!(img.get_pixel(0, 45)[3], 255);
    assert_eq!(img.get_pixel(0, 10)[3], 0);
    common::assert_golden("round_corners_pct50", &img, 1);
    let out = rounded(rgb_image(160, 90), Length::Percent(20.0), None);
    common::assert_golden("round_corners_pct20", &out.first().to_rgba(), 1);
}

#[test]
fn round_corners_opaque_background_stays_rgb() {
    let out = rounded(rgb_image(200, 120), Length::Px(30), Some(Color([255, 255, 255, 255])));
    let Pixels::Rgb(rgb) = out.first() else { panic!("an opaque background keeps RGB") };
    assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
    common::assert_golden("round_corners_px30_white", &out.first().to_rgba(), 1);
}

#[test]
fn round_corners_translucent_background_on_rgba() {
    let src = common::photo_rgba(120, 120);
    let out = rounded(rgba_image(src), Length::Percent(25.0), Some(Color([0, 64, 255, 128])));
    let img = out.first().to_rgba();
    assert_eq!(img.get_pixel(0, 0).0, [0, 64, 255, 128]);
    common::assert_golden("round_corners_pct25_translucent_bg", &img, 1);
}

#[test]
fn round_corners_keeps_alpha_of_transparent_input() {
    // Alpha is multiplied by coverage: an input pixel at alpha 100 on the arc gets less.
    let src = RgbaImage::from_pixel(40, 40, Rgba([10, 20, 30, 100]));
    let out = rounded(rgba_image(src), Length::Px(10), None).first().to_rgba();
    assert_eq!(out.get_pixel(20, 20).0, [10, 20, 30, 100]);
    assert_eq!(out.get_pixel(0, 0)[3], 0);
    assert!(out.pixels().all(|p| p[3] <= 100));
    assert!(out.pixels().any(|p| p[3] > 0 && p[3] < 100));
}

#[test]
fn round_corners_tiny_and_every_frame() {
    // 1 px tall: radius clamps to 0.5, nothing panics, the result stays within bounds.
    let out = rounded(rgb_image(7, 1), Length::Px(100), None).first().to_rgba();
    assert_eq!(out.dimensions(), (7, 1));
    assert_eq!(out.get_pixel(3, 0)[3], 255);
    assert!(out.get_pixel(0, 0)[3] < 255);
    // Odd side with radius = side / 2: the corner squares meet in the middle column.
    let out = rounded(rgb_image(9, 9), Length::Percent(50.0), None).first().to_rgba();
    assert_eq!(out.get_pixel(4, 4)[3], 255);
    // The coverage is accurate: the alpha sums to the disc's area, pi * 4.5^2.
    let area: f64 = out.pixels().map(|p| f64::from(p[3]) / 255.0).sum();
    assert!((area - std::f64::consts::PI * 4.5 * 4.5).abs() < 0.5, "area {area}");
    for (x, y) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
        assert_eq!(out.get_pixel(x, y)[3], 0);
    }
    // Symmetric under both mirrors.
    for y in 0..9 {
        for x in 0..9 {
            assert_eq!(out.get_pixel(x, y)[3], out.get_pixel(8 - x, y)[3]);
            assert_eq!(out.get_pixel(x, y)[3], out.get_pixel(x, 8 - y)[3]);
        }
    }
    let frames = vec![
        image_ops::Frame { pixels: Pixels::Rgb(common::photo(30, 20)), delay_ms: 50 },
        image_ops::Frame { pixels: Pixels::Rgb(common::photo(30, 20)), delay_ms: 50 },
    ];
    let mut anim = Image {
        frames,
        format: InputFormat::Webp,
        loop_count: 0,
        shrunk_from: None,
        metadata: Default::default(),
    };
    round_corners(&mut anim, &RoundCornersParams { radius: Length::Px(6), background: None }).unwrap();
    assert!(anim.frames.iter().all(|f| f.pixels == anim.frames[0].pixels && f.pixels.has_alpha()));
}

#[test]
fn round_corners_validation_names_the_field() {
    assert_eq!(field_of(r#"{"ops":[{"op":"round_corners","radius":0}]}"#), "ops[0].radius");
    assert_eq!(field_of(r#"{"ops":[{"op":"round_corners","radius":"60%"}]}"#), "ops[0].radius");
    validate_json(r##"{"ops":[{"op":"round_corners","radius":"50%","background":"#fff"}]}"##).unwrap();
}

// ---------------------------------------------------------------- slice

fn grid(rows: u32, cols: u32) -> SliceParams {
    SliceParams { rows: Some(rows), cols: Some(cols), tile_width: None, tile_height: None }
}

fn tile_size(tile_width: u32, tile_height: u32) -> SliceParams {
    SliceParams { rows: None, cols: None, tile_width: Some(tile_width), tile_height: Some(tile_height) }
}

#[test]
fn slice_grid_remainder_rule() {
    let tiles = slice::plan(10, 7, &grid(2, 3)).unwrap();
    let dims: Vec<_> = tiles.iter().map(|t| (t.row, t.col, t.x, t.y, t.width, t.height)).collect();
    assert_eq!(
        dims,
        vec![
            (0, 0, 0, 0, 3, 3),
            (0, 1, 3, 0, 3, 3),
            (0, 2, 6, 0, 4, 3),
            (1, 0, 0, 3, 3, 4),
            (1, 1, 3, 3, 3, 4),
            (1, 2, 6, 3, 4, 4),
        ]
    );
}

#[test]
fn slice_tile_size_rule() {
    let tiles = slice::plan(10, 7, &tile_size(4, 5)).unwrap();
    let dims: Vec<_> = tiles.iter().map(|t| (t.row, t.col, t.x, t.y, t.width, t.height)).collect();
    assert_eq!(
        dims,
        vec![
            (0, 0, 0, 0, 4, 5),
            (0, 1, 4, 0, 4, 5),
            (0, 2, 8, 0, 2, 5),
            (1, 0, 0, 5, 4, 2),
            (1, 1, 4, 5, 4, 2),
            (1, 2, 8, 5, 2, 2),
        ]
    );
    // A tile larger than the image is the whole image.
    let tiles = slice::plan(10, 7, &tile_size(100, 100)).unwrap();
    assert_eq!(tiles, vec![TileInfo { row: 0, col: 0, x: 0, y: 0, width: 10, height: 7 }]);
}

#[test]
fn slice_errors_that_depend_on_the_image() {
    let err = slice::plan(10, 7, &grid(8, 3)).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("rows")));
    let err = slice::plan(2, 70, &grid(3, 3)).unwrap_err();
    assert_eq!((err.code(), err.field()), ("invalid_params", Some("cols")));
    // 1025 tiles.
    let err = slice::plan(1025, 1, &tile_size(1, 1)).unwrap_err();
    assert_eq!(err.code(), "invalid_params");
    assert_eq!(slice::plan(1024, 1, &tile_size(1, 1)).unwrap().len(), 1024);
    assert_eq!(slice::plan(32, 32, &tile_size(1, 1)).unwrap().len(), 1024);
}

#[test]
fn slice_tiles_are_images_of_the_first_frame() {
    let frames = vec![
        image_ops::Frame { pixels: Pixels::Rgba(common::photo_rgba(20, 10)), delay_ms: 40 },
        image_ops::Frame { pixels: Pixels::Rgba(RgbaImage::new(20, 10)), delay_ms: 40 },
    ];
    let anim = Image {
        frames,
        format: InputFormat::Gif,
        loop_count: 0,
        shrunk_from: None,
        metadata: Default::default(),
    };
    let tiles = slice::slice(&anim, &grid(2, 2)).unwrap();
    assert_eq!(tiles.len(), 4);
    let first = common::photo_rgba(20, 10);
    for (info, tile) in &tiles {
        assert_eq!(tile.frames.len(), 1);
        assert_eq!(tile.format, InputFormat::Gif);
        let Pixels::Rgba(px) = tile.first() else { panic!("RGBA expected") };
        assert_eq!(px.dimensions(), (info.width, info.height));
        assert_eq!(px.get_pixel(0, 0), first.get_pixel(info.x, info.y));
    }
}

#[test]
fn slice_validation_names_the_field() {
    let f = |ops: &str| field_of(&format!(r#"{{"ops":[{ops}]}}"#));
    assert_eq!(f(r#"{"op":"slice","rows":2}"#), "ops[0].cols");
    assert_eq!(f(r#"{"op":"slice","cols":2}"#), "ops[0].rows");
    assert_eq!(f(r#"{"op":"slice","tile_width":2}"#), "ops[0].tile_height");
    assert_eq!(f(r#"{"op":"slice","tile_height":2}"#), "ops[0].tile_width");
    assert_eq!(f(r#"{"op":"slice"}"#), "ops[0]");
    assert_eq!(f(r#"{"op":"slice","rows":2,"cols":2,"tile_width":5}"#), "ops[0]");
    assert_eq!(f(r#"{"op":"slice","rows":0,"cols":2}"#), "ops[0].rows");
    assert_eq!(f(r#"{"op":"slice","rows":2,"cols":65}"#), "ops[0].cols");
    assert_eq!(f(r#"{"op":"slice","rows":64,"cols":17}"#), "ops[0].rows");
    assert_eq!(f(r#"{"op":"slice","tile_width":0,"tile_height":5}"#), "ops[0].tile_width");
    assert_eq!(f(r#"{"op":"slice","tile_width":5,"tile_height":16385}"#), "ops[0].tile_height");
    validate_json(r#"{"ops":[{"op":"slice","rows":64,"cols":16}]}"#).unwrap();
    validate_json(r#"{"ops":[{"op":"slice","tile_width":256,"tile_height":256}]}"#).unwrap();
}

// ---------------------------------------------------------------- properties

/// Reassembles tiles into one RGBA image, checking each pixel is written exactly once.
fn reassemble(w: u32, h: u32, tiles: &[(TileInfo, Image)]) -> RgbaImage {
    let mut out = RgbaImage::new(w, h);
    let mut seen = vec![0u8; (w * h) as usize];
    for (i, (info, tile)) in tiles.iter().enumerate() {
        let row = i as u32 / tiles.last().unwrap().0.col.saturating_add(1);
        assert_eq!(info.row, row, "row-major order");
        let px = tile.first().to_rgba();
        assert_eq!(px.dimensions(), (info.width, info.height));
        for (x, y, p) in px.enumerate_pixels() {
            out.put_pixel(info.x + x, info.y + y, *p);
            seen[((info.y + y) * w + info.x + x) as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "tiles cover the image exactly once");
    out
}

fn fit_strategy() -> impl Strategy<Value = (Option<u32>, Option<u32>)> {
    prop_oneof![
        (1u32..300).prop_map(|w| (Some(w), None)),
        (1u32..300).prop_map(|h| (None, Some(h))),
        (1u32..300, 1u32..300).prop_map(|(w, h)| (Some(w), Some(h))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn prop_inside_fits_and_keeps_aspect(
        w in 1u32..200, h in 1u32..200, (bw, bh) in fit_strategy(), upscale: bool,
    ) {
        let p = ResizeParams { upscale, ..params(bw, bh, Fit::Inside) };
        let src = rgb_image(w, h);
        let mut out = src.clone();
        if let Err(e) = resize::resize(&mut out, &p, &Limits::default()) {
            // Only an upscale past the side limit may fail (a 158 x 1 image to height 104).
            prop_assert!(upscale && e.code() == "invalid_params", "{e}");
            let free_side = bw.map_or(0.0, |bw| f64::from(h) * f64::from(bw) / f64::from(w))
                .max(bh.map_or(0.0, |bh| f64::from(w) * f64::from(bh) / f64::from(h)));
            prop_assert!(free_side > 16_383.5, "{e}");
            return Ok(());
        }
        let (ow, oh) = out.first().dimensions();
        prop_assert!(ow >= 1 && oh >= 1);
        prop_assert!(bw.is_none_or(|bw| ow <= bw) && bh.is_none_or(|bh| oh <= bh), "{ow}x{oh} fits");
        if !upscale {
            prop_assert!(ow <= w && oh <= h, "no upscaling: {ow}x{oh} from {w}x{h}");
            let fits = bw.is_none_or(|bw| w <= bw) && bh.is_none_or(|bh| h <= bh);
            if fits {
                prop_assert_eq!(&out, &src);
            }
        }
        // Aspect within 1 px either way (the rounding of the smaller side).
        let exact_h = f64::from(ow) * f64::from(h) / f64::from(w);
        let exact_w = f64::from(oh) * f64::from(w) / f64::from(h);
        prop_assert!(
            (f64::from(oh) - exact_h).abs() <= 1.0 || (f64::from(ow) - exact_w).abs() <= 1.0,
            "{w}x{h} -> {ow}x{oh}"
        );
        // One side touches the box (or the image is untouched).
        if out != src {
            prop_assert!(Some(ow) == bw || Some(oh) == bh);
        }
    }

    #[test]
    fn prop_cover_and_fill_give_the_box(
        w in 1u32..200, h in 1u32..200, bw in 1u32..200, bh in 1u32..200,
        cover: bool, upscale: bool, gravity in 0usize..9,
    ) {
        let gravities = [
            Gravity::TopLeft, Gravity::Top, Gravity::TopRight, Gravity::Left, Gravity::Center,
            Gravity::Right, Gravity::BottomLeft, Gravity::Bottom, Gravity::BottomRight,
        ];
        let fit = if cover { Fit::Cover } else { Fit::Fill };
        let p = ResizeParams { upscale, gravity: gravities[gravity].into(), ..params(Some(bw), Some(bh), fit) };
        let (ow, oh) = resized(rgb_image(w, h), &p).first().dimensions();
        if upscale || (bw <= w && bh <= h) {
            prop_assert_eq!((ow, oh), (bw, bh));
        } else {
            // Shrunk proportionally: never larger than the input, one side equal to it, the
            // box's aspect ratio kept within 1 px.
            prop_assert!(ow <= w && oh <= h && ow <= bw && oh <= bh, "{ow}x{oh}");
            prop_assert!(ow == w || oh == h);
            let exact_h = f64::from(ow) * f64::from(bh) / f64::from(bw);
            let exact_w = f64::from(oh) * f64::from(bw) / f64::from(bh);
            prop_assert!((f64::from(oh) - exact_h).abs() <= 1.0 || (f64::from(ow) - exact_w).abs() <= 1.0);
        }
    }

    /// Shrink-on-load: decoding at least `scale_factor` large (as a DCT-scaling decoder does,
    /// rounding sizes up) never leaves resize with too few pixels, and gives the same size.
    #[test]
    fn prop_scale_factor_is_safe_for_shrink_on_load(
        w in 1u32..400, h in 1u32..400, (bw, bh) in fit_strategy(), fit in 0usize..3,
    ) {
        let fit = [Fit::Inside, Fit::Cover, Fit::Fill][fit];
        let (bw, bh) = if fit == Fit::Inside { (bw, bh) } else { (bw.or(Some(37)), bh.or(Some(53))) };
        let p = params(bw, bh, fit);
        let f = resize::scale_factor(&p, w, h);
        prop_assert!(f > 0.0 && f <= 1.0);
        for denom in 1..=8u32 {
            let k = f64::from(denom) / 8.0;
            if k < f {
                continue;
            }
            let (dw, dh) = (w.saturating_mul(denom).div_ceil(8), h.saturating_mul(denom).div_ceil(8));
            let full = resized(rgb_image(w, h), &p).first().dimensions();
            let small = resized(rgb_image(dw, dh), &p).first().dimensions();
            prop_assert!(small.0 <= dw && small.1 <= dh, "no upscale needed after shrink-on-load");
            if fit == Fit::Inside {
                // Rounding the decoded size up skews the aspect ratio by under one decoded pixel
                // per axis, so the side that follows the aspect ratio may move by up to
                // 1 + out / (decoded size of the other side) px (a few px only for elongated
                // images fitted by their short side). The side fitted to the box is exact.
                let slack = |out: u32, other_decoded: u32| 1.0 + f64::from(out) / f64::from(other_decoded);
                prop_assert!(f64::from(full.0.abs_diff(small.0)) <= slack(full.0, dh), "{full:?} vs {small:?}");
                prop_assert!(f64::from(full.1.abs_diff(small.1)) <= slack(full.1, dw), "{full:?} vs {small:?}");
                prop_assert!(
                    bw.is_some_and(|bw| full.0 == bw && small.0 == bw)
                        || bh.is_some_and(|bh| full.1 == bh && small.1 == bh)
                        || full == (w, h)
                );
            } else {
                prop_assert_eq!(full, small);
            }
            break;
        }
    }

    #[test]
    fn prop_slices_reassemble_exactly(
        w in 1u32..120, h in 1u32..120, a in 1u32..20, b in 1u32..20, by_grid: bool, alpha: bool,
    ) {
        let p = if by_grid { grid(a.min(h), b.min(w)) } else { tile_size(a + 3, b + 3) };
        let src = common::photo_rgba(w, h);
        let image = if alpha {
            rgba_image(src.clone())
        } else {
            rgb_image(w, h)
        };
        let tiles = slice::slice(&image, &p).unwrap();
        let planned = slice::plan(w, h, &p).unwrap();
        prop_assert_eq!(tiles.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), planned);
        let back = reassemble(w, h, &tiles);
        let expected = image.first().to_rgba();
        prop_assert_eq!(back.as_raw(), expected.as_raw());
        if by_grid {
            prop_assert_eq!(tiles.len() as u32, a.min(h) * b.min(w));
        }
    }

    #[test]
    fn prop_round_corners_touch_only_the_corners(
        w in 8u32..120, h in 8u32..120, r in 4u32..60, percent: bool,
    ) {
        let short = w.min(h);
        let radius = if percent {
            Length::Percent((r % 50 + 8) as f32)
        } else {
            Length::Px(r.min(short / 2).max(4))
        };
        let resolved = radius.resolve(short);
        prop_assume!(resolved >= 4);
        // The radius is clamped to short / 2 (maybe x.5): corner squares are ceil(radius) px.
        let c = if resolved * 2 > short { short.div_ceil(2) } else { resolved };
        let src = common::photo_rgba(w, h);
        let out = rounded(rgb_image(w, h), radius, None).first().to_rgba();
        let mut partial = 0;
        for (x, y, px) in out.enumerate_pixels() {
            let in_corner = (x < c || x >= w - c) && (y < c || y >= h - c);
            if in_corner {
                prop_assert_eq!(&px.0[..3], &src.get_pixel(x, y).0[..3]);
                if px[3] > 0 && px[3] < 255 {
                    partial += 1;
                }
            } else {
                prop_assert_eq!(px, src.get_pixel(x, y), "({}, {}) untouched", x, y);
            }
        }
        for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
            prop_assert_eq!(out.get_pixel(x, y)[3], 0);
        }
        prop_assert!(partial >= 4, "anti-aliased edge");
    }
}
