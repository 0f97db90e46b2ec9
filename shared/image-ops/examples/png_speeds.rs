//! Measures the round-corners task phase by phase and PNG encoding under each filter and
//! deflate setting: the table behind `encode::PNG_ZLIB_BELOW`.
//!
//! ```sh
//! cargo build --release -p image-ops --example png_speeds
//! taskset -c 0 target/release/examples/png_speeds photo-1mp.jpg [--repeat 9] [--radius 10]
//! ```
//!
//! Decodes the image (through image-ops, as a pipeline would), rounds its corners (radius
//! `--radius` percent of the shorter side, default 10; 0 leaves the pixels as decoded), then
//! encodes the result with every filter (none, sub, up, avg, paeth, adaptive) and deflate
//! setting (fdeflate's fast path, zlib-rs levels 1 to 9), the best of `--repeat` runs (default
//! 5) after a warm-up, and prints milliseconds and bytes. Decoding, rounding and
//! `image_ops::encode::encode` at levels 0 to 9 are timed the same way.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};
use image_ops::decode::{decode, DecodeOptions};
use image_ops::ops::round_corners::{round_corners, RoundCornersParams};
use image_ops::{Length, Limits, OutputFormat, OutputParams, Pixels};

fn best_of(repeat: u32, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let len = f();
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        std::hint::black_box(f());
        best = best.min(start.elapsed().as_secs_f64() * 1000.0);
    }
    (best, len)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().expect("usage: png_speeds IMAGE [--repeat N] [--radius PERCENT]");
    let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let repeat: u32 = option("--repeat").map_or(5, |v| v.parse().unwrap());
    let radius: f32 = option("--radius").map_or(10.0, |v| v.parse().unwrap());
    let bytes = std::fs::read(path).unwrap();
    let limits = Limits::default();
    let params = RoundCornersParams { radius: Length::Percent(radius), background: None };

    let (ms, _) =
        best_of(repeat, || decode(&bytes, &limits, &DecodeOptions::default()).unwrap().width() as usize);
    println!("decode         {ms:7.2} ms");
    let decoded = decode(&bytes, &limits, &DecodeOptions::default()).unwrap();
    let (ms, _) = best_of(repeat, || {
        let mut image = decoded.clone();
        round_corners(&mut image, &params).unwrap();
        image.width() as usize
    });
    let (clone_ms, _) = best_of(repeat, || decoded.clone().width() as usize);
    println!("round corners  {:7.2} ms (clone {clone_ms:.2} ms excluded)", ms - clone_ms);
    let mut image = decoded;
    if radius > 0.0 {
        round_corners(&mut image, &params).unwrap();
    }
    let (w, h) = (image.width(), image.height());
    println!("{w}x{h}, {}", if image.first().has_alpha() { "RGBA" } else { "RGB" });

    for level in 0..=9 {
        let out = OutputParams { compression_level: level, ..OutputParams::default() };
        let (ms, len) = best_of(repeat, || {
            image_ops::encode::encode(&image, OutputFormat::Png, &out).unwrap().bytes.len()
        });
        println!("encode level {level}  {ms:7.2} ms {len:9} bytes");
    }

    let (raw, color) = match image.first() {
        Pixels::Rgb(img) => (img.as_raw(), ExtendedColorType::Rgb8),
        Pixels::Rgba(img) => (img.as_raw(), ExtendedColorType::Rgba8),
    };
    let filters = [
        ("none", FilterType::NoFilter),
        ("sub", FilterType::Sub),
        ("up", FilterType::Up),
        ("avg", FilterType::Avg),
        ("paeth", FilterType::Paeth),
        ("adaptive", FilterType::Adaptive),
    ];
    let mut deflates = vec![("fdeflate".to_owned(), CompressionType::Fast)];
    deflates.extend((1..=9).map(|n| (format!("zlib {n}"), CompressionType::Level(n))));
    for (fname, filter) in filters {
        for (dname, compression) in &deflates {
            let compression = *compression;
            let (ms, len) = best_of(repeat, || {
                let mut out = Vec::with_capacity(raw.len() / 2);
                PngEncoder::new_with_quality(&mut out, compression, filter)
                    .write_image(raw, w, h, color)
                    .unwrap();
                out.len()
            });
            println!("{fname:8} {dname:8} {ms:7.2} ms {len:9} bytes");
        }
    }
}
