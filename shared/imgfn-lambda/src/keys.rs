//! Every key imgfn writes, named in this one place. Keys are deterministic, so a retry or a
//! repeat overwrites the same objects and never duplicates them.
//!
//! An output has a **base**: its image is `<base>.<ext>`; a sliced image's tiles are
//! `<base>/r<row>-c<col>.<ext>` and its manifest `<base>/manifest.json` (written last).
//!
//! | written by | base (in the output bucket) |
//! |---|---|
//! | an S3-triggered function, for the source `<trigger prefix><rest>` | `<op>/<stem of rest>` |
//! | `POST /process` | `<processed prefix><scope>/<sha256 of source ETag and canonical pipeline>` |
//!
//! Error records are `<error prefix><op>/<rest>.json`, with the source's full `rest` (its
//! extension kept), so the uploader finds them from the key they wrote.
//!
//! `<stem>` is `rest` without its extension (the part of the last path segment from its last
//! `.`, unless that `.` starts the segment): `thumbnail/a/b.c/photo.JPG` → stem `a/b.c/photo`.
//! Sources that differ only by extension (`photo.jpg`, `photo.png`) share an output key; the
//! last one processed wins.

use image_ops::ops::slice::tile_name;

/// Longest S3 key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Checks a key (or an asset name) that came from outside: S3 takes keys literally, but imgfn
/// never depends on that. Refused: an empty key, a leading `/`, an empty, `.` or `..` segment
/// (`a//b`, `a/./b`, `a/../b`), control characters, and more than [`MAX_KEY_BYTES`]. A
/// trailing `/` (a folder marker) is allowed here; the places that need an object refuse it.
/// Returns why a key is refused.
pub fn check(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("the key is {} bytes, over S3's {MAX_KEY_BYTES}", key.len()));
    }
    if key.starts_with('/') {
        return Err("the key starts with /".into());
    }
    if let Some(c) = key.chars().find(|c| c.is_control()) {
        return Err(format!("the key holds the control character {:?}", c));
    }
    let body = key.strip_suffix('/').unwrap_or(key);
    if let Some(segment) = body.split('/').find(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(format!("the key has a {:?} segment", segment));
    }
    Ok(())
}

/// `rest` without its extension.
pub fn stem(rest: &str) -> &str {
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[segment_start..].rfind('.') {
        Some(dot) if dot > 0 => &rest[..segment_start + dot],
        _ => rest,
    }
}

/// The base of what the function of `op` writes for the source key `<trigger prefix><rest>`.
pub fn trigger_base(op: &str, rest: &str) -> String {
    format!("{op}/{}", stem(rest))
}

/// The base of what `POST /process` writes for a caller's request with this hash.
pub fn processed_base(processed_prefix: &str, scope: &str, hash: &str) -> String {
    format!("{processed_prefix}{scope}/{hash}")
}

/// The key of a single-image output.
pub fn image_key(base: &str, extension: &str) -> String {
    format!("{base}.{extension}")
}

/// The key of one tile of a sliced image.
pub fn tile_key(base: &str, row: u32, col: u32, extension: &str) -> String {
    format!("{base}/{}", tile_name(row, col, extension))
}

/// The key of a sliced image's manifest, written after all its tiles.
pub fn manifest_key(base: &str) -> String {
    format!("{base}/manifest.json")
}

/// The key of the error record of a source object.
pub fn error_key(error_prefix: &str, op: &str, rest: &str) -> String {
    format!("{error_prefix}{op}/{rest}.json")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_documented() {
        assert_eq!(stem("photo.jpg"), "photo");
        assert_eq!(stem("a/b.c/photo"), "a/b.c/photo");
        assert_eq!(stem("a/.hidden"), "a/.hidden");
        assert_eq!(stem("archive.tar.gz"), "archive.tar");
        let base = trigger_base("thumbnail", "my photo+1 ü 100%.jpg");
        assert_eq!(image_key(&base, "webp"), "thumbnail/my photo+1 ü 100%.webp");
        let base = trigger_base("slice", "x/big.png");
        assert_eq!(tile_key(&base, 1, 2, "png"), "slice/x/big/r1-c2.png");
        assert_eq!(manifest_key(&base), "slice/x/big/manifest.json");
        assert_eq!(
            image_key(&processed_base("processed/", "alice", "ab12"), "jpg"),
            "processed/alice/ab12.jpg"
        );
        assert_eq!(error_key("errors/", "convert", "a.jpg"), "errors/convert/a.jpg.json");
    }

    #[test]
    fn keys_with_dot_segments_empty_segments_or_controls_are_refused() {
        for good in ["a.jpg", "uploads/x/y.jpg", "a/b/", "..a/b..", "a/.hidden", "ü/%2e%2e/x", "a b+c"] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/a",
            "a//b",
            "a/./b",
            "thumbnail/../../imgfn-source/x.jpg",
            "..",
            "a/..",
            "x\n\u{1b}[31mERROR",
            "a\u{0}b",
            "a\u{85}b",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check(&"k".repeat(1025)).is_err());
        assert_eq!(check(&"k".repeat(1024)), Ok(()));
    }
}
