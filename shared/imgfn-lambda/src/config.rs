//! Configuration, read once at init from environment variables (see the crate docs for the
//! list). Every missing or malformed variable is reported by name; the default params are
//! validated here, at start-up, exactly as per-object params are validated per event.

use std::fmt;

use image_ops::Limits;
use serde_json::{Map, Value};

use crate::params::Request;

/// The operation a function performs. Its [`name`](OpKind::name) is the binary's name, the
/// default trigger prefix (`<name>/`) and the first segment of every output key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// `resize` params.
    Thumbnail,
    /// `watermark_image` params when they contain `image`, else `watermark_text` params.
    Watermark,
    /// `round_corners` params.
    RoundCorner,
    /// `qr` params.
    QrOverlay,
    /// No operation: the params are output params (`format`, `quality`, ...).
    Convert,
    /// `slice` params; the output is a set of tiles plus a manifest.
    Slice,
}

impl OpKind {
    /// All operations, in documentation order.
    pub const ALL: [OpKind; 6] = [
        OpKind::Thumbnail,
        OpKind::Watermark,
        OpKind::RoundCorner,
        OpKind::QrOverlay,
        OpKind::Convert,
        OpKind::Slice,
    ];

    /// The function's name: `thumbnail`, `watermark`, `round-corner`, `qr-overlay`, `convert`,
    /// `slice`.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Thumbnail => "thumbnail",
            OpKind::Watermark => "watermark",
            OpKind::RoundCorner => "round-corner",
            OpKind::QrOverlay => "qr-overlay",
            OpKind::Convert => "convert",
            OpKind::Slice => "slice",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A configuration problem found at init. The message names the variable.
#[derive(thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

/// `main` returning this error prints it with `Debug`: make that the clear message too.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.message)
    }
}

/// Everything a function needs to know, read once at init.
#[derive(Debug, Clone)]
pub struct Config {
    pub op: OpKind,
    /// `IMGFN_OUTPUT_BUCKET`: where outputs and error records go.
    pub output_bucket: String,
    /// `IMGFN_SOURCE_BUCKET`: when set, records from any other bucket are refused.
    pub source_bucket: Option<String>,
    /// `IMGFN_TRIGGER_PREFIX` (default `<op>/`): the prefix the function listens on; it is
    /// stripped from source keys to name outputs, and keys outside it are refused.
    pub trigger_prefix: String,
    /// `IMGFN_ERROR_PREFIX` (default `errors/`): error records go under `<prefix><op>/`.
    pub error_prefix: String,
    /// `IMGFN_ASSET_PREFIX` (default `assets/`): fonts and overlay images named by params must
    /// be keys under this prefix in the source bucket.
    pub asset_prefix: String,
    /// `IMGFN_PARAMS` + `IMGFN_OUTPUT`: the default request, already validated.
    pub defaults: Request,
    /// `IMGFN_MAX_*`: resource limits.
    pub limits: Limits,
}

impl Config {
    /// Reads the configuration of `op` from the process environment.
    pub fn from_env(op: OpKind) -> Result<Config, ConfigError> {
        Config::from_lookup(op, |name| std::env::var(name).ok())
    }

    /// Reads the configuration of `op` from `lookup` (the environment, or a map in tests).
    /// Empty values count as unset.
    pub fn from_lookup(op: OpKind, lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let err = |var: &'static str, message: String| ConfigError { var, message };

        let output_bucket = get("IMGFN_OUTPUT_BUCKET").ok_or_else(|| {
            err("IMGFN_OUTPUT_BUCKET", "required: the bucket outputs are written to".into())
        })?;
        let source_bucket = get("IMGFN_SOURCE_BUCKET");
        if source_bucket.as_deref() == Some(output_bucket.as_str()) {
            return Err(err(
                "IMGFN_SOURCE_BUCKET",
                "must differ from IMGFN_OUTPUT_BUCKET: outputs written where a trigger listens loop forever"
                    .into(),
            ));
        }
        let prefix = |var: &'static str, default: String| -> Result<String, ConfigError> {
            let value = get(var).unwrap_or(default);
            if value.starts_with('/') || !value.ends_with('/') {
                return Err(err(var, format!("{value:?} must be a key prefix like \"name/\"")));
            }
            Ok(value)
        };
        let trigger_prefix = prefix("IMGFN_TRIGGER_PREFIX", format!("{}/", op.name()))?;
        let error_prefix = prefix("IMGFN_ERROR_PREFIX", "errors/".into())?;
        let asset_prefix = prefix("IMGFN_ASSET_PREFIX", "assets/".into())?;
        for (var, other) in [("IMGFN_ERROR_PREFIX", &error_prefix), ("IMGFN_ASSET_PREFIX", &asset_prefix)] {
            if trigger_prefix.starts_with(other.as_str()) || other.starts_with(trigger_prefix.as_str()) {
                return Err(err(var, format!("{other:?} overlaps IMGFN_TRIGGER_PREFIX {trigger_prefix:?}")));
            }
        }

        let limits = read_limits(&get)?;
        let params = json_object(&get, "IMGFN_PARAMS")?;
        let params = match (params, op) {
            (Some(p), _) => p,
            // convert's params are output params; an empty object keeps the input's format.
            (None, OpKind::Convert) => Map::new(),
            (None, _) => {
                return Err(err(
                    "IMGFN_PARAMS",
                    format!("required: the default params of {op} as a JSON object"),
                ))
            }
        };
        let output = json_object(&get, "IMGFN_OUTPUT")?.unwrap_or_default();
        let defaults = Request::new(op, params, output);
        // Validate exactly as per-object params are validated, and check asset names.
        defaults
            .pipeline(&limits, &asset_prefix)
            .map_err(|e| err("IMGFN_PARAMS", format!("invalid default params: {e}")))?;

        Ok(Config {
            op,
            output_bucket,
            source_bucket,
            trigger_prefix,
            error_prefix,
            asset_prefix,
            defaults,
            limits,
        })
    }
}

fn json_object(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<Map<String, Value>>, ConfigError> {
    let Some(raw) = get(var) else { return Ok(None) };
    match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ConfigError { var, message: "must be a JSON object".into() }),
        Err(e) => Err(ConfigError { var, message: format!("not valid JSON: {e}") }),
    }
}

pub(crate) fn read_limits(get: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    fn parse<T: std::str::FromStr + PartialOrd + Default>(
        get: &impl Fn(&str) -> Option<String>,
        var: &'static str,
        slot: &mut T,
    ) -> Result<(), ConfigError> {
        if let Some(raw) = get(var) {
            match raw.trim().parse::<T>() {
                Ok(v) if v > T::default() => *slot = v,
                _ => return Err(ConfigError { var, message: format!("{raw:?} is not a positive integer") }),
            }
        }
        Ok(())
    }
    let mut l = Limits::default();
    parse(get, "IMGFN_MAX_INPUT_BYTES", &mut l.max_input_bytes)?;
    parse(get, "IMGFN_MAX_PIXELS", &mut l.max_pixels)?;
    parse(get, "IMGFN_MAX_SIDE", &mut l.max_side)?;
    parse(get, "IMGFN_MAX_FRAMES", &mut l.max_frames)?;
    parse(get, "IMGFN_MAX_TOTAL_PIXELS", &mut l.max_total_pixels)?;
    parse(get, "IMGFN_MAX_ASSET_BYTES", &mut l.max_asset_bytes)?;
    // Lambda sets the function's memory; the pixel limits are lowered to what fits in it.
    let mut memory_mb = 0u64;
    parse(get, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &mut memory_mb)?;
    if memory_mb > 0 {
        let budget = memory_mb.saturating_sub(RESERVED_MEMORY_MB).max(64) * 1024 * 1024;
        l = l.fit_memory(budget);
    }
    Ok(l)
}

/// Memory (MB) left out of the image budget for the runtime, the AWS SDK, the input bytes
/// (up to `IMGFN_MAX_INPUT_BYTES`) and the encoded output.
pub const RESERVED_MEMORY_MB: u64 = 160;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(op: OpKind, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(op, |k| vars.get(k).cloned())
    }

    #[test]
    fn pixel_limits_fit_the_function_memory() {
        let out = ("IMGFN_OUTPUT_BUCKET", "out");
        let at = |mb: &str, extra: &[(&str, &str)]| {
            let mut vars = vec![out, ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", mb)];
            vars.extend_from_slice(extra);
            config(OpKind::Convert, &vars).unwrap().limits
        };
        // The template's 1024 MB: single frames keep the 50 MP default, animations get ~90 MP.
        let l = at("1024", &[]);
        assert_eq!(l.max_pixels, 50_000_000);
        assert_eq!(l.max_total_pixels, (1024 - RESERVED_MEMORY_MB) * 1024 * 1024 / 10);
        // An explicit limit above what fits is lowered too; 10 GB changes nothing.
        assert_eq!(
            at("1024", &[("IMGFN_MAX_TOTAL_PIXELS", "500000000")]).max_total_pixels,
            l.max_total_pixels
        );
        assert_eq!(at("10240", &[]), Limits::default());
        assert!(at("512", &[]).max_pixels < 50_000_000);
        assert!(config(OpKind::Convert, &[out]).unwrap().limits == Limits::default());
        let e = config(OpKind::Convert, &[out, ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")]).unwrap_err();
        assert_eq!(e.var, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let e = config(OpKind::Convert, &[]).unwrap_err();
        assert_eq!(e.var, "IMGFN_OUTPUT_BUCKET");
        let e = config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_SOURCE_BUCKET", "out")])
            .unwrap_err();
        assert_eq!(e.var, "IMGFN_SOURCE_BUCKET");
        let e = config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_MAX_PIXELS", "-3")])
            .unwrap_err();
        assert_eq!(e.var, "IMGFN_MAX_PIXELS");
        let e =
            config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_OUTPUT", "[1]")]).unwrap_err();
        assert_eq!(e.var, "IMGFN_OUTPUT");
        let e =
            config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_TRIGGER_PREFIX", "convert")])
                .unwrap_err();
        assert_eq!(e.var, "IMGFN_TRIGGER_PREFIX");
        let e =
            config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_TRIGGER_PREFIX", "errors/x/")])
                .unwrap_err();
        assert_eq!(e.var, "IMGFN_ERROR_PREFIX");
    }

    #[test]
    fn convert_defaults_need_no_params() {
        let c = config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_MAX_INPUT_BYTES", "1000")])
            .unwrap();
        assert_eq!(c.trigger_prefix, "convert/");
        assert_eq!(c.error_prefix, "errors/");
        assert_eq!(c.limits.max_input_bytes, 1000);
        assert_eq!(c.limits.max_pixels, Limits::default().max_pixels);
        let e =
            config(OpKind::Convert, &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_PARAMS", r#"{"quality":0}"#)])
                .unwrap_err();
        assert_eq!(e.var, "IMGFN_PARAMS");
        assert!(e.message.contains("params.quality"), "{e}");
    }
}
