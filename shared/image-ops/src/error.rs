//! The one error type of image-ops. Callers map it to HTTP statuses and Lambda outcomes by
//! [`Error::code`] / [`Error::category`]; they never parse messages.

/// What went wrong, as a category a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an image format we accept (unknown magic, SVG/XML, HEIC, animated-only AVIF, ...).
    #[error("unsupported format: {0}")]
    UnsupportedFormat(String),
    /// The input (or an asset) is larger than the byte limit; nothing was decoded.
    #[error("input is {bytes} bytes, over the limit of {limit} bytes")]
    InputTooLarge { bytes: u64, limit: u64 },
    /// Header dimensions or frame count exceed the limits; nothing was decoded.
    #[error("image too large: {0}")]
    TooManyPixels(String),
    /// The bytes claim a supported format but cannot be decoded (truncated, malformed, empty).
    #[error("corrupt image: {0}")]
    CorruptImage(String),
    /// A parameter is out of range or inconsistent. `field` names it, e.g. `ops[1].width`.
    #[error("invalid parameter `{field}`: {message}")]
    InvalidParams { field: String, message: String },
    /// The encoder failed (should not happen for valid input; reported, never panicked).
    #[error("encode failed: {0}")]
    Encode(String),
}

/// Whose fault an error is: the caller's request/input, or ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Bad input or params: retrying the same request cannot succeed.
    Client,
    /// An internal failure.
    Internal,
}

impl Error {
    /// A stable machine-readable code, used in HTTP error bodies, error records and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnsupportedFormat(_) => "unsupported_format",
            Error::InputTooLarge { .. } => "input_too_large",
            Error::TooManyPixels(_) => "too_many_pixels",
            Error::CorruptImage(_) => "corrupt_image",
            Error::InvalidParams { .. } => "invalid_params",
            Error::Encode(_) => "encode_failed",
        }
    }

    pub fn category(&self) -> Category {
        match self {
            Error::Encode(_) => Category::Internal,
            _ => Category::Client,
        }
    }

    /// The offending parameter, for [`Error::InvalidParams`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidParams { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Puts an apply-time [`Error::InvalidParams`] field under `prefix` (e.g. `size` becomes
    /// `ops[2].size`); other errors pass through.
    pub fn under(self, prefix: &str) -> Self {
        match self {
            Error::InvalidParams { field, message } if !field.starts_with(prefix) => {
                Error::InvalidParams { field: format!("{prefix}.{field}"), message }
            }
            other => other,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidParams { field: field.into(), message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
