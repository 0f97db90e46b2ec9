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
//!
//! nasm being there now does not prove that libjpeg-turbo was built with it: mozjpeg-sys's build
//! script does not run again when nasm is installed later (a target directory from a build
//! without it, or nasm installed while a build was running), and cargo keeps its plain-C library.
//! So the library mozjpeg-sys built (found through its `links` metadata, `DEP_JPEG_INCLUDE`) must
//! also hold libjpeg-turbo's SIMD IDCT (`jsimd_idct_islow_avx2` on x86_64, `_neon` on aarch64),
//! or the build fails naming the fix.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NASM");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo::rustc-check-cfg=cfg(imgfn_no_simd)");
    compile_jpeg_gather();
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
    if x86 {
        check_nasm();
    }
    let simd_symbol = match arch.as_str() {
        "x86_64" => "jsimd_idct_islow_avx2",
        "aarch64" => "jsimd_idct_islow_neon",
        _ => return,
    };
    let libs = libjpeg_archives();
    if libs.is_empty() {
        return;
    }
    let mut simd = false;
    for lib in &libs {
        println!("cargo:rerun-if-changed={}", lib.display());
        let bytes = std::fs::read(lib).unwrap_or_default();
        simd |= bytes.windows(simd_symbol.len()).any(|w| w == simd_symbol.as_bytes());
    }
    if !simd {
        panic!(
            "\n\nimgfn: the libjpeg-turbo that mozjpeg-sys built ({}) has no SIMD code \
             ({simd_symbol} is missing): it was built while nasm was missing, and cargo does not \
             rebuild it now that nasm is there. JPEG tasks would be about 1.5x slower.\n\
             Rebuild it: cargo clean -p mozjpeg-sys (with the same --release and --target), then \
             build again.\n",
            libs[0].display()
        );
    }
}

/// `csrc/jpeg_gather.c`, the hook that replaces libjpeg's Huffman statistics pass
/// (`transcode::ffi::PixelEncoder`), against the headers of the libjpeg-turbo mozjpeg-sys
/// built (its `links` metadata: `DEP_JPEG_INCLUDE`, which holds the internal `jpegint.h`).
fn compile_jpeg_gather() {
    println!("cargo:rerun-if-changed=csrc/jpeg_gather.c");
    let include = env::var_os("DEP_JPEG_INCLUDE").expect("mozjpeg-sys exports its include paths");
    cc::Build::new()
        .file("csrc/jpeg_gather.c")
        .includes(env::split_paths(&include))
        .compile("imgfn_jpeg_gather");
}

/// The static libraries mozjpeg-sys built (`libmozjpeg*.a`: the library, and on aarch64 its
/// SIMD code beside it) in its out directory, the parent of the first `include` path it exports.
/// A libjpeg-turbo built without SIMD compiles `jsimd_none.c` instead of `jsimd.c`, so no SIMD
/// function is even named in it.
fn libjpeg_archives() -> Vec<PathBuf> {
    let Some(include) = env::var_os("DEP_JPEG_INCLUDE") else { return Vec::new() };
    let Some(out) = env::split_paths(&include).next().and_then(|p| p.parent().map(Path::to_path_buf)) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(out) else { return Vec::new() };
    let mut libs: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| is_jpeg_archive(p)).collect();
    libs.sort();
    libs
}

fn is_jpeg_archive(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libmozjpeg") && name.ends_with(".a")
}

/// On x86, nasm must be there (`$NASM`, else `nasm` on `PATH`), 2.13 or newer.
fn check_nasm() {
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
