//! A function's request: its operation's params and the output params, as JSON objects, merged
//! from the defaults (`IMGFN_PARAMS`, `IMGFN_OUTPUT`) and the object's `imgfn-params` user
//! metadata, then turned into an `image_ops::Pipeline` and validated.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image_ops::ops::{
    qr::QrParams, resize::ResizeParams, round_corners::RoundCornersParams, slice::SliceParams,
    watermark_image::ImageWatermarkParams, watermark_text::TextWatermarkParams,
};
use image_ops::{Limits, Op, OutputParams, Pipeline};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{Error, OpKind};

/// The user-metadata key (header `x-amz-meta-imgfn-params`) holding per-object params.
pub const PARAMS_METADATA_KEY: &str = "imgfn-params";

/// An operation's params and output params, as merged JSON objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    op: OpKind,
    params: Map<String, Value>,
    output: Map<String, Value>,
}

impl Request {
    /// A request for `op`. For [`OpKind::Convert`], `params` are output params and are merged
    /// over `output`.
    pub fn new(op: OpKind, params: Map<String, Value>, output: Map<String, Value>) -> Request {
        let mut r = Request { op, params: Map::new(), output };
        if op == OpKind::Convert {
            r.output.extend(params);
        } else {
            r.params = params;
        }
        r
    }

    /// These defaults with per-object params (the JSON of the `imgfn-params` metadata) merged
    /// over them: top-level keys replace. For every operation but `convert`, an `output` key
    /// holds output params, merged the same way over the default output params; for `convert`
    /// the object's keys are output params. For `watermark`, per-object params that name the
    /// other variant (`image` instead of `text`, or the reverse) replace the default params
    /// instead of merging with them.
    pub fn with_overrides(&self, json: &str) -> Result<Request, Error> {
        let mut overrides = match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::invalid("params", "must be a JSON object")),
            Err(e) => return Err(Error::invalid("params", format!("not valid JSON: {e}"))),
        };
        let mut merged = self.clone();
        if self.op == OpKind::Convert {
            merged.output.extend(overrides);
            return Ok(merged);
        }
        match overrides.remove("output") {
            None => {}
            Some(Value::Object(output)) => merged.output.extend(output),
            Some(_) => return Err(Error::invalid("params.output", "must be a JSON object")),
        }
        if self.op == OpKind::Watermark {
            let switches =
                |from: &str, to: &str| merged.params.contains_key(from) && overrides.contains_key(to);
            if switches("text", "image") || switches("image", "text") {
                merged.params.clear();
            }
        }
        merged.params.extend(overrides);
        Ok(merged)
    }

    /// The pipeline these params describe, validated under `limits`; every asset it names must
    /// be a key under `asset_prefix`. Errors name fields as the user wrote them (`params.width`,
    /// `output.quality`; for `convert`, `params.quality`).
    pub fn pipeline(&self, limits: &Limits, asset_prefix: &str) -> Result<Pipeline, Error> {
        let rename = |e: Error| self.rename_field(e);
        let output: OutputParams = from_map(&self.output, self.output_field()).map_err(rename)?;
        let ops = match self.op {
            OpKind::Thumbnail => vec![Op::Resize(from_map::<ResizeParams>(&self.params, "params")?)],
            OpKind::Watermark if self.params.contains_key("image") => {
                vec![Op::WatermarkImage(from_map::<ImageWatermarkParams>(&self.params, "params")?)]
            }
            OpKind::Watermark => {
                vec![Op::WatermarkText(from_map::<TextWatermarkParams>(&self.params, "params")?)]
            }
            OpKind::RoundCorner => {
                vec![Op::RoundCorners(from_map::<RoundCornersParams>(&self.params, "params")?)]
            }
            OpKind::QrOverlay => vec![Op::Qr(from_map::<QrParams>(&self.params, "params")?)],
            OpKind::Convert => vec![],
            OpKind::Slice => vec![Op::Slice(from_map::<SliceParams>(&self.params, "params")?)],
        };
        let pipeline = Pipeline { ops, output };
        // Validation is pure and must not panic; if it does (a bug), the record is failed
        // instead of the whole invocation.
        catch_unwind(AssertUnwindSafe(|| pipeline.validate(limits)))
            .map_err(|_| Error::Internal("params validation panicked".into()))?
            .map_err(|e| rename(e.into()))?;
        for (field, name) in pipeline.assets() {
            if !name.starts_with(asset_prefix) || name.len() == asset_prefix.len() {
                return Err(rename(Error::invalid(
                    field,
                    format!("assets must be keys under {asset_prefix:?} in the source bucket"),
                )));
            }
        }
        Ok(pipeline)
    }

    /// SHA-256 (hex) of the canonical JSON of the request (sorted keys), written to the
    /// `imgfn-params-sha256` metadata of outputs: equal hashes mean equal params.
    pub fn sha256(&self) -> String {
        let mut canonical = String::new();
        let value = serde_json::json!({
            "op": self.op.name(),
            "params": Value::Object(self.params.clone()),
            "output": Value::Object(self.output.clone()),
        });
        write_canonical(&value, &mut canonical);
        Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn output_field(&self) -> &'static str {
        if self.op == OpKind::Convert {
            "params"
        } else {
            "output"
        }
    }

    fn rename_field(&self, e: Error) -> Error {
        let Error::Image(image_ops::Error::InvalidParams { field, message }) = e else { return e };
        let field = if let Some(rest) = field.strip_prefix("ops[0]") {
            format!("params{rest}")
        } else if let Some(rest) = field.strip_prefix("output").filter(|_| self.op == OpKind::Convert) {
            format!("params{rest}")
        } else {
            field
        };
        Error::invalid(field, message)
    }
}

fn from_map<T: DeserializeOwned>(map: &Map<String, Value>, field: &str) -> Result<T, Error> {
    serde_json::from_value(Value::Object(map.clone())).map_err(|e| Error::invalid(field, e.to_string()))
}

/// JSON with object keys sorted, independent of serde_json's `preserve_order` feature.
pub(crate) fn write_canonical(v: &Value, out: &mut String) {
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

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn overrides_replace_top_level_keys_and_merge_output() {
        let base = Request::new(
            OpKind::Thumbnail,
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
        let base = Request::new(OpKind::Watermark, obj(json!({"text": "hi", "opacity": 0.5})), Map::new());
        let merged = base.with_overrides(r#"{"image": "assets/logo.png"}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"image": "assets/logo.png"})));
        let merged = base.with_overrides(r#"{"opacity": 0.9}"#).unwrap();
        assert_eq!(merged.params, obj(json!({"text": "hi", "opacity": 0.9})));
    }

    #[test]
    fn convert_params_are_output_params() {
        let base = Request::new(OpKind::Convert, obj(json!({"format": "png"})), obj(json!({"quality": 70})));
        let merged = base.with_overrides(r#"{"format": "webp"}"#).unwrap();
        assert_eq!(merged.output, obj(json!({"format": "webp", "quality": 70})));
        let p = merged.pipeline(&Limits::default(), "assets/").unwrap();
        assert!(p.ops.is_empty());
        assert_eq!(p.output.format, Some(image_ops::OutputFormat::Webp));
        let e = base.with_overrides(r#"{"quality": 101}"#).unwrap().pipeline(&Limits::default(), "assets/");
        assert_eq!(e.unwrap_err().field(), Some("params.quality"));
        let e = base.with_overrides(r#"{"colour": 1}"#).unwrap().pipeline(&Limits::default(), "assets/");
        assert_eq!(e.unwrap_err().field(), Some("params"));
    }

    #[test]
    fn malformed_overrides_are_invalid_params() {
        let base = Request::new(OpKind::Slice, obj(json!({"rows": 2})), Map::new());
        for bad in ["", "[1]", "{", r#"{"output": 3}"#] {
            let e = base.with_overrides(bad).unwrap_err();
            assert_eq!(e.code(), "invalid_params", "{bad}");
        }
    }
}
