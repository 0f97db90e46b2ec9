//! JSON to a validated `image_ops::Pipeline`, the same way for every way in: the S3-triggered
//! functions (params from `IMGFN_PARAMS` and object metadata, see [`crate::params`]) and the
//! HTTP API (`ops` and `output` of `POST /process`). Errors name the field as the caller wrote
//! it: a typo such as `widht` is `ops[0].widht` in a request body and `params.widht` in object
//! metadata, with the same code and message.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image_ops::ops::{self, Kind};
use image_ops::{Limits, Op, OutputParams, Pipeline, PipelineSpec};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// Deserializes `value`, naming the param at fault under `field` (`output.quality`,
/// `ops[0].tile.spacing`, the unknown or missing field of an object) on error.
pub fn parse<T: DeserializeOwned>(value: Value, field: &str) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|e| named(e, field))
}

/// One step, `{"op": <name or alias>, ...params}`, its errors under `field` (`ops[2]`).
pub fn op(value: Value, field: &str) -> Result<Op, Error> {
    let Value::Object(mut params) = value else {
        return Err(Error::invalid(field, "an operation is a JSON object with an \"op\""));
    };
    let name = match params.remove("op") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(Error::invalid(format!("{field}.op"), "must be an operation's name")),
        None => return Err(Error::invalid(format!("{field}.op"), "required: the operation's name")),
    };
    let mut track = serde_path_to_error::Track::new();
    let params = serde_path_to_error::Deserializer::new(Value::Object(params), &mut track);
    match Op::from_params(&name, params) {
        Some(Ok(op)) => Ok(op),
        Some(Err(e)) => Err(named(serde_path_to_error::Error::new(track.path(), e), field)),
        None => {
            let names: Vec<&str> =
                ops::REGISTRY.iter().filter(|s| s.kind == Kind::Pixels).map(|s| s.name).collect();
            Err(Error::invalid(
                format!("{field}.op"),
                format!("unknown operation {name:?}, expected one of: {}", names.join(", ")),
            ))
        }
    }
}

/// An invalid-params error naming the param at fault: the deserializer's path under `field`,
/// and for an unknown or missing field of an object, that field.
fn named(e: serde_path_to_error::Error<serde_json::Error>, field: &str) -> Error {
    let path = e.path().to_string();
    let message = e.into_inner().to_string();
    let mut named = if path.is_empty() || path == "." { field.to_owned() } else { format!("{field}.{path}") };
    // serde names the unknown or missing field in backticks: `unknown field `x``.
    let inner = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.split('`').next());
    if let Some(name) = inner("unknown field `").or_else(|| inner("missing field `")) {
        if path.rsplit('.').next().is_none_or(|last| last != name) {
            named = format!("{named}.{name}");
        }
    }
    Error::invalid(named, message)
}

/// Output params, their errors under `field` (`output`).
pub fn output(value: Value, field: &str) -> Result<OutputParams, Error> {
    parse(value, field)
}

/// Validates `ops` and `output` under `limits` (once: the result is the only way to run them)
/// and checks that every asset they name is a key under `asset_prefix` of the source bucket.
pub fn build(
    ops: Vec<Op>,
    output: OutputParams,
    limits: &Limits,
    asset_prefix: &str,
) -> Result<Pipeline, Error> {
    let spec = PipelineSpec { ops, output };
    // Validation is pure and must not panic; if it does (a bug), the request or record fails
    // instead of the whole invocation.
    let pipeline = catch_unwind(AssertUnwindSafe(|| Pipeline::new(spec, *limits)))
        .map_err(|_| Error::Internal("params validation panicked".into()))??;
    for asset in pipeline.assets() {
        if let Err(why) = crate::keys::check(asset.name) {
            return Err(Error::invalid(asset.field, format!("not an asset key: {why}")));
        }
        if !asset.name.starts_with(asset_prefix) || asset.name.ends_with('/') {
            return Err(Error::invalid(
                asset.field,
                format!("assets must be keys under {asset_prefix:?} in the source bucket"),
            ));
        }
    }
    Ok(pipeline)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_the_field() {
        let op = |v: Value| super::op(v, "ops[2]").err().and_then(|e| e.field().map(str::to_owned));
        assert_eq!(op(json!({"op": "no-such-op"})).as_deref(), Some("ops[2].op"));
        assert_eq!(op(json!({"width": 3})).as_deref(), Some("ops[2].op"));
        assert_eq!(op(json!({"op": "resize", "widht": 3})).as_deref(), Some("ops[2].widht"));
        assert_eq!(op(json!({"op": "thumbnail", "width": "x"})).as_deref(), Some("ops[2].width"));
        assert_eq!(op(json!({"op": "thumbnail", "width": 9, "fit": "x"})).as_deref(), Some("ops[2].fit"));
        assert_eq!(
            op(json!({"op": "watermark", "text": "x", "tile": {"gap": 1}})).as_deref(),
            Some("ops[2].tile")
        );
        assert_eq!(op(json!({"op": "slice"})).as_deref(), None, "all of slice's params are optional");
        assert_eq!(op(json!({"op": "qr-overlay"})).as_deref(), Some("ops[2].data"));
        assert_eq!(op(json!([1])).as_deref(), Some("ops[2]"));
        assert_eq!(op(json!({"op": 3})).as_deref(), Some("ops[2].op"));
        let e = output(json!({"quality": "high"}), "output").unwrap_err();
        assert_eq!(e.field(), Some("output.quality"));
        let e = output(json!({"format": "bmp"}), "output").unwrap_err();
        assert_eq!(e.field(), Some("output.format"));
    }

    #[test]
    fn assets_must_live_under_the_asset_prefix() {
        let wm = |image: &str| super::op(json!({"op": "watermark", "image": image}), "ops[0]").unwrap();
        let limits = Limits::default();
        assert!(build(vec![wm("assets/logo.png")], OutputParams::default(), &limits, "assets/").is_ok());
        for bad in ["uploads/x.png", "assets/", "assets/../uploads/bob/x.png", "assets/a//b.png", "assets/d/"]
        {
            let e = build(vec![wm(bad)], OutputParams::default(), &limits, "assets/").unwrap_err();
            assert_eq!(e.field(), Some("ops[0].image"), "{bad}");
        }
    }
}
