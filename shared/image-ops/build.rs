//! Refuses a silently slow build.
//!
//! libjpeg-turbo's SIMD code (every JPEG decode and encode), rav1e's (every AVIF encode) and
//! rav1d's (every AVIF decode, x86_64) are written in assembly; on x86 all are assembled by
//! nasm. Without nasm, mozjpeg-sys quietly builds its plain C code instead (JPEG tasks 1.4–1.7×
//! slower, measured in issue "Performance") and says so only in its own build-script output,
//! which cargo hides. So on an x86 target this script looks for nasm the way those crates do
//! (`$NASM`, else `nasm` on `PATH`) and fails the build naming the fix when it is missing.
//! Building without SIMD is an explicit choice: `RUSTFLAGS="--cfg imgfn_no_simd"`, which
//! Cargo.toml reads to leave the codecs' SIMD features off; the build then warns that it is
//! slow. aarch64 (the Lambda target) assembles its Neon code with the C compiler and needs
//! nothing more.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NASM");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(imgfn_no_simd)");
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let x86 = arch == "x86_64" || arch == "x86";
    if env::var_os("CARGO_CFG_IMGFN_NO_SIMD").is_some() {
        println!(
            "cargo:warning=image-ops is built without SIMD (--cfg imgfn_no_simd): libjpeg-turbo, \
             rav1e and rav1d run their plain C/Rust code (JPEG tasks about 1.5x slower, AVIF \
             several times slower). Build without that flag for a fast build."
        );
        return;
    }
    if !x86 {
        return;
    }
    let nasm = env::var("NASM").unwrap_or_else(|_| "nasm".to_owned());
    let found = Command::new(&nasm)
        .arg("-v")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match found {
        Some(version) => {
            // mozjpeg-sys and rav1e both want NASM 2.13 or newer.
            if let Some((major, minor)) = nasm_version(&version) {
                if (major, minor) < (2, 13) {
                    fail(&format!("{version} is too old (libjpeg-turbo and rav1e need 2.13 or newer)"));
                }
            }
        }
        None => fail(&format!("`{nasm}` was not found")),
    }
}

/// "NASM version 2.16.03 compiled on …" → (2, 16).
fn nasm_version(banner: &str) -> Option<(u32, u32)> {
    let rest = banner.strip_prefix("NASM version ")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn fail(why: &str) -> ! {
    panic!(
        "\n\nimgfn needs nasm to build its x86 SIMD code: {why}.\n\
         Without it libjpeg-turbo silently falls back to plain C (JPEG tasks about 1.5x slower) \
         and rav1e's and rav1d's assembly cannot be built.\n\
         Install it and build again:\n  \
         Debian/Ubuntu: sudo apt-get install nasm\n  \
         Fedora/Amazon Linux: sudo dnf install nasm\n  \
         macOS (Homebrew): brew install nasm\n\
         (or point $NASM at a nasm binary). To build slow on purpose: \
         RUSTFLAGS=\"--cfg imgfn_no_simd\".\n"
    );
}
