//! The smart-crop corpus: synthetic photos with one obvious subject whose pixels are known.
//! Shared by `tests/smartcrop.rs` and the benchmark's `examples/smartcrop_corpus.rs`, which
//! includes this file by path.
#![allow(dead_code)]

use image::{Rgb, RgbImage};
use image_ops::ops::resize::Crop;

/// A deterministic xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-amp, amp].
    pub fn noise(&mut self, amp: i32) -> i32 {
        (self.next() % (2 * amp as u64 + 1)) as i32 - amp
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subject {
    /// Grey-brown bark-like texture: detail, little colour.
    Textured,
    /// A face: skin tones with soft shading, dark eyes and mouth.
    Skin,
    /// A flower: saturated red petals with smooth shading, a yellow centre.
    Saturated,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Background {
    /// One flat colour (with a camera's faint grain).
    Plain,
    /// A soft sky-to-ground gradient (with grain).
    Smooth,
    /// Out-of-focus foliage: low-contrast blotches and fine texture everywhere, muted green.
    Busy,
}

/// A scene and the mask of its subject's pixels.
pub struct Scene {
    pub image: RgbImage,
    pub subject: Vec<bool>,
}

/// A `w` x `h` photo with `subject` drawn as an ellipse of `sw` x `sh` centred at `(cx, cy)`.
pub fn scene(w: u32, h: u32, subject: Subject, background: Background, (cx, cy): (f64, f64)) -> Scene {
    let (sw, sh) = (f64::from(w.min(h)) * 0.3, f64::from(w.min(h)) * 0.36);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (u64::from(w) << 20) ^ u64::from(h));
    let mut mask = vec![false; (w * h) as usize];
    let clamp = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let image = RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
        let grain = f64::from(rng.noise(2));
        let bg = match background {
            Background::Plain => [196.0, 200.0, 204.0],
            Background::Smooth => {
                let t = fy * 0.8 + fx * 0.2;
                [150.0 + 60.0 * (1.0 - t), 160.0 + 50.0 * (1.0 - t), 175.0 + 40.0 * (1.0 - t) - 20.0 * t]
            }
            Background::Busy => {
                let blotch = 14.0 * ((fx * 23.0).sin() * (fy * 17.0).cos() + (fx * 9.0 + fy * 13.0).sin());
                let fine = f64::from(rng.noise(10));
                let l = 120.0 + blotch + fine;
                [l - 15.0, l + 5.0, l - 25.0]
            }
        };
        // Position inside the subject's ellipse: (u, v) in [-1, 1].
        let (u, v) = ((f64::from(x) + 0.5 - cx) / (sw / 2.0), (f64::from(y) + 0.5 - cy) / (sh / 2.0));
        let r2 = u * u + v * v;
        if r2 > 1.0 {
            return Rgb(bg.map(|c| clamp(c + grain)));
        }
        mask[(y * w + x) as usize] = true;
        let px = match subject {
            Subject::Textured => {
                let n = f64::from(rng.noise(55));
                let stripes = 25.0 * ((f64::from(x) * 0.9).sin() + (f64::from(y) * 0.45 + u * 3.0).cos());
                let base = 110.0 + n + stripes;
                [base + 12.0, base + 4.0, base - 6.0]
            }
            Subject::Skin => {
                let shade = 1.0 - 0.18 * r2;
                let eye = ((u.abs() - 0.38).powi(2) + (v + 0.25).powi(2)) < 0.012;
                let mouth = v > 0.35 && v < 0.45 && u.abs() < 0.35;
                if eye || mouth {
                    [70.0, 40.0, 35.0]
                } else {
                    let g = f64::from(rng.noise(3));
                    [224.0 * shade + g, 172.0 * shade + g, 140.0 * shade + g]
                }
            }
            Subject::Saturated => {
                if r2 < 0.08 {
                    [240.0, 200.0, 30.0]
                } else {
                    let petal = 0.85 + 0.15 * (6.0 * v.atan2(u)).cos();
                    [225.0 * petal + grain, 25.0 + grain, 40.0 + grain]
                }
            }
        };
        Rgb(px.map(clamp))
    });
    Scene { image, subject: mask }
}

/// The fraction of the subject's pixels (centres) inside `crop` (`None`: the whole image).
pub fn overlap(scene: &Scene, crop: Option<Crop>) -> f64 {
    let (w, h) = scene.image.dimensions();
    let c = crop.unwrap_or(Crop { left: 0.0, top: 0.0, width: f64::from(w), height: f64::from(h) });
    let (mut inside, mut total) = (0u64, 0u64);
    for y in 0..h {
        for x in 0..w {
            if scene.subject[(y * w + x) as usize] {
                total += 1;
                let (px, py) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
                if px >= c.left && px <= c.left + c.width && py >= c.top && py <= c.top + c.height {
                    inside += 1;
                }
            }
        }
    }
    inside as f64 / total.max(1) as f64
}

pub const SUBJECTS: [Subject; 3] = [Subject::Textured, Subject::Skin, Subject::Saturated];
pub const BACKGROUNDS: [Background; 3] = [Background::Plain, Background::Smooth, Background::Busy];
pub const POSITIONS: [f64; 5] = [0.12, 0.3, 0.5, 0.7, 0.88];

/// Every scene of the corpus: (name, scene). Landscape 640x360 with the subject at several
/// heights of x, portrait 360x640 at several heights of y.
pub fn corpus() -> Vec<(String, Subject, Background, Scene)> {
    let mut out = Vec::new();
    for subject in SUBJECTS {
        for background in BACKGROUNDS {
            for (i, &at) in POSITIONS.iter().enumerate() {
                let landscape =
                    scene(640, 360, subject, background, (640.0 * at, 180.0 + 30.0 * (i as f64 - 2.0)));
                out.push((
                    format!("{subject:?}/{background:?}/landscape x={at}"),
                    subject,
                    background,
                    landscape,
                ));
                let portrait =
                    scene(360, 640, subject, background, (180.0 - 30.0 * (i as f64 - 2.0), 640.0 * at));
                out.push((
                    format!("{subject:?}/{background:?}/portrait y={at}"),
                    subject,
                    background,
                    portrait,
                ));
            }
        }
    }
    out
}

/// The two cover boxes every scene is cropped into: a square one (a 360 px window of a 640x360
/// scene, the subject a third of it) and a narrow one (a 216 px window: the subject, 108 px
/// across, fits only where it is).
pub const BOXES: [(&str, (u32, u32)); 2] = [("square", (200, 200)), ("narrow", (120, 200))];

/// `size` for a `w` x `h` scene: the narrow box runs across the image's long side.
pub fn box_for((bw, bh): (u32, u32), w: u32, h: u32) -> (u32, u32) {
    if w >= h {
        (bw, bh)
    } else {
        (bh, bw)
    }
}
