//! Optimised Huffman tables for a baseline transcode, counted while the coefficients are
//! requantised instead of in libjpeg's statistics pass (`optimize_coding` runs the whole
//! entropy coder twice, once only to count symbols: half of a transcode's time, measured).
//!
//! The counts must be exactly the symbols the encoder will write: a symbol counted here gets a
//! code, and one the encoder meets without a code is not an error in libjpeg-turbo's SIMD
//! Huffman encoder, it is a corrupt file. So this follows libjpeg's `htest_one_block` and
//! `jctrans.c` to the letter (the unit tests compare the output with libjpeg's own pass byte for
//! byte, over many sizes and overlays):
//! - every block of a component, in any order, adds its AC symbols (zigzag order, a run of 16
//!   zeros as ZRL, the run/size symbol, EOB after trailing zeros) to its table's counts;
//! - the DC differences follow the interleaved MCU order, each component predicted from its
//!   own previous block; at the right and bottom edges libjpeg fills an MCU with dummy blocks
//!   (AC all zero, DC equal to the block before it), each one a DC difference of 0 and an EOB;
//! - a coefficient beyond baseline's 10 bits (11 for a DC difference) is refused, as libjpeg
//!   refuses it, and the caller falls back to the full decode.
//!
//! Then [`optimal`] is libjpeg's `jpeg_gen_optimal_table` (JPEG Annex K.2, with the same ties),
//! so the tables are libjpeg's.

use std::sync::OnceLock;

use super::ffi::{Block, Component};

/// Huffman table number of component `comp`: luma 0, chroma 1 (libjpeg's YCbCr defaults).
pub(crate) fn table_of(comp: usize) -> usize {
    usize::from(comp != 0)
}

/// Position `k` of the zigzag scan as an index in natural (row-major) order.
const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
    14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
    46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// For each byte `i` of a block's natural order (coefficients `8 i .. 8 i + 8`) and each set of
/// them (a byte of flags), their bits in zigzag order.
fn zigzag_bits() -> &'static [[u64; 256]; 8] {
    static BITS: OnceLock<[[u64; 256]; 8]> = OnceLock::new();
    BITS.get_or_init(|| {
        let mut position = [0u32; 64];
        for (z, &n) in ZIGZAG.iter().enumerate() {
            position[usize::from(n)] = z as u32;
        }
        std::array::from_fn(|i| {
            std::array::from_fn(|flags| {
                (0..8).filter(|j| flags >> j & 1 == 1).fold(0u64, |m, j| m | 1 << position[i * 8 + j])
            })
        })
    })
}

/// Which coefficients of `block` (natural order) are not zero, as bits in zigzag order (bit `k`
/// for zigzag position `k`, the DC included).
#[inline]
fn nonzero_zigzag(block: &Block) -> u64 {
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    return neon::nonzero_zigzag(block);
    #[cfg(target_arch = "x86_64")]
    if let Some(mask) = ssse3::nonzero_zigzag(block) {
        return mask;
    }
    #[cfg(not(all(target_arch = "aarch64", target_feature = "neon")))]
    nonzero_zigzag_scalar(block)
}

/// [`nonzero_zigzag`] without SIMD: eight coefficients at a time to a byte of flags (the
/// multiply gathers eight 0/1 bytes into a byte's bits), each byte to its zigzag bits through a
/// table.
#[cfg_attr(
    all(target_arch = "aarch64", target_feature = "neon", not(test)),
    expect(dead_code, reason = "arm64 builds have NEON; the test still checks this path there")
)]
fn nonzero_zigzag_scalar(block: &Block) -> u64 {
    let bits = zigzag_bits();
    let mut nonzero = 0u64;
    for (i, chunk) in block.chunks_exact(8).enumerate() {
        let flags: [u8; 8] = std::array::from_fn(|j| u8::from(chunk[j] != 0));
        let byte = u64::from_le_bytes(flags).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        nonzero |= bits[i][byte as usize];
    }
    nonzero
}

/// [`nonzero_zigzag`] in SSSE3 (every x86-64 CPU Lambda runs on has it): the block saturated to
/// bytes, put in zigzag order by byte shuffles, compared with zero. A third of the time of the
/// table walk in the statistics count of a slice (the loop over the non-zero coefficients is
/// the rest). With its arm64 twin `neon`, the crate's unsafe code outside its FFI modules: plain
/// loads from the block.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod ssse3 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_packs_epi16,
        _mm_setzero_si128, _mm_shuffle_epi8,
    };

    use super::{Block, ZIGZAG};

    /// `SHUFFLES[j][s]`: lane `i` of output register `j` (zigzag positions `16 j ..`) takes its
    /// byte from packed register `s` (natural positions `16 s ..`) when the coefficient is there,
    /// else zero (index 0x80).
    const SHUFFLES: [[[i8; 16]; 4]; 4] = {
        let mut t = [[[-128i8; 16]; 4]; 4];
        let mut k = 0;
        while k < 64 {
            let n = ZIGZAG[k] as usize;
            t[k / 16][n / 16][k % 16] = (n % 16) as i8;
            k += 1;
        }
        t
    };

    /// The mask, or `None` on a CPU without SSSE3.
    #[inline]
    pub(super) fn nonzero_zigzag(block: &Block) -> Option<u64> {
        // SAFETY: the CPU has SSSE3 (checked first).
        std::arch::is_x86_feature_detected!("ssse3").then(|| unsafe { mask(block) })
    }

    #[target_feature(enable = "ssse3")]
    unsafe fn mask(block: &Block) -> u64 {
        // SAFETY: a block is 64 i16 = eight 16-byte rows; unaligned loads; the tables are 16 bytes.
        unsafe {
            let p = block.as_ptr().cast::<__m128i>();
            // (Saturating: a non-zero coefficient stays a non-zero byte.)
            let packed = [
                _mm_packs_epi16(_mm_loadu_si128(p), _mm_loadu_si128(p.add(1))),
                _mm_packs_epi16(_mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3))),
                _mm_packs_epi16(_mm_loadu_si128(p.add(4)), _mm_loadu_si128(p.add(5))),
                _mm_packs_epi16(_mm_loadu_si128(p.add(6)), _mm_loadu_si128(p.add(7))),
            ];
            let mut mask = 0u64;
            for (j, shuffles) in SHUFFLES.iter().enumerate() {
                let mut zigzag = _mm_setzero_si128();
                for (s, shuffle) in shuffles.iter().enumerate() {
                    let index = _mm_loadu_si128(shuffle.as_ptr().cast());
                    zigzag = _mm_or_si128(zigzag, _mm_shuffle_epi8(packed[s], index));
                }
                let zero = _mm_movemask_epi8(_mm_cmpeq_epi8(zigzag, _mm_setzero_si128())) as u32;
                mask |= u64::from(!zero & 0xFFFF) << (16 * j);
            }
            mask
        }
    }
}

/// [`nonzero_zigzag`] in NEON (in every arm64 build, for the deployed functions' Graviton, so not
/// detected at run time): the block saturated to bytes, put in zigzag order by 64-byte table
/// lookups, each non-zero byte turned into its bit of a byte, and the bytes summed pairwise into
/// the mask. A handful of vector operations instead of the scalar path's eight table loads (not
/// measured on arm64 hardware; tested under qemu). Its unsafe code: plain loads, and the call
/// into NEON.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
#[allow(unsafe_code)]
mod neon {
    use std::arch::aarch64::{
        int16x8_t, uint8x16_t, uint8x16x4_t, vandq_u8, vgetq_lane_u64, vld1q_s16_x4, vld1q_u8, vld1q_u8_x4,
        vpaddq_u8, vqmovn_high_s16, vqmovn_s16, vqtbl4q_u8, vreinterpretq_u64_u8, vreinterpretq_u8_s8,
        vtstq_u8,
    };

    use super::{Block, ZIGZAG};

    /// The weight of lane `i` in a sum of eight lanes: bit `i % 8`.
    const WEIGHTS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

    #[inline]
    pub(super) fn nonzero_zigzag(block: &Block) -> u64 {
        // SAFETY: the build enables NEON (the module's `cfg`), so every CPU it runs on has it.
        unsafe { mask(block) }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    fn mask(block: &Block) -> u64 {
        // SAFETY: each load reads 64 bytes of the block (64 i16 = 128 bytes), the 64 bytes of
        // ZIGZAG or the 16 of WEIGHTS; NEON loads need no alignment.
        let (low, high, zigzag, weights) = unsafe {
            (
                vld1q_s16_x4(block.as_ptr()),
                vld1q_s16_x4(block[32..].as_ptr()),
                vld1q_u8_x4(ZIGZAG.as_ptr()),
                vld1q_u8(WEIGHTS.as_ptr()),
            )
        };
        // Natural positions `16 s ..` as bytes of register `s`, saturating (a non-zero
        // coefficient stays a non-zero byte).
        let bytes = |a: int16x8_t, b: int16x8_t| vreinterpretq_u8_s8(vqmovn_high_s16(vqmovn_s16(a), b));
        let table = uint8x16x4_t(
            bytes(low.0, low.1),
            bytes(low.2, low.3),
            bytes(high.0, high.1),
            bytes(high.2, high.3),
        );
        // Zigzag positions `16 j ..` (index vector `j` of ZIGZAG: the table is natural order):
        // lane `i` is bit `i % 8` if the coefficient is not zero, else 0.
        let flags = |index: uint8x16_t| {
            let v = vqtbl4q_u8(table, index);
            vandq_u8(vtstq_u8(v, v), weights)
        };
        // A pairwise add sums neighbouring lanes, the first operand's into the low half: after
        // pairs, fours and eights, lane `l` is the sum of the lanes of zigzag positions `8 l ..`
        // (distinct bits: their byte), so lanes 0 to 7 are the mask from its low byte up.
        let ab = vpaddq_u8(flags(zigzag.0), flags(zigzag.1));
        let cd = vpaddq_u8(flags(zigzag.2), flags(zigzag.3));
        let abcd = vpaddq_u8(ab, cd);
        vgetq_lane_u64::<0>(vreinterpretq_u64_u8(vpaddq_u8(abcd, abcd)))
    }
}

/// Largest magnitude category of an AC coefficient in an 8-bit JPEG (libjpeg's
/// `MAX_COEF_BITS`); a DC difference may take one more.
const MAX_COEF_BITS: u32 = 10;

/// Symbol counts of the two DC and two AC tables, 257 each as libjpeg keeps them (the last is
/// Annex K's reserved pseudo-symbol).
pub(crate) struct Counts {
    dc: [[u64; 257]; 2],
    ac: [[u64; 257]; 2],
    /// Largest DC difference category met through [`Self::dc_diff`].
    dc_bits: u32,
}

/// Magnitude category of `v` (`JPEG_NBITS`): the number of bits of `|v|`, 0 for 0.
#[inline]
fn nbits(v: i32) -> u32 {
    32 - v.unsigned_abs().leading_zeros()
}

impl Counts {
    pub(crate) fn new() -> Counts {
        Counts { dc: [[0; 257]; 2], ac: [[0; 257]; 2], dc_bits: 0 }
    }

    /// Adds the AC symbols of `block` (natural order) to table `table`.
    #[inline]
    pub(crate) fn ac(&mut self, table: usize, block: &Block) {
        let mut nonzero = nonzero_zigzag(block) & !1;
        let counts = &mut self.ac[table];
        let mut last = 0u32;
        while nonzero != 0 {
            let k = nonzero.trailing_zeros();
            nonzero &= nonzero - 1;
            let run = k - last - 1;
            last = k;
            // Rare: a branch, not an add of 0 to the same count on every coefficient (a chain
            // of dependent stores).
            if run >= 16 {
                counts[0xF0] += u64::from(run >> 4);
            }
            // (A size past baseline's 10 bits is a symbol of its own, which `ac_bits` finds.)
            let size = nbits(i32::from(block[usize::from(ZIGZAG[k as usize])]));
            counts[(((run & 15) << 4) + size.min(15)) as usize] += 1;
        }
        if last < 63 {
            counts[0] += 1;
        }
    }

    /// Largest AC magnitude category counted (15 standing for 15 or 16), read off the symbols
    /// once instead of tracked per coefficient.
    fn ac_bits(&self) -> u32 {
        let sizes = self.ac.iter().flat_map(|t| t[..256].iter().enumerate());
        sizes.filter(|&(_, &n)| n > 0).map(|(symbol, _)| (symbol & 15) as u32).max().unwrap_or(0)
    }

    /// Adds the DC symbols of every component, walking the MCUs in the order the encoder
    /// writes them. `dc[comp]` holds component `comp`'s DC coefficients row by row
    /// (`width_in_blocks` per row); every block must already have been through [`Self::ac`].
    pub(crate) fn dc(&mut self, components: &[Component], dc: &[Vec<i16>]) -> Result<(), String> {
        let ac_bits = self.ac_bits();
        if ac_bits > MAX_COEF_BITS {
            return Err(format!("an AC coefficient needs {ac_bits} bits (baseline has 10)"));
        }
        let h_max = components.iter().map(|c| c.h_samp).max().unwrap_or(1);
        let v_max = components.iter().map(|c| c.v_samp).max().unwrap_or(1);
        // MCUs per row and column: the luma component's blocks in whole MCUs.
        let Some(luma) = components.iter().find(|c| c.h_samp == h_max && c.v_samp == v_max) else {
            return Err("no full-resolution component".into());
        };
        let mcu_cols = luma.width_in_blocks.div_ceil(h_max);
        let mcu_rows = luma.height_in_blocks.div_ceil(v_max);
        let mut last = vec![0i32; components.len()];
        let mut bits = 0u32;
        for my in 0..mcu_rows {
            for mx in 0..mcu_cols {
                for (comp, c) in components.iter().enumerate() {
                    let table = table_of(comp);
                    for y in my * c.v_samp..(my + 1) * c.v_samp {
                        for x in mx * c.h_samp..(mx + 1) * c.h_samp {
                            if x < c.width_in_blocks && y < c.height_in_blocks {
                                let i = (y * c.width_in_blocks + x) as usize;
                                let v = i32::from(dc[comp][i]);
                                let size = nbits(v - last[comp]);
                                bits = bits.max(size);
                                self.dc[table][size.min(16) as usize] += 1;
                                last[comp] = v;
                            } else {
                                // A dummy block: the previous DC again, no AC.
                                self.dc[table][0] += 1;
                                self.ac[table][0] += 1;
                            }
                        }
                    }
                }
            }
        }
        if bits > MAX_COEF_BITS + 1 {
            return Err(format!("a DC difference needs {bits} bits (baseline has 11)"));
        }
        Ok(())
    }

    /// Adds one DC difference to table `table`: for the statistics pass of a pixel encode
    /// (`ffi::PixelEncoder`), which sees every block, dummy blocks too, in MCU order.
    #[inline]
    pub(crate) fn dc_diff(&mut self, table: usize, diff: i32) {
        let size = nbits(diff);
        self.dc_bits = self.dc_bits.max(size);
        self.dc[table][size.min(16) as usize] += 1;
    }

    /// Whether every counted value fits baseline JPEG (10-bit AC, 11-bit DC differences), as
    /// libjpeg's `htest_one_block` requires.
    pub(crate) fn baseline(&self) -> Result<(), String> {
        let ac_bits = self.ac_bits();
        if ac_bits > MAX_COEF_BITS || self.dc_bits > MAX_COEF_BITS + 1 {
            return Err(format!("a coefficient needs {} bits (baseline has 10)", ac_bits.max(self.dc_bits)));
        }
        Ok(())
    }

    /// Whether table `table` was used for DC (`dc`) or AC symbols.
    pub(crate) fn used(&self, dc: bool, table: usize) -> bool {
        let counts = if dc { &self.dc[table] } else { &self.ac[table] };
        counts.iter().any(|&n| n > 0)
    }

    /// The optimal table for the DC (`dc`) or AC counts of table `table`.
    pub(crate) fn table(&self, dc: bool, table: usize) -> Result<Table, String> {
        optimal(if dc { &self.dc[table] } else { &self.ac[table] })
    }

    /// The optimal DC and AC tables, in table order.
    pub(crate) fn tables(&self) -> Result<([Table; 2], [Table; 2]), String> {
        let [d0, d1] = &self.dc;
        let [a0, a1] = &self.ac;
        Ok(([optimal(d0)?, optimal(d1)?], [optimal(a0)?, optimal(a1)?]))
    }
}

/// A Huffman table as a DHT marker holds it: `bits[l]` codes of length `l` (1..=16), then the
/// symbols in code order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub bits: [u8; 17],
    pub values: [u8; 256],
}

/// libjpeg's `jpeg_gen_optimal_table`: Huffman's algorithm over the 256 symbols plus a
/// pseudo-symbol (so no code is all ones), lengths limited to 16 as in Annex K.2, ties broken as
/// libjpeg breaks them (the larger symbol is the smaller frequency). Fails where libjpeg does:
/// a code longer than 32 bits before the limiting (counts in a Fibonacci progression).
pub(crate) fn optimal(counts: &[u64; 257]) -> Result<Table, String> {
    const MAX_CLEN: usize = 32;
    let mut freq = *counts;
    freq[256] = 1;
    let mut codesize = [0usize; 257];
    let mut others = [usize::MAX; 257];
    let smallest = |freq: &[u64; 257], skip: usize| {
        let (mut c, mut v) = (usize::MAX, u64::MAX);
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 && f <= v && i != skip {
                (c, v) = (i, f);
            }
        }
        c
    };
    loop {
        let mut c1 = smallest(&freq, usize::MAX);
        let mut c2 = smallest(&freq, c1);
        if c2 == usize::MAX {
            break;
        }
        freq[c1] += freq[c2];
        freq[c2] = 0;
        codesize[c1] += 1;
        while others[c1] != usize::MAX {
            c1 = others[c1];
            codesize[c1] += 1;
        }
        others[c1] = c2;
        codesize[c2] += 1;
        while others[c2] != usize::MAX {
            c2 = others[c2];
            codesize[c2] += 1;
        }
    }
    let mut bits = [0u8; MAX_CLEN + 1];
    for &size in &codesize {
        if size > MAX_CLEN {
            return Err(format!("a Huffman code of {size} bits"));
        }
        if size != 0 {
            bits[size] += 1;
        }
    }
    let mut i = MAX_CLEN;
    while i > 16 {
        while bits[i] > 0 {
            let mut j = i - 2;
            while bits[j] == 0 {
                j -= 1;
            }
            bits[i] -= 2;
            bits[i - 1] += 1;
            bits[j + 1] += 2;
            bits[j] -= 1;
        }
        i -= 1;
    }
    while bits[i] == 0 {
        i -= 1;
    }
    bits[i] -= 1;
    let mut table = Table { bits: [0; 17], values: [0; 256] };
    table.bits.copy_from_slice(&bits[..17]);
    let mut p = 0;
    for size in 1..=MAX_CLEN {
        for (symbol, &s) in codesize.iter().enumerate().take(256) {
            if s == size {
                table.values[p] = symbol as u8;
                p += 1;
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_zigzag_mask_has_a_bit_for_each_nonzero_coefficient() {
        // Every position alone, at small, large and extreme values (the SIMD path saturates to
        // bytes), and sparse pseudo-random blocks; against the definition and the scalar path.
        let mut blocks = Vec::new();
        for n in 0..64 {
            for v in [1i16, -1, 127, 128, 255, 256, -129, 1000, i16::MAX, i16::MIN] {
                let mut b = [0i16; 64];
                b[n] = v;
                blocks.push(b);
            }
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut b = [0i16; 64];
            for v in &mut b {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = if x.is_multiple_of(5) { (x >> 20) as i16 } else { 0 };
            }
            blocks.push(b);
        }
        blocks.push([0; 64]);
        blocks.push([-1; 64]);
        for b in &blocks {
            let expected = (0..64).filter(|&k| b[usize::from(ZIGZAG[k])] != 0).fold(0u64, |m, k| m | 1 << k);
            assert_eq!(nonzero_zigzag_scalar(b), expected, "{b:?}");
            assert_eq!(nonzero_zigzag(b), expected, "{b:?}");
        }
    }

    /// Canonical code lengths of `table`, by symbol.
    fn lengths(table: &Table) -> [u32; 256] {
        let mut out = [0; 256];
        let mut p = 0;
        for l in 1..=16 {
            for _ in 0..table.bits[l] {
                out[usize::from(table.values[p])] = l as u32;
                p += 1;
            }
        }
        out
    }

    #[test]
    fn optimal_tables_give_every_counted_symbol_a_code_and_obey_kraft() {
        // Skewed counts (Fibonacci numbers make the deepest tree) force lengths past 16, which
        // must be limited.
        let mut counts = [0u64; 257];
        let (mut a, mut b) = (1u64, 1u64);
        for (i, c) in counts.iter_mut().enumerate().take(256) {
            if i < 30 {
                *c = a;
                (a, b) = (b, a + b);
            } else if i % 3 != 0 {
                *c = 1;
            }
        }
        let table = optimal(&counts).unwrap();
        let lengths = lengths(&table);
        let mut kraft = 0f64;
        for (symbol, &count) in counts.iter().enumerate().take(256) {
            assert_eq!(count != 0, lengths[symbol] != 0, "symbol {symbol}");
            if lengths[symbol] != 0 {
                assert!(lengths[symbol] <= 16);
                kraft += 0.5f64.powi(lengths[symbol] as i32);
            }
        }
        // Strictly below 1: a slot is left for the pseudo-symbol (no all-ones code).
        assert!(kraft < 1.0, "{kraft}");
        assert!(lengths.contains(&16), "the skew needed the length limit");
    }

    #[test]
    fn one_symbol_gets_a_one_bit_code() {
        let mut counts = [0u64; 257];
        counts[0] = 5;
        let table = optimal(&counts).unwrap();
        assert_eq!(table.bits[1], 1);
        assert_eq!(table.bits.iter().map(|&b| u32::from(b)).sum::<u32>(), 1);
        assert_eq!(table.values[0], 0);
        // Deeper than libjpeg's 32 before limiting (each count the sum of all smaller ones
        // makes a chain): refused as libjpeg refuses it.
        for (i, c) in counts.iter_mut().take(40).enumerate() {
            *c = 1 << i;
        }
        assert!(optimal(&counts).is_err());
        counts[32..40].fill(0);
        assert!(optimal(&counts).is_ok());
    }

    #[test]
    fn ac_symbols_follow_libjpeg() {
        let mut counts = Counts::new();
        let mut block = [0i16; 64];
        block[0] = 100; // DC: not counted here
        block[1] = 3; // zigzag 1: run 0, size 2
        block[usize::from(ZIGZAG[20])] = -1; // run 18: ZRL, then run 2 size 1
        block[usize::from(ZIGZAG[63])] = 1023; // run 42: two ZRLs, run 10 size 10
        counts.ac(0, &block);
        let ac = &counts.ac[0];
        assert_eq!(ac[0x02], 1);
        assert_eq!(ac[0xF0], 3);
        assert_eq!(ac[0x21], 1);
        assert_eq!(ac[0xAA], 1);
        assert_eq!(ac[0x00], 0, "no EOB after a last coefficient");
        assert_eq!(ac.iter().sum::<u64>(), 6);
        counts.ac(1, &[0; 64]);
        assert_eq!(counts.ac[1][0x00], 1, "an empty block is one EOB");
        block[5] = 1024;
        counts.ac(0, &block);
        let c = Component { h_samp: 1, v_samp: 1, width_in_blocks: 1, height_in_blocks: 1, quant: [1; 64] };
        assert!(counts.dc(&[c], &[vec![0]]).is_err(), "11 bits refused");
    }

    #[test]
    fn dc_differences_follow_the_mcu_order_with_dummy_blocks() {
        // Luma 3x3 blocks (two MCUs wide and high, so dummies on the right and bottom), chroma
        // 2x2.
        let luma =
            Component { h_samp: 2, v_samp: 2, width_in_blocks: 3, height_in_blocks: 3, quant: [1; 64] };
        let chroma = Component { h_samp: 1, v_samp: 1, width_in_blocks: 2, height_in_blocks: 2, ..luma };
        let y: Vec<i16> = (0..9).map(|i| i * 4).collect(); // row-major 0, 4, .., 32
        let c = vec![0i16; 4];
        let mut counts = Counts::new();
        counts.dc(&[luma, chroma, chroma], &[y, c.clone(), c]).unwrap();
        // MCU order of luma: (0,0)=0 (0,1)=4 (1,0)=12 (1,1)=16 | (0,2)=8 d (1,2)=20 d |
        // (2,0)=24 (2,1)=28 d d | (2,2)=32 d d d; d = dummy (difference 0).
        // Differences: 0, 4, 8, 4, -8, 0, 12, 0, 4, 4, 0, 0, 4, 0, 0, 0.
        let luma_dc = &counts.dc[0];
        assert_eq!(luma_dc[0], 8); // 1 real + 7 dummies
        assert_eq!(luma_dc[3], 5); // |4|
        assert_eq!(luma_dc[4], 3); // |8|, |-8|, |12|
        assert_eq!(counts.ac[0][0], 7, "each dummy is an EOB");
        assert_eq!(counts.dc[1][0], 8, "chroma: 2 components x 4 MCUs, all zero");
        assert_eq!(counts.ac[1][0], 0);
    }
}
