//! Measures AVIF encode time at every rav1e speed: the table behind `encode::AVIF_SPEEDS`.
//!
//! ```sh
//! cargo build --release -p image-ops --example avif_speeds
//! taskset -c 0 target/release/examples/avif_speeds photo-12mp.jpg [--speeds 10,9,8] [--repeat 3] [--depth 10] [--chroma 4:4:4] [--full-only]
//! ```
//!
//! Decodes the JPEG (through image-ops, as a pipeline would) and resizes a copy to 1024 px
//! wide; then for each size (1024 px wide, and the full image) encodes at quality 80 with each
//! speed (default 10 down to 1) at `--depth` bits (8 or 10; default 8) and `--chroma` subsampling (4:2:0 or 4:4:4; default
//! 4:2:0), the best of `--repeat` runs (default 1) after a warm-up, and
//! prints milliseconds, nanoseconds per pixel and bytes. `--full-only` / `--small-only` measure
//! one size (for peak memory with `/usr/bin/time -v`).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use image_ops::decode::{decode, DecodeOptions};
use image_ops::encode::ChromaSubsampling;
use image_ops::ops::resize::{resize, Fit, ResizeParams};
use image_ops::Limits;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().expect("usage: avif_speeds PHOTO.jpg [--speeds 10,9] [--repeat N]");
    let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let speeds: Vec<u8> = option("--speeds")
        .map_or_else(|| (1..=10).rev().collect(), |s| s.split(',').map(|v| v.parse().unwrap()).collect());
    let repeat: u32 = option("--repeat").map_or(1, |v| v.parse().unwrap());
    let depth: u8 = option("--depth").map_or(8, |v| v.parse().unwrap());
    let chroma: ChromaSubsampling = option("--chroma")
        .map_or_else(ChromaSubsampling::default, |v| serde_json::from_value(v.as_str().into()).unwrap());
    let flag = |name: &str| args.iter().any(|a| a == name);
    let bytes = std::fs::read(path).unwrap();
    let full = decode(&bytes, &Limits::default(), &DecodeOptions::default()).unwrap();
    let mut small = full.clone();
    resize(&mut small, &ResizeParams::new(Some(1024), None, Fit::Inside), &Limits::default()).unwrap();
    let mut sizes = Vec::new();
    if !flag("--full-only") {
        sizes.push(&small);
    }
    if !flag("--small-only") {
        sizes.push(&full);
    }
    for image in sizes {
        let (w, h) = (image.width(), image.height());
        // Warm-up (page faults, lazily initialised tables).
        image_ops::encode::encode_avif(image.first(), 80, 10, depth, chroma).unwrap();
        for &speed in &speeds {
            let mut best = f64::INFINITY;
            let mut len = 0;
            for _ in 0..repeat.max(1) {
                let start = Instant::now();
                len = image_ops::encode::encode_avif(image.first(), 80, speed, depth, chroma).unwrap().len();
                best = best.min(start.elapsed().as_secs_f64() * 1000.0);
            }
            let ns = best * 1e6 / (f64::from(w) * f64::from(h));
            println!("{w}x{h} {depth}-bit speed {speed:2}: {best:9.0} ms {ns:6.0} ns/px {len:9} bytes");
        }
    }
}
