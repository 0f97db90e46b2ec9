//! The operations. Each is a params type (serde, `deny_unknown_fields`, validated before any
//! decoding) and one pure function over a decoded [`crate::Image`].

pub mod qr;
pub mod resize;
pub mod round_corners;
pub mod slice;
pub mod watermark_image;
pub mod watermark_text;
