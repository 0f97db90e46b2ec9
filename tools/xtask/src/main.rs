//! `cargo xtask sync`: write what derives from the operation registry (see the crate docs).
//! `cargo xtask check`: list what is stale, and fail if anything is.

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = xtask::root();
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "sync" => match xtask::sync(&root) {
            Ok(changed) if changed.is_empty() => {
                println!("everything derived from the operation registry is up to date");
                ExitCode::SUCCESS
            }
            Ok(changed) => {
                for path in changed {
                    println!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("xtask sync: {e}");
                ExitCode::FAILURE
            }
        },
        "check" => match xtask::derived(&root) {
            Ok(files) => {
                let stale: Vec<_> = files.iter().filter(|d| d.is_stale()).collect();
                for d in &stale {
                    println!("stale: {}", d.path.display());
                }
                if stale.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    println!("run `cargo xtask sync`");
                    ExitCode::FAILURE
                }
            }
            Err(e) => {
                eprintln!("xtask check: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo xtask sync | check");
            ExitCode::from(2)
        }
    }
}
