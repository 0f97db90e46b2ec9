//! A JPEG resized into a JPEG without going through RGB: libjpeg decodes the source's Y, Cb and
//! Cr planes at the DCT scale a full decode would use for shrink-on-load (4:2:0 chroma at half
//! the luma's resolution, by a 4x4 IDCT where a full decode at 1/2 scale takes an 8x8 one to
//! bring it to the luma's), the resampler resizes each plane (luma to the output's size, chroma
//! straight to the output's 4:2:0 chroma), and the encoder takes the planes as they are. A full
//! decode converts the planes to RGB, and the encoder converts the resized RGB back to YCbCr and
//! downsamples its chroma: both conversions are skipped, and the two chroma planes are decoded
//! and resampled at a quarter of the luma's size instead of at the full size three times over
//! (resizing is linear, so the luma is what an RGB resize gives up to rounding, and the chroma
//! a 4:2:0 copy of it as sharp as the encoder's own downsampling).
//!
//! It applies where the overlay transcode does (an upright, complete 8-bit YCbCr 4:2:0 JPEG
//! without an Adobe marker or a profile the decode would convert from), for a resize that
//! shrinks (no enlargement) with an anchored or focal-point crop (the smart crops look at RGB
//! pixels), to a baseline JPEG at a quality level, and not at 1/8 scale (the DC-only decode of a
//! full decode is faster there); otherwise the pipeline decodes in full.

use fast_image_resize::Resizer;

use super::ffi::Plane;
use super::Skip;
use crate::encode::Encoded;
use crate::ops::resize::{plan_decoded, resample_plane, scale_factor, Crop, CropGravity, ResizeParams};
use crate::{Metadata, OutputParams, Quality};

/// The JPEG `input` (whose size the probe read as `probed`) resized by `p` into a JPEG with
/// `out`, whose quality must be a level already; see the module docs for when it applies.
pub(crate) fn thumbnail(
    input: &[u8],
    probed: (u32, u32),
    p: &ResizeParams,
    out: &OutputParams,
) -> Result<Encoded, Skip> {
    let Quality::Level(quality) = out.quality else {
        return Err("the quality is not a level yet".into());
    };
    if out.progressive {
        return Err("progressive output is left to libjpeg's own statistics".into());
    }
    if matches!(p.gravity, CropGravity::Entropy | CropGravity::Attention) {
        return Err("a smart crop looks at RGB pixels".into());
    }
    let (w, h) = probed;
    let scale = crate::decode::jpeg::jpeg_scale(w, h, scale_factor(p, w, h));
    if scale == 1 {
        return Err("a 1/8-scale decode is faster from the DC coefficients".into());
    }
    let (mut t, icc) = super::open_plain(input, probed, out.keep_icc)?;
    let planes = t.read_planes(scale)?;
    drop(t);
    let [y, cb, cr] = planes.as_slice() else {
        return Err("not three planes".into());
    };
    let decoded = (dim(y.width)?, dim(y.height)?);
    let shrunk_from = (scale < 8).then_some(probed);
    let Some(plan) = plan_decoded(p, decoded, shrunk_from, None).map_err(|e| e.to_string())? else {
        return Err("the image is left as it is".into());
    };
    let (ow, oh) = (plan.width, plan.height);
    if ow > w || oh > h {
        return Err("an enlargement".into());
    }
    let crop = plan.crop.unwrap_or(Crop {
        left: 0.0,
        top: 0.0,
        width: f64::from(decoded.0),
        height: f64::from(decoded.1),
    });
    let half = (y.width.div_ceil(2), y.height.div_ceil(2));
    if (cb.width, cb.height) != half || (cr.width, cr.height) != half {
        return Err("the chroma is not at half the luma's resolution".into());
    }
    let (cw, ch) = (ow.div_ceil(2), oh.div_ceil(2));
    // Output chroma sample j covers output luma columns 2j and 2j + 1: it is centred where the
    // luma resize puts column 2j + 1/2, so the chroma crop is the luma's halved, scaled by the
    // output's chroma width against half its luma width. When the output's width is odd, that
    // reaches past the plane's edge (as the encoder of an odd-sized image pads it): the plane is
    // extended there by repeating its last column (and the same for rows).
    let (left, top) = (crop.left / 2.0, crop.top / 2.0);
    let chroma_crop = Crop {
        left,
        top,
        width: crop.width * f64::from(cw) / f64::from(ow),
        height: crop.height * f64::from(ch) / f64::from(oh),
    };
    let reach = |from: f64, len: f64| (from + len - 1e-9).ceil().max(0.0) as usize;
    let need = (reach(left, chroma_crop.width), reach(top, chroma_crop.height));
    let extended;
    let (cb, cr) = if need.0 > cb.width || need.1 > cb.height {
        extended = [extend(cb, need), extend(cr, need)];
        (&extended[0], &extended[1])
    } else {
        (cb, cr)
    };
    let chroma_view = (dim(cb.width)?, dim(cb.height)?);
    let mut resizer = Resizer::new();
    let mut resize = |plane: &Plane, view, crop, size| {
        let data = resample_plane(&mut resizer, (&plane.data, plane.stride), view, crop, size, p.filter)?;
        Ok::<_, String>(Plane {
            data,
            stride: size.0 as usize,
            width: size.0 as usize,
            height: size.1 as usize,
        })
    };
    let resized = [
        resize(y, decoded, crop, (ow, oh))?,
        resize(cb, chroma_view, chroma_crop, (cw, ch))?,
        resize(cr, chroma_view, chroma_crop, (cw, ch))?,
    ];
    drop(planes);
    let copyright = if out.keep_copyright { crate::decode::jpeg::copyright(input) } else { None };
    let meta = Metadata { icc, copyright };
    let (lw, lh, cw, ch) = (ow as usize, oh as usize, cw as usize, ch as usize);
    let rects = [(0, 0, lw, lh), (0, 0, cw, ch), (0, 0, cw, ch)];
    super::slice::encode_rects(&resized, rects, (ow, oh), quality, &meta)
}

fn dim(side: usize) -> Result<u32, Skip> {
    u32::try_from(side).map_err(|_| "a plane too large".into())
}

/// `plane` grown to at least `(width, height)` by repeating its last column and row (in rows of
/// whole groups of four samples, as `resample_plane` takes them).
fn extend(plane: &Plane, (width, height): (usize, usize)) -> Plane {
    let (w, h) = (width.max(plane.width), height.max(plane.height));
    let stride = w.next_multiple_of(4);
    let mut data = Vec::with_capacity(stride * h);
    for y in 0..h {
        let row = &plane.data[y.min(plane.height - 1) * plane.stride..][..plane.width];
        data.extend_from_slice(row);
        data.resize(data.len() + stride - plane.width, row[plane.width - 1]);
    }
    Plane { data, stride, width: w, height: h }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extending_repeats_the_last_column_and_row() {
        // 2 x 2 in a stride of 3 (the padding column must not be read).
        let plane = Plane { data: vec![1, 2, 99, 3, 4, 99], stride: 3, width: 2, height: 2 };
        let grown = extend(&plane, (4, 3));
        assert_eq!((grown.width, grown.height, grown.stride), (4, 3, 4));
        assert_eq!(grown.data, vec![1, 2, 2, 2, 3, 4, 4, 4, 3, 4, 4, 4]);
        let wider = extend(&plane, (5, 1));
        assert_eq!((wider.width, wider.height, wider.stride), (5, 2, 8));
        assert_eq!(wider.data, vec![1, 2, 2, 2, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 4]);
    }
}
