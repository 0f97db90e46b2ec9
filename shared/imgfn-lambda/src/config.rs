//! Configuration, read once at init from environment variables (see the crate docs for the
//! list). [`Env`] is the one reader both the S3-triggered functions ([`Config`]) and the HTTP
//! API ([`crate::api::ApiConfig`]) use: every missing or malformed variable is reported by name,
//! empty values count as unset. The default params are validated here, at start-up, exactly as
//! per-object params are validated per event.

use std::fmt;

use image_ops::ops::{self, OpSpec};
use image_ops::Limits;
use serde_json::{Map, Value};

use crate::params::Request;

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

/// Memory (MB) left out of the image budget for the runtime, the HTTP client, the input bytes
/// (up to `IMGFN_MAX_INPUT_BYTES`) and the encoded output.
pub const RESERVED_MEMORY_MB: u64 = 160;

/// The environment (or a map, in tests), read variable by variable. Empty values count as
/// unset.
pub struct Env<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Env<F> {
        Env { lookup }
    }

    /// The value of `var`, if set and not blank.
    pub fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// Whether `var` is set at all, even to an empty value.
    pub fn is_set(&self, var: &str) -> bool {
        (self.lookup)(var).is_some()
    }

    /// A required value; `what` says what it is for.
    pub fn required(&self, var: &'static str, what: &str) -> Result<String, ConfigError> {
        self.get(var).ok_or_else(|| error(var, format!("required: {what}")))
    }

    /// A key prefix like `name/` (default `default`).
    pub fn prefix(&self, var: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        if value.starts_with('/') || !value.ends_with('/') || value.len() < 2 {
            return Err(error(var, format!("{value:?} must be a key prefix like \"name/\"")));
        }
        Ok(value)
    }

    /// An integer in `1..=max` (default `default`).
    pub fn number(&self, var: &'static str, default: u64, max: u64) -> Result<u64, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(v) if v > 0 && v <= max => Ok(v),
                _ => Err(error(var, format!("{raw:?} is not an integer in 1..={max}"))),
            },
        }
    }

    /// A JSON object, if set.
    pub fn json_object(&self, var: &'static str) -> Result<Option<Map<String, Value>>, ConfigError> {
        let Some(raw) = self.get(var) else { return Ok(None) };
        match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(error(var, "must be a JSON object".into())),
            Err(e) => Err(error(var, format!("not valid JSON: {e}"))),
        }
    }

    /// The two buckets: outputs must never land where a trigger listens.
    pub fn buckets(&self, source_required: bool) -> Result<(Option<String>, String), ConfigError> {
        let source = if source_required {
            Some(self.required("IMGFN_SOURCE_BUCKET", "the bucket uploads and sources live in")?)
        } else {
            self.get("IMGFN_SOURCE_BUCKET")
        };
        let output = self.required("IMGFN_OUTPUT_BUCKET", "the bucket outputs are written to")?;
        if source.as_deref() == Some(output.as_str()) {
            return Err(error(
                "IMGFN_SOURCE_BUCKET",
                "must differ from IMGFN_OUTPUT_BUCKET: outputs written where a trigger listens loop forever"
                    .into(),
            ));
        }
        Ok((source, output))
    }

    /// `IMGFN_MAX_*` over the library defaults, lowered to fit `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`
    /// (set by Lambda).
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let n = |var: &'static str, default: u64| self.number(var, default, u64::MAX);
        let side = |var: &'static str, default: u32| {
            self.number(var, u64::from(default), u64::from(u32::MAX)).map(|v| v as u32)
        };
        let mut l = Limits {
            max_input_bytes: n("IMGFN_MAX_INPUT_BYTES", d.max_input_bytes)?,
            max_pixels: n("IMGFN_MAX_PIXELS", d.max_pixels)?,
            max_side: side("IMGFN_MAX_SIDE", d.max_side)?,
            max_frames: side("IMGFN_MAX_FRAMES", d.max_frames)?,
            max_total_pixels: n("IMGFN_MAX_TOTAL_PIXELS", d.max_total_pixels)?,
            max_asset_bytes: n("IMGFN_MAX_ASSET_BYTES", d.max_asset_bytes)?,
        };
        // Lambda sets the function's memory; the pixel limits are lowered to what fits in it.
        if self.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").is_some() {
            let memory_mb = self.number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, u64::MAX)?;
            let budget = memory_mb.saturating_sub(RESERVED_MEMORY_MB).max(64) * 1024 * 1024;
            l = l.fit_memory(budget);
        }
        Ok(l)
    }
}

fn error(var: &'static str, message: String) -> ConfigError {
    ConfigError { var, message }
}

/// Everything an S3-triggered function needs to know, read once at init.
#[derive(Debug, Clone)]
pub struct Config {
    /// The operation, from the registry.
    pub op: &'static OpSpec,
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
    /// `IMGFN_PARAMS` + `IMGFN_OUTPUT` (default: the registry's), already validated.
    pub defaults: Request,
    /// `IMGFN_MAX_*`: resource limits.
    pub limits: Limits,
}

impl Config {
    /// Reads the configuration of the function of `op` from the process environment.
    pub fn from_env(op: &'static OpSpec) -> Result<Config, ConfigError> {
        Config::from_lookup(op, |name| std::env::var(name).ok())
    }

    /// Reads the configuration of the function of `op` from `lookup` (the environment, or a
    /// map in tests).
    pub fn from_lookup(
        op: &'static OpSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let env = Env::new(lookup);
        let trigger = op
            .trigger
            .ok_or_else(|| error("IMGFN_PARAMS", format!("{} has no S3-triggered function", op.name)))?;
        let (source_bucket, output_bucket) = env.buckets(false)?;
        let trigger_prefix = env.prefix("IMGFN_TRIGGER_PREFIX", &format!("{}/", op.name))?;
        let error_prefix = env.prefix("IMGFN_ERROR_PREFIX", "errors/")?;
        let asset_prefix = env.prefix("IMGFN_ASSET_PREFIX", "assets/")?;
        for (var, other) in [("IMGFN_ERROR_PREFIX", &error_prefix), ("IMGFN_ASSET_PREFIX", &asset_prefix)] {
            if trigger_prefix.starts_with(other.as_str()) || other.starts_with(trigger_prefix.as_str()) {
                return Err(error(
                    var,
                    format!("{other:?} overlaps IMGFN_TRIGGER_PREFIX {trigger_prefix:?}"),
                ));
            }
        }
        let limits = env.limits()?;
        // Unset: the registry's defaults. Set, even to "" (no params, the input's format): its own.
        let (registry_params, registry_output) = registry_defaults(trigger);
        let own = |var: &'static str, registry: Map<String, Value>| -> Result<_, ConfigError> {
            Ok(if env.is_set(var) { env.json_object(var)?.unwrap_or_default() } else { registry })
        };
        let params = own("IMGFN_PARAMS", registry_params)?;
        let output = own("IMGFN_OUTPUT", registry_output)?;
        let defaults = Request::new(op, params, output);
        // Validate exactly as per-object params are validated, and check asset names.
        defaults
            .pipeline(&limits, &asset_prefix)
            .map_err(|e| error("IMGFN_PARAMS", format!("invalid default params: {e}")))?;
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

/// An operation's default params and output params from its registry entry (checked to be
/// valid JSON objects by a test: a malformed entry reads as no params and fails validation).
pub fn registry_defaults(trigger: ops::Trigger) -> (Map<String, Value>, Map<String, Value>) {
    let object = |json: &str| serde_json::from_str::<Map<String, Value>>(json).unwrap_or_default();
    (object(trigger.params), object(trigger.output))
}

/// The registry entry of the S3-triggered function called `name`.
pub fn trigger_op(name: &str) -> Result<&'static OpSpec, ConfigError> {
    ops::find(name).filter(|op| op.trigger.is_some() && op.name == name).ok_or_else(|| {
        error("function", format!("{name} is not an S3-triggered function of the operation registry"))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn convert() -> &'static OpSpec {
        &image_ops::ops::CONVERT
    }

    fn config(op: &'static OpSpec, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
            config(convert(), &vars).unwrap().limits
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
        assert!(config(convert(), &[out]).unwrap().limits == Limits::default());
        let e = config(convert(), &[out, ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")]).unwrap_err();
        assert_eq!(e.var, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    }

    #[test]
    fn missing_and_malformed_variables_are_named() {
        let e = config(convert(), &[]).unwrap_err();
        assert_eq!(e.var, "IMGFN_OUTPUT_BUCKET");
        let e =
            config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_SOURCE_BUCKET", "out")]).unwrap_err();
        assert_eq!(e.var, "IMGFN_SOURCE_BUCKET");
        let e = config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_MAX_PIXELS", "-3")]).unwrap_err();
        assert_eq!(e.var, "IMGFN_MAX_PIXELS");
        let e = config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_OUTPUT", "[1]")]).unwrap_err();
        assert_eq!(e.var, "IMGFN_OUTPUT");
        let e = config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_TRIGGER_PREFIX", "convert")])
            .unwrap_err();
        assert_eq!(e.var, "IMGFN_TRIGGER_PREFIX");
        let e = config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_TRIGGER_PREFIX", "errors/x/")])
            .unwrap_err();
        assert_eq!(e.var, "IMGFN_ERROR_PREFIX");
    }

    #[test]
    fn every_trigger_starts_with_the_registry_defaults() {
        for op in ops::triggers() {
            let t = op.trigger.unwrap();
            for json in [t.params, t.output].into_iter().filter(|j| !j.is_empty()) {
                assert!(serde_json::from_str::<Map<String, Value>>(json).is_ok(), "{}: {json}", op.name);
            }
            let c = config(op, &[("IMGFN_OUTPUT_BUCKET", "out")]).unwrap();
            assert_eq!(c.trigger_prefix, format!("{}/", op.name));
            assert_eq!(trigger_op(op.name).map(|o| o.name).ok(), Some(op.name));
        }
        assert!(trigger_op("resize").is_err(), "an alias names no function");
        assert!(trigger_op("no-such-op").is_err());
    }

    #[test]
    fn convert_defaults_and_limits() {
        let c =
            config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_MAX_INPUT_BYTES", "1000")]).unwrap();
        assert_eq!(c.trigger_prefix, "convert/");
        assert_eq!(c.error_prefix, "errors/");
        assert_eq!(c.limits.max_input_bytes, 1000);
        assert_eq!(c.limits.max_pixels, Limits::default().max_pixels);
        let e = config(convert(), &[("IMGFN_OUTPUT_BUCKET", "out"), ("IMGFN_PARAMS", r#"{"quality":0}"#)])
            .unwrap_err();
        assert_eq!(e.var, "IMGFN_PARAMS");
        assert!(e.message.contains("params.quality"), "{e}");
    }
}
