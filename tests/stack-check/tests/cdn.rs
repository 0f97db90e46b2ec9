//! The CDN's edge (`cdn/`): the CloudFront Function the template deploys is `cdn/viewer-request.js`
//! exactly, fits CloudFront's 10 KB, reads the key value store the template associates and
//! passes the header the render function reads; and, under node, it does what the Rust edge
//! (`rendition::viewer_request`) does on every case of `cdn/vectors.json`.
//!
//! The node tests need node (`#[ignore = "needs node ..."]`): `cargo test -- --ignored` runs
//! them (`.ci/run` installs node first), and then a missing node is a failure, never a pass.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use imgfn_test_support::tools;
use serde_yaml::Value;

/// CloudFront's limit on a function's code, in bytes.
const MAX_FUNCTION_BYTES: usize = 10 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn viewer_request_js() -> String {
    fs::read_to_string(root().join(xtask::cdn::VIEWER_REQUEST)).unwrap()
}

fn template() -> Value {
    serde_yaml::from_str(&fs::read_to_string(root().join("template.yaml")).unwrap()).unwrap()
}

/// The one `AWS::CloudFront::Function` of the template.
fn function(t: &Value) -> &Value {
    let mut found = t["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudFront::Function"));
    let f = found.next().expect("no AWS::CloudFront::Function");
    assert!(found.next().is_none(), "one CloudFront Function");
    &f["Properties"]
}

#[test]
fn the_template_deploys_the_function_as_it_is_and_it_fits() {
    let js = viewer_request_js();
    let t = template();
    let f = function(&t);
    let code = f["FunctionCode"].as_str().expect("FunctionCode is not a string (run `cargo xtask sync`)");
    assert!(
        code == js,
        "template.yaml's FunctionCode differs from {}: run `cargo xtask sync`",
        xtask::cdn::VIEWER_REQUEST
    );
    assert!(
        code.len() < MAX_FUNCTION_BYTES,
        "the function is {} bytes; CloudFront takes at most {MAX_FUNCTION_BYTES}",
        code.len()
    );
    assert_eq!(
        f["FunctionConfig"]["Runtime"].as_str(),
        Some("cloudfront-js-2.0"),
        "key value stores need 2.0"
    );
    assert_eq!(f["AutoPublish"].as_bool(), Some(true), "a distribution runs the published stage");
    let stores = f["FunctionConfig"]["KeyValueStoreAssociations"].as_sequence().unwrap();
    assert_eq!(stores.len(), 1);
    let store = format!("{:?}", stores[0]["KeyValueStoreARN"]);
    assert!(store.contains("UrlKeyValueStore.Arn") || store.contains("UrlKeyValueStore"), "{store}");
    // The names the function shares with the rest: the store's key, the header to the renderer.
    assert!(
        js.contains(&format!("cf.kvs().get('{}')", xtask::cdn::KVS_KEY)),
        "the function reads another key"
    );
    assert!(
        js.contains(&format!("'{}'", imgfn_lambda::api::render::REQUEST_HEADER)),
        "the function sets another header than the render function reads"
    );
}

/// node, or a panic saying how to get it.
fn node() -> PathBuf {
    let found = std::env::var_os("IMGFN_NODE").map(PathBuf::from).or_else(|| tools::on_path("node"));
    tools::require(found, "node", "apt-get install nodejs (.ci/run does), or set IMGFN_NODE")
}

/// `node cdn/test.mjs [function]`: (exit code, stdout, stderr).
fn run_vectors(function: Option<&PathBuf>) -> (i32, String, String) {
    let mut cmd = Command::new(node());
    cmd.arg(root().join("cdn/test.mjs"));
    if let Some(f) = function {
        cmd.arg(f);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vector_count() -> usize {
    let text = fs::read_to_string(root().join(xtask::cdn::VECTORS)).unwrap();
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    vectors["cases"].as_array().unwrap().len()
}

#[test]
#[ignore = "needs node: runs cdn/viewer-request.js on cdn/vectors.json (apt-get install nodejs; .ci/run does), then cargo test -- --ignored"]
fn the_cloudfront_function_does_what_the_rust_edge_does() {
    let cases = vector_count();
    assert!(cases > 50, "{cases} vectors");
    let (code, stdout, stderr) = run_vectors(None);
    assert_eq!(code, 0, "cdn/test.mjs failed:\n{stdout}\n{stderr}");
    // node ran every case, and every one passed: a run that checked nothing cannot pass.
    assert!(stdout.contains(&format!("vectors: {cases}\n")), "{stdout}");
    assert!(stdout.contains(&format!("{cases} passed, 0 failed")), "{stdout}");
}

#[test]
#[ignore = "needs node: runs a broken copy of cdn/viewer-request.js (apt-get install nodejs; .ci/run does), then cargo test -- --ignored"]
fn the_vectors_catch_a_function_that_drifted() {
    // The same run fails on a function that differs from the Rust edge: the name of the output
    // step and the signature comparison, each broken in turn.
    let js = viewer_request_js();
    let scratch = tools::scratch().join(format!("cdn-drift-{}", std::process::id()));
    fs::create_dir_all(&scratch).unwrap();
    for (from, to) in [
        ("const OUT = 'output';", "const OUT = 'outputs';"),
        ("fail(403, 'forbidden'", "fail(401, 'forbidden'"),
    ] {
        assert!(js.contains(from), "the function has no {from:?}");
        let file = scratch.join("viewer-request.js");
        fs::write(&file, js.replacen(from, to, 1)).unwrap();
        let (code, stdout, _) = run_vectors(Some(&file));
        assert_eq!(code, 1, "{to}: {stdout}");
        assert!(stdout.contains("FAIL "), "{to}: {stdout}");
        assert!(!stdout.contains(" 0 failed"), "{to}: {stdout}");
    }
    let _ = fs::remove_dir_all(&scratch);
}
