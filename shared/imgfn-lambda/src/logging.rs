//! Logging: one subscriber for every function, and one way to put a value from outside into a
//! log line.
//!
//! Object keys, params and error messages come from callers. Logged as they are, a key holding
//! `\n` and ANSI escapes could forge a log line (`GET /images/x%0A%1B[31mERROR ...`). Every
//! such value goes into a field through [`safe`], which writes control characters as escapes:
//! a value can never start a line or colour a terminal, in the text format or the JSON one.

use std::fmt::{self, Display, Write};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Initialises logging as `lambda_runtime::tracing::init_default_subscriber` does, without its
/// regex-based EnvFilter (see the workspace Cargo.toml): lines on stdout without time or target,
/// plain text, or JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`; the level from `AWS_LAMBDA_LOG_LEVEL`
/// (Lambda's log-level setting), else `RUST_LOG`, default INFO. `RUST_LOG` may also hold
/// per-target directives (`info,aws_config=warn`).
pub fn init_tracing() {
    let var = |name| std::env::var(name).ok();
    let filter = log_filter(var("AWS_LAMBDA_LOG_LEVEL").as_deref(), var("RUST_LOG").as_deref());
    let fmt = tracing_subscriber::fmt().with_target(false).without_time().with_writer(std::io::stdout);
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    // A subscriber set earlier (a test, a host program) stays.
    let _ =
        if json { fmt.json().finish().with(filter).try_init() } else { fmt.finish().with(filter).try_init() };
}

/// The filter [`init_tracing`] sets: `RUST_LOG`'s directives (a malformed value is ignored),
/// under the default level of `lambda_level`, else `RUST_LOG`'s own, else INFO.
fn log_filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let directives = rust_log.and_then(|v| v.trim().parse::<Targets>().ok()).unwrap_or_default();
    let default = lambda_level
        .and_then(|l| l.trim().parse::<LevelFilter>().ok())
        .or(directives.default_level())
        .unwrap_or(LevelFilter::INFO);
    directives.with_default(default)
}

/// `value` for a log field, control characters escaped (`\n` as `\n`, ESC as `\u{1b}`).
pub fn safe<T: Display>(value: T) -> Safe<T> {
    Safe(value)
}

/// See [`safe`].
#[derive(Debug, Clone, Copy)]
pub struct Safe<T>(T);

impl<T: Display> Display for Safe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(Escaping(f), "{}", self.0)
    }
}

/// A writer that escapes control characters on their way through.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for part in s.split_inclusive(char::is_control) {
            match part.chars().last() {
                Some(c) if c.is_control() => {
                    self.0.write_str(&part[..part.len() - c.len_utf8()])?;
                    write!(self.0, "{}", c.escape_default())?;
                }
                _ => self.0.write_str(part)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let forged = "x\n\u{1b}[31mERROR forged\r\u{0}\u{85}é";
        let out = safe(forged).to_string();
        assert_eq!(out, "x\\n\\u{1b}[31mERROR forged\\r\\u{0}\\u{85}é");
        assert!(!out.chars().any(char::is_control));
        assert_eq!(safe("plain/key ü.jpg").to_string(), "plain/key ü.jpg");
        assert_eq!(safe(format_args!("{}\n", 3)).to_string(), "3\\n");
    }

    #[test]
    fn the_log_level_comes_from_lambda_then_rust_log_then_info() {
        use tracing::Level;
        let on = |f: &Targets, target: &str, level: Level| f.would_enable(target, &level);
        let f = log_filter(None, None);
        assert!(on(&f, "imgfn_lambda::runner", Level::INFO) && !on(&f, "imgfn_lambda::runner", Level::DEBUG));
        let f = log_filter(Some("WARN"), None);
        assert!(on(&f, "x", Level::WARN) && !on(&f, "x", Level::INFO));
        let f = log_filter(None, Some("debug"));
        assert!(on(&f, "x", Level::DEBUG) && !on(&f, "x", Level::TRACE));
        // Per-target directives, as the local stack sets them.
        let f = log_filter(None, Some("info,aws_config=warn,s3s=warn"));
        assert!(on(&f, "imgfn_lambda", Level::INFO));
        assert!(!on(&f, "aws_config::loader", Level::INFO) && on(&f, "aws_config::loader", Level::WARN));
        let f = log_filter(Some("error"), Some("aws_config=warn"));
        assert!(!on(&f, "x", Level::WARN) && on(&f, "aws_config", Level::WARN));
        // Malformed values fall back rather than failing init.
        let f = log_filter(Some("loud"), Some("=,=x"));
        assert!(on(&f, "x", Level::INFO) && !on(&f, "x", Level::DEBUG));
    }
}
