//! libjpeg's transcoding API (`jpeg_read_coefficients` / `jpeg_write_coefficients`), which the
//! `mozjpeg` crate does not wrap: a JPEG's quantised DCT coefficients read without decoding
//! pixels, changed in place, and written as a new JPEG with new quantisation tables.
//!
//! It also encodes pixels as libjpeg does, with the Huffman statistics counted here
//! ([`PixelEncoder`], hooked into libjpeg by `csrc/jpeg_gather.c`), from RGB rows or from
//! YCbCr planes, and decodes a JPEG to its YCbCr planes ([`Transcoder::read_planes`]): libjpeg's
//! raw data interfaces, for slicing without RGB (`transcode::slice`).
//!
//! This is one of the crate's three `unsafe` modules (with `decode::av1` and `webp_lossy`; the
//! SSSE3 and NEON kernels in `transcode::huffman` are a few loads more, and the AVX2 dispatch
//! of `transcode`'s row pass one call). The
//! invariants:
//! - The libjpeg structs and their error managers are boxed, so the pointers libjpeg keeps to
//!   them stay put; the destination manager (a `Vec` that grows) is a raw pointer from
//!   `Box::into_raw` that only libjpeg's callbacks touch until `Drop` takes it back.
//! - libjpeg reports errors through `error_exit`, which must not return: ours unwinds (the
//!   `mozjpeg-sys` `unwinding` feature builds libjpeg with unwind tables and declares every
//!   function `C-unwind`), and every call into libjpeg runs inside `catch_unwind`, which turns
//!   the unwind into an `Err`. Warnings (corrupt data that libjpeg would paper over) are
//!   counted, and the caller treats any as a failure.
//! - Coefficient rows are borrowed mutably from `&mut self`, so no two rows alias, and the
//!   arrays live until the decompressor is destroyed in `Drop`, after the compressor.

#![allow(unsafe_code)]

use std::mem;
use std::os::raw::{c_int, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};

use mozjpeg_sys as sys;

use super::decode_mcu::Entropy;

/// A DCT block: 64 quantised coefficients in natural (row-major) order.
pub(crate) type Block = [i16; 64];

/// What a component of the source looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Component {
    pub h_samp: u32,
    pub v_samp: u32,
    pub width_in_blocks: u32,
    pub height_in_blocks: u32,
    /// The source's quantisation table, natural order.
    pub quant: [u16; 64],
}

/// The source's header, as libjpeg read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub width: u32,
    pub height: u32,
    /// The colour space libjpeg decoded (YCbCr for a normal colour JPEG).
    pub ycbcr: bool,
    pub components: Vec<Component>,
}

/// One component's decoded samples at its own resolution ([`Transcoder::read_planes`]): rows of
/// `stride` samples (whole blocks), of which the first `width` x `height` are the image's.
pub(crate) struct Plane {
    pub data: Vec<u8>,
    pub stride: usize,
    pub width: usize,
    pub height: usize,
}

/// libjpeg's destination manager writing into a growing `Vec` (`mgr` first, so that libjpeg's
/// `cinfo.dest` pointer is also a pointer to this).
#[repr(C)]
struct VecDest {
    mgr: sys::jpeg_destination_mgr,
    buf: Vec<u8>,
}

impl VecDest {
    /// A destination writing into a `Vec` of `capacity`, as a raw pointer (`Box::into_raw`):
    /// libjpeg keeps it as `cinfo.dest`, and its owner frees it with `Box::from_raw` once
    /// libjpeg is done.
    fn new(capacity: usize) -> *mut VecDest {
        Box::into_raw(Box::new(VecDest {
            mgr: sys::jpeg_destination_mgr {
                next_output_byte: std::ptr::null_mut(),
                free_in_buffer: 0,
                init_destination: Some(dest_init),
                empty_output_buffer: Some(dest_grow),
                term_destination: Some(dest_term),
            },
            buf: Vec::with_capacity(capacity),
        }))
    }
}

unsafe extern "C-unwind" fn dest_init(cinfo: &mut sys::jpeg_compress_struct) {
    // SAFETY (these three): `cinfo.dest` is the VecDest set in `prepare`, alive until Drop.
    let d = unsafe { &mut *cinfo.dest.cast::<VecDest>() };
    let len = d.buf.capacity().max(4096);
    d.buf.resize(len, 0);
    d.mgr.next_output_byte = d.buf.as_mut_ptr();
    d.mgr.free_in_buffer = d.buf.len();
}

unsafe extern "C-unwind" fn dest_grow(cinfo: &mut sys::jpeg_compress_struct) -> sys::boolean {
    let d = unsafe { &mut *cinfo.dest.cast::<VecDest>() };
    // libjpeg calls this with the whole buffer written, and its documentation says to ignore
    // next_output_byte and free_in_buffer here (not every caller updates them first).
    let used = d.buf.len();
    d.buf.resize(d.buf.len() * 2, 0);
    // SAFETY: used <= len.
    d.mgr.next_output_byte = unsafe { d.buf.as_mut_ptr().add(used) };
    d.mgr.free_in_buffer = d.buf.len() - used;
    1
}

unsafe extern "C-unwind" fn dest_term(cinfo: &mut sys::jpeg_compress_struct) {
    let d = unsafe { &mut *cinfo.dest.cast::<VecDest>() };
    let used = d.buf.len() - d.mgr.free_in_buffer;
    d.buf.truncate(used);
    d.mgr.next_output_byte = std::ptr::null_mut();
    d.mgr.free_in_buffer = 0;
}

/// A source JPEG's coefficients and, once [`Transcoder::prepare`] ran, the compressor that
/// writes them.
pub(crate) struct Transcoder<'a> {
    /// The source, which libjpeg's memory source points into.
    source: &'a [u8],
    d: Box<sys::jpeg_decompress_struct>,
    _d_err: Box<sys::jpeg_error_mgr>,
    c: Option<(Box<sys::jpeg_compress_struct>, Box<sys::jpeg_error_mgr>)>,
    /// The destination manager, from `Box::into_raw` (null until `prepare`).
    dest: *mut VecDest,
    coefs: *mut *mut sys::jvirt_barray_control,
    header: Header,
}

fn error_mgr() -> Box<sys::jpeg_error_mgr> {
    // SAFETY: jpeg_error_mgr is plain data (integers, pointers, options of fn pointers), for
    // which all-zero is valid; jpeg_std_error fills it in.
    let mut err: Box<sys::jpeg_error_mgr> = Box::new(unsafe { mem::zeroed() });
    unsafe { sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(count_warning);
    err
}

extern "C-unwind" fn error_exit(cinfo: &mut sys::jpeg_common_struct) {
    let mut message = String::from("libjpeg error");
    // SAFETY: `err` points at our boxed error manager; format_message writes at most
    // JMSG_LENGTH_MAX (200) bytes into the buffer, which we give 200 bytes (the binding's
    // type says 80).
    unsafe {
        if let Some(err) = cinfo.err.as_ref() {
            if let Some(format) = err.format_message {
                let mut buf = [0u8; 200];
                format(cinfo, &*(buf.as_mut_ptr() as *const [u8; 80]));
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                message = format!("libjpeg: {}", String::from_utf8_lossy(&buf[..end]));
            }
        }
    }
    std::panic::resume_unwind(Box::new(message));
}

extern "C-unwind" fn count_warning(cinfo: &mut sys::jpeg_common_struct, level: c_int) {
    if level < 0 {
        // SAFETY: `err` points at our boxed error manager.
        if let Some(err) = unsafe { cinfo.err.as_mut() } {
            err.num_warnings += 1;
        }
    }
}

/// A created compressor and the error manager it reports through (both boxed: libjpeg keeps
/// pointers to them).
fn compressor() -> Result<(Box<sys::jpeg_compress_struct>, Box<sys::jpeg_error_mgr>), String> {
    let mut err = error_mgr();
    // SAFETY: zeroed is the state jpeg_CreateCompress expects to fill in.
    let mut c: Box<sys::jpeg_compress_struct> = Box::new(unsafe { mem::zeroed() });
    c.common.err = &mut *err;
    guarded(|| unsafe { sys::jpeg_create_compress(&mut *c) })?;
    Ok((c, err))
}

/// Runs `f` (calls into libjpeg), turning libjpeg's unwinding errors into `Err`.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload.downcast_ref::<String>().cloned().unwrap_or_else(|| "libjpeg failed".to_owned())
    })
}

impl<'a> Transcoder<'a> {
    /// Reads the header of `jpeg` (up to its first scan). Fails on any libjpeg error.
    pub(crate) fn open(jpeg: &'a [u8]) -> Result<Transcoder<'a>, String> {
        let len = c_ulong::try_from(jpeg.len()).map_err(|_| "JPEG too large".to_owned())?;
        let mut d_err = error_mgr();
        // SAFETY: zeroed is the state jpeg_CreateDecompress expects to fill in.
        let mut d: Box<sys::jpeg_decompress_struct> = Box::new(unsafe { mem::zeroed() });
        d.common.err = &mut *d_err;
        guarded(|| unsafe { sys::jpeg_create_decompress(&mut *d) })?;
        let mut t = Transcoder {
            source: jpeg,
            d,
            _d_err: d_err,
            c: None,
            dest: std::ptr::null_mut(),
            coefs: std::ptr::null_mut(),
            header: Header { width: 0, height: 0, ycbcr: false, components: Vec::new() },
        };
        let d = &mut *t.d;
        // SAFETY: `jpeg` outlives the decompressor's use of it (`'a`).
        guarded(|| unsafe {
            sys::jpeg_mem_src(d, jpeg.as_ptr(), len);
            sys::jpeg_read_header(d, 1);
        })?;
        t.header = Header {
            width: d.image_width,
            height: d.image_height,
            ycbcr: d.jpeg_color_space == sys::J_COLOR_SPACE::JCS_YCbCr,
            components: t.components(),
        };
        Ok(t)
    }

    /// Reads every coefficient (entropy decoding only: imgfn's where the file is one
    /// sequential scan, `transcode::decode_mcu`) and the quantisation tables; once.
    /// Fails on any libjpeg error or warning.
    pub(crate) fn load(&mut self) -> Result<(), String> {
        self.load_with(true)
    }

    /// [`Self::load`], with imgfn's Huffman decoding (`own_entropy`) or libjpeg's.
    pub(crate) fn load_with(&mut self, own_entropy: bool) -> Result<(), String> {
        if !self.coefs.is_null() {
            return Ok(());
        }
        let coefs = self.with_entropy(own_entropy, |t| {
            let d = &mut *t.d;
            guarded(|| unsafe { sys::jpeg_read_coefficients(d) })
        })?;
        if coefs.is_null() {
            return Err("libjpeg returned no coefficients".into());
        }
        self.coefs = coefs;
        self.header.components = self.components();
        if self._d_err.num_warnings > 0 {
            return Err("the JPEG data is corrupt (libjpeg warned)".into());
        }
        Ok(())
    }

    /// Runs `decode` (a libjpeg decode of the source) with imgfn's Huffman decoding installed
    /// (`own_entropy`, `transcode::decode_mcu`) or with libjpeg's.
    fn with_entropy<T>(&mut self, own_entropy: bool, decode: impl FnOnce(&mut Self) -> T) -> T {
        let entropy = own_entropy.then(|| Entropy::install(&mut self.d, self.source));
        let result = decode(self);
        if let Some(entropy) = entropy {
            entropy.uninstall(&mut self.d);
        }
        result
    }

    /// Decodes every component to a plane of its own resolution, instead of [`Self::load`]:
    /// libjpeg's raw data output (the inverse DCT only, no upsampling or colour conversion), at
    /// `scale`/8 of the image's size (1, 2, 4 or 8). At a reduced scale libjpeg would scale the
    /// IDCT of a subsampled component up (to save a colour conversion the upsampling): here
    /// every component takes the luma's IDCT size instead (`imgfn_jpeg_raw_idct_as`), so that
    /// 4:2:0 chroma comes out at half the luma's resolution, as it is stored.
    /// The Huffman decoding is imgfn's (`transcode::decode_mcu`) where the file is one
    /// sequential scan. Fails on any libjpeg error or warning.
    pub(crate) fn read_planes(&mut self, scale: u8) -> Result<Vec<Plane>, String> {
        self.read_planes_with(scale, true)
    }

    /// [`Self::read_planes`], with imgfn's Huffman decoding (`own_entropy`) or libjpeg's.
    pub(crate) fn read_planes_with(&mut self, scale: u8, own_entropy: bool) -> Result<Vec<Plane>, String> {
        let planes = self.with_entropy(own_entropy, |t| t.decode_planes(scale))?;
        if self._d_err.num_warnings > 0 {
            return Err("the JPEG data is corrupt (libjpeg warned)".into());
        }
        Ok(planes)
    }

    /// The decode of [`Self::read_planes_with`].
    fn decode_planes(&mut self, scale: u8) -> Result<Vec<Plane>, String> {
        if !self.coefs.is_null() {
            return Err("the coefficients are loaded already".into());
        }
        if ![1, 2, 4, 8].contains(&scale) {
            return Err(format!("no DCT scale {scale}/8"));
        }
        let d = &mut *self.d;
        guarded(|| unsafe {
            d.raw_data_out = 1;
            d.scale_num = u32::from(scale);
            d.scale_denom = 8;
            sys::jpeg_start_decompress(d);
        })?;
        let components = self.components();
        let h_max = components.iter().map(|c| c.h_samp).max().unwrap_or(1) as usize;
        let v_max = components.iter().map(|c| c.v_samp).max().unwrap_or(1) as usize;
        let (width, height) = (self.header.width as usize, self.header.height as usize);
        let n = usize::from(scale);
        // Every component at IDCT size `n`: those libjpeg scaled up take the IDCT of one it did
        // not (a component at the highest sampling, which libjpeg gives `n`).
        let like = components.iter().position(|c| c.h_samp as usize == h_max && c.v_samp as usize == v_max);
        let like = c_int::try_from(like.ok_or("no component at the highest sampling")?).unwrap_or(0);
        // The rows handed to libjpeg below are sized by `n`: check it against libjpeg's own.
        for ci in 0..components.len() {
            let ci = c_int::try_from(ci).map_err(|_| "too many components".to_owned())?;
            // SAFETY: the decompressor is started and has read no data; the functions check `ci`
            // and `like` and the decompressor's state.
            let mut theirs = unsafe { imgfn_jpeg_dct_scaled_size(&*self.d, ci) };
            if usize::try_from(theirs).ok() != Some(n)
                && unsafe { imgfn_jpeg_raw_idct_as(&mut *self.d, ci, like) } == 1
            {
                theirs = unsafe { imgfn_jpeg_dct_scaled_size(&*self.d, ci) };
            }
            if usize::try_from(theirs).ok() != Some(n) {
                return Err(format!("libjpeg has IDCT size {theirs} for component {ci}, not {n}"));
            }
        }
        // Each call returns one iMCU row: `v_samp` block rows of every component.
        let lines = v_max * n;
        let imcu_rows = height.div_ceil(v_max * 8);
        let mut planes: Vec<Plane> = components
            .iter()
            .map(|c| {
                let (h, v, s) = (c.h_samp as usize, c.v_samp as usize, n);
                // Whole groups of four samples (`resize::resample_plane` takes them as pixels).
                let stride = (c.width_in_blocks as usize * s).next_multiple_of(4);
                Plane {
                    data: vec![0; stride * imcu_rows * v * s],
                    stride,
                    width: (width * h * s).div_ceil(h_max * 8),
                    height: (height * v * s).div_ceil(v_max * 8),
                }
            })
            .collect();
        let d = &mut *self.d;
        for r in 0..imcu_rows {
            let mut rows: Vec<Vec<*mut u8>> = planes
                .iter_mut()
                .zip(&components)
                .map(|(p, c)| {
                    let rows = c.v_samp as usize * n;
                    // SAFETY: row r * rows + i < imcu_rows * v_samp * n, the rows allocated.
                    (0..rows).map(|i| unsafe { p.data.as_mut_ptr().add((r * rows + i) * p.stride) }).collect()
                })
                .collect();
            let mut image: Vec<*mut *mut u8> = rows.iter_mut().map(|r| r.as_mut_ptr()).collect();
            // SAFETY: one array of v_samp * n row pointers per component, each row `stride` =
            // width_in_blocks * n samples, which is all libjpeg writes of a row (checked above:
            // every component's IDCT size is n).
            let got = guarded(|| unsafe { sys::jpeg_read_raw_data(d, image.as_mut_ptr(), lines as u32) })?;
            if got as usize != lines {
                return Err("libjpeg returned a short iMCU row".into());
            }
        }
        guarded(|| unsafe { sys::jpeg_finish_decompress(d) })?;
        Ok(planes)
    }

    /// The components as libjpeg has them: sampling and size in blocks after the header,
    /// quantisation tables (zero until then) after [`Self::load`].
    fn components(&self) -> Vec<Component> {
        let d = &*self.d;
        // SAFETY: after jpeg_read_header, comp_info holds num_components entries; quant_table is
        // null until jpeg_read_coefficients saved each component's table.
        unsafe {
            let n = usize::try_from(d.num_components).unwrap_or(0);
            std::slice::from_raw_parts(d.comp_info, n)
                .iter()
                .map(|ci| Component {
                    h_samp: ci.h_samp_factor as u32,
                    v_samp: ci.v_samp_factor as u32,
                    width_in_blocks: ci.width_in_blocks,
                    height_in_blocks: ci.height_in_blocks,
                    quant: ci.quant_table.as_ref().map_or([0; 64], |q| q.quantval),
                })
                .collect()
        }
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// The quantisation table each component names, as the header declared it (natural
    /// order; `None` for a component whose table is missing).
    pub(crate) fn declared_tables(&self) -> Vec<Option<[u16; 64]>> {
        let d = &*self.d;
        // SAFETY: after jpeg_read_header, comp_info holds num_components entries and each
        // quant_tbl_ptrs slot is null or a table read from a DQT marker.
        unsafe {
            let n = usize::try_from(d.num_components).unwrap_or(0);
            std::slice::from_raw_parts(d.comp_info, n)
                .iter()
                .map(|ci| {
                    let slot = usize::try_from(ci.quant_tbl_no).ok()?;
                    d.quant_tbl_ptrs.get(slot)?.as_ref().map(|q| q.quantval)
                })
                .collect()
        }
    }

    /// Sets up the compressor as `encode` sets up a pixel encode (libjpeg-turbo's profile,
    /// the Annex K tables at `quality`, optimised Huffman tables, progressive on request) for
    /// these coefficients' geometry, and returns each component's new quantisation table
    /// (natural order). Luma uses table 0, both chroma components table 1, as in a pixel
    /// encode. Without `quality`, every component keeps the source's table.
    /// `capacity` is a guess at the output's size.
    /// Needs [`Self::load`] first.
    pub(crate) fn prepare(
        &mut self,
        quality: Option<u8>,
        progressive: bool,
        capacity: usize,
    ) -> Result<Vec<[u16; 64]>, String> {
        if !self.dest.is_null() || self.coefs.is_null() {
            return Err("prepare needs load, and runs once".into());
        }
        self.dest = VecDest::new(capacity);
        let (mut c, c_err) = compressor()?;
        let d = &*self.d;
        let dest = self.dest;
        let n = self.header.components.len();
        let tables = guarded(|| unsafe {
            let cinfo = &mut *c;
            sys::jpeg_c_set_int_param(
                cinfo,
                sys::J_INT_PARAM::JINT_COMPRESS_PROFILE,
                sys::JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int,
            );
            // (This copies the source's tables and which component uses which.)
            sys::jpeg_copy_critical_parameters(d, cinfo);
            if let Some(quality) = quality {
                sys::jpeg_set_quality(cinfo, c_int::from(quality), 0);
            }
            cinfo.optimize_coding = 1;
            // The pixel encoder's JFIF header: no density from the source.
            cinfo.density_unit = 0;
            cinfo.X_density = 1;
            cinfo.Y_density = 1;
            if progressive {
                sys::jpeg_simple_progression(cinfo);
            }
            let comps = std::slice::from_raw_parts_mut(cinfo.comp_info, n);
            let mut tables = Vec::with_capacity(n);
            for (i, ci) in comps.iter_mut().enumerate() {
                if quality.is_some() {
                    ci.quant_tbl_no = if i == 0 { 0 } else { 1 };
                }
                let q = cinfo.quant_tbl_ptrs[ci.quant_tbl_no as usize];
                tables.push(q.as_ref().map_or([0; 64], |q| q.quantval));
            }
            cinfo.dest = dest.cast();
            tables
        });
        self.c = Some((c, c_err));
        let tables = tables?;
        if tables.iter().any(|t| t.contains(&0)) {
            return Err("libjpeg made no quantisation table".into());
        }
        Ok(tables)
    }

    /// Row `row` (in blocks) of component `comp`'s coefficients, `width_in_blocks` long.
    pub(crate) fn row(&mut self, comp: usize, row: u32) -> Result<&mut [Block], String> {
        if self.coefs.is_null() {
            return Err("coefficients not loaded".into());
        }
        let component = self.header.components.get(comp).ok_or("no such component")?;
        if row >= component.height_in_blocks {
            return Err("row out of range".into());
        }
        let width = component.width_in_blocks as usize;
        let d = &mut *self.d;
        // SAFETY: `coefs` has num_components arrays (comp < that); access_virt_barray checks
        // the row and returns a pointer to row pointers, whose first row holds at least
        // width_in_blocks blocks; the arrays live as long as the decompressor, which `self`
        // owns, and the result borrows `self` mutably.
        unsafe {
            let array = *self.coefs.add(comp);
            let access = (*d.common.mem).access_virt_barray.ok_or("no access_virt_barray")?;
            let rows = guarded(|| access(&mut d.common, array, row, 1, 1))?;
            if rows.is_null() || (*rows).is_null() {
                return Err("libjpeg returned no row".into());
            }
            Ok(std::slice::from_raw_parts_mut((*rows).cast::<Block>(), width))
        }
    }

    /// Installs the Huffman tables (`dc[t]`, `ac[t]`: table `t`, as components use them after
    /// [`Self::prepare`]: luma 0, chroma 1) and turns off libjpeg's statistics pass. The tables
    /// must have a code for every symbol the coefficients will make: libjpeg-turbo's SIMD
    /// encoder does not check. Baseline output only.
    pub(crate) fn set_huffman(
        &mut self,
        dc: &[super::huffman::Table; 2],
        ac: &[super::huffman::Table; 2],
    ) -> Result<(), String> {
        let Some((c, _)) = self.c.as_mut() else {
            return Err("prepare was not called".into());
        };
        let c = &mut **c;
        if c.num_scans != 0 {
            return Err("own Huffman tables are for baseline output".into());
        }
        let n = self.header.components.len();
        guarded(|| unsafe {
            // SAFETY: after prepare, comp_info holds n entries and the table pointers are null
            // or tables jpeg_set_defaults allocated in the compressor's pool.
            for (i, ci) in std::slice::from_raw_parts_mut(c.comp_info, n).iter_mut().enumerate() {
                let t = super::huffman::table_of(i) as c_int;
                ci.dc_tbl_no = t;
                ci.ac_tbl_no = t;
            }
            for (t, (dc, ac)) in dc.iter().zip(ac).enumerate() {
                for (ptr, table) in [(&mut c.dc_huff_tbl_ptrs[t], dc), (&mut c.ac_huff_tbl_ptrs[t], ac)] {
                    if ptr.is_null() {
                        *ptr = sys::jpeg_alloc_huff_table(&mut c.common);
                    }
                    // (sent_table: jpeg_write_coefficients clears it for every table.)
                    (**ptr).bits = table.bits;
                    (**ptr).huffval = table.values;
                }
            }
            c.optimize_coding = 0;
        })
    }

    /// Writes the (changed) coefficients as a new JPEG with the tables from [`Self::prepare`].
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, String> {
        let coefs = self.coefs;
        let Some((c, c_err)) = self.c.as_mut() else {
            return Err("prepare was not called".into());
        };
        let c = &mut **c;
        guarded(|| unsafe {
            sys::jpeg_write_coefficients(c, coefs);
            sys::jpeg_finish_compress(c);
        })?;
        if c_err.num_warnings > 0 {
            return Err("libjpeg warned while writing".into());
        }
        // SAFETY: libjpeg is done with the destination (finish_compress ran term_destination).
        Ok(std::mem::take(unsafe { &mut (*self.dest).buf }))
    }
}

impl Drop for Transcoder<'_> {
    fn drop(&mut self) {
        // SAFETY: destroying is valid in any state, also after an error; the compressor goes
        // first (it may refer to the decompressor's coefficient arrays); then nothing refers to
        // the destination manager any more.
        unsafe {
            if let Some((c, _)) = self.c.as_mut() {
                let _ = guarded(|| sys::jpeg_destroy_compress(c));
            }
            let _ = guarded(|| sys::jpeg_destroy_decompress(&mut self.d));
            if !self.dest.is_null() {
                drop(Box::from_raw(self.dest));
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Pixel encoding with imgfn's Huffman statistics
// ------------------------------------------------------------------------------------------

/// Most blocks in a baseline MCU.
const MAX_BLOCKS_IN_MCU: usize = 10;

unsafe extern "C" {
    /// `csrc/jpeg_gather.c`: after `jpeg_start_compress`, swaps the entropy encoder's methods
    /// for the statistics pass when it is one baseline Huffman scan with optimised tables, and
    /// says which component and tables each block of an MCU has; 0 when it does not apply.
    fn imgfn_jpeg_hook_gather(
        cinfo: *mut sys::jpeg_compress_struct,
        encode: unsafe extern "C-unwind" fn(
            &mut sys::jpeg_compress_struct,
            *mut sys::JBLOCKROW,
        ) -> sys::boolean,
        finish: unsafe extern "C-unwind" fn(&mut sys::jpeg_compress_struct),
        component: *mut c_int,
        dc_table: *mut c_int,
        ac_table: *mut c_int,
        max_blocks: c_int,
    ) -> c_int;

    /// `csrc/jpeg_gather.c`: the IDCT size libjpeg chose for component `ci` of a started
    /// decompressor (libjpeg-internal), or -1.
    fn imgfn_jpeg_dct_scaled_size(cinfo: *const sys::jpeg_decompress_struct, ci: c_int) -> c_int;

    /// `csrc/jpeg_gather.c`: in a started raw-data decompression that has read nothing yet,
    /// component `ci` takes the IDCT size and method of component `like`; 1 when done.
    fn imgfn_jpeg_raw_idct_as(cinfo: *mut sys::jpeg_decompress_struct, ci: c_int, like: c_int) -> c_int;
}

/// The statistics pass's state (`cinfo.common.client_data` points at it).
struct Gather {
    blocks: usize,
    component: [usize; MAX_BLOCKS_IN_MCU],
    dc_table: [usize; MAX_BLOCKS_IN_MCU],
    ac_table: [usize; MAX_BLOCKS_IN_MCU],
    last_dc: [i32; 4],
    counts: super::huffman::Counts,
}

/// The statistics pass's `encode_mcu`: counts one MCU's symbols as `htest_one_block` does.
unsafe extern "C-unwind" fn gather_mcu(
    cinfo: &mut sys::jpeg_compress_struct,
    mcu: *mut sys::JBLOCKROW,
) -> sys::boolean {
    // SAFETY: client_data is the boxed Gather of the PixelEncoder that hooked this cinfo, alive
    // until it is dropped; `mcu` holds `blocks_in_MCU` block pointers (the hook read that count).
    let g = unsafe { &mut *cinfo.common.client_data.cast::<Gather>() };
    for b in 0..g.blocks {
        let block: &Block = unsafe { &**mcu.add(b) };
        let comp = g.component[b];
        let dc = i32::from(block[0]);
        g.counts.dc_diff(g.dc_table[b], dc - g.last_dc[comp]);
        g.last_dc[comp] = dc;
        g.counts.ac(g.ac_table[b], block);
    }
    1
}

/// The statistics pass's `finish_pass`: libjpeg's `finish_pass_gather` with imgfn's counts,
/// the optimal tables (`jpeg_gen_optimal_table`'s) of every table the blocks used.
unsafe extern "C-unwind" fn gather_finish(cinfo: &mut sys::jpeg_compress_struct) {
    // SAFETY: as in gather_mcu.
    let g = unsafe { &*cinfo.common.client_data.cast::<Gather>() };
    let install = |cinfo: &mut sys::jpeg_compress_struct| -> Result<(), String> {
        g.counts.baseline()?;
        for dc in [true, false] {
            for t in 0..2 {
                if !g.counts.used(dc, t) {
                    continue;
                }
                let table = g.counts.table(dc, t)?;
                let ptr = if dc { &mut cinfo.dc_huff_tbl_ptrs[t] } else { &mut cinfo.ac_huff_tbl_ptrs[t] };
                // SAFETY: a null slot gets a table from libjpeg's pool, as finish_pass_gather does.
                // Its `sent_table` stays false: jpeg_start_compress cleared it on every table
                // (write_all_tables), and jpeg_alloc_huff_table clears it on a new one.
                unsafe {
                    if ptr.is_null() {
                        *ptr = sys::jpeg_alloc_huff_table(&mut cinfo.common);
                    }
                    (**ptr).bits = table.bits;
                    (**ptr).huffval = table.values;
                }
            }
        }
        Ok(())
    };
    if let Err(e) = install(cinfo) {
        // Unwinds through libjpeg to the `guarded` call that drives it, as error_exit does.
        std::panic::resume_unwind(Box::new(format!("JPEG statistics: {e}")));
    }
}

/// Encodes RGB rows as a baseline JPEG set up exactly as the pixel encoder sets up the `mozjpeg`
/// crate (libjpeg-turbo's profile, Annex K tables at `quality`, 4:2:0, optimised Huffman
/// tables), but with the Huffman statistics counted by `huffman::Counts` instead of libjpeg's
/// scalar pass: the same file, byte for byte (the tests compare), for a fraction of that pass.
pub(crate) struct PixelEncoder {
    c: Box<sys::jpeg_compress_struct>,
    /// The error manager `c` points at (its warning count is read at the end).
    err: Box<sys::jpeg_error_mgr>,
    dest: *mut VecDest,
    gather: Box<Gather>,
    width: usize,
    /// Takes YCbCr planes ([`Self::write_planes`]) instead of RGB rows.
    raw: bool,
}

impl PixelEncoder {
    /// Starts the compression of a `width` x `height` RGB image; `capacity` is a guess at the
    /// output's size. `Ok(None)` when libjpeg's setup is not the one the counting is for.
    pub(crate) fn start(
        width: u32,
        height: u32,
        quality: u8,
        capacity: usize,
    ) -> Result<Option<Self>, String> {
        Self::open(width, height, quality, capacity, false)
    }

    /// [`Self::start`] for YCbCr 4:2:0 planes ([`Self::write_planes`]) instead of RGB rows:
    /// libjpeg's raw data input, without colour conversion and downsampling.
    pub(crate) fn start_planes(
        width: u32,
        height: u32,
        quality: u8,
        capacity: usize,
    ) -> Result<Option<Self>, String> {
        Self::open(width, height, quality, capacity, true)
    }

    fn open(
        width: u32,
        height: u32,
        quality: u8,
        capacity: usize,
        raw: bool,
    ) -> Result<Option<Self>, String> {
        let (c, err) = compressor()?;
        let dest = VecDest::new(capacity);
        let gather = Box::new(Gather {
            blocks: 0,
            component: [0; MAX_BLOCKS_IN_MCU],
            dc_table: [0; MAX_BLOCKS_IN_MCU],
            ac_table: [0; MAX_BLOCKS_IN_MCU],
            last_dc: [0; 4],
            counts: super::huffman::Counts::new(),
        });
        let mut encoder = PixelEncoder { c, err, dest, gather, width: width as usize, raw };
        let gather_ptr: *mut Gather = &mut *encoder.gather;
        let hooked = guarded(|| unsafe {
            let cinfo = &mut *encoder.c;
            cinfo.in_color_space =
                if raw { sys::J_COLOR_SPACE::JCS_YCbCr } else { sys::J_COLOR_SPACE::JCS_RGB };
            cinfo.input_components = 3;
            sys::jpeg_set_defaults(cinfo);
            sys::jpeg_c_set_int_param(
                cinfo,
                sys::J_INT_PARAM::JINT_COMPRESS_PROFILE,
                sys::JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as c_int,
            );
            sys::jpeg_set_defaults(cinfo);
            cinfo.image_width = width;
            cinfo.image_height = height;
            sys::jpeg_set_quality(cinfo, c_int::from(quality), 0);
            cinfo.optimize_coding = 1;
            cinfo.raw_data_in = sys::boolean::from(raw);
            let comps = std::slice::from_raw_parts_mut(cinfo.comp_info, 3);
            for (i, comp) in comps.iter_mut().enumerate() {
                let f = if i == 0 { 2 } else { 1 };
                comp.h_samp_factor = f;
                comp.v_samp_factor = f;
            }
            cinfo.dest = dest.cast();
            sys::jpeg_start_compress(cinfo, 1);
            let g = &mut *gather_ptr;
            let mut component = [0 as c_int; MAX_BLOCKS_IN_MCU];
            let mut dc = [0 as c_int; MAX_BLOCKS_IN_MCU];
            let mut ac = [0 as c_int; MAX_BLOCKS_IN_MCU];
            // Read first, to check the tables before anything is swapped.
            cinfo.common.client_data = gather_ptr.cast();
            let blocks = imgfn_jpeg_hook_gather(
                cinfo,
                gather_mcu,
                gather_finish,
                component.as_mut_ptr(),
                dc.as_mut_ptr(),
                ac.as_mut_ptr(),
                MAX_BLOCKS_IN_MCU as c_int,
            );
            g.blocks = usize::try_from(blocks).unwrap_or(0);
            for b in 0..g.blocks {
                g.component[b] = usize::try_from(component[b]).unwrap_or(usize::MAX);
                g.dc_table[b] = usize::try_from(dc[b]).unwrap_or(usize::MAX);
                g.ac_table[b] = usize::try_from(ac[b]).unwrap_or(usize::MAX);
            }
            g.blocks
        })?;
        let g = &encoder.gather;
        let sane = (0..g.blocks).all(|b| g.component[b] < 4 && g.dc_table[b] < 2 && g.ac_table[b] < 2);
        if hooked == 0 || !sane {
            // Either libjpeg's own pass runs (not hooked) or the tables are not the two the
            // counts keep: the caller encodes the usual way.
            return Ok(None);
        }
        Ok(Some(encoder))
    }

    /// Compresses `rows` (whole RGB rows, `width * 3` bytes each).
    pub(crate) fn write(&mut self, rows: &[u8]) -> Result<(), String> {
        let stride = self.width * 3;
        if self.raw || stride == 0 || !rows.len().is_multiple_of(stride) {
            return Err("rows are not whole".into());
        }
        let c = &mut *self.c;
        guarded(|| unsafe {
            for chunk in rows.chunks(stride * 16) {
                let mut pointers: Vec<*const u8> = chunk.chunks_exact(stride).map(<[u8]>::as_ptr).collect();
                let mut at = 0usize;
                while at < pointers.len() {
                    let left = (pointers.len() - at) as u32;
                    let done = sys::jpeg_write_scanlines(c, pointers.as_mut_ptr().add(at).cast(), left);
                    if done == 0 {
                        return Err("libjpeg took no rows".to_owned());
                    }
                    at += done as usize;
                }
            }
            Ok(())
        })?
    }

    /// Compresses the next iMCU row of an encoder from [`Self::start_planes`]: 16 rows of Y and
    /// 8 rows each of Cb and Cr (`planes[c]`), each row at least the component's width in whole
    /// blocks (the image's samples, then the edge repeated, as libjpeg pads). Rows below the
    /// image in the last iMCU row are read only as far as their blocks are.
    pub(crate) fn write_planes(&mut self, planes: [&[&[u8]]; 3]) -> Result<(), String> {
        if !self.raw {
            return Err("the encoder takes RGB rows".into());
        }
        let c = &mut *self.c;
        // SAFETY: after jpeg_start_compress, comp_info holds the three components.
        let comps = unsafe { std::slice::from_raw_parts(c.comp_info, 3) };
        let mut pointers: [Vec<*const u8>; 3] = Default::default();
        for ((rows, comp), ptrs) in planes.iter().zip(comps).zip(&mut pointers) {
            let (n, len) = (comp.v_samp_factor as usize * 8, comp.width_in_blocks as usize * 8);
            if rows.len() != n || rows.iter().any(|r| r.len() < len) {
                return Err("an iMCU row of planes is not whole".into());
            }
            *ptrs = rows.iter().map(|r| r.as_ptr()).collect();
        }
        let image: [*const *const u8; 3] = std::array::from_fn(|i| pointers[i].as_ptr());
        // SAFETY: checked above: each component's v_samp * 8 rows of width_in_blocks * 8
        // samples, which is all the coefficient controller reads; the rows outlive the call.
        let done = guarded(|| unsafe { sys::jpeg_write_raw_data(c, image.as_ptr(), 16) })?;
        if done == 0 {
            return Err("libjpeg took no rows".into());
        }
        Ok(())
    }

    /// Finishes the file (the output pass runs here) and returns it.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, String> {
        let c = &mut *self.c;
        guarded(|| unsafe { sys::jpeg_finish_compress(c) })?;
        if self.err.num_warnings > 0 {
            return Err("libjpeg warned while writing".into());
        }
        // SAFETY: libjpeg is done with the destination (finish_compress ran term_destination).
        Ok(std::mem::take(unsafe { &mut (*self.dest).buf }))
    }
}

impl Drop for PixelEncoder {
    fn drop(&mut self) {
        // SAFETY: destroying a created compressor is valid in any state, also after an error;
        // then nothing refers to the destination manager or the statistics any more.
        unsafe {
            let _ = guarded(|| sys::jpeg_destroy_compress(&mut self.c));
            drop(Box::from_raw(self.dest));
        }
    }
}
