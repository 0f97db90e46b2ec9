//! The plumbing's one error enum, and the ONE place where failures are classified: as a Lambda
//! outcome ([`Error::outcome`]: permanent, skipped or retried) and as an HTTP status
//! ([`Error::status`], for the HTTP API functions). Nothing else in the workspace matches on
//! `image_ops::Error` or on S3 errors to decide what to do.

use image_ops::Category;

/// What the runner does with a failed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Retrying cannot help (bad image, bad params, source gone): write no image, write an
    /// error record the uploader can find, log one line, and report success so Lambda does not
    /// retry.
    Permanent,
    /// The record must not be processed at all (loop guard, foreign bucket, folder marker,
    /// superseded object): nothing is written, one line is logged, success is reported.
    Skip,
    /// Retrying may help (S3 5xx, throttling, timeouts, network, or an internal failure):
    /// nothing partial is left behind as final, and the handler returns `Err` so Lambda
    /// retries and the on-failure destination catches what still fails.
    Transient,
}

/// Everything that can go wrong while processing one S3 object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The image or the params were rejected by image-ops (corrupt, unsupported, too large,
    /// invalid params), or an internal encode failure.
    #[error(transparent)]
    Image(#[from] image_ops::Error),
    /// The source object does not exist (deleted before processing).
    #[error("source object s3://{bucket}/{key} does not exist")]
    SourceNotFound { bucket: String, key: String },
    /// The source object was overwritten between HeadObject and GetObject (GetObject's
    /// If-Match failed). The overwrite produced its own ObjectCreated event, which processes
    /// the new object, so this record is skipped.
    #[error("source object s3://{bucket}/{key} changed while it was being processed")]
    SourceChanged { bucket: String, key: String },
    /// The record is refused without touching S3 (loop guard, foreign bucket, not under the
    /// trigger prefix, folder marker, undecodable key, not an ObjectCreated event).
    #[error("record refused: {0}")]
    Refused(String),
    /// An S3 request failed for a reason that may go away (5xx, throttling, timeout, network,
    /// or a 4xx that means misconfiguration, e.g. AccessDenied or NoSuchBucket: those are kept
    /// retryable so the event reaches the on-failure destination instead of being dropped).
    #[error("S3 {operation} failed: {message}")]
    S3 { operation: &'static str, status: Option<u16>, code: Option<String>, message: String },
    /// A bug or a panic inside image processing; retried, then visible in the on-failure
    /// destination.
    #[error("internal error: {0}")]
    Internal(String),
    /// HTTP API: the request body is not the JSON the route expects (not JSON, not an object,
    /// a value of the wrong type). Unknown fields and bad params are [`Error::Image`]'s
    /// `InvalidParams`, naming the field.
    #[error("{0}")]
    MalformedRequest(String),
    /// HTTP API: no such object for this caller. Also what a key outside the caller's scope
    /// gets, with the same message, so existence does not leak.
    #[error("no such object: {0}")]
    NotFound(String),
    /// HTTP API: the request carries an authorizer identity without a usable `sub` claim.
    #[error("{0}")]
    Unauthorized(String),
    /// Renditions: the URL's signature does not match, or the URL has expired.
    #[error("{0}")]
    Forbidden(String),
}

impl Error {
    /// How the S3 runner treats this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Image(e) => match e.category() {
                Category::Client => Outcome::Permanent,
                // An encoder failure on valid input is our bug: keep it visible (retry, then
                // the on-failure destination) rather than silently writing an error record.
                Category::Internal => Outcome::Transient,
            },
            Error::SourceNotFound { .. } => Outcome::Permanent,
            Error::SourceChanged { .. } | Error::Refused(_) => Outcome::Skip,
            Error::S3 { .. } | Error::Internal(_) => Outcome::Transient,
            // Never produced by the S3 runner; permanent if they ever were.
            Error::MalformedRequest(_)
            | Error::NotFound(_)
            | Error::Unauthorized(_)
            | Error::Forbidden(_) => Outcome::Permanent,
        }
    }

    /// The HTTP status for this failure: the HTTP API's ONE mapping (`crate::api` answers with
    /// it, and with `Retry-After` on 503). 5xx responses say "something went wrong" and are
    /// logged; the others echo [`code`](Error::code) and the message.
    pub fn status(&self) -> u16 {
        match self {
            Error::Image(e) => match e {
                image_ops::Error::InvalidParams { .. } => 400,
                image_ops::Error::InputTooLarge { .. } => 413,
                image_ops::Error::UnsupportedFormat(_) => 415,
                image_ops::Error::CorruptImage(_) | image_ops::Error::TooManyPixels(_) => 422,
                _ => 500,
            },
            Error::SourceNotFound { .. } | Error::NotFound(_) => 404,
            Error::SourceChanged { .. } => 409,
            Error::Refused(_) | Error::MalformedRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            // S3 unavailable: throttled, 5xx, timeouts and connection failures (no status).
            Error::S3 { status: None | Some(429 | 500..=599), .. } => 503,
            // Any other S3 4xx (AccessDenied, NoSuchBucket) is our misconfiguration.
            Error::S3 { .. } => 500,
            Error::Internal(_) => 500,
        }
    }

    /// A stable machine-readable code, written to error records and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Image(e) => e.code(),
            Error::SourceNotFound { .. } => "source_not_found",
            Error::SourceChanged { .. } => "source_changed",
            Error::Refused(_) => "refused",
            Error::S3 { .. } => "s3_error",
            Error::Internal(_) => "internal_error",
            Error::MalformedRequest(_) => "malformed_request",
            Error::NotFound(_) => "not_found",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
        }
    }

    /// The offending parameter, for invalid params.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Image(e) => e.field(),
            _ => None,
        }
    }

    /// An invalid-params error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Image(image_ops::Error::invalid(field, message))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_image_errors_are_permanent_and_internal_ones_retried() {
        let corrupt = Error::from(image_ops::Error::CorruptImage("x".into()));
        assert_eq!(corrupt.outcome(), Outcome::Permanent);
        assert_eq!(corrupt.status(), 422);
        let params = Error::invalid("params.width", "too big");
        assert_eq!(params.outcome(), Outcome::Permanent);
        assert_eq!(params.status(), 400);
        assert_eq!(params.field(), Some("params.width"));
        let encode = Error::from(image_ops::Error::Encode("x".into()));
        assert_eq!(encode.outcome(), Outcome::Transient);
        assert_eq!(encode.status(), 500);
    }

    #[test]
    fn s3_failures_are_transient_except_gone_and_changed_sources() {
        let s3 = |status| Error::S3 { operation: "GetObject", status, code: None, message: String::new() };
        assert_eq!(s3(Some(503)).outcome(), Outcome::Transient);
        assert_eq!(s3(Some(503)).status(), 503);
        assert_eq!(s3(None).outcome(), Outcome::Transient);
        assert_eq!(s3(Some(403)).status(), 500);
        assert_eq!(s3(None).status(), 503);
        let gone = Error::SourceNotFound { bucket: "b".into(), key: "k".into() };
        assert_eq!(
            (gone.outcome(), gone.status(), gone.code()),
            (Outcome::Permanent, 404, "source_not_found")
        );
        let changed = Error::SourceChanged { bucket: "b".into(), key: "k".into() };
        assert_eq!(changed.outcome(), Outcome::Skip);
    }
}
