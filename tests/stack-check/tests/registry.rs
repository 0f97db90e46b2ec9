//! What derives from the operation registry (`image_ops::ops::REGISTRY`) is up to date: the
//! template's functions, triggers, parameters and grants, `samconfig.toml`, `events/`, the
//! OpenAPI enums and the README's operations table. `cargo xtask sync` writes them.
#![allow(clippy::unwrap_used)]

#[test]
fn derived_files_follow_the_registry() {
    let files = xtask::derived(&xtask::root()).unwrap_or_else(|e| panic!("{e}"));
    let stale: Vec<String> =
        files.iter().filter(|d| d.is_stale()).map(|d| d.path.display().to_string()).collect();
    assert!(stale.is_empty(), "behind the operation registry: {stale:?}; run `cargo xtask sync`");
    assert!(files.len() >= 4 + image_ops::ops::triggers().count(), "every derived file is checked");
}

#[test]
fn a_registry_change_shows_as_stale() {
    // The check can fail: a copy of the repository files with one region edited by hand.
    let scratch = std::env::temp_dir().join(format!("imgfn-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("docs")).unwrap();
    std::fs::create_dir_all(scratch.join("events")).unwrap();
    let root = xtask::root();
    for file in ["template.yaml", "samconfig.toml", "docs/openapi.yaml", "README.md"] {
        std::fs::copy(root.join(file), scratch.join(file)).unwrap();
    }
    for op in image_ops::ops::triggers() {
        let file = format!("events/s3-{}.json", op.name);
        std::fs::copy(root.join(&file), scratch.join(&file)).unwrap();
    }
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));
    let readme = std::fs::read_to_string(scratch.join("README.md")).unwrap();
    std::fs::write(scratch.join("README.md"), readme.replace("| `slice` |", "| `slice2` |")).unwrap();
    std::fs::write(scratch.join("events/s3-no-such-op.json"), "{}").unwrap();
    let stale: Vec<String> = xtask::derived(&scratch)
        .unwrap()
        .into_iter()
        .filter(|d| d.is_stale())
        .map(|d| d.path.display().to_string())
        .collect();
    assert_eq!(stale, ["README.md", "events/s3-no-such-op.json"]);
    assert_eq!(xtask::sync(&scratch).unwrap().len(), 2);
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));
    assert!(!scratch.join("events/s3-no-such-op.json").exists());
    let _ = std::fs::remove_dir_all(&scratch);
}
