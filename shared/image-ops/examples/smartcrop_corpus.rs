//! Writes the smart-crop corpus of `tests/smartcrop.rs` with imgfn's crop boxes, for
//! `bench/smartcrop.py` to set beside sharp's `attention` and `entropy` crops.
//!
//! ```sh
//! cargo run --release -p image-ops --example smartcrop_corpus -- DIR
//! ```
//!
//! Writes, for every scene (synthetic photos with one subject whose pixels are known:
//! `tests/smartcrop/scenes.rs`), `DIR/NN.png` and `DIR/NN.mask.png` (255 where the subject is),
//! and `DIR/corpus.json`: per scene its name, files, size and, for each cover box, imgfn's crop
//! (`[left, top, width, height]` in source pixels) for gravity `center`, `entropy` and `attention`.
#![allow(clippy::unwrap_used)]

#[path = "../tests/smartcrop/scenes.rs"]
mod scenes;

use image::GrayImage;
use image_ops::ops::resize::{cover_crop, CropGravity, Fit, ResizeParams};
use image_ops::{Gravity, Pixels};
use serde_json::{json, Value};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: smartcrop_corpus DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let strategies = [
        ("center", CropGravity::Anchor(Gravity::Center)),
        ("entropy", CropGravity::Entropy),
        ("attention", CropGravity::Attention),
    ];
    let mut scenes_out = Vec::new();
    for (i, (name, _, _, scene)) in scenes::corpus().into_iter().enumerate() {
        let (w, h) = scene.image.dimensions();
        let image = format!("{i:02}.png");
        let mask = format!("{i:02}.mask.png");
        scene.image.save(format!("{dir}/{image}")).unwrap();
        let mask_img = GrayImage::from_fn(w, h, |x, y| {
            image::Luma([255 * u8::from(scene.subject[(y * w + x) as usize])])
        });
        mask_img.save(format!("{dir}/{mask}")).unwrap();
        let pixels = Pixels::Rgb(scene.image.clone());
        let mut boxes = serde_json::Map::new();
        for (shape, size) in scenes::BOXES {
            let (bw, bh) = scenes::box_for(size, w, h);
            let mut crops = serde_json::Map::new();
            for (label, gravity) in strategies {
                let p = ResizeParams { gravity, ..ResizeParams::new(Some(bw), Some(bh), Fit::Cover) };
                let crop = cover_crop(&p, &pixels).unwrap();
                let value = crop.map_or(Value::Null, |c| json!([c.left, c.top, c.width, c.height]));
                crops.insert(label.into(), value);
            }
            boxes.insert(shape.into(), json!({"size": [bw, bh], "imgfn": crops}));
        }
        scenes_out.push(
            json!({"name": name, "image": image, "mask": mask, "width": w, "height": h, "boxes": boxes}),
        );
    }
    let out = format!("{dir}/corpus.json");
    std::fs::write(&out, serde_json::to_string_pretty(&scenes_out).unwrap()).unwrap();
    println!("{} scenes in {out}", scenes_out.len());
}
