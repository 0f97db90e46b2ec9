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
}
