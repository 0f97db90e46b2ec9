//! Output key naming: deterministic, so a retry or a re-upload overwrites the same objects and
//! never duplicates them. `rest` is the source key without the trigger prefix.
//!
//! | what | key (in the output bucket) |
//! |---|---|
//! | image | `<op>/<stem>.<ext>` |
//! | tiles (`slice`) | `<op>/<stem>/r<row>-c<col>.<ext>`, then `<op>/<stem>/manifest.json` |
//! | error record | `<error prefix><op>/<rest>.json` |
//!
//! `<stem>` is `rest` without its extension (the part of the last path segment from its last
//! `.`, unless that `.` starts the segment): `thumbnail/a/b.c/photo.JPG` → stem `a/b.c/photo`.
//! Sources that differ only by extension (`photo.jpg`, `photo.png`) share an output key; the
//! last one processed wins. Error records keep the full `rest` (with its extension), so the
//! uploader finds them from the key they wrote.

/// `rest` without its extension.
pub fn stem(rest: &str) -> &str {
    let segment_start = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[segment_start..].rfind('.') {
        Some(dot) if dot > 0 => &rest[..segment_start + dot],
        _ => rest,
    }
}

/// The key of a single-image output.
pub fn image_key(op: &str, rest: &str, ext: &str) -> String {
    format!("{op}/{}.{ext}", stem(rest))
}

/// The key of one tile of a sliced image.
pub fn tile_key(op: &str, rest: &str, row: u32, col: u32, ext: &str) -> String {
    format!("{op}/{}/r{row}-c{col}.{ext}", stem(rest))
}

/// The key of a sliced image's manifest, written after all its tiles.
pub fn manifest_key(op: &str, rest: &str) -> String {
    format!("{op}/{}/manifest.json", stem(rest))
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
        assert_eq!(
            image_key("thumbnail", "my photo+1 ü 100%.jpg", "webp"),
            "thumbnail/my photo+1 ü 100%.webp"
        );
        assert_eq!(tile_key("slice", "x/big.png", 1, 2, "png"), "slice/x/big/r1-c2.png");
        assert_eq!(manifest_key("slice", "x/big.png"), "slice/x/big/manifest.json");
        assert_eq!(error_key("errors/", "convert", "a.jpg"), "errors/convert/a.jpg.json");
    }
}
