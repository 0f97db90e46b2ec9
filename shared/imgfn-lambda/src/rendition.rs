//! Rendition URLs: an image made on request from a source key and a pipeline, signed.
//!
//! ```text
//! /v1/<source key>/<steps>/<signature>[?exp=<unix seconds>]
//! <steps> = <step>(;<step>)*                 one path segment
//! <step>  = <name>(,<param>=<value>)*         an operation of the registry, or `output`
//! ```
//!
//! For example `/v1/originals/alice/beach.jpg/thumbnail,width=800;output,format=auto/<sig>`.
//! The names are the registry's (aliases accepted) for every operation that may be used in a
//! rendition (`OpSpec::rendition`), with the params of its pipeline step; `output` holds the
//! output params (`format` may be `auto`: the best format the browser accepts). Values are
//! percent-encoded UTF-8 (`%23ffffff` for `#ffffff`, `5%25` for `5%`); assets are named by key
//! (`image=assets%2Flogo.png`).
//!
//! # Normal form
//!
//! Equivalent URLs are made equal before anything else, so they share one signature, one
//! stored rendition and one cache entry: names lower-cased and aliases replaced; params sorted
//! by name, a param written twice refused; a param whose value is the default dropped (the
//! defaults come from the registry: [`defaults`]); values percent-encoded one way (everything
//! but `A-Z a-z 0-9 - . _ ~` as `%XX`, upper case); the `output` step last, left out when it
//! has nothing left. The source key is encoded the same way with its `/` kept.
//!
//! # Signature
//!
//! `signature = base64url(HMAC-SHA256(key, message))` without padding, where `message` is the
//! normal path without the signature: `/v1/<key>/<steps>`, followed by `?exp=<n>` when the URL
//! expires. Up to two keys are active at once (the newest signs; both verify), so keys rotate
//! without breaking URLs. Compared in constant time.
//!
//! # Where it is stored and cached
//!
//! After the signature is checked, `format=auto` is resolved from the request's `Accept` (to
//! `avif` or `webp` when accepted, else `auto-legacy`: JPEG, or PNG for an image with alpha),
//! and the rendition lives at `r/<key>/<steps>` in the output bucket: the CDN's cache key and
//! the S3 key are the same, and every rendition of a source shares the prefix `r/<key>/`.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use image_ops::ops::{self, Kind, OpSpec};
use image_ops::{Limits, OutputFormat, OutputParams, Pipeline};
use serde_json::Value;
use sha2::Sha256;

use crate::Error;

/// The grammar's version: the first path segment.
pub const VERSION: &str = "v1";

/// The name of the step that holds the output params.
pub const OUTPUT_STEP: &str = "output";

/// The prefix of stored renditions in the output bucket.
pub const STORED_PREFIX: &str = "r/";

/// What `format=auto` becomes when the browser accepts neither AVIF nor WebP.
pub const LEGACY_FORMAT: &str = "auto-legacy";

/// One step of a rendition, in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The operation's registry name, or [`OUTPUT_STEP`].
    pub name: String,
    /// Params sorted by name, values decoded.
    pub params: Vec<(String, String)>,
}

/// A rendition request in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The source key, decoded.
    pub key: String,
    pub steps: Vec<Step>,
    /// Unix seconds after which the URL is refused.
    pub expires: Option<u64>,
}

/// A parsed request: the rendition and the signature it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub rendition: Rendition,
    pub signature: String,
}

/// Percent-encodes everything but `A-Z a-z 0-9 - . _ ~` (and `/` when `keep_slash`).
pub fn encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(raw: &str, field: &str) -> Result<String, Error> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid(field, "not valid percent-encoded UTF-8"))
}

/// The registry's operations a rendition may use.
pub fn operations() -> impl Iterator<Item = &'static OpSpec> {
    ops::REGISTRY.iter().copied().filter(|s| s.rendition && s.kind == Kind::Pixels)
}

/// The default value of each param of step `name` (an operation's or [`OUTPUT_STEP`]), as a
/// URL writes it: what the normal form drops. Taken from the registry: the params a step gets
/// when only its required ones are given, and those it leaves unset that still mean one value
/// (`OpSpec::implied`: a text watermark's size, colour and alignment).
pub fn defaults(name: &str) -> BTreeMap<String, String> {
    let (value, given) = if name == OUTPUT_STEP {
        (serde_json::to_value(OutputParams::default()).ok(), Value::Object(Default::default()))
    } else {
        let Some(spec) = ops::find(name) else { return BTreeMap::new() };
        let example: Value = serde_json::from_str(spec.example).unwrap_or(Value::Null);
        let mut step = example.clone();
        if let Value::Object(map) = &mut step {
            map.insert("op".into(), Value::from(spec.name));
        }
        let op = crate::pipeline::op(step, "example").ok();
        (op.and_then(|op| serde_json::to_value(op).ok()), example)
    };
    let mut out = BTreeMap::new();
    // What the params leave unset but still means one value (the registry's `implied`).
    let implied = ops::find(name).map_or("{}", |spec| spec.implied);
    if let Ok(Value::Object(implied)) = serde_json::from_str::<Value>(implied) {
        out.extend(implied.iter().filter_map(|(param, v)| Some((param.clone(), url_value(v)?))));
    }
    if let Some(Value::Object(all)) = value {
        for (param, v) in all {
            if param == "op" || given.get(&param).is_some() {
                continue;
            }
            if let Some(text) = url_value(&v) {
                out.insert(param, text);
            }
        }
    }
    out
}

/// A JSON value as a URL param writes it (strings as they are); `None` for null and objects.
fn url_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        // An f32 param comes out of serde_json as the f64 nearest it (0.6 as
        // 0.6000000238418579): written as the f32 it is.
        Value::Number(n) => Some(match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) if f64::from(f as f32) == f => (f as f32).to_string(),
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses one steps segment into normal form. Errors name the field (`steps[1].width`).
pub fn parse_steps(segment: &str) -> Result<Vec<Step>, Error> {
    if segment.is_empty() {
        return Err(Error::invalid("steps", "at least one step"));
    }
    let mut steps = Vec::new();
    let mut output: Option<Step> = None;
    for (i, raw) in segment.split(';').enumerate() {
        let field = format!("steps[{i}]");
        let mut parts = raw.split(',');
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let name = if name == OUTPUT_STEP {
            OUTPUT_STEP.to_owned()
        } else {
            match operations().find(|s| s.answers_to(&name)) {
                Some(spec) => spec.name.to_owned(),
                None => {
                    let names: Vec<&str> = operations().map(|s| s.name).chain([OUTPUT_STEP]).collect();
                    return Err(Error::invalid(
                        format!("{field}.op"),
                        format!("{name:?} is not a rendition step; expected one of: {}", names.join(", ")),
                    ));
                }
            }
        };
        let defaults = defaults(&name);
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        for pair in parts {
            let (param, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::invalid(&field, format!("{pair:?} is not param=value")))?;
            let param = param.to_ascii_lowercase();
            let value = decode(value, &format!("{field}.{param}"))?;
            if param.is_empty() || params.insert(param.clone(), value).is_some() {
                return Err(Error::invalid(format!("{field}.{param}"), "given twice (or without a name)"));
            }
        }
        let params: Vec<(String, String)> =
            params.into_iter().filter(|(param, value)| defaults.get(param) != Some(value)).collect();
        let step = Step { name, params };
        if step.name == OUTPUT_STEP {
            if output.replace(step).is_some() {
                return Err(Error::invalid(field, "one output step at most"));
            }
        } else {
            steps.push(step);
        }
    }
    if let Some(output) = output.filter(|o| !o.params.is_empty()) {
        steps.push(output);
    }
    if steps.is_empty() {
        return Err(Error::invalid("steps", "no operation and no output params"));
    }
    Ok(steps)
}

impl Step {
    /// The step as the normal form writes it.
    pub fn encoded(&self) -> String {
        let mut out = self.name.clone();
        for (param, value) in &self.params {
            out.push(',');
            out.push_str(param);
            out.push('=');
            out.push_str(&encode(value, false));
        }
        out
    }

    /// A param's value.
    pub fn get(&self, param: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == param).map(|(_, v)| v.as_str())
    }
}

impl Rendition {
    /// The steps segment in normal form.
    pub fn steps_segment(&self) -> String {
        self.steps.iter().map(Step::encoded).collect::<Vec<_>>().join(";")
    }

    /// The source key as the normal path writes it.
    pub fn key_segment(&self) -> String {
        encode(&self.key, true)
    }

    /// What is signed: `/v1/<key>/<steps>`, then `?exp=<n>` when the URL expires.
    pub fn message(&self) -> String {
        let mut m = format!("/{VERSION}/{}/{}", self.key_segment(), self.steps_segment());
        if let Some(exp) = self.expires {
            m.push_str(&format!("?exp={exp}"));
        }
        m
    }

    /// The signed URL path (with its query) for `key`.
    pub fn signed_path(&self, key: &[u8]) -> String {
        let sig = signature(key, &self.message());
        let mut path = format!("/{VERSION}/{}/{}/{sig}", self.key_segment(), self.steps_segment());
        if let Some(exp) = self.expires {
            path.push_str(&format!("?exp={exp}"));
        }
        path
    }

    /// The output step's format, if given.
    pub fn format(&self) -> Option<&str> {
        self.steps.iter().find(|s| s.name == OUTPUT_STEP).and_then(|s| s.get("format"))
    }

    /// Resolves `format=auto` from the request's `Accept` header: AVIF or WebP when the
    /// browser takes them (AVIF first), else [`LEGACY_FORMAT`].
    pub fn negotiate(&mut self, accept: Option<&str>) {
        if self.format() != Some("auto") {
            return;
        }
        let resolved = negotiate(accept);
        if let Some(step) = self.steps.iter_mut().find(|s| s.name == OUTPUT_STEP) {
            for (param, value) in &mut step.params {
                if param == "format" {
                    *value = resolved.to_owned();
                }
            }
        }
    }

    /// The key of the stored rendition (after [`Rendition::negotiate`]), which is also its
    /// CDN cache key: `r/<key>/<steps>`.
    pub fn stored_key(&self) -> String {
        format!("{STORED_PREFIX}{}/{}", self.key_segment(), self.steps_segment())
    }

    /// Refuses a rendition whose [`Rendition::stored_key`] would pass S3's longest key
    /// ([`crate::keys::MAX_KEY_BYTES`]): invalid params naming `steps`.
    pub fn check_stored_key(&self) -> Result<(), Error> {
        if self.stored_key().len() > crate::keys::MAX_KEY_BYTES {
            return Err(Error::invalid(
                "steps",
                "the URL is too long: its stored key would pass S3's 1024 bytes",
            ));
        }
        Ok(())
    }

    /// The pipeline the steps describe, validated under `limits`; assets under `asset_prefix`.
    /// [`LEGACY_FORMAT`] is JPEG, or PNG when the result has alpha.
    pub fn pipeline(&self, limits: &Limits, asset_prefix: &str) -> Result<Pipeline, Error> {
        let mut ops = Vec::new();
        let mut output = OutputParams::default();
        for (i, step) in self.steps.iter().enumerate() {
            let field = format!("steps[{i}]");
            let params: Vec<(String, String)> = step
                .params
                .iter()
                .filter(|(k, v)| !(step.name == OUTPUT_STEP && k == "format" && v == LEGACY_FORMAT))
                .cloned()
                .collect();
            if step.name == OUTPUT_STEP {
                output = crate::pipeline::parse_strings(&params, &field)?;
                if step.get("format") == Some(LEGACY_FORMAT) {
                    output.format = Some(OutputFormat::Jpeg);
                    output.alpha_format = Some(OutputFormat::Png);
                }
            } else {
                ops.push(crate::pipeline::op_from_strings(&step.name, &params, &field)?);
            }
        }
        crate::pipeline::build(ops, output, limits, asset_prefix).map_err(|e| match e {
            Error::Image(image_ops::Error::InvalidParams { field, message }) => {
                Error::invalid(field.replacen("ops[", "steps[", 1), message)
            }
            other => other,
        })
    }
}

/// What `format=auto` becomes for a request that sends `accept`.
pub fn negotiate(accept: Option<&str>) -> &'static str {
    let accepts = |mime: &str| {
        accept.unwrap_or("").split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let m = fields.next().unwrap_or("");
            let refused = fields.any(|f| f.replace(' ', "") == "q=0" || f.replace(' ', "") == "q=0.0");
            m.eq_ignore_ascii_case(mime) && !refused
        })
    };
    if accepts("image/avif") {
        "avif"
    } else if accepts("image/webp") {
        "webp"
    } else {
        LEGACY_FORMAT
    }
}

/// Parses a request path (`/v1/<key>/<steps>/<signature>`) and its query (`exp=<n>`) into
/// normal form. A malformed URL is invalid params naming the field.
pub fn parse(path: &str, query: Option<&str>) -> Result<Signed, Error> {
    let rest = path
        .strip_prefix(&format!("/{VERSION}/"))
        .ok_or_else(|| Error::invalid("path", format!("a rendition path starts with /{VERSION}/")))?;
    let (rest, signature) = rest.rsplit_once('/').ok_or_else(|| Error::invalid("signature", "missing"))?;
    let (key, steps) = rest.rsplit_once('/').ok_or_else(|| Error::invalid("key", "missing"))?;
    let key = decode(key, "key")?;
    crate::keys::check(&key).map_err(|why| Error::invalid("key", why))?;
    if key.ends_with('/') {
        return Err(Error::invalid("key", "a folder is not an image"));
    }
    let steps = parse_steps(steps)?;
    let expires = expiry(query)?;
    if signature.is_empty() {
        return Err(Error::invalid("signature", "missing"));
    }
    Ok(Signed { rendition: Rendition { key, steps, expires }, signature: signature.to_owned() })
}

/// The `exp` of a URL's query, the only query param a signed URL has.
fn expiry(query: Option<&str>) -> Result<Option<u64>, Error> {
    let mut expires = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("exp", n)) if expires.is_none() => {
                expires = Some(n.parse::<u64>().map_err(|_| Error::invalid("exp", "unix seconds"))?);
            }
            _ => {
                return Err(Error::invalid(
                    "query",
                    format!("{pair:?}: only exp=<unix seconds> is allowed, once"),
                ))
            }
        }
    }
    Ok(expires)
}

/// A signed URL of a stored output (what a trigger function or `/process` wrote):
/// `/o/<output key>/<signature>[?exp=<n>]`, the key encoded as in a rendition URL, signed over
/// `/o/<key>` (then `?exp=<n>`). Served from the output bucket as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUrl {
    /// The output key, decoded.
    pub key: String,
    pub expires: Option<u64>,
}

/// The first path segment of a stored-output URL.
pub const STORED_URL_PREFIX: &str = "o";

impl StoredUrl {
    /// What is signed: `/o/<key>`, then `?exp=<n>` when the URL expires.
    pub fn message(&self) -> String {
        let mut m = format!("/{STORED_URL_PREFIX}/{}", encode(&self.key, true));
        if let Some(exp) = self.expires {
            m.push_str(&format!("?exp={exp}"));
        }
        m
    }

    /// The signed URL path (with its query) for `key`.
    pub fn signed_path(&self, key: &[u8]) -> String {
        let sig = signature(key, &self.message());
        let mut path = format!("/{STORED_URL_PREFIX}/{}/{sig}", encode(&self.key, true));
        if let Some(exp) = self.expires {
            path.push_str(&format!("?exp={exp}"));
        }
        path
    }

    /// Parses `/o/<key>/<signature>` and its query; returns the URL and its signature.
    pub fn parse(path: &str, query: Option<&str>) -> Result<(StoredUrl, String), Error> {
        let rest = path.strip_prefix(&format!("/{STORED_URL_PREFIX}/")).ok_or_else(|| {
            Error::invalid("path", format!("a stored-output path starts with /{STORED_URL_PREFIX}/"))
        })?;
        let (key, signature) = rest.rsplit_once('/').ok_or_else(|| Error::invalid("signature", "missing"))?;
        let key = decode(key, "key")?;
        crate::keys::check(&key).map_err(|why| Error::invalid("key", why))?;
        if key.is_empty() || key.ends_with('/') {
            return Err(Error::invalid("key", "a folder is not an image"));
        }
        if signature.is_empty() {
            return Err(Error::invalid("signature", "missing"));
        }
        Ok((StoredUrl { key, expires: expiry(query)? }, signature.to_owned()))
    }

    /// Checks `signature` as [`Signed::verify`] does.
    pub fn verify(&self, signature: &str, keys: &[Vec<u8>], now: u64) -> Result<(), Error> {
        verify(&self.message(), signature, self.expires, keys, now)
    }
}

/// `base64url(HMAC-SHA256(key, message))`, no padding.
pub fn signature(key: &[u8], message: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_hmac());
    mac.update(message.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// HMAC takes keys of any length; this is never called.
fn unreachable_hmac() -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(b"k").unwrap_or_else(|_| unreachable_hmac())
}

impl Signed {
    /// Checks the signature against each active key (constant time) and the expiry against
    /// `now` (unix seconds). A forged, altered or expired URL is [`Error::Forbidden`].
    pub fn verify(&self, keys: &[Vec<u8>], now: u64) -> Result<(), Error> {
        verify(&self.rendition.message(), &self.signature, self.rendition.expires, keys, now)
    }
}

/// Checks `signature` over `message` against each key in constant time, then the expiry.
fn verify(
    message: &str,
    signature: &str,
    expires: Option<u64>,
    keys: &[Vec<u8>],
    now: u64,
) -> Result<(), Error> {
    let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature.as_bytes()) else {
        return Err(Error::Forbidden("the signature is not base64url".into()));
    };
    let valid = keys.iter().any(|key| {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else { return false };
        mac.update(message.as_bytes());
        mac.verify_slice(&given).is_ok()
    });
    if !valid {
        return Err(Error::Forbidden("the signature does not match the URL".into()));
    }
    if expires.is_some_and(|exp| exp < now) {
        return Err(Error::Forbidden("the URL has expired".into()));
    }
    Ok(())
}

/// Where the edge sends a request it accepts ([`viewer_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeRoute {
    /// A rendition, `format=auto` resolved: served from the output bucket at
    /// [`Rendition::stored_key`], rendered by the function on a miss.
    Rendition(Rendition),
    /// A stored output, served from the output bucket as it is.
    Stored(String),
}

impl EdgeRoute {
    /// The output-bucket key the CDN asks for.
    pub fn origin_key(&self) -> String {
        match self {
            EdgeRoute::Rendition(r) => r.stored_key(),
            EdgeRoute::Stored(key) => key.clone(),
        }
    }

    /// The URI the CDN sends to the S3 origin for [`EdgeRoute::origin_key`]: every byte outside
    /// the unreserved set (and `/`) percent-encoded, so the key's own `%XX` reach S3 as
    /// `%25XX` and S3's decoding gives back the key exactly.
    pub fn origin_uri(&self) -> String {
        format!("/{}", encode(&self.origin_key(), true))
    }

    /// What the edge passes to the render function in its `x-imgfn-request` header
    /// ([`crate::api::render::REQUEST_HEADER`]) for a rendition: the viewer's path as it came,
    /// then `?exp=<n>` when the URL expires (the render function parses and checks it again).
    /// `None` for a stored output, which only the output bucket serves.
    pub fn forwarded_request(&self, viewer_path: &str) -> Option<String> {
        match self {
            EdgeRoute::Rendition(r) => Some(match r.expires {
                Some(exp) => format!("{viewer_path}?exp={exp}"),
                None => viewer_path.to_owned(),
            }),
            EdgeRoute::Stored(_) => None,
        }
    }
}

/// What the edge does with a viewer's request, before any cache or origin: the CloudFront
/// Function (`cdn/viewer-request.js`) and the local edge both implement exactly this, checked
/// against the same vectors. `/v1/…` is parsed into normal form (a bad URL is `400` naming the
/// field), its signature and expiry checked (`403`), its key checked against the rendition
/// `prefixes` (`404`, as for a missing source), `format=auto` resolved from `accept` and its
/// stored key checked against S3's longest key (`400` naming `steps`); `/o/…` is checked the
/// same way (no prefix rule: it names an output); anything else is `404`.
pub fn viewer_request(
    path: &str,
    query: Option<&str>,
    accept: Option<&str>,
    keys: &[Vec<u8>],
    now: u64,
    prefixes: &[String],
) -> Result<EdgeRoute, Error> {
    if path.starts_with(&format!("/{VERSION}/")) {
        let mut signed = parse(path, query)?;
        signed.verify(keys, now)?;
        let key = &signed.rendition.key;
        if !prefixes.iter().any(|p| key.len() > p.len() && key.starts_with(p.as_str())) {
            return Err(Error::NotFound(key.clone()));
        }
        signed.rendition.negotiate(accept);
        signed.rendition.check_stored_key()?;
        Ok(EdgeRoute::Rendition(signed.rendition))
    } else if path.starts_with(&format!("/{STORED_URL_PREFIX}/")) {
        let (url, signature) = StoredUrl::parse(path, query)?;
        url.verify(&signature, keys, now)?;
        Ok(EdgeRoute::Stored(url.key))
    } else {
        Err(Error::NotFound(path.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_urls_have_one_normal_form() {
        let a = parse_steps("thumbnail,width=800;output,format=webp").unwrap();
        let b =
            parse_steps("RESIZE,fit=inside,Width=800,gravity=center;output,quality=80,format=webp").unwrap();
        let c = parse_steps("output,format=webp;thumbnail,width=800").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let r = Rendition { key: "originals/a b/ü+.jpg".into(), steps: a, expires: None };
        assert_eq!(r.steps_segment(), "thumbnail,width=800;output,format=webp");
        assert_eq!(r.key_segment(), "originals/a%20b/%C3%BC%2B.jpg");
        let w = parse_steps("watermark,text=%C2%A9%20ACME,color=%23000000").unwrap();
        assert_eq!(
            w[0].params,
            [("color".to_owned(), "#000000".to_owned()), ("text".to_owned(), "© ACME".to_owned())]
        );
        assert_eq!(w[0].encoded(), "watermark,color=%23000000,text=%C2%A9%20ACME");
        // A text watermark's size, colour and alignment spelled at their defaults.
        let spelled = parse_steps("watermark,text=x,color=%23ffffff,size=4%25,align=center").unwrap();
        assert_eq!(spelled, parse_steps("watermark,text=x").unwrap());
        // The source's quality is a word, kept as it is.
        let source = parse_steps("watermark,text=x;output,quality=source").unwrap();
        let r = Rendition { key: "a.jpg".into(), steps: source, expires: None };
        assert_eq!(r.steps_segment(), "watermark,text=x;output,quality=source");
        let p = r.pipeline(&Limits::default(), "assets/").unwrap();
        assert_eq!(p.output().quality, image_ops::Quality::Source);
        // Keeping the profile and the copyright are output flags; `false` is their default.
        let keep = parse_steps("thumbnail,width=8;output,keep_icc=true,keep_copyright=false").unwrap();
        let r = Rendition { key: "a.heic".into(), steps: keep, expires: None };
        assert_eq!(r.steps_segment(), "thumbnail,width=8;output,keep_icc=true");
        let p = r.pipeline(&Limits::default(), "assets/").unwrap();
        assert!(p.output().keep_icc && !p.output().keep_copyright);
        // AVIF chroma: "auto" is the default, "4:4:4" is kept, anything else names the field.
        let chroma = parse_steps("thumbnail,width=8;output,format=avif,chroma_subsampling=4:4:4").unwrap();
        let r = Rendition { key: "a.png".into(), steps: chroma, expires: None };
        // The normal form percent-encodes everything but RFC 3986's unreserved characters.
        assert_eq!(r.steps_segment(), "thumbnail,width=8;output,chroma_subsampling=4%3A4%3A4,format=avif");
        let p = r.pipeline(&Limits::default(), "assets/").unwrap();
        assert_eq!(p.output().chroma_subsampling, image_ops::encode::ChromaSubsampling::Cs444);
        let default = parse_steps("thumbnail,width=8;output,format=avif,chroma_subsampling=auto").unwrap();
        let r = Rendition { key: "a.png".into(), steps: default, expires: None };
        assert_eq!(r.steps_segment(), "thumbnail,width=8;output,format=avif");
        let bad = parse_steps("thumbnail,width=8;output,chroma_subsampling=4:2:2").unwrap();
        let r = Rendition { key: "a.png".into(), steps: bad, expires: None };
        let e = r.pipeline(&Limits::default(), "assets/").unwrap_err();
        assert_eq!(e.field(), Some("steps[1].chroma_subsampling"), "{e}");
        let bad = parse_steps("thumbnail,width=8;output,quality=best").unwrap();
        let r = Rendition { key: "a.jpg".into(), steps: bad, expires: None };
        let e = r.pipeline(&Limits::default(), "assets/").unwrap_err();
        assert_eq!(e.field(), Some("steps[1].quality"), "{e}");
    }

    #[test]
    fn defaults_come_from_the_registry() {
        let d = defaults("thumbnail");
        assert_eq!(d.get("fit").map(String::as_str), Some("inside"));
        assert_eq!(d.get("upscale").map(String::as_str), Some("false"));
        assert!(!d.contains_key("width"), "width has no default");
        let o = defaults(OUTPUT_STEP);
        assert_eq!(o.get("quality").map(String::as_str), Some("80"));
        assert!(!o.contains_key("format"));
        assert_eq!(defaults("watermark").get("opacity").map(String::as_str), Some("0.6"));
        assert_eq!(defaults("watermark").get("color").map(String::as_str), Some("#ffffff"), "implied");
        assert_eq!(defaults("watermark").get("size").map(String::as_str), Some("4%"), "implied");
        assert!(defaults("slice").is_empty() || !operations().any(|s| s.name == "slice"));
    }

    #[test]
    fn bad_urls_name_the_field() {
        let field = |p: &str| parse(p, None).unwrap_err().field().map(str::to_owned);
        assert_eq!(field("/v2/a.jpg/thumbnail,width=8/x").as_deref(), Some("path"));
        assert_eq!(field("/v1/a.jpg/slice,rows=2/x").as_deref(), Some("steps[0].op"));
        assert_eq!(field("/v1/a.jpg/thumbnail,width/x").as_deref(), Some("steps[0]"));
        assert_eq!(field("/v1/a.jpg/thumbnail,width=1,width=2/x").as_deref(), Some("steps[0].width"));
        assert_eq!(field("/v1/a/../b.jpg/thumbnail,width=1/x").as_deref(), Some("key"));
        assert_eq!(field("/v1/a.jpg/output,format=webp;output,quality=5/x").as_deref(), Some("steps[1]"));
        let p = parse("/v1/a.jpg/thumbnail,width=1/x", Some("exp=soon")).unwrap_err();
        assert_eq!(p.field(), Some("exp"));
    }

    #[test]
    fn signatures_verify_rotate_and_expire() {
        let r = Rendition {
            key: "originals/x.jpg".into(),
            steps: parse_steps("thumbnail,width=64").unwrap(),
            expires: Some(2_000),
        };
        let (old, new) = (b"old-key".to_vec(), b"new-key".to_vec());
        let path = r.signed_path(&old);
        let (p, q) = path.split_once('?').unwrap();
        let signed = parse(p, Some(q)).unwrap();
        assert!(signed.verify(&[new.clone(), old.clone()], 1_000).is_ok(), "the previous key still verifies");
        assert!(signed.verify(std::slice::from_ref(&new), 1_000).is_err(), "a retired key does not");
        assert!(signed.verify(std::slice::from_ref(&old), 2_001).is_err(), "expired");
        let tampered = parse(&p.replace("width=64", "width=65"), Some(q)).unwrap();
        assert!(tampered.verify(&[old], 1_000).is_err());
    }

    #[test]
    fn the_edge_refuses_a_stored_key_s3_cannot_hold() {
        let key = b"k".repeat(32);
        let prefixes = ["originals/".to_owned()];
        let long = Rendition {
            key: format!("originals/{}.jpg", "k".repeat(990)),
            // r/ + the key + / + the steps: 1026 bytes, over S3's 1024.
            steps: parse_steps("thumbnail,width=800").unwrap(),
            expires: None,
        };
        assert!(crate::keys::check(&long.key).is_ok(), "the source key itself fits");
        let e = viewer_request(&long.signed_path(&key), None, None, std::slice::from_ref(&key), 0, &prefixes)
            .unwrap_err();
        assert_eq!((e.status(), e.field()), (400, Some("steps")));
        let short = Rendition { key: "originals/a b.jpg".into(), ..long };
        let route = viewer_request(&short.signed_path(&key), None, None, &[key], 0, &prefixes).unwrap();
        assert_eq!(route.origin_uri(), "/r/originals/a%2520b.jpg/thumbnail%2Cwidth%3D800");
    }

    #[test]
    fn accept_headers_pick_the_format() {
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(negotiate(Some(chrome)), "avif");
        assert_eq!(negotiate(Some("image/avif;q=0, image/webp")), "webp");
        assert_eq!(negotiate(Some("IMAGE/AVIF")), "avif");
        // The format a negotiated rendition is written in.
        assert_eq!(OutputFormat::from_extension("avif"), Some(OutputFormat::Avif));
        assert_eq!(negotiate(Some("image/webp,*/*")), "webp");
        assert_eq!(negotiate(Some("image/webp;q=0,image/png")), LEGACY_FORMAT);
        assert_eq!(negotiate(None), LEGACY_FORMAT);
        assert_eq!(negotiate(Some("*/*")), LEGACY_FORMAT);
    }
}
