//! The demo page the local edge serves at `/`.

use bytes::Bytes;

/// The page for `path`, if it is one of the demo's.
pub fn page(path: &str) -> Option<(&'static str, Bytes)> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", Bytes::from_static(INDEX.as_bytes()))),
        _ => None,
    }
}

const INDEX: &str = "<!doctype html><title>imgfn</title><p>imgfn local edge</p>";
