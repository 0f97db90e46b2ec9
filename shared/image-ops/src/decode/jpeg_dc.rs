//! DC-only JPEG decoding for the 1/8-scale shrink-on-load.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, its DC coefficient (for 4:2:0 chroma,
//! libjpeg-turbo scales the chroma IDCT up to 2x2 instead of upsampling afterwards, which takes
//! a few AC coefficients of those blocks). libjpeg-turbo still runs every AC symbol of every
//! block through its general Huffman decoder: that was 80% of a 24 MP thumbnail. Here one table
//! lookup skips one or more AC codes together with their value bits, and in progressive files
//! only the DC scans and the AC scans of components at 2x2 are decoded (the others are stepped
//! over by their markers).
//!
//! The output is libjpeg-turbo's bit for bit (its 1x1 and 2x2 scaled IDCTs, its choice of IDCT
//! size per component, replicated upsampling, its YCbCr tables and range limiting); the tests
//! compare the two on every sampling layout, restart intervals and progressive files. What this
//! decoder does not handle the same way returns `None` and the caller decodes with libjpeg-turbo
//! as before: arithmetic coding, lossless or 12-bit files, CMYK, RGB or Adobe-marked colour,
//! fractional sampling, components at an IDCT size above 2, progressive files libjpeg would
//! smooth (low AC coefficients not coded to the last bit), and any sign of damage (a bad Huffman table or code, a marker or the end of data inside a scan, a missing or
//! misnumbered restart marker, bytes left over after a scan). Damaged files therefore decode
//! exactly as they did.

use image::{GrayImage, RgbImage};

use super::entropy::{extend, BitReader, Huffman, Tables, NATURAL};
use super::header::be16;
use super::jpeg::JpegSamples;

/// Decodes `bytes` at 1/8 scale as libjpeg-turbo would (`keep_gray`: a one-component file stays
/// grey instead of being expanded to RGB), or `None` when the file needs libjpeg-turbo.
pub(super) fn decode(bytes: &[u8], keep_gray: bool) -> Option<JpegSamples> {
    let mut dec = Decoder::default();
    dec.run(bytes)?;
    dec.output(keep_gray)
}

#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    /// The quantisation table slot named in the frame header.
    tq: usize,
    /// The table in force at the component's first scan (libjpeg latches it there).
    quant: Option<[u16; 64]>,
    /// libjpeg-turbo's IDCT output size for this component at 1/8 scale: 1 or 2.
    ssize: usize,
    /// Blocks that hold image data (libjpeg's width_in_blocks / height_in_blocks).
    width_blocks: usize,
    height_blocks: usize,
    /// Blocks allocated per row and column (whole MCUs).
    alloc_w: usize,
    alloc_h: usize,
}

#[derive(Default)]
struct Decoder {
    width: usize,
    height: usize,
    progressive: bool,
    seen_jfif: bool,
    seen_adobe: bool,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    quant: [Option<[u16; 64]>; 4],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    /// Per component: the decoded samples (ssize per block side) of sequential files, or the DC
    /// coefficients of progressive ones until `output` turns them into samples.
    planes: Vec<Vec<u8>>,
    dc_coefs: Vec<Vec<i16>>,
    /// Progressive: the successive-approximation bit each component's DC is complete down to.
    dc_al: Vec<Option<u8>>,
    /// Sequential: which components have had their scan.
    scanned: Vec<bool>,
    /// Progressive: the coefficients of components that take a 2x2 IDCT (empty for others).
    ac_blocks: Vec<Vec<[i16; 64]>>,
    /// Progressive: libjpeg's `coef_bits` for coefficients 0-9 of each component (the bit each
    /// is coded down to, -1 before any scan), which decide whether it smooths blocks.
    coef_bits: Vec<[i32; 10]>,
}

impl Decoder {
    /// Walks the markers and decodes every scan; `None` on anything not handled like libjpeg.
    fn run(&mut self, bytes: &[u8]) -> Option<()> {
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return None;
        }
        let mut pos = 2;
        loop {
            // Markers may be preceded by fill bytes (0xFF); anything else is extraneous data,
            // which libjpeg warns about: leave such files to it.
            if *bytes.get(pos)? != 0xFF {
                return None;
            }
            while *bytes.get(pos)? == 0xFF {
                pos += 1;
            }
            let marker = bytes[pos];
            pos += 1;
            if marker == 0xD9 {
                let complete = self.progressive || self.scanned.iter().all(|&s| s);
                return (!self.comps.is_empty() && complete).then_some(());
            }
            if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD8) {
                return None;
            }
            let len = usize::from(be16(bytes, pos)?);
            let seg = bytes.get(pos + 2..pos.checked_add(len)?)?;
            if len < 2 {
                return None;
            }
            pos += len;
            match marker {
                0xC0 | 0xC1 => self.frame(seg, false)?,
                0xC2 => self.frame(seg, true)?,
                // Other SOFs: lossless, hierarchical, arithmetic; DAC (arithmetic conditioning)
                // and DNL: libjpeg's.
                0xC3 | 0xC5..=0xCB | 0xCC..=0xCF | 0xDC | 0xDE | 0xDF => return None,
                0xC4 => self.huffman_tables(seg)?,
                0xDB => self.quant_tables(seg)?,
                0xDD => self.restart_interval = usize::from(be16(seg, 0)?),
                0xE0 if seg.starts_with(b"JFIF\0") => self.seen_jfif = true,
                0xEE if seg.starts_with(b"Adobe") => self.seen_adobe = true,
                0xDA => pos = self.scan(seg, bytes, pos)?,
                // Application segments and comments; libjpeg refuses markers it does not know.
                0xE0..=0xEF | 0xFE => {}
                _ => return None,
            }
        }
    }

    fn frame(&mut self, seg: &[u8], progressive: bool) -> Option<()> {
        if !self.comps.is_empty() || *seg.first()? != 8 {
            return None;
        }
        self.progressive = progressive;
        self.height = usize::from(be16(seg, 1)?);
        self.width = usize::from(be16(seg, 3)?);
        let n = usize::from(*seg.get(5)?);
        if self.width == 0 || self.height == 0 || !(n == 1 || n == 3) || seg.len() != 6 + 3 * n {
            return None;
        }
        for c in seg[6..].chunks_exact(3) {
            let (h, v, tq) = (usize::from(c[1] >> 4), usize::from(c[1] & 15), usize::from(c[2]));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                return None;
            }
            if self.comps.iter().any(|o| o.id == c[0]) {
                return None;
            }
            self.comps.push(Component { id: c[0], h, v, tq, ..Component::default() });
        }
        self.hmax = self.comps.iter().map(|c| c.h).max()?;
        self.vmax = self.comps.iter().map(|c| c.v).max()?;
        let mcux = self.width.div_ceil(8 * self.hmax);
        let mcuy = self.height.div_ceil(8 * self.vmax);
        let (hmax, vmax, width, height) = (self.hmax, self.vmax, self.width, self.height);
        for c in &mut self.comps {
            // libjpeg-turbo (jdmaster.c): scale the IDCT up while that saves upsampling.
            let mut ssize = 1;
            while ssize < 8 && hmax % (c.h * ssize * 2) == 0 && vmax % (c.v * ssize * 2) == 0 {
                ssize *= 2;
            }
            if ssize > 2 || hmax % (c.h * ssize) != 0 || vmax % (c.v * ssize) != 0 {
                return None;
            }
            c.ssize = ssize;
            c.width_blocks = (width * c.h).div_ceil(hmax * 8);
            c.height_blocks = (height * c.v).div_ceil(vmax * 8);
            c.alloc_w = mcux * c.h;
            c.alloc_h = mcuy * c.v;
        }
        let n = self.comps.len();
        if self.progressive {
            self.dc_coefs = self.comps.iter().map(|c| vec![0; c.alloc_w * c.alloc_h]).collect();
            self.dc_al = vec![None; n];
            self.coef_bits = vec![[-1; 10]; n];
            self.ac_blocks = self
                .comps
                .iter()
                .map(|c| if c.ssize == 2 { vec![[0; 64]; c.alloc_w * c.alloc_h] } else { Vec::new() })
                .collect();
        } else {
            self.planes =
                self.comps.iter().map(|c| vec![0; c.alloc_w * c.ssize * c.alloc_h * c.ssize]).collect();
            self.scanned = vec![false; n];
        }
        Some(())
    }

    fn quant_tables(&mut self, mut seg: &[u8]) -> Option<()> {
        while let Some((&pq_tq, rest)) = seg.split_first() {
            let (precision, slot) = (pq_tq >> 4, usize::from(pq_tq & 15));
            if slot > 3 || precision > 1 {
                return None;
            }
            let size = if precision == 0 { 64 } else { 128 };
            let body = rest.get(..size)?;
            let mut table = [0u16; 64];
            for (k, &pos) in NATURAL[..64].iter().enumerate() {
                let q = if precision == 0 {
                    u16::from(body[k])
                } else {
                    u16::from_be_bytes([body[2 * k], body[2 * k + 1]])
                };
                // libjpeg-turbo multiplies with 16-bit signed quantisers in its SIMD builds.
                if q > 0x7FFF {
                    return None;
                }
                table[pos] = q;
            }
            self.quant[slot] = Some(table);
            seg = &rest[size..];
        }
        Some(())
    }

    fn huffman_tables(&mut self, mut seg: &[u8]) -> Option<()> {
        while let Some((&tc_th, rest)) = seg.split_first() {
            let (class, slot) = (tc_th >> 4, usize::from(tc_th & 15));
            if class > 1 || slot > 3 {
                return None;
            }
            let counts = rest.get(..16)?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total > 256 {
                return None;
            }
            let values = rest.get(16..16 + total)?;
            let table =
                Huffman::new(counts, values, if class == 1 { Tables::AcAndSkip } else { Tables::Dc })?;
            if class == 0 {
                self.dc_tables[slot] = Some(table);
            } else {
                self.ac_tables[slot] = Some(table);
            }
            seg = &rest[16 + total..];
        }
        Some(())
    }

    /// Decodes one scan whose header is `seg` and whose entropy-coded data starts at `pos`;
    /// returns the position of the marker after it.
    fn scan(&mut self, seg: &[u8], bytes: &[u8], pos: usize) -> Option<usize> {
        if self.comps.is_empty() {
            return None;
        }
        let ns = usize::from(*seg.first()?);
        if ns == 0 || ns > 4 || seg.len() != 4 + 2 * ns {
            return None;
        }
        let mut members = Vec::with_capacity(ns);
        for sel in seg[1..1 + 2 * ns].chunks_exact(2) {
            let ci = self.comps.iter().position(|c| c.id == sel[0])?;
            if members.iter().any(|m: &(usize, usize, usize)| m.0 == ci) {
                return None;
            }
            members.push((ci, usize::from(sel[1] >> 4), usize::from(sel[1] & 15)));
        }
        let (ss, se) = (seg[1 + 2 * ns], seg[2 + 2 * ns]);
        let (ah, al) = (seg[3 + 2 * ns] >> 4, seg[3 + 2 * ns] & 15);
        let blocks: usize = members.iter().map(|m| self.comps[m.0].h * self.comps[m.0].v).sum();
        if ns > 1 && blocks > 10 {
            return None;
        }
        // libjpeg latches each component's quantisation table at its first scan.
        for &(ci, _, _) in &members {
            let c = &mut self.comps[ci];
            if c.quant.is_none() {
                c.quant = Some(self.quant[c.tq]?);
            }
        }
        if self.progressive {
            for &(ci, _, _) in &members {
                for coefi in usize::from(ss)..=usize::from(se).min(9) {
                    self.coef_bits[ci][coefi] = i32::from(al);
                }
            }
            if ss != 0 {
                // An AC scan: for a component at 1x1 nothing in it reaches the output, so its
                // data is stepped over, once its header passes libjpeg's checks (which end the
                // decode when they fail); a 2x2 one is decoded.
                let (ci, _, ta) = members[0];
                let refine_ok = ah == 0 || al + 1 == ah;
                if se < ss
                    || se > 63
                    || ns != 1
                    || al > 13
                    || !refine_ok
                    || self.ac_tables.get(ta).is_none_or(Option::is_none)
                {
                    return None;
                }
                if self.comps[ci].ssize == 1 {
                    return skip_entropy(bytes, pos);
                }
                return self.progressive_ac(ci, ta, [ss, se, ah, al].map(usize::from), bytes, pos);
            }
            if se != 0 || al > 13 {
                return None;
            }
            for &(ci, _, _) in &members {
                let expected = self.dc_al[ci].unwrap_or(0);
                if ah != expected || (ah != 0 && al + 1 != ah) || (ah == 0 && self.dc_al[ci].is_some()) {
                    return None;
                }
                self.dc_al[ci] = Some(al);
            }
        } else {
            if ss != 0 || se != 63 || ah != 0 || al != 0 {
                return None;
            }
            for &(ci, _, _) in &members {
                if std::mem::replace(&mut self.scanned[ci], true) {
                    return None;
                }
            }
        }
        let mut units: Vec<Unit<'_>> = Vec::with_capacity(blocks);
        for (slot, &(ci, td, ta)) in members.iter().enumerate() {
            let c = &self.comps[ci];
            let dc = if self.progressive && ah != 0 {
                None
            } else {
                // libjpeg refuses a DC table with categories past 15 when a scan uses it.
                let table = self.dc_tables.get(td)?.as_ref()?;
                (table.values.iter().all(|&v| v <= 15)).then_some(table)?;
                Some(table)
            };
            let ac = if self.progressive { None } else { Some(self.ac_tables.get(ta)?.as_ref()?) };
            let (bh, bv) = if ns == 1 { (1, 1) } else { (c.h, c.v) };
            for v in 0..bv {
                for h in 0..bh {
                    units.push(Unit { comp: ci, slot, dx: h, dy: v, dc, ac });
                }
            }
        }
        let (mcux, mcuy) = if ns == 1 {
            let c = &self.comps[members[0].0];
            (c.width_blocks, c.height_blocks)
        } else {
            (self.width.div_ceil(8 * self.hmax), self.height.div_ceil(8 * self.vmax))
        };
        let mut reader = BitReader::new(bytes, pos);
        let mut preds = [0i32; 4];
        let mut next_rst = 0u8;
        let mut block = [0i16; 64];
        let total = mcux * mcuy;
        for n in 0..total {
            if self.restart_interval > 0 && n > 0 && n % self.restart_interval == 0 {
                reader.restart(next_rst)?;
                next_rst = (next_rst + 1) & 7;
                preds = [0; 4];
            }
            let (mx, my) = (n % mcux, n / mcux);
            for u in &units {
                let c = &self.comps[u.comp];
                let (bx, by) = if ns == 1 { (mx, my) } else { (mx * c.h + u.dx, my * c.v + u.dy) };
                if self.progressive {
                    let coef = &mut self.dc_coefs[u.comp][by * c.alloc_w + bx];
                    if let Some(dc) = u.dc {
                        let diff = reader.dc_diff(dc)?;
                        preds[u.slot] = preds[u.slot].wrapping_add(diff);
                        *coef = (preds[u.slot].wrapping_shl(u32::from(al))) as i16;
                    } else if reader.bits(1) != 0 {
                        *coef |= 1 << al;
                    }
                    continue;
                }
                let diff = reader.dc_diff(u.dc?)?;
                preds[u.slot] = preds[u.slot].wrapping_add(diff);
                let dc = preds[u.slot] as i16;
                let (quant, ac) = (c.quant.as_ref()?, u.ac?);
                let plane = &mut self.planes[u.comp];
                if c.ssize == 1 {
                    reader.skip_ac(ac)?;
                    plane[by * c.alloc_w + bx] = idct_1x1(dc, quant[0]);
                } else {
                    block.fill(0);
                    block[0] = dc;
                    let px = if reader.ac(ac, &mut block)? {
                        idct_2x2(&block, quant)
                    } else {
                        idct_2x2_flat(dc, quant[0])
                    };
                    put_2x2(plane, c.alloc_w, bx, by, px);
                }
            }
        }
        reader.finish()
    }

    /// One AC scan of a progressive file for component `ci` (which takes a 2x2 IDCT), as
    /// libjpeg's `decode_mcu_AC_first` and `decode_mcu_AC_refine` (jdphuff.c) decode it.
    fn progressive_ac(
        &mut self,
        ci: usize,
        ta: usize,
        [ss, se, ah, al]: [usize; 4],
        bytes: &[u8],
        pos: usize,
    ) -> Option<usize> {
        let table = self.ac_tables.get(ta)?.as_ref()?;
        let c = &self.comps[ci];
        let (width, height, stride) = (c.width_blocks, c.height_blocks, c.alloc_w);
        let blocks = &mut self.ac_blocks[ci];
        let mut reader = BitReader::new(bytes, pos);
        let (mut eobrun, mut next_rst) = (0u32, 0u8);
        let (p1, m1) = (1i32 << al, -1i32 << al);
        // A correction bit for a coefficient already nonzero: 1 makes it larger by one step.
        let correct = |reader: &mut BitReader<'_>, coef: &mut i16| {
            if reader.bits(1) != 0 && i32::from(*coef) & p1 == 0 {
                *coef = (i32::from(*coef) + if *coef >= 0 { p1 } else { m1 }) as i16;
            }
        };
        for n in 0..width * height {
            if self.restart_interval > 0 && n > 0 && n % self.restart_interval == 0 {
                reader.restart(next_rst)?;
                next_rst = (next_rst + 1) & 7;
                eobrun = 0;
            }
            let block = &mut blocks[(n / width) * stride + n % width];
            let mut k = ss;
            if ah == 0 {
                if eobrun > 0 {
                    eobrun -= 1;
                    continue;
                }
                while k <= se {
                    let sym = table.decode(&mut reader)?;
                    let (run, size) = (usize::from(sym >> 4), u32::from(sym & 15));
                    if size != 0 {
                        k += run;
                        block[NATURAL[k]] = extend(reader.bits(size), size).wrapping_shl(al as u32) as i16;
                    } else if run == 15 {
                        k += 15;
                    } else {
                        eobrun = (1 << run) - 1;
                        if run != 0 {
                            eobrun += reader.bits(run as u32);
                        }
                        break;
                    }
                    k += 1;
                }
                continue;
            }
            if eobrun == 0 {
                while k <= se {
                    let sym = table.decode(&mut reader)?;
                    let (mut run, size) = (i32::from(sym >> 4), sym & 15);
                    let mut value = 0;
                    if size != 0 {
                        // A newly nonzero coefficient is one step; libjpeg warns on other sizes.
                        if size != 1 {
                            return None;
                        }
                        value = if reader.bits(1) != 0 { p1 } else { m1 };
                    } else if run != 15 {
                        eobrun = 1 << run;
                        if run != 0 {
                            eobrun += reader.bits(run as u32);
                        }
                        break;
                    }
                    // Past nonzero coefficients (with their correction bits) and `run` zero ones.
                    loop {
                        let coef = &mut block[NATURAL[k]];
                        if *coef != 0 {
                            correct(&mut reader, coef);
                        } else {
                            run -= 1;
                            if run < 0 {
                                break;
                            }
                        }
                        k += 1;
                        if k > se {
                            break;
                        }
                    }
                    if value != 0 {
                        block[NATURAL[k]] = value as i16;
                    }
                    k += 1;
                }
            }
            if eobrun > 0 {
                // The rest of the band: correction bits for the nonzero coefficients.
                while k <= se {
                    let coef = &mut block[NATURAL[k]];
                    if *coef != 0 {
                        correct(&mut reader, coef);
                    }
                    k += 1;
                }
                eobrun -= 1;
            }
        }
        reader.finish()
    }

    fn output(&mut self, keep_gray: bool) -> Option<JpegSamples> {
        if self.progressive {
            // Every component's DC must have been coded, down to its last bit.
            if self.dc_al.iter().any(|al| *al != Some(0)) {
                return None;
            }
            // libjpeg-turbo smooths blocks whose low AC coefficients are not all coded to the
            // last bit (jdcoefct.c, `smoothing_ok`): only files without that are decoded here.
            let has_2x2 = self.comps.iter().any(|c| c.ssize == 2);
            if has_2x2 && self.coef_bits.iter().any(|bits| bits[1..].iter().any(|&b| b != 0)) {
                return None;
            }
            let mut planes = Vec::with_capacity(self.comps.len());
            for ((c, dcs), blocks) in self.comps.iter().zip(&self.dc_coefs).zip(&mut self.ac_blocks) {
                let q = c.quant.as_ref()?;
                if c.ssize == 1 {
                    planes.push(dcs.iter().map(|&dc| idct_1x1(dc, q[0])).collect());
                    continue;
                }
                let mut plane = vec![0u8; c.alloc_w * 2 * c.alloc_h * 2];
                for (b, (block, &dc)) in blocks.iter_mut().zip(dcs).enumerate() {
                    block[0] = dc;
                    put_2x2(&mut plane, c.alloc_w, b % c.alloc_w, b / c.alloc_w, idct_2x2(block, q));
                }
                planes.push(plane);
            }
            self.planes = planes;
        }
        let (ow, oh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let (w32, h32) = (u32::try_from(ow).ok()?, u32::try_from(oh).ok()?);
        let up: Vec<Upsample<'_>> = (0..self.comps.len()).map(|ci| self.upsample(ci, ow)).collect();
        let mut scratch = [Vec::new(), Vec::new(), Vec::new()];
        if let [luma] = up.as_slice() {
            let mut grey = Vec::with_capacity(ow * oh);
            for y in 0..oh {
                grey.extend_from_slice(luma.line(y, &mut scratch[0])?);
            }
            return Some(if keep_gray {
                JpegSamples::Gray(GrayImage::from_raw(w32, h32, grey)?)
            } else {
                let rgb = grey.iter().flat_map(|&g| [g, g, g]).collect();
                JpegSamples::Rgb(RgbImage::from_raw(w32, h32, rgb)?)
            });
        }
        // libjpeg's colour-space guess (jdapimin.c): JFIF means YCbCr; an Adobe marker or
        // components named R, G, B may mean RGB.
        let ids: Vec<u8> = self.comps.iter().map(|c| c.id).collect();
        if self.seen_adobe || (!self.seen_jfif && ids == [b'R', b'G', b'B']) {
            return None;
        }
        let [luma, cb, cr] = up.as_slice() else { return None };
        let tables = YccTables::new();
        let mut rgb = vec![0u8; ow * oh * 3];
        for (y, out) in rgb.chunks_exact_mut(ow * 3).enumerate() {
            let [s0, s1, s2] = &mut scratch;
            let (ly, lb, lr) = (luma.line(y, s0)?, cb.line(y, s1)?, cr.line(y, s2)?);
            for (((px, &l), &b), &r) in out.chunks_exact_mut(3).zip(ly).zip(lb).zip(lr) {
                px.copy_from_slice(&tables.rgb(l, b, r));
            }
        }
        Some(JpegSamples::Rgb(RgbImage::from_raw(w32, h32, rgb)?))
    }

    /// How output pixels map onto component `ci`'s samples: libjpeg's replicating upsampler.
    fn upsample(&self, ci: usize, ow: usize) -> Upsample<'_> {
        let c = &self.comps[ci];
        let (fh, fv) = (self.hmax / (c.h * c.ssize), self.vmax / (c.v * c.ssize));
        let stride = c.alloc_w * c.ssize;
        Upsample { plane: &self.planes[ci], stride, fh, fv, ow }
    }
}

/// A component's samples and how many output columns (`fh`) and rows (`fv`) each one covers.
struct Upsample<'p> {
    plane: &'p [u8],
    stride: usize,
    fh: usize,
    fv: usize,
    /// Output columns.
    ow: usize,
}

impl Upsample<'_> {
    /// Output row `y`'s samples, one per output column: the plane's own row where each sample
    /// covers one column, else each sample repeated into `scratch`.
    fn line<'s>(&'s self, y: usize, scratch: &'s mut Vec<u8>) -> Option<&'s [u8]> {
        let start = (y / self.fv) * self.stride;
        let row = self.plane.get(start..start + self.stride)?;
        if self.fh == 1 {
            return row.get(..self.ow);
        }
        scratch.clear();
        for x in 0..self.ow {
            scratch.push(*row.get(x / self.fh)?);
        }
        Some(scratch)
    }
}

/// One block position within an MCU and the tables it is decoded with.
struct Unit<'a> {
    comp: usize,
    /// Index of the component within the scan (its DC predictor).
    slot: usize,
    dx: usize,
    dy: usize,
    /// `None` in progressive DC refinement scans.
    dc: Option<&'a Huffman>,
    /// Sequential scans: the AC table (its codes skipped at 1x1, decoded at 2x2).
    ac: Option<&'a Huffman>,
}

/// Steps over a progressive AC scan's entropy-coded data (stuffed bytes and restart markers)
/// to the next marker.
fn skip_entropy(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let at = pos + memchr::memchr(0xFF, bytes.get(pos..)?)?;
        match *bytes.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => pos = at + 2,
            _ => return Some(at),
        }
    }
}

/// Writes block (`bx`, `by`)'s 2x2 pixels into a plane `blocks_w` blocks wide.
#[inline]
fn put_2x2(plane: &mut [u8], blocks_w: usize, bx: usize, by: usize, px: [[u8; 2]; 2]) {
    let stride = blocks_w * 2;
    let at = by * 2 * stride + bx * 2;
    plane[at..at + 2].copy_from_slice(&px[0]);
    plane[at + stride..at + stride + 2].copy_from_slice(&px[1]);
}

/// libjpeg's 1x1 scaled IDCT: the block's mean, range-limited.
#[inline]
fn idct_1x1(dc: i16, q: u16) -> u8 {
    let v = i32::from(dc) * i32::from(q as i16);
    range_limit((v + 4) >> 3)
}

/// libjpeg's IDCT range limit (`IDCT_range_limit`, indexed with `& RANGE_MASK`): clamps
/// [-512, 511] around the centre and wraps beyond, as its table does.
#[inline]
fn range_limit(x: i32) -> u8 {
    match x & 1023 {
        i @ 0..=127 => (i + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        i => (i - 896) as u8,
    }
}

// libjpeg's constants for the reduced-size IDCTs (jidctred.c).
const CONST_BITS: u32 = 13;
const PASS1_BITS: u32 = 2;
const FIX_0_720959822: i64 = 5906;
const FIX_0_850430095: i64 = 6967;
const FIX_1_272758580: i64 = 10426;
const FIX_3_624509785: i64 = 29692;

/// libjpeg's DESCALE: `x` shifted right by `n` bits, rounded; `int` (wrapping) as it stores it.
#[inline(always)]
fn descale(x: i64, n: u32) -> i32 {
    ((x + (1 << (n - 1))) >> n) as i32
}

/// The coefficients `idct_2x2` reads besides natural positions 0, 1, 8 and 9: rows 0 and 1 at
/// columns 3, 5 and 7; rows 3, 5 and 7 at columns 0, 1, 3, 5 and 7.
const READ_BEYOND_LOWEST: [usize; 21] =
    [3, 5, 7, 11, 13, 15, 24, 25, 27, 29, 31, 40, 41, 43, 45, 47, 56, 57, 59, 61, 63];

/// libjpeg's `jpeg_idct_2x2` (jidctred.c): `idct_2x2_lowest` where only the four lowest
/// coefficients it reads can be non-zero (most non-flat chroma blocks of photos: 79% of them in
/// the bench's 24 MP photo), else `idct_2x2_full`.
#[inline]
fn idct_2x2(block: &[i16; 64], q: &[u16; 64]) -> [[u8; 2]; 2] {
    if READ_BEYOND_LOWEST.iter().fold(0, |any, &i| any | block[i]) == 0 {
        idct_2x2_lowest(block, q)
    } else {
        idct_2x2_full(block, q)
    }
}

/// `idct_2x2_full` of a block whose `READ_BEYOND_LOWEST` coefficients are zero: columns 3, 5
/// and 7 give zeros and each odd part is its first term alone. The values are the full
/// formula's, which its shortcuts also give, here without its data-dependent branches.
#[inline(always)]
fn idct_2x2_lowest(block: &[i16; 64], q: &[u16; 64]) -> [[u8; 2]; 2] {
    let deq = |i: usize| i64::from(block[i]) * i64::from(q[i] as i16);
    let column = |c: usize| {
        let (tmp10, tmp0) = (deq(c) << (CONST_BITS + 2), deq(8 + c) * FIX_3_624509785);
        let n = CONST_BITS - PASS1_BITS + 2;
        (descale(tmp10 + tmp0, n), descale(tmp10 - tmp0, n))
    };
    let row = |w0: i32, w1: i32| {
        let (tmp10, tmp0) = (i64::from(w0) << (CONST_BITS + 2), i64::from(w1) * FIX_3_624509785);
        let n = CONST_BITS + PASS1_BITS + 3 + 2;
        [range_limit(descale(tmp10 + tmp0, n)), range_limit(descale(tmp10 - tmp0, n))]
    };
    let (c0, c1) = (column(0), column(1));
    [row(c0.0, c1.0), row(c0.1, c1.1)]
}

/// libjpeg's `jpeg_idct_2x2` (jidctred.c), integer for integer: `int` where it uses `int`
/// (wrapping), 64-bit where it uses `JLONG`.
fn idct_2x2_full(block: &[i16; 64], q: &[u16; 64]) -> [[u8; 2]; 2] {
    /// The odd part of both passes: terms 1, 3, 5, 7.
    #[inline(always)]
    fn odd(t1: i64, t3: i64, t5: i64, t7: i64) -> i64 {
        t7 * -FIX_0_720959822 + t5 * FIX_0_850430095 + t3 * -FIX_1_272758580 + t1 * FIX_3_624509785
    }
    // Pass 1: a column into two rows (columns 2, 4 and 6 do not reach a 2x2 output).
    #[inline(always)]
    fn column(block: &[i16; 64], q: &[u16; 64], col: usize) -> (i32, i32) {
        let deq = |i: usize| i32::from(block[i]) * i32::from(q[i] as i16);
        if block[8 + col] | block[24 + col] | block[40 + col] | block[56 + col] == 0 {
            let dc = deq(col).wrapping_shl(PASS1_BITS);
            return (dc, dc);
        }
        let tmp10 = i64::from(deq(col)) << (CONST_BITS + 2);
        let tmp0 = odd(
            i64::from(deq(8 + col)),
            i64::from(deq(24 + col)),
            i64::from(deq(40 + col)),
            i64::from(deq(56 + col)),
        );
        let n = CONST_BITS - PASS1_BITS + 2;
        (descale(tmp10 + tmp0, n), descale(tmp10 - tmp0, n))
    }
    // Pass 2: a row of the work array into two pixels.
    #[inline(always)]
    fn row(w0: i32, w1: i32, w3: i32, w5: i32, w7: i32) -> [u8; 2] {
        if w1 | w3 | w5 | w7 == 0 {
            let v = range_limit(descale(i64::from(w0), PASS1_BITS + 3));
            return [v, v];
        }
        let tmp10 = i64::from(w0) << (CONST_BITS + 2);
        let tmp0 = odd(i64::from(w1), i64::from(w3), i64::from(w5), i64::from(w7));
        let n = CONST_BITS + PASS1_BITS + 3 + 2;
        [range_limit(descale(tmp10 + tmp0, n)), range_limit(descale(tmp10 - tmp0, n))]
    }
    let (c0, c1, c3, c5, c7) = (
        column(block, q, 0),
        column(block, q, 1),
        column(block, q, 3),
        column(block, q, 5),
        column(block, q, 7),
    );
    [row(c0.0, c1.0, c3.0, c5.0, c7.0), row(c0.1, c1.1, c3.1, c5.1, c7.1)]
}

/// `idct_2x2` of a block with no AC coefficients: every column takes the zero-AC shortcut and
/// both rows the zero-row one.
#[inline]
fn idct_2x2_flat(dc: i16, q: u16) -> [[u8; 2]; 2] {
    let ws = (i32::from(dc) * i32::from(q as i16)).wrapping_shl(2);
    let v = range_limit(((i64::from(ws) + 16) >> 5) as i32);
    [[v, v], [v, v]]
}

/// libjpeg's YCbCr → RGB tables (jdcolor.c, `build_ycc_rgb_table`).
struct YccTables {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    cr_g: [i32; 256],
    cb_g: [i32; 256],
}

impl YccTables {
    fn new() -> Self {
        const SCALEBITS: u32 = 16;
        const ONE_HALF: i32 = 1 << (SCALEBITS - 1);
        let fix = |x: f64| (x * f64::from(1u32 << SCALEBITS) + 0.5) as i32;
        let mut t = YccTables { cr_r: [0; 256], cb_b: [0; 256], cr_g: [0; 256], cb_g: [0; 256] };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.40200) * x + ONE_HALF) >> SCALEBITS;
            t.cb_b[i] = (fix(1.77200) * x + ONE_HALF) >> SCALEBITS;
            t.cr_g[i] = -fix(0.71414) * x;
            t.cb_g[i] = -fix(0.34414) * x + ONE_HALF;
        }
        t
    }

    #[inline]
    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        [
            clamp(y + self.cr_r[cr]),
            clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            clamp(y + self.cb_b[cb]),
        ]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::decode::jpeg::jpeg_samples;

    /// A deterministic photo-like RGB image: gradients, noise and hard edges.
    pub(crate) fn photo(w: usize, h: usize, seed: u64) -> Vec<u8> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 58) as i32
        };
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let edge = if (x / 7 + y / 5) % 3 == 0 { 90 } else { 0 };
                let r = (x * 255 / w.max(1)) as i32 + noise() - edge;
                let g = (y * 255 / h.max(1)) as i32 + noise() + edge / 2;
                let b = ((x + y) % 64 * 4) as i32 + noise();
                rgb.extend([r, g, b].map(|v| v.clamp(0, 255) as u8));
            }
        }
        rgb
    }

    /// Chroma pixel sizes (Cb, Cr) as the mozjpeg crate takes them; `None` for grey.
    pub(crate) type Sampling = Option<((u8, u8), (u8, u8))>;

    pub(crate) struct Layout {
        pub(crate) sampling: Sampling,
        pub(crate) progressive: bool,
        pub(crate) optimize: bool,
        pub(crate) quality: f32,
    }

    pub(crate) fn encode(w: usize, h: usize, seed: u64, layout: &Layout) -> Vec<u8> {
        let rgb = photo(w, h, seed);
        let grey = layout.sampling.is_none();
        let space = if grey { mozjpeg::ColorSpace::JCS_GRAYSCALE } else { mozjpeg::ColorSpace::JCS_RGB };
        let mut comp = mozjpeg::Compress::new(space);
        comp.set_fastest_defaults();
        comp.set_size(w, h);
        comp.set_quality(layout.quality);
        comp.set_optimize_coding(layout.optimize);
        if let Some((cb, cr)) = layout.sampling {
            comp.set_chroma_sampling_pixel_sizes(cb, cr);
        }
        if layout.progressive {
            comp.set_progressive_mode();
        }
        let mut started = comp.start_compress(Vec::new()).expect("start");
        let pixels: Vec<u8> = if grey { rgb.chunks_exact(3).map(|p| p[1]).collect() } else { rgb };
        started.write_scanlines(&pixels).expect("scanlines");
        started.finish().expect("finish")
    }

    fn size(bytes: &[u8]) -> (u32, u32) {
        let (w, h, _) = super::super::jpeg::header(bytes).expect("header");
        (w, h)
    }

    /// Deterministic damage for the damaged-file tests (a xorshift generator).
    pub(crate) struct Damage(u64);

    impl Damage {
        pub(crate) fn new(seed: u64) -> Self {
            Damage(seed)
        }

        /// A number below `n`.
        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// `file` with one to three damages past its SOI marker: a bit flipped, a byte set to
        /// 0xFF or to a random value, or the data cut short.
        pub(crate) fn apply(&mut self, file: &[u8]) -> Vec<u8> {
            let mut bad = file.to_vec();
            for _ in 0..1 + self.below(3) {
                let at = 2 + self.below(bad.len() - 2);
                match self.below(4) {
                    0 => bad[at] ^= 1 << self.below(8),
                    1 => bad[at] = 0xFF,
                    2 => bad[at] = self.below(256) as u8,
                    _ => bad.truncate(at.max(4)),
                }
            }
            bad
        }
    }

    /// The DC decoder's output must be libjpeg-turbo's 1/8-scale decode, byte for byte.
    fn same_as_libjpeg(bytes: &[u8], keep_gray: bool) {
        let (w, h) = size(bytes);
        let ours = decode(bytes, keep_gray).expect("the DC decoder handles this file");
        let theirs = jpeg_samples(bytes, w, h, 1, keep_gray).expect("libjpeg decodes it");
        assert_eq!(ours, theirs, "{w}x{h}");
    }

    pub(crate) const SAMPLINGS: [Sampling; 7] = [
        Some(((2, 2), (2, 2))), // 4:2:0
        Some(((2, 1), (2, 1))), // 4:2:2
        Some(((1, 1), (1, 1))), // 4:4:4
        Some(((1, 2), (1, 2))), // 4:4:0
        Some(((4, 1), (4, 1))), // 4:1:1
        Some(((4, 2), (4, 2))), // 4:1:0
        None,                   // grey
    ];

    #[test]
    fn matches_libjpeg_on_every_sampling_size_and_quality() {
        let sizes = [(1, 1), (8, 8), (9, 17), (16, 16), (33, 7), (127, 65), (250, 181)];
        let mut seed = 1;
        for sampling in SAMPLINGS {
            for &(w, h) in &sizes {
                for (quality, optimize) in [(40.0, false), (90.0, true), (100.0, false)] {
                    seed += 1;
                    let layout = Layout { sampling, progressive: false, optimize, quality };
                    let jpeg = encode(w, h, seed, &layout);
                    same_as_libjpeg(&jpeg, false);
                    if sampling.is_none() {
                        same_as_libjpeg(&jpeg, true);
                    }
                }
            }
        }
    }

    #[test]
    fn progressive_files_decode_their_dc_scans_only() {
        for sampling in SAMPLINGS {
            for &(w, h) in &[(1, 1), (31, 9), (200, 133)] {
                let layout = Layout { sampling, progressive: true, optimize: true, quality: 85.0 };
                same_as_libjpeg(&encode(w, h, 7, &layout), false);
            }
        }
    }

    #[test]
    fn flat_blocks_take_the_same_value_as_the_full_2x2_idct() {
        for dc in [-32768i16, -2048, -1025, -77, -1, 0, 1, 5, 300, 2047, 32767] {
            for q in [0u16, 1, 2, 16, 99, 255, 1000, 32767] {
                let mut block = [0i16; 64];
                block[0] = dc;
                let mut table = [1u16; 64];
                table[0] = q;
                assert_eq!(idct_2x2_full(&block, &table), idct_2x2_flat(dc, q), "dc {dc} q {q}");
            }
        }
    }

    /// Blocks with only the four lowest coefficients take `idct_2x2_lowest`, which must give
    /// `idct_2x2_full`'s pixels for any values: extremes that wrap libjpeg's `int`s included.
    #[test]
    fn lowest_coefficient_blocks_take_the_full_2x2_idct_values() {
        let values = [-32768i16, -20000, -2048, -1025, -77, -1, 0, 1, 5, 300, 2047, 9999, 32767];
        let quants = [0u16, 1, 2, 16, 99, 255, 1000, 32767, 40000, 65535];
        let mut rng = Damage::new(7);
        for _ in 0..20_000 {
            let mut block = [0i16; 64];
            let mut table = [1u16; 64];
            for i in [0, 1, 8, 9] {
                block[i] = values[rng.below(values.len())];
                table[i] = quants[rng.below(quants.len())];
            }
            // Coefficients the 2x2 IDCT does not read (columns and rows 2, 4, 6) stay as they are.
            block[2] = values[rng.below(values.len())];
            block[20] = values[rng.below(values.len())];
            assert!(READ_BEYOND_LOWEST.iter().all(|&i| block[i] == 0));
            assert_eq!(idct_2x2(&block, &table), idct_2x2_full(&block, &table), "{block:?} {table:?}");
        }
    }

    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/dc/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Pillow's libjpeg-turbo wrote these (tests/fixtures/make_dc_fixtures.py): restart
    /// intervals by blocks and by rows, optimised tables, progressive scans with restarts.
    #[test]
    fn matches_libjpeg_on_files_from_another_encoder() {
        for name in [
            "rst_420.jpg",
            "rst_422_optimized.jpg",
            "rst_grey.jpg",
            "progressive_444_rst.jpg",
            "progressive_grey.jpg",
            "progressive_420.jpg",
        ] {
            same_as_libjpeg(&fixture(name), false);
        }
    }

    /// Damaged data never panics, and whatever the DC decoder does not refuse decodes exactly as
    /// libjpeg-turbo decodes it (so it can never turn a file libjpeg reads into something else).
    #[test]
    fn damaged_files_are_left_to_libjpeg_or_decode_the_same() {
        let mut files: Vec<Vec<u8>> =
            ["rst_420.jpg", "progressive_444_rst.jpg", "rst_grey.jpg"].iter().map(|n| fixture(n)).collect();
        let layout = Layout { sampling: SAMPLINGS[0], progressive: false, optimize: true, quality: 90.0 };
        files.push(encode(150, 100, 11, &layout));
        let mut damage = Damage::new(0x1234_5678_9ABC_DEF1);
        let (mut same, mut refused) = (0, 0);
        for file in &files {
            let (w, h) = size(file);
            for _ in 0..400 {
                let bad = damage.apply(file);
                match decode(&bad, false) {
                    None => refused += 1,
                    Some(ours) => {
                        // libjpeg's errors unwind (as in `jpeg::decode`, which catches them).
                        let theirs = std::panic::catch_unwind(|| jpeg_samples(&bad, w, h, 1, false));
                        let theirs = theirs.ok().and_then(Result::ok);
                        assert_eq!(Some(ours), theirs, "a damaged file decoded differently");
                        same += 1;
                    }
                }
            }
        }
        // Both outcomes must occur, or the test checks nothing.
        assert!(same > 50 && refused > 50, "{same} decoded, {refused} refused");
    }
}
