//! The fuzz corpora, replayed on stable: every file of `tests/fuzz/corpus/<target>/` (the seeds
//! and what the fuzzer kept, minimised) and of `tests/fuzz/artifacts/<target>/` (inputs that
//! crashed, hung or ran out of memory, kept once fixed) goes through the function the cargo-fuzz
//! target runs, `image_ops::fuzzing::<target>`, with its invariant checks. A missing or empty
//! corpus fails the test: it never passes having run nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image_ops::fuzzing::{self, Json};

/// What the pipeline target parses and prints JSON with (as `tests/fuzz/fuzz_targets/pipeline.rs`).
const JSON: Json =
    Json { parse: |bytes| serde_json::from_slice(bytes).ok(), print: |spec| serde_json::to_vec(spec).ok() };

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz")
}

/// The files of `dir`, sorted; `None` when it does not exist.
fn files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Some(out)
}

/// Runs `target` on every corpus and artifact file; fails naming each file that panicked.
fn replay(name: &str, target: impl Fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(name);
    let seeds = files(&corpus).unwrap_or_else(|| panic!("no corpus folder {}", corpus.display()));
    assert!(!seeds.is_empty(), "the corpus {} is empty", corpus.display());
    let artifacts = files(&fuzz_dir().join("artifacts").join(name)).unwrap_or_default();
    let (mut failed, mut slowest) = (Vec::new(), (Duration::ZERO, PathBuf::new()));
    let start = Instant::now();
    for path in seeds.iter().chain(&artifacts) {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let one = Instant::now();
        if catch_unwind(AssertUnwindSafe(|| target(&bytes))).is_err() {
            failed.push(path.display().to_string());
        }
        slowest = slowest.max((one.elapsed(), path.clone()));
    }
    eprintln!(
        "{name}: {} corpus files and {} artifacts in {:.2?} (slowest {:.2?}: {})",
        seeds.len(),
        artifacts.len(),
        start.elapsed(),
        slowest.0,
        slowest.1.display()
    );
    assert!(failed.is_empty(), "{name}: {} inputs panicked:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn decode_corpus_replays() {
    replay("decode", fuzzing::decode);
}

#[test]
fn pipeline_corpus_replays() {
    replay("pipeline", |data| fuzzing::pipeline(data, JSON));
}
