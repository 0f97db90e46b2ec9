//! Hand-built file structures for decoder tests: PNG chunks with real CRCs, zlib streams
//! (stored blocks, and a 1032:1 dynamic-Huffman stream of zeros), EXIF segments, GIFs.
#![allow(dead_code, clippy::unwrap_used)]

/// CRC-32 (ISO-HDLC, as PNG uses).
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
    }
    !crc
}

pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

/// Appends one PNG chunk (length, type, data, CRC).
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

pub fn ihdr(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&width.to_be_bytes());
    d.extend_from_slice(&height.to_be_bytes());
    d.extend_from_slice(&[depth, color, 0, 0, 0]);
    d
}

/// A PNG from an IHDR, extra chunks placed before IDAT, and a zlib stream for IDAT.
pub fn png_file(ihdr_data: &[u8], extra: &[(&[u8; 4], Vec<u8>)], idat: &[u8]) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut out, b"IHDR", ihdr_data);
    for (kind, data) in extra {
        png_chunk(&mut out, kind, data);
    }
    png_chunk(&mut out, b"IDAT", idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Inserts a chunk right after IHDR of an existing PNG.
pub fn png_insert_after_ihdr(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    png_chunk(&mut out, kind, data);
    out.extend_from_slice(&png[33..]);
    out
}

/// zlib stream with uncompressed (stored) deflate blocks.
pub fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = if data.is_empty() { vec![&[]] } else { data.chunks(65535).collect() };
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    /// Writes `len` bits of `value`, least significant first (header fields, extra bits).
    fn put(&mut self, value: u32, len: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// Writes a Huffman code, most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let reversed = code.reverse_bits() >> (32 - len);
        self.put(reversed, len);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream that inflates to `n` zero bytes, at the deflate maximum ratio (~1032:1):
/// one dynamic-Huffman block where length 258 and distance 1 have 1-bit codes.
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    assert!(n >= 1);
    let mut b = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    b.put(1, 1); // BFINAL
    b.put(2, 2); // dynamic Huffman
    b.put(29, 5); // HLIT: 286 literal/length codes
    b.put(1, 5); // HDIST: 2 distance codes
    b.put(14, 4); // HCLEN: 18 code-length codes
                  // Code-length code lengths in the deflate order 16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1:
                  // symbol 18 -> 1 bit (code 0), symbol 1 -> 2 bits (code 10), symbol 2 -> 2 bits (code 11).
    let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1];
    for sym in order {
        let len = match sym {
            18 => 1,
            1 | 2 => 2,
            _ => 0,
        };
        b.put(len, 3);
    }
    let (cl1, cl2, cl18) = ((0b10, 2), (0b11, 2), (0b0, 1));
    let zeros = |b: &mut Bits, count: u32| {
        b.code(cl18.0, cl18.1);
        b.put(count - 11, 7);
    };
    // Literal/length lengths: 0 -> 2, 1..=255 -> 0, 256 -> 2, 257..=284 -> 0, 285 -> 1.
    b.code(cl2.0, cl2.1);
    zeros(&mut b, 138);
    zeros(&mut b, 117);
    b.code(cl2.0, cl2.1);
    zeros(&mut b, 28);
    b.code(cl1.0, cl1.1);
    // Distance lengths: 0 -> 1, 1 -> 1.
    b.code(cl1.0, cl1.1);
    b.code(cl1.0, cl1.1);
    // Canonical codes: 285 -> 0 (1 bit), literal 0 -> 10, end of block -> 11; distance 0 -> 0.
    b.code(0b10, 2); // first byte: literal 0
    let rest = n - 1;
    for _ in 0..rest / 258 {
        b.code(0, 1); // length 258
        b.code(0, 1); // distance 1
    }
    for _ in 0..rest % 258 {
        b.code(0b10, 2);
    }
    b.code(0b11, 2); // end of block
    let mut out = b.finish();
    let adler = ((n % 65521) as u32) << 16 | 1;
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// An APP1 segment (marker included) with a big-endian TIFF/EXIF header holding one
/// Orientation (0x0112) entry.
pub fn exif_app1(orientation: u16) -> Vec<u8> {
    let tiff = exif_tiff(orientation);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(&tiff);
    seg
}

/// TIFF header + IFD0 with a single Orientation entry (as in PNG eXIf chunks).
pub fn exif_tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes()); // IFD0 offset
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// Inserts marker segments right after a JPEG's SOI.
pub fn jpeg_insert_after_soi(jpeg: &[u8], segments: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(segments);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// APP2 ICC_PROFILE segments carrying `icc` split into `parts` pieces.
pub fn icc_app2(icc: &[u8], parts: usize) -> Vec<u8> {
    let chunk = icc.len().div_ceil(parts);
    let pieces: Vec<&[u8]> = icc.chunks(chunk).collect();
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((2 + 12 + 2 + piece.len()) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.push(i as u8 + 1);
        out.push(pieces.len() as u8);
        out.extend_from_slice(piece);
    }
    out
}

/// A GIF89a with a 1x1 canvas and `frames` 1x1 frames (each: image descriptor and a
/// 3-code LZW stream), built by hand.
pub fn gif_many_frames(frames: usize) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&[1, 0, 1, 0, 0x80, 0, 0]); // 1x1, global colour table of 2
    g.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    for _ in 0..frames {
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 1, 0, 0, 0]); // GCE, delay 1 cs
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        g.extend_from_slice(&[2, 2, 0x44, 0x01, 0]); // clear, 0, end
    }
    g.push(0x3B);
    g
}

/// A tiny deterministic PRNG (xorshift64*).
#[derive(Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// One frame of an animated PNG: its pixels (a sub-frame of the canvas at `x`, `y`), its delay
/// as a fraction of a second, and its dispose (0 none, 1 background, 2 previous) and blend
/// (0 source, 1 over) ops.
pub struct ApngFrame {
    pub image: image::RgbaImage,
    pub x: u32,
    pub y: u32,
    pub delay: (u16, u16),
    pub dispose: u8,
    pub blend: u8,
}

/// The zlib stream of 8-bit RGBA scanlines (filter 0).
pub fn rgba_idat(img: &image::RgbaImage) -> Vec<u8> {
    let mut raw = Vec::new();
    for row in img.as_raw().chunks(img.width() as usize * 4) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    zlib_stored(&raw)
}

/// An animated PNG (8-bit RGBA) of `width` x `height` with these frames, an `acTL` declaring
/// `declared` frames (normally `frames.len()`) and `plays` loops (0 = forever). With `default`,
/// the IDAT holds that still image, outside the animation; else the first frame (which must
/// cover the canvas) is the IDAT. Sequence numbers and CRCs are right.
pub fn apng(
    width: u32,
    height: u32,
    frames: &[ApngFrame],
    declared: u32,
    plays: u32,
    default: Option<&image::RgbaImage>,
) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut out, b"IHDR", &ihdr(width, height, 8, 6));
    let mut actl = declared.to_be_bytes().to_vec();
    actl.extend_from_slice(&plays.to_be_bytes());
    png_chunk(&mut out, b"acTL", &actl);
    let mut seq = 0u32;
    let fctl = |out: &mut Vec<u8>, f: &ApngFrame, seq: &mut u32| {
        let mut d = seq.to_be_bytes().to_vec();
        for v in [f.image.width(), f.image.height(), f.x, f.y] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        d.extend_from_slice(&f.delay.0.to_be_bytes());
        d.extend_from_slice(&f.delay.1.to_be_bytes());
        d.extend_from_slice(&[f.dispose, f.blend]);
        png_chunk(out, b"fcTL", &d);
        *seq += 1;
    };
    let rest = match default {
        Some(img) => {
            png_chunk(&mut out, b"IDAT", &rgba_idat(img));
            frames
        }
        None => {
            fctl(&mut out, &frames[0], &mut seq);
            png_chunk(&mut out, b"IDAT", &rgba_idat(&frames[0].image));
            &frames[1..]
        }
    };
    for f in rest {
        fctl(&mut out, f, &mut seq);
        let mut d = seq.to_be_bytes().to_vec();
        d.extend_from_slice(&rgba_idat(&f.image));
        png_chunk(&mut out, b"fdAT", &d);
        seq += 1;
    }
    png_chunk(&mut out, b"IEND", &[]);
    out
}
