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
    std::fs::create_dir_all(scratch.join("cdn")).unwrap();
    let root = xtask::root();
    let files =
        ["template.yaml", "samconfig.toml", "docs/openapi.yaml", "README.md", "cdn/viewer-request.js"];
    let files =
        files.into_iter().chain([xtask::cdn::VECTORS, xtask::cdn::RENDER_EVENT, xtask::cdn::REFRESH_EVENT]);
    for file in files {
        std::fs::copy(root.join(file), scratch.join(file)).unwrap();
    }
    if root.join("docs/delivery.md").exists() {
        std::fs::copy(root.join("docs/delivery.md"), scratch.join("docs/delivery.md")).unwrap();
    }
    for op in image_ops::ops::triggers() {
        let file = format!("events/s3-{}.json", op.name);
        std::fs::copy(root.join(&file), scratch.join(&file)).unwrap();
    }
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));
    let readme = std::fs::read_to_string(scratch.join("README.md")).unwrap();
    std::fs::write(scratch.join("README.md"), readme.replace("| `slice` |", "| `slice2` |")).unwrap();
    std::fs::write(scratch.join("events/s3-no-such-op.json"), "{}").unwrap();
    let stale = stale_paths(&scratch);
    assert_eq!(stale, ["README.md", "events/s3-no-such-op.json"]);
    assert_eq!(xtask::sync(&scratch).unwrap().len(), 2);
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));
    assert!(!scratch.join("events/s3-no-such-op.json").exists());
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn the_edge_falls_behind_visibly() {
    // The CloudFront Function's tables, its copy inlined in the template, the vectors and the
    // sample events are derived: edit one by hand and `cargo xtask check` names it.
    let scratch = std::env::temp_dir().join(format!("imgfn-edge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    for dir in ["docs", "events", "cdn"] {
        std::fs::create_dir_all(scratch.join(dir)).unwrap();
    }
    let root = xtask::root();
    let mut files: Vec<String> = ["template.yaml", "samconfig.toml", "docs/openapi.yaml", "README.md"]
        .into_iter()
        .chain([
            xtask::cdn::VIEWER_REQUEST,
            xtask::cdn::VECTORS,
            xtask::cdn::RENDER_EVENT,
            xtask::cdn::REFRESH_EVENT,
        ])
        .map(str::to_owned)
        .collect();
    files.extend(image_ops::ops::triggers().map(|op| format!("events/s3-{}.json", op.name)));
    for file in &files {
        std::fs::copy(root.join(file), scratch.join(file)).unwrap();
    }
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));

    let edit = |file: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(scratch.join(file)).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(scratch.join(file), text.replacen(from, to, 1)).unwrap();
    };
    // A hand edit of the function's code outside its tables: the template's copy is stale.
    edit(xtask::cdn::VIEWER_REQUEST, "const OUT = 'output';", "const OUT = 'output2';");
    // A hand edit of the tables region: the function itself is stale.
    edit(xtask::cdn::VIEWER_REQUEST, "\"resize\":\"thumbnail\"", "\"resize\":\"watermark\"");
    edit(xtask::cdn::VECTORS, "\"status\":403", "\"status\":200");
    edit(xtask::cdn::RENDER_EVENT, "x-imgfn-request", "x-imgfn-requests");
    let stale = stale_paths(&scratch);
    let expected =
        [xtask::cdn::VIEWER_REQUEST, xtask::cdn::VECTORS, xtask::cdn::RENDER_EVENT, "template.yaml"];
    assert_eq!(stale, expected);
    xtask::sync(&scratch).unwrap();
    assert!(xtask::derived(&scratch).unwrap().iter().all(|d| !d.is_stale()));
    // The region is restored, the hand edit outside it kept and inlined.
    let js = std::fs::read_to_string(scratch.join(xtask::cdn::VIEWER_REQUEST)).unwrap();
    assert!(js.contains("\"resize\":\"thumbnail\"") && js.contains("const OUT = 'output2';"));
    let template = std::fs::read_to_string(scratch.join("template.yaml")).unwrap();
    assert!(template.contains("        const OUT = 'output2';"));
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The derived files under `root` that `cargo xtask check` would call stale.
fn stale_paths(root: &std::path::Path) -> Vec<String> {
    xtask::derived(root)
        .unwrap()
        .into_iter()
        .filter(|d| d.is_stale())
        .map(|d| d.path.display().to_string())
        .collect()
}
