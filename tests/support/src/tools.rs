//! Finding the external tools a test drives: `$<env_var>`, else the pinned venv that
//! `scripts/ci-python-tools.sh` makes (`$CARGO_TARGET_DIR/py-tools/bin`, or
//! `target/py-tools/bin`), else `PATH`.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch folder for test data under the target directory (never the source tree).
pub fn scratch() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let dir = target.join("test-scratch");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The outside tool `name`, or a panic that says how to get it. For tests marked
/// `#[ignore = "needs ..."]`: they run only when asked (`cargo test -- --ignored`, as CI does),
/// and then a missing tool is a failure, never a silent pass.
pub fn require(found: Option<PathBuf>, name: &str, how: &str) -> PathBuf {
    found.unwrap_or_else(|| panic!("{name} is not installed: {how}"))
}

/// `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// A tool installed by `scripts/ci-python-tools.sh`.
pub fn python_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Some(PathBuf::from(path));
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
    let venv = target.join("py-tools/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    on_path(name)
}
