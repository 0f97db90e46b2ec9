//! AVIF output: the pixels in YCbCr (BT.601 matrix, full range, sRGB transfer and primaries),
//! 4:2:0 or 4:4:4 ([`ChromaSubsampling::at`]: by default 4:2:0 below quality 90, libvips's
//! rule), encoded by rav1e as one AV1 key frame, the alpha (when some pixel is not opaque) as a
//! second, monochrome AV1 image, and both wrapped in an AVIF container by `avif-serialize`.
//!
//! rav1e is driven directly rather than through `ravif` because ravif writes 4:4:4 only (as
//! does sharp unless told otherwise). On the benchmark photo's 1024 px rendition, 4:2:0 takes
//! 19-22% fewer bytes than 4:4:4 at the same quality, with the same luma SSIM, in 0.68-0.88x
//! the time (`examples/avif_speeds.rs`); libvips, Squoosh and imgfn's JPEG and lossy WebP
//! outputs subsample too. 4:4:4 keeps sharp colour edges in graphics and text. The quality
//! scale and the still-image speed settings below are ravif 0.13's (the encoder imgfn used
//! before), so a `quality` and an `effort` mean what they meant then.

use rav1e::prelude::*;

use crate::encode::ChromaSubsampling;
use crate::{Error, Pixels, Result};

/// BT.601 luma weights of R, G and B: what the container's `nclx` matrix (6) says.
const KR: f32 = 0.299;
const KB: f32 = 0.114;
const KG: f32 = 1.0 - KR - KB;

/// Encodes `pixels` (see the module docs) at `quality` 1..=100, rav1e `speed` 1..=10, `depth` 8
/// or 10 bits, `chroma` as it resolves at `quality`, on this thread; `exif` (a TIFF structure)
/// becomes the file's `Exif` item.
pub(crate) fn encode(
    pixels: &Pixels,
    quality: u8,
    speed: u8,
    depth: u8,
    chroma: ChromaSubsampling,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let quantizer = quality_to_quantizer(quality);
    let depth = if depth > 8 { 10 } else { 8 };
    let full = chroma.at(quality) == ChromaSubsampling::Cs444;
    let (width, height) = pixels.dimensions();
    let (w, h) = (width as usize, height as usize);
    let cleaned;
    let (rgb, stride, alpha) = match pixels {
        Pixels::Rgb(img) => (img.as_raw().as_slice(), 3, None),
        Pixels::Rgba(img) if img.pixels().all(|p| p[3] == 255) => (img.as_raw().as_slice(), 4, None),
        Pixels::Rgba(img) => {
            cleaned = clean_transparent(img.as_raw(), w);
            (cleaned.as_slice(), 4, Some(img.as_raw()))
        }
    };
    let planes = ycbcr_planes(rgb, stride, w, h, depth, full);
    let colour = Stream {
        width: w,
        height: h,
        depth,
        quantizer,
        speed,
        sampling: if full { ChromaSampling::Cs444 } else { ChromaSampling::Cs420 },
        colour: Some(ColorDescription {
            color_primaries: ColorPrimaries::BT709,
            transfer_characteristics: TransferCharacteristics::SRGB,
            matrix_coefficients: MatrixCoefficients::BT601,
        }),
    };
    let colour_av1 = av1(&colour, &planes)?;
    let alpha_av1 = match alpha {
        Some(rgba) => {
            let scale = |a: u8| if depth == 8 { u16::from(a) } else { to_ten(a) };
            let plane: Vec<u16> = rgba.chunks_exact(4).map(|p| scale(p[3])).collect();
            let stream = Stream { sampling: ChromaSampling::Cs400, colour: None, ..colour };
            Some(av1(&stream, &[(plane, w, h)])?)
        }
        None => None,
    };

    // avif-serialize's colour defaults are the stream's (BT.601, sRGB, BT.709, full range), so
    // it writes no `colr` box: decoders take them from the AV1 sequence header.
    let mut container = avif_serialize::Aviffy::new();
    container
        .set_chroma_subsampling(if full { (false, false) } else { (true, true) })
        // AV1's Main profile holds 4:2:0 and monochrome; 4:4:4 needs High (1).
        .set_seq_profile(u8::from(full))
        .premultiplied_alpha(false);
    if let Some(exif) = exif {
        container.set_exif(exif.to_vec());
    }
    Ok(container.to_vec(&colour_av1, alpha_av1.as_deref(), width, height, depth))
}

/// ravif's quality scale: quality 1..=100 to an AV1 quantizer index 255..=0.
fn quality_to_quantizer(quality: u8) -> usize {
    let q = f32::from(quality.clamp(1, 100)) / 100.0;
    let x = if q >= 0.82 {
        (1.0 - q) * 2.6
    } else if q > 0.25 {
        q.mul_add(-0.5, 1.0 - 0.125)
    } else {
        1.0 - q
    };
    (x * 255.0).round() as usize
}

/// 8-bit sample to 10 bits, the top bits repeated (255 to 1023).
fn to_ten(v: u8) -> u16 {
    (u16::from(v) << 2) | (u16::from(v) >> 6)
}

/// A copy of RGBA rows where each fully transparent pixel takes the colour of the nearest
/// visible one before it in its row (after it at a row's start; a wholly transparent row takes
/// the first colour of the row above, or black): the colour there is never shown, and runs of
/// one colour cost the encoder almost nothing, where the source's hidden colours (often noise or
/// a cut-out's old background) would be coded as detail.
fn clean_transparent(rgba: &[u8], w: usize) -> Vec<u8> {
    let mut out = rgba.to_vec();
    let row_bytes = w * 4;
    for y in 0..out.len() / row_bytes.max(1) {
        let (above, rest) = out.split_at_mut(y * row_bytes);
        let row = &mut rest[..row_bytes];
        let Some(first) = row.chunks_exact(4).position(|p| p[3] != 0) else {
            let fill = match above.len() {
                0 => [0, 0, 0],
                n => [above[n - row_bytes], above[n - row_bytes + 1], above[n - row_bytes + 2]],
            };
            for p in row.chunks_exact_mut(4) {
                p[..3].copy_from_slice(&fill);
            }
            continue;
        };
        let mut last = [row[first * 4], row[first * 4 + 1], row[first * 4 + 2]];
        for p in row.chunks_exact_mut(4) {
            if p[3] == 0 {
                p[..3].copy_from_slice(&last);
            } else {
                last = [p[0], p[1], p[2]];
            }
        }
    }
    out
}

/// Y, Cb and Cr planes (each with its width and height) of `rgb` (`stride` bytes per pixel:
/// 3, or 4 with the alpha ignored), at `depth` bits, the chroma at full resolution (4:4:4) or
/// averaged over each 2x2 block (4:2:0; over the pixels there are at an odd edge). Beyond the
/// planes it holds one row of sums: 2 bytes per pixel for the luma and 4 (4:4:4) or 1 (4:2:0)
/// for the chroma.
fn ycbcr_planes(
    rgb: &[u8],
    stride: usize,
    w: usize,
    h: usize,
    depth: u8,
    full: bool,
) -> Vec<(Vec<u16>, usize, usize)> {
    let max = f32::from((1u16 << depth) - 1);
    let scale = max / 255.0;
    let mid = (max * 0.5).round();
    let (cw, ch) = if full { (w, h) } else { (w.div_ceil(2), h.div_ceil(2)) };
    let (sx, sy) = (w.div_ceil(cw), h.div_ceil(ch));
    let sample = |sum: f32, n: usize, k: f32| {
        (sum / n as f32).mul_add(0.5 / (1.0 - k), mid).round().clamp(0.0, max) as u16
    };
    let mut luma = vec![0u16; w * h];
    let (mut cb, mut cr) = (vec![0u16; cw * ch], vec![0u16; cw * ch]);
    // B - Y and R - Y summed over each chroma sample's pixels, one chroma row at a time.
    let (mut sum_b, mut sum_r) = (vec![0f32; cw], vec![0f32; cw]);
    for cy in 0..ch {
        let rows = cy * sy..((cy + 1) * sy).min(h);
        let ny = rows.len();
        sum_b.fill(0.0);
        sum_r.fill(0.0);
        for y in rows {
            let row = &rgb[y * w * stride..(y + 1) * w * stride];
            for (x, p) in row.chunks_exact(stride).enumerate() {
                let (r, g, b) = (f32::from(p[0]) * scale, f32::from(p[1]) * scale, f32::from(p[2]) * scale);
                let l = KR.mul_add(r, KG.mul_add(g, KB * b));
                luma[y * w + x] = l.round().clamp(0.0, max) as u16;
                sum_b[x / sx] += b - l;
                sum_r[x / sx] += r - l;
            }
        }
        for cx in 0..cw {
            let n = (w - cx * sx).min(sx) * ny;
            cb[cy * cw + cx] = sample(sum_b[cx], n, KB);
            cr[cy * cw + cx] = sample(sum_r[cx], n, KR);
        }
    }
    vec![(luma, w, h), (cb, cw, ch), (cr, cw, ch)]
}

/// One AV1 stream's settings.
#[derive(Clone, Copy)]
struct Stream {
    width: usize,
    height: usize,
    depth: u8,
    quantizer: usize,
    speed: u8,
    sampling: ChromaSampling,
    colour: Option<ColorDescription>,
}

/// Encodes `planes` (each with its width and height) as one AV1 key frame: its OBUs.
fn av1(stream: &Stream, planes: &[(Vec<u16>, usize, usize)]) -> Result<Vec<u8>> {
    match stream.depth {
        8 => av1_frame::<u8>(stream, planes),
        _ => av1_frame::<u16>(stream, planes),
    }
}

fn av1_frame<P: Pixel>(stream: &Stream, planes: &[(Vec<u16>, usize, usize)]) -> Result<Vec<u8>> {
    let failed = |e: &dyn std::fmt::Display| Error::Encode(format!("avif: {e}"));
    let mut config = EncoderConfig::with_speed_preset(stream.speed);
    config.width = stream.width;
    config.height = stream.height;
    config.bit_depth = usize::from(stream.depth);
    config.chroma_sampling = stream.sampling;
    config.chroma_sample_position = ChromaSamplePosition::Unknown;
    config.pixel_range = PixelRange::Full;
    config.color_description = stream.colour;
    config.still_picture = true;
    config.quantizer = stream.quantizer;
    config.min_quantizer = u8::try_from(stream.quantizer).unwrap_or(u8::MAX);
    config.tune = Tune::Psychovisual;
    // One tile: encoded on this thread (rav1e's `threading` is off), and tiles cost bytes.
    config.tiles = 1;
    config.speed_settings = still_speed_settings(stream.speed, stream.quantizer);
    let mut context: Context<P> =
        Config::new().with_encoder_config(config).with_threads(1).new_context().map_err(|e| failed(&e))?;
    let mut frame = context.new_frame();
    for (plane, (samples, w, h)) in frame.planes.iter_mut().zip(planes) {
        let mut slice = plane.mut_slice(Default::default());
        for (row, source) in slice.rows_iter_mut().zip(samples.chunks_exact(*w)).take(*h) {
            for (out, &v) in row[..*w].iter_mut().zip(source) {
                *out = P::cast_from(v);
            }
        }
    }
    context.send_frame(frame).map_err(|e| failed(&e))?;
    context.flush();
    let mut obus = Vec::new();
    loop {
        match context.receive_packet() {
            Ok(mut packet) if packet.frame_type == FrameType::KEY => obus.append(&mut packet.data),
            Ok(_) => {}
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => return Err(failed(&e)),
        }
    }
    Ok(obus)
}

/// rav1e's preset for `speed`, tuned for one still image the way ravif 0.13 tunes it (what
/// imgfn's speed and size measurements in `encode` were made with): no multi-frame search, and
/// partition sizes, transforms and filters picked by speed and by how fine the quantizer is.
///
/// ravif names the two quantizer tests "low quality" and "high quality", but a finer quantizer
/// is a smaller index: they hold for qualities above 55 (`above_55`) and below 80 (`below_80`).
/// They are kept as ravif runs them, since that is what was measured.
fn still_speed_settings(speed: u8, quantizer: usize) -> SpeedSettings {
    let above_55 = quantizer < quality_to_quantizer(55);
    let below_80 = quantizer > quality_to_quantizer(80);
    let largest = if below_80 { BlockSize::BLOCK_16X16 } else { BlockSize::BLOCK_64X64 };
    let mut s = SpeedSettings::from_preset(speed);
    s.multiref = false;
    s.rdo_lookahead_frames = 1;
    s.scene_detection_mode = SceneDetectionSpeed::None;
    s.motion.include_near_mvs = false;
    s.motion.use_satd_subpel = false;
    s.fast_deblock = speed >= 7 && !below_80;
    s.transform.reduced_tx_set = speed == 4 || speed >= 9;
    s.transform.tx_domain_rate = speed >= 10;
    s.transform.rdo_tx_decision = speed <= 4 && !below_80;
    s.transform.enable_inter_tx_split = speed >= 9;
    s.partition.encode_bottomup = speed <= 2;
    s.cdef = above_55 && speed <= 9;
    s.lrf = above_55 && speed <= 8;
    s.sgr_complexity = if speed <= 2 { SGRComplexityLevel::Full } else { SGRComplexityLevel::Reduced };
    s.prediction.fine_directional_intra = speed <= 6;
    s.prediction.prediction_modes =
        if speed <= 1 { PredictionModesSetting::ComplexAll } else { PredictionModesSetting::Simple };
    let (min, max) = match speed {
        0 => (BlockSize::BLOCK_4X4, largest),
        1 if above_55 => (BlockSize::BLOCK_4X4, largest),
        2 if above_55 => (BlockSize::BLOCK_4X4, smaller(BlockSize::BLOCK_32X32, largest)),
        1..=4 => (BlockSize::BLOCK_4X4, BlockSize::BLOCK_16X16),
        5..=8 => (BlockSize::BLOCK_8X8, BlockSize::BLOCK_16X16),
        _ => (BlockSize::BLOCK_16X16, BlockSize::BLOCK_16X16),
    };
    s.partition.partition_range = PartitionRange::new(min, max);
    s
}

fn smaller(a: BlockSize, b: BlockSize) -> BlockSize {
    if a.width() <= b.width() {
        a
    } else {
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quality_scale_is_ravifs() {
        // ravif 0.13's quantizers for these qualities (its `quality_to_quantizer`).
        for (quality, quantizer) in [(1, 252), (25, 191), (50, 159), (80, 121), (82, 119), (90, 66), (100, 0)]
        {
            assert_eq!(quality_to_quantizer(quality), quantizer, "quality {quality}");
        }
    }

    #[test]
    fn auto_keeps_full_chroma_from_quality_90() {
        use ChromaSubsampling::{Auto, Cs420, Cs444};
        assert_eq!((Auto.at(1), Auto.at(80), Auto.at(89)), (Cs420, Cs420, Cs420));
        assert_eq!((Auto.at(90), Auto.at(100)), (Cs444, Cs444));
        assert_eq!((Cs420.at(100), Cs444.at(1)), (Cs420, Cs444));
    }

    #[test]
    fn grey_is_mid_chroma_and_colours_keep_their_sign() {
        for full in [false, true] {
            // 3x3: odd edges, one 2x2 block and partial ones at 4:2:0.
            let grey = [128u8; 27];
            let planes = ycbcr_planes(&grey, 3, 3, 3, 8, full);
            assert!(planes[0].0.iter().all(|&y| y == 128));
            assert!(planes[1].0.iter().chain(&planes[2].0).all(|&c| c == 128));
            let red: Vec<u8> = [255u8, 0, 0].repeat(9);
            let planes = ycbcr_planes(&red, 3, 3, 3, 8, full);
            assert!(planes[0].0.iter().all(|&y| y == 76), "{:?}", planes[0].0);
            assert!(planes[1].0.iter().all(|&cb| cb == 85), "{:?}", planes[1].0);
            assert!(planes[2].0.iter().all(|&cr| cr == 255), "{:?}", planes[2].0);
        }
        // 10 bits: white is 1023, grey's chroma 512.
        let planes = ycbcr_planes(&[255u8; 12], 3, 2, 2, 10, false);
        assert_eq!(
            (planes[0].0.clone(), planes[1].0.clone(), planes[2].0.clone()),
            (vec![1023; 4], vec![512], vec![512])
        );
    }

    #[test]
    fn four_two_zero_averages_each_two_by_two_block() {
        // 3x2: the left block averages black and white (4 pixels), the right column alone
        // (2 pixels) is blue.
        #[rustfmt::skip]
        let rgb = [
            0, 0, 0,   255, 255, 255,   0, 0, 255,
            255, 255, 255,   0, 0, 0,   0, 0, 255,
        ];
        let planes = ycbcr_planes(&rgb, 3, 3, 2, 8, false);
        assert_eq!((planes[1].1, planes[1].2), (2, 1));
        assert_eq!(planes[1].0, vec![128, 255]);
        assert_eq!(planes[2].0, vec![128, 107]);
    }

    #[test]
    fn hidden_colours_take_the_nearest_visible_one() {
        #[rustfmt::skip]
        let rgba = [
            9, 9, 9, 0,   1, 2, 3, 255,   7, 7, 7, 0,
            5, 5, 5, 0,   6, 6, 6, 0,     4, 4, 4, 0,
        ];
        let cleaned = clean_transparent(&rgba, 3);
        #[rustfmt::skip]
        assert_eq!(cleaned, [
            1, 2, 3, 0,   1, 2, 3, 255,   1, 2, 3, 0,
            1, 2, 3, 0,   1, 2, 3, 0,     1, 2, 3, 0,
        ]);
    }
}
