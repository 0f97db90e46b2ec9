//! imgfn's Huffman decoding in place of libjpeg-turbo's, wherever a `Transcoder` has libjpeg
//! decode: the planes a resize or a slice reads ([`super::ffi::Transcoder::read_planes`]) and
//! the coefficients an overlay is written into ([`super::ffi::Transcoder::load`]).
//!
//! Entropy decoding is most of these tasks (libjpeg-turbo's `decode_mcu`: 61% of sharp's
//! benchmark task, 56% of a 12 MP photo to 1,024 px, 36% of a watermark on it). jdhuff.c
//! decodes a code by an 8-bit lookahead and then reads its value bits; `decode::entropy`
//! decodes up to two codes with their values per lookup. `csrc/jpeg_gather.c` lets
//! [`Entropy::install`] wrap libjpeg's `start_input_pass`, which sets up the first scan, and
//! swap the entropy decoder's `decode_mcu` for [`decode_mcu`] there when the file is one
//! sequential Huffman scan; libjpeg's coefficient controller, inverse DCT and marker reading
//! stay as they are, and anything else (progressive, arithmetic) libjpeg decodes as before.
//!
//! The coefficients are libjpeg's (the same tables, the same DC prediction and restart
//! handling; the tests compare coefficients and planes with libjpeg's own). Where libjpeg would
//! warn (a code no table has, data running into a marker or the end, a restart marker missing
//! or out of place, unused data before one) this warns too and leaves the rest of the scan
//! zero: a warning makes the `Transcoder` fail, and the caller decodes the file the full way.

#![allow(unsafe_code)]

use mozjpeg_sys as sys;
use std::os::raw::c_int;

use crate::decode::entropy::{BitReader, Huffman, Tables};

/// At most this many blocks in an MCU (libjpeg's D_MAX_BLOCKS_IN_MCU).
const MAX_BLOCKS: usize = 10;

/// libjpeg's input controller's `start_input_pass`.
type StartPass = unsafe extern "C-unwind" fn(*mut sys::jpeg_decompress_struct);

unsafe extern "C" {
    fn imgfn_jpeg_wrap_start_input_pass(
        cinfo: *mut sys::jpeg_decompress_struct,
        pass: Option<StartPass>,
    ) -> Option<StartPass>;
    fn imgfn_jpeg_hook_decode(
        cinfo: *mut sys::jpeg_decompress_struct,
        decode: unsafe extern "C-unwind" fn(
            *mut sys::jpeg_decompress_struct,
            *mut sys::JBLOCKROW,
        ) -> sys::boolean,
        swap: c_int,
        max_blocks: c_int,
        component: *mut c_int,
        dc: *mut *const sys::JHUFF_TBL,
        ac: *mut *const sys::JHUFF_TBL,
        restart_interval: *mut std::os::raw::c_uint,
    ) -> c_int;
}

/// What `imgfn_jpeg_hook_decode` reports of a scan: per block of an MCU its component's index
/// in the scan and its DC and AC tables; the restart interval.
struct Scan {
    component: [c_int; MAX_BLOCKS],
    dc: [*const sys::JHUFF_TBL; MAX_BLOCKS],
    ac: [*const sys::JHUFF_TBL; MAX_BLOCKS],
    restart_interval: std::os::raw::c_uint,
}

impl Scan {
    /// Fills in the scan's layout of `d` and, with `swap`, hooks [`decode_mcu`] in; the blocks
    /// in an MCU, or `None` (nothing changed) where `d` is not a decode to hook.
    fn hook(&mut self, d: &mut sys::jpeg_decompress_struct, swap: bool) -> Option<usize> {
        // SAFETY: the arrays hold MAX_BLOCKS entries, which the C side checks blocks_in_MCU
        // against; it swaps decode_mcu only when asked and the decoder is in the state it
        // checks.
        let n = unsafe {
            imgfn_jpeg_hook_decode(
                d,
                decode_mcu,
                c_int::from(swap),
                MAX_BLOCKS as c_int,
                self.component.as_mut_ptr(),
                self.dc.as_mut_ptr(),
                self.ac.as_mut_ptr(),
                &mut self.restart_interval,
            )
        };
        usize::try_from(n).ok().filter(|&n| n > 0)
    }
}

/// The state of one decode (`cinfo.common.client_data` points at it while installed).
pub(super) struct Entropy<'a> {
    data: &'a [u8],
    /// libjpeg's `start_input_pass`, which [`start_input_pass`] calls first; `None` when not
    /// installed.
    start: Option<StartPass>,
    reader: BitReader<'a>,
    /// Per block of an MCU: its component's index in the scan and its DC and AC tables.
    blocks: Vec<(usize, usize, usize)>,
    tables: Vec<Huffman>,
    preds: [i32; 4],
    restart_interval: u32,
    to_go: u32,
    next_restart: u8,
    /// A warning was given: the rest of the scan is left zero.
    failed: bool,
}

impl<'a> Entropy<'a> {
    /// Before `jpeg_start_decompress` or `jpeg_read_coefficients` on `d`, whose memory source
    /// reads `data`: at the start of the first scan, [`decode_mcu`] takes over the Huffman
    /// decoding where the file is one sequential scan (libjpeg decodes anything else as
    /// usual). The box must stay alive until [`Self::uninstall`], after the decode.
    pub(super) fn install(d: &mut sys::jpeg_decompress_struct, data: &'a [u8]) -> Box<Self> {
        let mut state = Box::new(Entropy {
            data,
            start: None,
            reader: BitReader::new(data, 0),
            blocks: Vec::new(),
            tables: Vec::new(),
            preds: [0; 4],
            restart_interval: 0,
            to_go: 0,
            next_restart: 0,
            failed: false,
        });
        if d.common.client_data.is_null() {
            d.common.client_data = (&mut *state as *mut Entropy<'a>).cast();
            // SAFETY: `d` is a created decompressor; the wrapper finds `state` by client_data.
            state.start = unsafe { imgfn_jpeg_wrap_start_input_pass(d, Some(start_input_pass)) };
            if state.start.is_none() {
                d.common.client_data = std::ptr::null_mut();
            }
        }
        state
    }

    /// After the decode (done or failed): libjpeg's `start_input_pass` back and client_data
    /// cleared.
    pub(super) fn uninstall(&self, d: &mut sys::jpeg_decompress_struct) {
        if let Some(start) = self.start {
            // SAFETY: puts back the function the install replaced.
            unsafe { imgfn_jpeg_wrap_start_input_pass(d, Some(start)) };
            d.common.client_data = std::ptr::null_mut();
        }
    }

    /// At the first scan's start: hooks [`decode_mcu`] in if the scan is one it decodes and
    /// its tables are ones it builds; `None` (nothing changed) otherwise.
    fn hook(&mut self, d: &mut sys::jpeg_decompress_struct) -> Option<()> {
        // SAFETY: `src` is the memory source jpeg_mem_src set up over `data`.
        let src = unsafe { d.src.as_ref()? };
        let pos = (src.next_input_byte as usize).checked_sub(self.data.as_ptr() as usize)?;
        if pos > self.data.len() || self.data.len() - pos != src.bytes_in_buffer {
            return None;
        }
        // First what the scan uses (nothing swapped), then the swap once every table is built.
        let mut scan = Scan {
            component: [0; MAX_BLOCKS],
            dc: [std::ptr::null(); MAX_BLOCKS],
            ac: [std::ptr::null(); MAX_BLOCKS],
            restart_interval: 0,
        };
        let n = scan.hook(d, false)?;
        let mut seen: Vec<(*const sys::JHUFF_TBL, Tables)> = Vec::new();
        let mut tables = Vec::new();
        let mut index = |t: *const sys::JHUFF_TBL, kind: Tables| {
            if let Some(i) = seen.iter().position(|&s| s == (t, kind)) {
                return Some(i);
            }
            // SAFETY: the C side returned the decoder's non-null table pointers.
            let table = unsafe { &*t };
            tables.push(Huffman::new(&table.bits[1..], &table.huffval, kind)?);
            seen.push((t, kind));
            Some(tables.len() - 1)
        };
        let mut blocks = Vec::with_capacity(n);
        for b in 0..n {
            let comp = usize::try_from(scan.component[b]).ok().filter(|&c| c < 4)?;
            blocks.push((comp, index(scan.dc[b], Tables::Dc)?, index(scan.ac[b], Tables::Ac)?));
        }
        (self.reader, self.blocks, self.tables) = (BitReader::new(self.data, pos), blocks, tables);
        (self.restart_interval, self.to_go) = (scan.restart_interval, scan.restart_interval);
        (scan.hook(d, true) == Some(n)).then_some(())
    }

    /// One MCU into the blocks `mcu_data` points at; `false` where libjpeg would warn.
    ///
    /// # Safety
    /// `mcu_data` holds a pointer to a distinct zeroed block for each of `self.blocks`.
    unsafe fn mcu(&mut self, mcu_data: *mut sys::JBLOCKROW) -> bool {
        if self.restart_interval > 0 {
            if self.to_go == 0 {
                if self.reader.restart(self.next_restart).is_none() {
                    return false;
                }
                self.next_restart = (self.next_restart + 1) & 7;
                self.preds = [0; 4];
                self.to_go = self.restart_interval;
            }
            self.to_go -= 1;
        }
        for (b, &(comp, dc, ac)) in self.blocks.iter().enumerate() {
            // SAFETY: the caller's promise.
            let block = unsafe { &mut *(*mcu_data.add(b)).cast::<[i16; 64]>() };
            let Some(diff) = self.reader.dc_diff(&self.tables[dc]) else { return false };
            self.preds[comp] = self.preds[comp].wrapping_add(diff);
            block[0] = self.preds[comp] as i16;
            if self.reader.ac(&self.tables[ac], block).is_none() {
                return false;
            }
        }
        !self.reader.overran()
    }
}

/// The input controller's `start_input_pass` while installed: libjpeg's, then the hook.
unsafe extern "C-unwind" fn start_input_pass(cinfo: *mut sys::jpeg_decompress_struct) {
    // SAFETY: libjpeg calls this with the decompressor `Entropy::install` set client_data on
    // (the boxed state, alive while it decodes).
    let state = unsafe { &mut *(*cinfo).common.client_data.cast::<Entropy<'_>>() };
    if let Some(start) = state.start {
        // SAFETY: libjpeg's own function for this decompressor, as libjpeg would call it.
        unsafe { start(cinfo) };
    }
    // SAFETY: as above; libjpeg's start_input_pass returned, so the scan is set up.
    let _ = state.hook(unsafe { &mut *cinfo });
}

/// libjpeg's `decode_mcu` for a hooked decompressor: the next MCU's blocks into `mcu_data`
/// (`blocks_in_MCU` pointers to zeroed blocks), `cinfo.src` advanced past what it took.
unsafe extern "C-unwind" fn decode_mcu(
    cinfo: *mut sys::jpeg_decompress_struct,
    mcu_data: *mut sys::JBLOCKROW,
) -> sys::boolean {
    // SAFETY: libjpeg calls this with the decompressor `Entropy::install` set client_data on
    // (the boxed state, alive while it decodes), and its MCU_buffer: blocks_in_MCU distinct zeroed
    // blocks, as many as `state.blocks`.
    let cinfo = unsafe { &mut *cinfo };
    let state = unsafe { &mut *cinfo.common.client_data.cast::<Entropy<'_>>() };
    if !state.failed && !unsafe { state.mcu(mcu_data) } {
        state.failed = true;
        // SAFETY: `err` is the decompressor's error manager; libjpeg's own warnings go the
        // same way (emit_message at level -1).
        unsafe {
            if let Some(emit) = cinfo.common.err.as_ref().and_then(|err| err.emit_message) {
                emit(&mut cinfo.common, -1);
            }
        }
    }
    // The source past the bytes in the bit buffer, as libjpeg leaves it (the marker reader
    // takes over from there at the end of the scan).
    let pos = state.reader.position().min(state.data.len());
    // SAFETY: `src` is the memory source over `data`; `pos` is within it.
    unsafe {
        if let Some(src) = cinfo.src.as_mut() {
            src.next_input_byte = state.data.as_ptr().add(pos);
            src.bytes_in_buffer = (state.data.len() - pos) as _;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::super::ffi::Transcoder;
    use crate::decode::jpeg_dc::tests::{encode, fixture, Damage, Layout, SAMPLINGS};

    /// What a decode of `jpeg` gives, as bytes to compare: the planes at `scale`/8 (1-8), or
    /// with `scale` 0 every block's coefficients; with imgfn's Huffman decoding (`own`) or
    /// libjpeg's. libjpeg's errors unwind into `Err` inside the transcoder.
    fn decoded(jpeg: &[u8], scale: u8, own: bool) -> Result<Vec<u8>, String> {
        let mut t = Transcoder::open(jpeg)?;
        let mut out = Vec::new();
        if scale == 0 {
            t.load_with(own)?;
            for (ci, c) in t.header().components.clone().iter().enumerate() {
                for row in 0..c.height_in_blocks {
                    out.extend(t.row(ci, row)?.iter().flatten().flat_map(|v| v.to_le_bytes()));
                }
            }
        } else {
            for p in t.read_planes_with(scale, own)? {
                out.extend([p.stride, p.width, p.height].iter().flat_map(|v| v.to_le_bytes()));
                out.extend(p.data);
            }
        }
        Ok(out)
    }

    fn files() -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        let sizes = [(1, 1), (9, 17), (33, 7), (127, 65), (250, 181)];
        for (i, sampling) in SAMPLINGS.into_iter().enumerate() {
            for (j, &(w, h)) in sizes.iter().enumerate() {
                // Qualities from coarse to 100 (the longest codes and the largest values),
                // standard and optimised tables.
                let quality = [30.0, 75.0, 90.0, 100.0][(i + j) % 4];
                let optimize = (i + j) % 2 == 0;
                let layout = Layout { sampling, progressive: false, optimize, quality };
                files.push(encode(w, h, (i * 10 + j) as u64, &layout));
            }
        }
        // Another encoder's files, with restart intervals by blocks and by rows.
        for name in ["rst_420.jpg", "rst_422_optimized.jpg", "rst_grey.jpg"] {
            files.push(fixture(name));
        }
        files
    }

    /// Every file, as coefficients and as planes at every scale: libjpeg's exactly (or
    /// libjpeg's refusal).
    #[test]
    fn decodes_exactly_as_libjpeg() {
        let mut compared = 0;
        for jpeg in files() {
            for scale in [0, 1, 2, 4, 8] {
                match (decoded(&jpeg, scale, true), decoded(&jpeg, scale, false)) {
                    (Ok(ours), Ok(theirs)) => {
                        assert!(ours == theirs, "different at scale {scale}");
                        compared += 1;
                    }
                    (Err(_), Err(_)) => {}
                    (ours, theirs) => panic!("at {scale}/8: {:?} against {:?}", ours.err(), theirs.err()),
                }
            }
        }
        // Most of them decode (the others are layouts read_planes refuses either way).
        assert!(compared >= 100, "{compared} compared");
    }

    /// Damaged files: where libjpeg warns or fails, so does this decoder (so that the caller
    /// takes the full path); where libjpeg decodes cleanly, the same planes or a refusal.
    #[test]
    fn damaged_files_fail_where_libjpeg_warns() {
        let mut files: Vec<Vec<u8>> = ["rst_420.jpg", "rst_grey.jpg"].iter().map(|n| fixture(n)).collect();
        let layout = Layout { sampling: SAMPLINGS[0], progressive: false, optimize: true, quality: 90.0 };
        files.push(encode(150, 100, 11, &layout));
        let mut damage = Damage::new(0x2545_F491_4F6C_DD1D);
        let (mut same_planes, mut both_failed, mut only_ours) = (0, 0, 0);
        for file in &files {
            for _ in 0..300 {
                let bad = damage.apply(file);
                let scale = [0, 2, 4, 8][damage.below(4)];
                match (decoded(&bad, scale, true), decoded(&bad, scale, false)) {
                    (Ok(ours), Ok(theirs)) => {
                        assert!(ours == theirs, "a damaged file decoded differently");
                        same_planes += 1;
                    }
                    (Ok(_), Err(e)) => panic!("libjpeg refused a damaged file this decoder took: {e}"),
                    (Err(_), Err(_)) => both_failed += 1,
                    (Err(_), Ok(_)) => only_ours += 1,
                }
            }
        }
        // Both outcomes must occur, or the test checks nothing; refusing what libjpeg decodes
        // cleanly is allowed (the full path then decodes it) but must stay rare.
        assert!(same_planes > 50 && both_failed > 50, "{same_planes} same, {both_failed} both failed");
        assert!(only_ours * 20 < same_planes + both_failed, "{only_ours} refused by this decoder only");
    }
}
