//! The HTTP API's configuration, read once at init from environment variables by the same
//! [`Env`] reader as the S3 functions' [`crate::Config`]: every missing or malformed variable is
//! reported by name.

use std::time::Duration;

use image_ops::{ops, Limits};

use crate::config::Env;
use crate::url_keys::{self, UrlKeys};
use crate::ConfigError;

/// A rendition prefix for images an app puts into the source bucket itself.
pub const ORIGINALS_PREFIX: &str = "originals/";

/// Default largest upload: 20 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 20 * 1024 * 1024;
/// Default lifetime of presigned upload URLs: one minute, enough to start a PUT the client
/// asked for a moment ago (the URL is single-use anyway: it signs `If-None-Match: *`).
pub const DEFAULT_UPLOAD_EXPIRES: Duration = Duration::from_secs(60);
/// Default lifetime of presigned download URLs: 5 minutes.
pub const DEFAULT_DOWNLOAD_EXPIRES: Duration = Duration::from_secs(300);
/// Longest lifetime S3 accepts for a SigV4 presigned URL: 7 days.
const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;

/// Who may call the API (`IMGFN_API_ACCESS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `authorizer` (the default): a JWT authorizer verifies every request, and its `sub`
    /// claim scopes every key; a request that reaches a function without claims is refused
    /// with 401, never given a shared scope.
    Authorizer,
    /// `open`, only when the deployment opens the API on purpose (`AllowOpenApi`): callers
    /// without an identity share the scope [`super::OPEN_SCOPE`].
    Open,
}

/// Everything the API functions need to know, read once at init.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `IMGFN_SOURCE_BUCKET` (required): uploads go here; `/process` reads from here.
    pub source_bucket: String,
    /// `IMGFN_OUTPUT_BUCKET` (required): `/process` writes here; `/images` serves from here.
    pub output_bucket: String,
    /// `IMGFN_UPLOAD_PREFIX` (default `uploads/`): uploads without an `op` go under
    /// `<prefix><scope>/`. No function listens there.
    pub upload_prefix: String,
    /// `IMGFN_PROCESSED_PREFIX` (default `processed/`): `/process` writes under
    /// `<prefix><scope>/` in the output bucket.
    pub processed_prefix: String,
    /// `IMGFN_ERROR_PREFIX` (default `errors/`): the S3 functions' error records, served by
    /// `/images` to their owner.
    pub error_prefix: String,
    /// `IMGFN_ASSET_PREFIX` (default `assets/`): fonts and overlay images named by params.
    pub asset_prefix: String,
    /// `IMGFN_API_ACCESS` (`authorizer` or `open`; default `authorizer`).
    pub access: Access,
    /// `IMGFN_MAX_UPLOAD_BYTES` (default 20 MiB, never more than `IMGFN_MAX_INPUT_BYTES`: a
    /// larger upload could not be processed): the largest `content_length` `/uploads` signs.
    pub max_upload_bytes: u64,
    /// `IMGFN_UPLOAD_EXPIRES` (seconds, default 60): lifetime of presigned PUT URLs.
    pub upload_expires: Duration,
    /// `IMGFN_DOWNLOAD_EXPIRES` (seconds, default 300): lifetime of presigned GET URLs.
    pub download_expires: Duration,
    /// `IMGFN_CORS_ORIGINS`: comma-separated origins allowed to call the API from a browser
    /// (`*` allows any). Empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// `IMGFN_MAX_*`: the image limits, as for the S3 functions.
    pub limits: Limits,
    /// `IMGFN_RENDITION_PREFIXES`: comma-separated source-bucket prefixes whose objects may be
    /// rendered on request ([`crate::rendition`]). Default: the upload prefix, every trigger
    /// prefix and `originals/` (for images an app drops into the bucket itself).
    pub rendition_prefixes: Vec<String>,
    /// `IMGFN_URL_KEYS` (`newest,previous`, see [`crate::url_keys`]): the keys that sign
    /// rendition and stored-output URLs. Deployed they come from the secret
    /// `IMGFN_URL_KEYS_SECRET` instead ([`ApiConfig::url_keys_secret`]).
    pub url_keys: UrlKeys,
    /// `IMGFN_URL_KEYS_SECRET`: the Secrets Manager secret holding the key list.
    pub url_keys_secret: Option<String>,
    /// `IMGFN_CDN_URL` (`https://d111.cloudfront.net`, no trailing slash): where the CDN serves
    /// signed URLs. With URL keys, `/process` answers a stable `cdn_url` beside the presigned one.
    pub cdn_url: Option<String>,
}

impl ApiConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `lookup`. Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ApiConfig, ConfigError> {
        let env = Env::new(lookup);
        let (source_bucket, output_bucket) = env.buckets(true)?;
        let source_bucket = source_bucket.unwrap_or_default();
        let upload_prefix = env.prefix("IMGFN_UPLOAD_PREFIX", "uploads/")?;
        if let Some(op) =
            ops::triggers().find(|op| op.trigger_prefix().as_deref() == Some(upload_prefix.as_str()))
        {
            return Err(ConfigError {
                var: "IMGFN_UPLOAD_PREFIX",
                message: format!("{upload_prefix:?} is the trigger prefix of {}", op.name),
            });
        }
        let processed_prefix = env.prefix("IMGFN_PROCESSED_PREFIX", "processed/")?;
        let error_prefix = env.prefix("IMGFN_ERROR_PREFIX", "errors/")?;
        let asset_prefix = env.prefix("IMGFN_ASSET_PREFIX", "assets/")?;
        let access = match env.get("IMGFN_API_ACCESS").as_deref().map(str::trim) {
            None | Some("authorizer") => Access::Authorizer,
            Some("open") => Access::Open,
            Some(other) => {
                return Err(ConfigError {
                    var: "IMGFN_API_ACCESS",
                    message: format!("{other:?} is neither \"authorizer\" nor \"open\""),
                })
            }
        };
        let limits = env.limits()?;
        let max_upload_bytes = env
            .number("IMGFN_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, u64::MAX)?
            .min(limits.max_input_bytes);
        let seconds = |var: &'static str, default: Duration| {
            env.number(var, default.as_secs(), MAX_EXPIRES_SECS).map(Duration::from_secs)
        };
        let upload_expires = seconds("IMGFN_UPLOAD_EXPIRES", DEFAULT_UPLOAD_EXPIRES)?;
        let download_expires = seconds("IMGFN_DOWNLOAD_EXPIRES", DEFAULT_DOWNLOAD_EXPIRES)?;
        let cors_origins: Vec<String> = env
            .get("IMGFN_CORS_ORIGINS")
            .map(|v| v.split(',').map(|o| o.trim().trim_end_matches('/').to_owned()).collect())
            .unwrap_or_default();
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return Err(ConfigError {
                var: "IMGFN_CORS_ORIGINS",
                message: format!("{bad:?} is not an origin like https://app.example"),
            });
        }
        let rendition_prefixes = match env.get("IMGFN_RENDITION_PREFIXES") {
            None => std::iter::once(upload_prefix.clone())
                .chain(ops::triggers().filter_map(|op| op.trigger_prefix()))
                .chain(std::iter::once(ORIGINALS_PREFIX.to_owned()))
                .collect(),
            Some(list) => {
                let prefixes: Vec<String> =
                    list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
                if let Some(bad) =
                    prefixes.iter().find(|p| !p.ends_with('/') || crate::keys::check(p).is_err())
                {
                    return Err(ConfigError {
                        var: "IMGFN_RENDITION_PREFIXES",
                        message: format!("{bad:?} is not a folder prefix like originals/"),
                    });
                }
                prefixes
            }
        };
        let url_keys = match env.get("IMGFN_URL_KEYS") {
            Some(list) => UrlKeys::fixed(url_keys::parse(&list, "IMGFN_URL_KEYS")?),
            None => UrlKeys::fixed(Vec::new()),
        };
        let url_keys_secret = env.get("IMGFN_URL_KEYS_SECRET");
        let cdn_url = env.get("IMGFN_CDN_URL").map(|u| u.trim().trim_end_matches('/').to_owned());
        if let Some(bad) =
            cdn_url.as_ref().filter(|u| !(u.starts_with("https://") || u.starts_with("http://")))
        {
            return Err(ConfigError {
                var: "IMGFN_CDN_URL",
                message: format!("{bad:?} is not a URL like https://d111.cloudfront.net"),
            });
        }
        Ok(ApiConfig {
            source_bucket,
            output_bucket,
            upload_prefix,
            processed_prefix,
            error_prefix,
            asset_prefix,
            access,
            max_upload_bytes,
            upload_expires,
            download_expires,
            cors_origins,
            limits,
            rendition_prefixes,
            url_keys,
            url_keys_secret,
            cdn_url,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ApiConfig::from_lookup(|k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_and_named_errors() {
        let c = config(&[("IMGFN_SOURCE_BUCKET", "src"), ("IMGFN_OUTPUT_BUCKET", "out")]).unwrap();
        assert_eq!((c.upload_prefix.as_str(), c.processed_prefix.as_str()), ("uploads/", "processed/"));
        assert_eq!(c.max_upload_bytes, 20 * 1024 * 1024);
        assert_eq!(c.upload_expires, Duration::from_secs(60));
        assert_eq!(c.download_expires, Duration::from_secs(300));
        assert_eq!(c.access, Access::Authorizer, "secure by default");
        assert!(c.cors_origins.is_empty());
        assert!(c.url_keys.is_empty(), "no URL verifies until keys are configured");
        assert!(c.rendition_prefixes.iter().any(|p| p == "uploads/"));
        assert!(c.rendition_prefixes.iter().any(|p| p == "thumbnail/"));
        assert!(c.rendition_prefixes.iter().any(|p| p == ORIGINALS_PREFIX));
        let base = [("IMGFN_SOURCE_BUCKET", "src"), ("IMGFN_OUTPUT_BUCKET", "out")];
        for (var, value) in [
            ("IMGFN_UPLOAD_EXPIRES", "0"),
            ("IMGFN_DOWNLOAD_EXPIRES", "99999999"),
            ("IMGFN_MAX_UPLOAD_BYTES", "x"),
            ("IMGFN_CORS_ORIGINS", "app.example"),
            ("IMGFN_UPLOAD_PREFIX", "thumbnail/"),
            ("IMGFN_PROCESSED_PREFIX", "processed"),
            ("IMGFN_MAX_PIXELS", "-1"),
            ("IMGFN_API_ACCESS", "public"),
            ("IMGFN_URL_KEYS", "too-short"),
            ("IMGFN_RENDITION_PREFIXES", "originals"),
            ("IMGFN_CDN_URL", "d111.cloudfront.net"),
        ] {
            let mut vars = base.to_vec();
            vars.push((var, value));
            assert_eq!(config(&vars).unwrap_err().var, var, "{var}={value}");
        }
        assert_eq!(config(&[("IMGFN_OUTPUT_BUCKET", "out")]).unwrap_err().var, "IMGFN_SOURCE_BUCKET");
        let same = config(&[("IMGFN_SOURCE_BUCKET", "b"), ("IMGFN_OUTPUT_BUCKET", "b")]).unwrap_err();
        assert_eq!(same.var, "IMGFN_SOURCE_BUCKET");
        let c = config(&[
            ("IMGFN_SOURCE_BUCKET", "src"),
            ("IMGFN_OUTPUT_BUCKET", "out"),
            ("IMGFN_CORS_ORIGINS", "https://a.example/, http://localhost:3000"),
        ])
        .unwrap();
        assert_eq!(c.cors_origins, ["https://a.example", "http://localhost:3000"]);
        // An upload limit above what processing accepts is clamped to it.
        let c = config(&[
            ("IMGFN_SOURCE_BUCKET", "src"),
            ("IMGFN_OUTPUT_BUCKET", "out"),
            ("IMGFN_MAX_UPLOAD_BYTES", "100000000"),
            ("IMGFN_MAX_INPUT_BYTES", "5000000"),
            ("IMGFN_API_ACCESS", "open"),
        ])
        .unwrap();
        assert_eq!((c.max_upload_bytes, c.access), (5_000_000, Access::Open));
    }
}
