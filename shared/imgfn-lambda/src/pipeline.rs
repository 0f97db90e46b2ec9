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

/// A step named `name` from URL params (every value a string, read as the type its param
/// asks for), its errors under `field`.
pub fn op_from_strings(name: &str, params: &[(String, String)], field: &str) -> Result<Op, Error> {
    let mut track = serde_path_to_error::Track::new();
    let map = serde::de::value::MapDeserializer::new(params.iter().map(|(k, v)| (k.as_str(), Text(v))));
    let de = serde_path_to_error::Deserializer::new(map, &mut track);
    match Op::from_params(name, de) {
        Some(Ok(op)) => Ok(op),
        Some(Err(e)) => Err(named(serde_path_to_error::Error::new(track.path(), e), field)),
        None => Err(Error::invalid(format!("{field}.op"), format!("unknown operation {name:?}"))),
    }
}

/// Any params type from URL params (see [`op_from_strings`]).
pub fn parse_strings<T: DeserializeOwned>(params: &[(String, String)], field: &str) -> Result<T, Error> {
    let map = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(
        params.iter().map(|(k, v)| (k.as_str(), Text(v))),
    );
    serde_path_to_error::deserialize(map).map_err(|e| named(e, field))
}

/// A URL param's value: text that becomes the type its param asks for (a number, a flag, a
/// name), or, where the param takes several types, a number or a flag when it reads as one.
#[derive(Debug, Clone, Copy)]
struct Text<'a>(&'a str);

impl<'de> serde::de::IntoDeserializer<'de, serde::de::value::Error> for Text<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.0.trim().parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(serde::de::Error::invalid_value(serde::de::Unexpected::Str(self.0), &visitor)),
            }
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for Text<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        let t = self.0;
        if let Ok(b) = t.parse::<bool>() {
            visitor.visit_bool(b)
        } else if let Ok(n) = t.parse::<u64>() {
            visitor.visit_u64(n)
        } else if let Ok(n) = t.parse::<i64>() {
            visitor.visit_i64(n)
        } else if let Some(n) = t.parse::<f64>().ok().filter(|n| n.is_finite()) {
            visitor.visit_f64(n)
        } else {
            visitor.visit_str(t)
        }
    }

    parse_number! {
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16, deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64, deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64, deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64, deserialize_bool => visit_bool: bool,
    }

    fn deserialize_str<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.0)
    }

    fn deserialize_string<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_str(self.0)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        use serde::de::IntoDeserializer as _;
        let text: serde::de::value::StrDeserializer<'_, Self::Error> = self.0.into_deserializer();
        text.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// An invalid-params error naming the param at fault: the deserializer's path under `field`,
/// and for an unknown or missing field of an object, that field.
fn named<E: std::fmt::Display>(e: serde_path_to_error::Error<E>, field: &str) -> Error {
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
        let e = output(json!({"chroma_subsampling": "4:2:2"}), "output").unwrap_err();
        assert_eq!(e.field(), Some("output.chroma_subsampling"));
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
