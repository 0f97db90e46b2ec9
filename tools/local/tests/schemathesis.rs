//! `docs/openapi.yaml` stays true to the handlers: schemathesis (PyPI, installed by
//! `scripts/ci-python-tools.sh`) generates requests from it against the locally served API
//! (real S3 server behind it) and fails on any 5xx or response that breaks the document.
//! Bounded: few examples per operation, a time budget, a fixed seed.
//!
//! It needs schemathesis, so it is ignored unless asked for (`cargo test -- --ignored`, as
//! `.ci/run` does after installing it); asked for without it, it fails. Finding `st`:
//! `IMGFN_SCHEMATHESIS`, else `$CARGO_TARGET_DIR/py-tools/bin/st` (or `target/py-tools/bin/st`),
//! else `PATH`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use imgfn_test_support::api::Stack;
use imgfn_test_support::{fixtures, tools};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs schemathesis: bash scripts/ci-python-tools.sh, then cargo test -- --ignored"]
async fn openapi_document_holds_under_schemathesis() {
    let st = tools::require(
        tools::python_tool("IMGFN_SCHEMATHESIS", "st"),
        "schemathesis",
        "run bash scripts/ci-python-tools.sh",
    );
    let s = Stack::start(&[]).await;
    // Something real to find: a processed image in the public scope.
    let key = s.upload(None, "image/jpeg", fixtures::photo_small()).await;
    let body = serde_json::json!({"key": key, "ops": [{"op": "thumbnail", "width": 64}]}).to_string();
    assert_eq!(s.post("/process", None, &body).await.status, 200);

    let spec = tools::root().join("docs/openapi.yaml");
    let mut cmd = tokio::process::Command::new(&st);
    cmd.arg("run")
        .arg(&spec)
        .args(["--url", &s.http.url()])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "30", "--seed", "20261124", "--workers", "1", "--no-color"])
        .args(["--request-timeout", "20", "--max-time", "45"])
        .env("SCHEMATHESIS_HOOKS", "")
        // Its example cache (.schemathesis/) goes to the target dir, not the source tree.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(240), cmd.output()).await;
    let output = run.expect("schemathesis did not finish within 240 s").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis failed:\n{stdout}\n{stderr}");
}
