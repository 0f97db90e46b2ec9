//! A function's request: its operation's params and the output params, as JSON objects, merged
//! from the defaults (`IMGFN_PARAMS`, `IMGFN_OUTPUT`) and the object's `imgfn-params` user
//! metadata, then turned into an `image_ops::Pipeline` by [`crate::pipeline`], the same way the
//! HTTP API turns a request body into one.

use image_ops::ops::{Kind, OpSpec};
use image_ops::{Limits, Pipeline};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Error;

/// The user-metadata key (header `x-amz-meta-imgfn-params`) holding per-object params.
pub const PARAMS_METADATA_KEY: &str = "imgfn-params";

/// An operation's params and output params, as merged JSON objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    op: &'static OpSpec,
    params: Map<String, Value>,
    output: Map<String, Value>,
}

impl Request {
    /// A request for `op`. For an operation whose params are output params (`convert`),
    /// `params` are merged over `output`.
    pub fn new(op: &'static OpSpec, params: Map<String, Value>, output: Map<String, Value>) -> Request {
        let mut r = Request { op, params: Map::new(), output };
        match op.kind {
            Kind::Output => r.output.extend(params),
            Kind::Pixels => r.params = params,
        }
        r
    }

    /// These defaults with per-object params (the JSON of the `imgfn-params` metadata) merged
    /// over them: top-level keys replace. For every operation but `convert`, an `output` key
    /// holds output params, merged the same way over the default output params; for `convert`
    /// the object's keys are output params. When the object's params name a field of one of
    /// the operation's alternatives (a watermark's `image` instead of `text`; a slice's tile
    /// size instead of a grid), the defaults' fields of the other alternatives are dropped.
    pub fn with_overrides(&self, json: &str) -> Result<Request, Error> {
        let mut overrides = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::invalid("params", "must be a JSON object")),
            Err(e) => return Err(Error::invalid("params", format!("not valid JSON: {e}"))),
        };
        let mut merged = self.clone();
        if self.op.kind == Kind::Output {
            merged.output.extend(overrides);
            return Ok(merged);
        }
        match overrides.remove("output") {
            None => {}
            Some(Value::Object(output)) => merged.output.extend(output),
            Some(_) => return Err(Error::invalid("params.output", "must be a JSON object")),
        }
        for chosen in self.op.alternatives {
            if chosen.iter().any(|f| overrides.contains_key(*f)) {
                for other in self.op.alternatives.iter().filter(|g| *g != chosen) {
                    for field in other.iter() {
                        merged.params.remove(*field);
                    }
                }
            }
        }
        merged.params.extend(overrides);
        Ok(merged)
    }

    /// The pipeline these params describe, validated under `limits`; every asset it names must
    /// be a key under `asset_prefix`. Errors name fields as the user wrote them: `params.width`,
    /// `output.quality`; for `convert`, `params.quality`.
    pub fn pipeline(&self, limits: &Limits, asset_prefix: &str) -> Result<Pipeline, Error> {
        let output = crate::pipeline::output(Value::Object(self.output.clone()), self.output_field())?;
        let ops = match self.op.kind {
            Kind::Output => Vec::new(),
            Kind::Pixels => {
                let mut step = self.params.clone();
                step.insert("op".into(), Value::from(self.op.name));
                vec![crate::pipeline::op(Value::Object(step), "params")?]
            }
        };
        crate::pipeline::build(ops, output, limits, asset_prefix).map_err(|e| self.name_field(e))
    }

    /// SHA-256 (hex) of the canonical JSON of the request (sorted keys), written to the
    /// `imgfn-params-sha256` metadata of outputs: equal hashes mean equal params.
    pub fn sha256(&self) -> String {
        let value = serde_json::json!({
            "op": self.op.name,
            "params": Value::Object(self.params.clone()),
            "output": Value::Object(self.output.clone()),
        });
        sha256_hex(&[canonical(&value).as_bytes()])
    }

    fn output_field(&self) -> &'static str {
        match self.op.kind {
            Kind::Output => "params",
            Kind::Pixels => "output",
        }
    }

    /// Names a field of the one-step pipeline (`ops[0].x`, `output.x`) as the user wrote it
    /// in the params: `params.x`, or for `convert` `params.x` for an output param too. Errors
    /// raised while the pipeline runs or its assets load are named through this as well.
    pub fn name_field(&self, e: Error) -> Error {
        let Error::Image(image_ops::Error::InvalidParams { field, message }) = e else { return e };
        let field = if let Some(rest) = field.strip_prefix("ops[0]") {
            format!("params{rest}")
        } else if let Some(rest) = field.strip_prefix("output").filter(|_| self.op.kind == Kind::Output) {
            format!("params{rest}")
        } else {
            field
        };
        Error::invalid(field, message)
    }
}

/// Lower-case hex SHA-256 of the concatenated parts.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// JSON with object keys sorted, independent of serde_json's `preserve_order` feature.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(value) = map.get(k) {
                    write_canonical(value, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn op(name: &str) -> &'static OpSpec {
        image_ops::ops::find(name).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn overrides_replace_top_level_keys_and_merge_output() {
        let base = Request::new(
            op("thumbnail"),
            obj(json!({"width": 256, "height": 256})),
            obj(json!({"format": "webp", "quality": 80})),
        );
        let merged = base.with_overrides(r#"{"width": 64, "output": {"quality": 50}}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"width": 64, "height": 256})));
        assert_eq!(merged.output, obj(json!({"format": "webp", "quality": 50})));
        assert_ne!(merged.sha256(), base.sha256());
        assert_eq!(base.sha256(), base.clone().sha256());
        assert_eq!(base.sha256().len(), 64);
    }

    #[test]
    fn watermark_variant_switch_replaces_defaults() {
        let base = Request::new(op("watermark"), obj(json!({"text": "hi", "opacity": 0.5})), Map::new());
        // The text's own params go; those of both kinds (opacity) stay.
        let merged = base.with_overrides(r#"{"image": "assets/logo.png"}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"image": "assets/logo.png", "opacity": 0.5})));
        let merged = base.with_overrides(r#"{"opacity": 0.9}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"text": "hi", "opacity": 0.9})));
    }

    #[test]
    fn slice_tile_size_replaces_the_default_grid() {
        let base = Request::new(op("slice"), obj(json!({"rows": 2, "cols": 2})), Map::new());
        let merged = base.with_overrides(r#"{"tile_width": 200, "tile_height": 200}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"tile_width": 200, "tile_height": 200})));
        assert!(merged.pipeline(&Limits::default(), "assets/").is_ok());
        let merged = base.with_overrides(r#"{"rows": 3}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"rows": 3, "cols": 2})));
    }

    #[test]
    fn convert_params_are_output_params() {
        let base = Request::new(op("convert"), obj(json!({"format": "png"})), obj(json!({"quality": 70})));
        let merged = base.with_overrides(r#"{"format": "webp"}"#).unwrap();
        assert_eq!(merged.output, obj(json!({"format": "webp", "quality": 70})));
        let p = merged.pipeline(&Limits::default(), "assets/").unwrap();
        assert!(p.ops().is_empty());
        assert_eq!(p.output().format, Some(image_ops::OutputFormat::Webp));
        let e = base.with_overrides(r#"{"quality": 101}"#).unwrap().pipeline(&Limits::default(), "assets/");
        assert_eq!(e.unwrap_err().field(), Some("params.quality"));
        let e = base.with_overrides(r#"{"colour": 1}"#).unwrap().pipeline(&Limits::default(), "assets/");
        assert_eq!(e.unwrap_err().field(), Some("params.colour"));
    }

    #[test]
    fn malformed_overrides_are_invalid_params() {
        let base = Request::new(op("slice"), obj(json!({"rows": 2})), Map::new());
        for bad in ["", "[1]", "{", r#"{"output": 3}"#] {
            let e = base.with_overrides(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_params", "{bad}");
        }
    }
}
