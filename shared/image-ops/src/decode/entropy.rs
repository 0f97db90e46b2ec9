//! Baseline JPEG entropy decoding: libjpeg's Huffman tables with lookahead tables that decode a
//! code together with its value bits, up to two AC codes per lookup, and a bit reader over the
//! 0xFF00-stuffed data. Two decoders share it: `jpeg_dc` (the 1/8-scale DC-only decode) and
//! `transcode::decode_mcu`, which stands in for libjpeg-turbo's own Huffman decoding when a
//! JPEG's planes are read for a resize or a slice, or its coefficients for an overlay.
//!
//! Everything here decodes exactly as libjpeg does on valid data; on damaged data (a code no
//! table has, bits taken from past a marker) it reports it (`None`, `BitReader::overran`), and
//! the callers then leave the file to libjpeg.

/// Bits of lookahead in the Huffman tables (1,024 entries of two bytes).
const FAST_BITS: u32 = 10;
/// Bits of lookahead in the table that skips several AC codes and values at once (16,384
/// entries of two bytes).
const MULTI_BITS: u32 = 14;

/// Zigzag index → natural position, with libjpeg's 16 extra 63s: a corrupt run past the end of a
/// block stores into coefficient 63, exactly as libjpeg does.
pub(crate) const NATURAL: [usize; 80] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
    14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
    46, 53, 60, 61, 54, 47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
];

/// Bits of lookahead in the table that decodes up to two AC codes with their values at once
/// (2,048 entries of eight bytes).
const PAIR_BITS: u32 = 11;

/// Which lookahead tables a [`Huffman`] table gets beyond the one-code lookup.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tables {
    /// A DC table: the lookup only.
    Dc,
    /// An AC table whose coefficients are decoded (`BitReader::ac`).
    Ac,
    /// An AC table whose coefficients are decoded or skipped (`BitReader::skip_ac` too).
    AcAndSkip,
}

/// A Huffman table as libjpeg derives it (jdhuff.c `jpeg_make_d_derived_tbl`), with lookahead
/// tables: the symbol by the next `FAST_BITS` bits, and for AC tables up to two codes with
/// their values by the next `PAIR_BITS` (to decode them) and the codes with their values that
/// the next `MULTI_BITS` hold (to skip them).
pub(crate) struct Huffman {
    /// (code length << 8) | symbol, or 0 when the code is longer than `FAST_BITS`.
    lookup: Box<[u16; 1 << FAST_BITS]>,
    /// See `fill_pairs`; empty for a DC table.
    pairs: Option<Box<[u64; 1 << PAIR_BITS]>>,
    /// See `fill_multi`; only for `Tables::AcAndSkip`.
    multi: Option<Box<[u16; 1 << MULTI_BITS]>>,
    maxcode: [i32; 18],
    valoffset: [i32; 17],
    pub(crate) values: Vec<u8>,
}

/// An AC code a lookahead table holds: its length, zero run, value size and value.
struct Code {
    len: u32,
    run: u32,
    size: u32,
    value: i32,
}

impl Huffman {
    /// The table `counts` (codes of each length 1-16) and `values` define, with the lookahead
    /// tables `tables` asks for; `None` for a table libjpeg refuses.
    pub(crate) fn new(counts: &[u8], values: &[u8], tables: Tables) -> Option<Self> {
        let mut maxcode = [-1i32; 18];
        let mut valoffset = [0i32; 17];
        let mut lookup = Box::new([0u16; 1 << FAST_BITS]);
        let (mut code, mut p) = (0i32, 0usize);
        for len in 1..=16usize {
            let n = usize::from(*counts.get(len - 1)?);
            if n > 0 {
                valoffset[len] = p as i32 - code;
                for _ in 0..n {
                    if code >= 1 << len {
                        return None;
                    }
                    if len as u32 <= FAST_BITS {
                        let shift = FAST_BITS - len as u32;
                        let first = (code as usize) << shift;
                        let entry = (len as u16) << 8 | u16::from(*values.get(p)?);
                        lookup[first..first + (1 << shift)].fill(entry);
                    }
                    code += 1;
                    p += 1;
                }
                maxcode[len] = code - 1;
            }
            // libjpeg refuses a table whose codes run out of their length (or use all ones).
            if code >= 1 << len {
                return None;
            }
            code <<= 1;
        }
        maxcode[17] = i32::MAX;
        let mut table = Huffman {
            lookup,
            pairs: None,
            multi: None,
            maxcode,
            valoffset,
            values: values.get(..p)?.to_vec(),
        };
        if tables != Tables::Dc {
            table.fill_pairs();
        }
        if tables == Tables::AcAndSkip {
            table.fill_multi();
        }
        Some(table)
    }

    /// The AC code at bit `used` of the `bits`-bit `pattern`, from the first `FAST_BITS` of what
    /// is left (zero-padded): `None` unless it and its value bits lie wholly inside the pattern.
    fn code_at(&self, pattern: u32, used: u32, bits: u32) -> Option<Code> {
        let window = (pattern << used) & ((1 << bits) - 1);
        let e = self.lookup[(window >> (bits - FAST_BITS)) as usize];
        let (len, sym) = (u32::from(e >> 8), e & 0xFF);
        let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
        if e == 0 || len + size > bits - used {
            return None;
        }
        let value =
            if size == 0 { 0 } else { extend((window >> (bits - len - size)) & ((1 << size) - 1), size) };
        Some(Code { len, run, size, value })
    }

    /// For every `PAIR_BITS`-bit pattern, the first one or two AC codes that lie wholly inside
    /// it with their value bits (a zero run of 16 counts as a code with the value 0; an
    /// end-of-block ends the entry): bits taken | end-of-block << 5 | run₁ << 8 | run₂ << 12 |
    /// value₁ << 16 | value₂ << 32 | coefficients advanced << 48 (both runs and codes), or 0
    /// when not even the first code fits. An entry with one code has run₂ and value₂ 0.
    fn fill_pairs(&mut self) {
        let mut pairs = Box::new([0u64; 1 << PAIR_BITS]);
        for (pattern, entry) in (0u32..).zip(pairs.iter_mut()) {
            let (mut used, mut advance, mut eob) = (0u32, 0u64, false);
            let (mut runs, mut values) = ([0u64; 2], [0u64; 2]);
            for slot in 0..2 {
                let Some(Code { len, run, size, value }) = self.code_at(pattern, used, PAIR_BITS) else {
                    break;
                };
                used += len + size;
                if size == 0 && run != 15 {
                    eob = true;
                    break;
                }
                if size != 0 {
                    values[slot] = u64::from(value as i16 as u16);
                }
                runs[slot] = u64::from(run);
                advance += u64::from(run) + 1;
            }
            *entry = if used == 0 {
                0
            } else {
                u64::from(used)
                    | u64::from(eob) << 5
                    | runs[0] << 8
                    | runs[1] << 12
                    | values[0] << 16
                    | values[1] << 32
                    | advance << 48
            };
        }
        self.pairs = Some(pairs);
    }

    /// For every `MULTI_BITS`-bit pattern, the AC codes with their value bits that lie wholly
    /// inside it: bits taken | coefficients advanced << 4 | (ends with end-of-block) << 11.
    fn fill_multi(&mut self) {
        let mut multi = Box::new([0u16; 1 << MULTI_BITS]);
        for pattern in 0..1u32 << MULTI_BITS {
            let (mut used, mut advance, mut eob) = (0u32, 0u32, false);
            while used < MULTI_BITS {
                let Some(Code { len, run, size, .. }) = self.code_at(pattern, used, MULTI_BITS) else {
                    break;
                };
                used += len + size;
                match (size, run) {
                    (0, 15) => advance += 16,
                    (0, _) => {
                        eob = true;
                        break;
                    }
                    _ => advance += run + 1,
                }
                // Enough for any block: the caller takes an entry only while inside the block.
                if advance >= 64 {
                    break;
                }
            }
            multi[pattern as usize] =
                if used == 0 { 0 } else { (used | advance << 4 | u32::from(eob) << 11) as u16 };
        }
        self.multi = Some(multi);
    }

    /// The next symbol; `None` on a code no table entry has (libjpeg warns and carries on).
    #[inline(always)]
    pub(crate) fn decode(&self, r: &mut BitReader<'_>) -> Option<u8> {
        let e = self.lookup[r.peek_fast()];
        if e != 0 {
            r.consume(u32::from(e >> 8));
            return Some(e as u8);
        }
        let (len, symbol) = self.decode_long(r.peek(16) as i32)?;
        r.consume(len);
        Some(symbol)
    }

    /// A code longer than `FAST_BITS`, from the next 16 bits: its length and symbol.
    #[inline(never)]
    fn decode_long(&self, bits: i32) -> Option<(u32, u8)> {
        for len in FAST_BITS as usize + 1..=16 {
            let code = bits >> (16 - len);
            if code <= self.maxcode[len] {
                let symbol = self.values.get(usize::try_from(code + self.valoffset[len]).ok()?)?;
                return Some((len as u32, *symbol));
            }
        }
        None
    }
}

/// libjpeg's HUFF_EXTEND: `bits` read for a `size`-bit magnitude category, as a signed value.
#[inline]
pub(crate) fn extend(bits: u32, size: u32) -> i32 {
    let v = bits as i32;
    if v < 1 << (size - 1) {
        v - (1 << size) + 1
    } else {
        v
    }
}

/// Fills the bit buffer byte by byte, unstuffing 0xFF00 and feeding zeros once a marker or the
/// end of data is reached. Takes and returns the reader's state by value, so that the reader
/// itself stays in registers in the decoding loop.
#[inline(never)]
fn refill_bytes(
    data: &[u8],
    mut pos: usize,
    mut acc: u64,
    mut bits: u32,
    mut fake: u32,
) -> (usize, u64, u32, u32) {
    while bits <= 56 {
        let byte = match data.get(pos) {
            Some(&0xFF) if fake == 0 && data.get(pos + 1) == Some(&0) => {
                pos += 2;
                0xFF
            }
            Some(&b) if b != 0xFF && fake == 0 => {
                pos += 1;
                b
            }
            _ => {
                fake += 1;
                0
            }
        };
        acc |= u64::from(byte) << (56 - bits);
        bits += 8;
    }
    (pos, acc, bits, fake)
}

/// The entropy-coded bit stream: bytes with 0xFF00 stuffing, ended by a marker.
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Bits, most significant first.
    acc: u64,
    bits: u32,
    /// Zero bytes fed in after the data ran into a marker or the end.
    fake: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        BitReader { data, pos, acc: 0, bits: 0, fake: 0 }
    }

    /// At least 32 bits in the buffer: enough for a code and its value.
    #[inline(always)]
    fn ensure(&mut self) {
        if self.bits >= 32 {
            return;
        }
        // Eight bytes at once when none of them is 0xFF (a stuffed byte or a marker).
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(chunk.try_into().unwrap_or_default());
            let inv = !word;
            if (inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080) == 0 && self.fake == 0
            {
                let take = (64 - self.bits) / 8;
                let shift = 64 - 8 * take;
                self.acc |= (word >> shift) << (shift - self.bits);
                self.bits += 8 * take;
                self.pos += take as usize;
                return;
            }
        }
        (self.pos, self.acc, self.bits, self.fake) =
            refill_bytes(self.data, self.pos, self.acc, self.bits, self.fake);
    }

    #[inline(always)]
    fn peek(&mut self, n: u32) -> usize {
        self.ensure();
        (self.acc >> (64 - n)) as usize
    }

    /// The next `FAST_BITS` bits, as a table index.
    #[inline(always)]
    fn peek_fast(&mut self) -> usize {
        self.peek(FAST_BITS) & ((1 << FAST_BITS) - 1)
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.bits -= n;
    }

    #[inline(always)]
    pub(crate) fn bits(&mut self, n: u32) -> u32 {
        let v = self.peek(n) as u32;
        self.consume(n);
        v
    }

    /// A DC difference: category symbol, then that many bits.
    #[inline(always)]
    pub(crate) fn dc_diff(&mut self, table: &Huffman) -> Option<i32> {
        let size = u32::from(table.decode(self)?);
        match size {
            0 => Some(0),
            1..=15 => Some(extend(self.bits(size), size)),
            _ => None,
        }
    }

    /// Steps over a block's AC coefficients.
    #[inline(always)]
    pub(crate) fn skip_ac(&mut self, table: &Huffman) -> Option<()> {
        let multi = table.multi.as_deref()?;
        let mut k = 1usize;
        while k < 64 {
            // Several codes per lookup while they stay inside the block.
            let e = multi[self.peek(MULTI_BITS) & ((1 << MULTI_BITS) - 1)];
            let advance = usize::from(e >> 4 & 0x7F);
            if e != 0 && k + advance < 64 {
                self.consume(u32::from(e & 0xF));
                if e >> 11 != 0 {
                    return Some(());
                }
                k += advance;
                continue;
            }
            // One code at a time where they would reach the block's end, or are too long.
            let sym = table.decode(self)?;
            let (run, size) = (usize::from(sym >> 4), u32::from(sym & 15));
            if size != 0 {
                self.peek(size);
                self.consume(size);
                k += run + 1;
            } else if run == 15 {
                k += 16;
            } else {
                break;
            }
        }
        Some(())
    }

    /// Decodes a block's AC coefficients into `block` (natural order; zero where this block has
    /// none), as libjpeg does; whether any position past the DC was coded (a block without
    /// gives the same inverse DCT as its DC alone).
    #[inline(always)]
    pub(crate) fn ac(&mut self, table: &Huffman, block: &mut [i16; 64]) -> Option<bool> {
        let pairs = table.pairs.as_deref()?;
        let mut k = 1usize;
        while k < 64 {
            // One or two codes per lookup while they stay inside the block. Positions from k on
            // are still zero, so an entry with one code storing its zero second value at the
            // next position changes nothing.
            let e = pairs[self.peek(PAIR_BITS) & ((1 << PAIR_BITS) - 1)];
            let advance = (e >> 48) as usize;
            if e != 0 && k + advance < 64 {
                self.consume((e & 31) as u32);
                let first = k + (e >> 8 & 15) as usize;
                block[NATURAL[first]] = (e >> 16) as i16;
                block[NATURAL[first + 1 + (e >> 12 & 15) as usize]] = (e >> 32) as i16;
                k += advance;
                if e & 32 != 0 {
                    break;
                }
                continue;
            }
            // One code at a time where they would reach the block's end, or are too long.
            let sym = table.decode(self)?;
            let (run, size) = (usize::from(sym >> 4), u32::from(sym & 15));
            if size != 0 {
                k += run;
                block[NATURAL[k]] = extend(self.bits(size), size) as i16;
                k += 1;
            } else if run == 15 {
                k += 16;
            } else {
                break;
            }
        }
        Some(k > 1)
    }

    /// Whether bits were taken from past the data (the zeros fed in after a marker or the end,
    /// where libjpeg warns that it hit a marker).
    #[inline(always)]
    pub(crate) fn overran(&self) -> bool {
        self.bits < 8 * self.fake
    }

    /// The position of the next byte not yet in the bit buffer.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Expects restart marker `n` next; resets the bit buffer after it.
    #[inline(always)]
    pub(crate) fn restart(&mut self, n: u8) -> Option<()> {
        let at = self.finish()?;
        if self.data.get(at + 1) != Some(&(0xD0 + n)) {
            return None;
        }
        *self = BitReader::new(self.data, at + 2);
        Some(())
    }

    /// The end of a scan or restart interval: no padding beyond the last byte, no data taken
    /// from past the marker, and a marker right there. Returns the marker's position.
    #[inline(always)]
    pub(crate) fn finish(&mut self) -> Option<usize> {
        // Every bit consumed was real data, and what is left of it is the last byte's padding
        // (a whole byte left over was data the decoding did not use).
        if self.bits < 8 * self.fake || self.bits - 8 * self.fake >= 8 {
            return None;
        }
        (self.data.get(self.pos) == Some(&0xFF)).then_some(self.pos)
    }
}
