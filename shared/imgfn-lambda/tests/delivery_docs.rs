//! docs/delivery.md gives signing test vectors for apps that sign URLs in other languages:
//! each row is checked against the code that verifies URLs, and each message is checked to be
//! in normal form (what `imgfn url` prints), so the docs cannot drift from the grammar.
#![allow(clippy::unwrap_used)]

use imgfn_lambda::rendition::{self, StoredUrl};

const KEY: &str = "imgfn-docs-example-key-0123456789abcdef";

fn vectors() -> Vec<(String, String)> {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/delivery.md")).unwrap();
    let block = docs
        .split("<!-- signing-vectors -->")
        .nth(1)
        .unwrap()
        .split("<!-- /signing-vectors -->")
        .next()
        .unwrap();
    block
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, message, signature, _] = cells.as_slice() else { return None };
            let unquote = |s: &str| s.strip_prefix('`')?.strip_suffix('`').map(str::to_owned);
            Some((unquote(message)?, unquote(signature)?))
        })
        .collect()
}

#[test]
fn the_documented_signing_vectors_are_what_the_code_signs_and_accepts() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 3, "{vectors:?}");
    let keys = [KEY.as_bytes().to_vec()];
    for (message, signature) in &vectors {
        assert_eq!(&rendition::signature(KEY.as_bytes(), message), signature, "{message}");
        let (path, query) = match message.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (message.as_str(), None),
        };
        if path.starts_with("/v1/") {
            // The URL the vector describes parses, is in normal form and verifies (at a time
            // before its expiry).
            let signed = rendition::parse(&format!("{path}/{signature}"), query).unwrap();
            assert_eq!(&signed.rendition.message(), message);
            signed.verify(&keys, 1_700_000_000).unwrap();
        } else {
            let (url, sig) = StoredUrl::parse(&format!("{path}/{signature}"), query).unwrap();
            assert_eq!(&url.message(), message);
            url.verify(&sig, &keys, 1_700_000_000).unwrap();
        }
    }
}
