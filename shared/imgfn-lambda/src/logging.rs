//! Logging: one subscriber for every function, and one way to put a value from outside into a
//! log line.
//!
//! Object keys, params and error messages come from callers. Logged as they are, a key holding
//! `\n` and ANSI escapes could forge a log line (`GET /images/x%0A%1B[31mERROR ...`). Every
//! such value goes into a field through [`safe`], which writes control characters as escapes:
//! a value can never start a line or colour a terminal, in the text format or the JSON one.

use std::fmt::{self, Display, Write};

/// Initialises logging: plain text, or JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`; the level from
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default INFO).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
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
}
