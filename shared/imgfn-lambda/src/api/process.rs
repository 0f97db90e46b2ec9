//! `POST /process`: run a pipeline over an uploaded object along the one job path
//! ([`crate::job`]), stored in the output bucket under a key derived from the source ETag and
//! the canonical pipeline; answer its location.

use image_ops::{OutputFormat, Pipeline};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};

use super::{in_scope, json_response, request, Api};
use crate::job::{self, Destination, Source, Stored};
use crate::params::{canonical, sha256_hex};
use crate::s3::Head;
use crate::{keys, Error};

/// Largest manifest read back for a cached slice (1024 tiles of JSON fit easily).
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The `imgfn-op` metadata of outputs written by `/process`.
const PROCESS_OP: &str = "process";

impl Api {
    /// `POST /process` with `{key, ops?, output?}`. Params are validated before anything is
    /// fetched; the output's key base is `<processed prefix><scope>/<sha256>` where the hash
    /// covers the source ETag and the canonical pipeline (every default spelled out, keys
    /// sorted), so a repeat, however it is written, finds the stored result (HeadObject) and
    /// answers `"cached": true` without recomputing.
    pub(super) async fn process(&self, scope: &str, req: &Request) -> Result<Response<Body>, Error> {
        let c = &self.config;
        let mut body = request::object(req.body().as_ref(), &["key", "ops", "output"])?;
        let key: String = request::require(&mut body, "key")?;
        let ops_json: Vec<Value> = request::take(&mut body, "ops")?.unwrap_or_default();
        let output_json: Map<String, Value> = request::take(&mut body, "output")?.unwrap_or_default();
        let mut ops = Vec::with_capacity(ops_json.len().min(32));
        for (i, op) in ops_json.into_iter().enumerate() {
            ops.push(crate::pipeline::op(op, &format!("ops[{i}]"))?);
        }
        let output = crate::pipeline::output(Value::Object(output_json), "output")?;
        let pipeline = crate::pipeline::build(ops, output, &c.limits, &c.asset_prefix)?;

        // Only now touch S3. A key outside the caller's scope is "not found", like a missing one.
        if let Err(why) = keys::check(&key) {
            return Err(Error::invalid("key", why));
        }
        let key = in_scope(&key, &self.source_scopes(scope))?;
        let not_found = |e: Error| match e {
            Error::SourceNotFound { key: gone, .. } if gone == key => Error::NotFound(key.to_owned()),
            other => other,
        };
        let head = self.s3.head(&c.source_bucket, key).await.map_err(not_found)?;
        head.check_size(&c.limits)?;
        let format = match pipeline.output().format {
            Some(f) => f,
            None => OutputFormat::of_object(head.content_type.as_deref(), key).ok_or_else(|| {
                image_ops::Error::UnsupportedFormat(
                    "the source's format is unknown (no image Content-Type or extension): set output.format"
                        .into(),
                )
            })?,
        };
        let pipeline = pipeline.with_format(format);
        let spec = serde_json::to_value(pipeline.spec()).map_err(|e| Error::Internal(e.to_string()))?;
        let etag = head.etag.as_deref().unwrap_or("").trim_matches('"');
        let hash = sha256_hex(&[etag.as_bytes(), b"\n", canonical(&spec).as_bytes()]);
        let base = keys::processed_base(&c.processed_prefix, scope, &hash);

        let answer = match self.cached(&base, &pipeline, format).await? {
            Some(answer) => answer,
            None => {
                let source = Source { bucket: &c.source_bucket, key, head: &head };
                let dest = Destination::new(&c.output_bucket, base, PROCESS_OP, hash);
                let stored = job::run(&self.s3, &c.source_bucket, source, pipeline, dest).await;
                Answer::fresh(stored.map_err(not_found)?)
            }
        };
        self.answer(answer).await
    }

    /// What an earlier identical request stored, if it is there.
    async fn cached(
        &self,
        base: &str,
        pipeline: &Pipeline,
        format: OutputFormat,
    ) -> Result<Option<Answer>, Error> {
        let bucket = &self.config.output_bucket;
        let key = match pipeline.tiles() {
            Some(_) => keys::manifest_key(base),
            None => keys::image_key(base, format.extension()),
        };
        let head = match self.s3.head(bucket, &key).await {
            Ok(head) => head,
            Err(Error::SourceNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match pipeline.tiles() {
            Some(_) => self.cached_manifest(base, &key, &head).await,
            None => Ok(cached_image(&key, &head, format)),
        }
    }

    /// The manifest document stored by an earlier identical slicing request. Its tiles' keys
    /// are presigned for the caller, so each must be a tile key under the request's own base:
    /// a manifest that says otherwise was not written by this code and is rewritten.
    async fn cached_manifest(&self, base: &str, key: &str, head: &Head) -> Result<Option<Answer>, Error> {
        let bucket = &self.config.output_bucket;
        let body = match self.s3.get(bucket, key, head.etag.as_deref(), MAX_MANIFEST_BYTES).await {
            Ok(body) => body,
            Err(Error::SourceNotFound { .. } | Error::SourceChanged { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(document) = serde_json::from_slice::<Value>(&body).ok().filter(|d| d["tiles"].is_array())
        else {
            return Ok(None); // not written by us as expected: recompute and overwrite
        };
        let format: Option<OutputFormat> = serde_json::from_value(document["format"].clone()).ok();
        let dimension = |name: &str| document[name].as_u64().and_then(|v| u32::try_from(v).ok());
        let (Some(format), Some(width), Some(height)) = (format, dimension("width"), dimension("height"))
        else {
            return Ok(None);
        };
        let tiles = document["tiles"].as_array().map(Vec::as_slice).unwrap_or_default();
        let ours = |tile: &Value| {
            let (Some(row), Some(col)) = (tile["row"].as_u64(), tile["col"].as_u64()) else { return false };
            let (Ok(row), Ok(col)) = (u32::try_from(row), u32::try_from(col)) else { return false };
            tile["key"].as_str() == Some(keys::tile_key(base, row, col, format.extension()).as_str())
        };
        if !tiles.iter().all(ours) {
            return Ok(None);
        }
        Ok(Some(Answer {
            key: key.to_owned(),
            format,
            width,
            height,
            bytes: 0,
            manifest: Some(document),
            cached: true,
        }))
    }

    /// The response: the stored object's location as presigned GETs (each tile's too).
    async fn answer(&self, stored: Answer) -> Result<Response<Body>, Error> {
        let cached = stored.cached;
        let (url, expires_at) = self.presign_get(&stored.key);
        let Some(document) = stored.manifest else {
            let mut body = json!({
                "output_key": stored.key, "url": url, "expires_at": expires_at,
                "width": stored.width, "height": stored.height, "format": stored.format,
                "bytes": stored.bytes, "cached": cached,
            });
            if let Some(cdn_url) = self.cdn_url(&stored.key).await {
                body["cdn_url"] = Value::from(cdn_url);
            }
            return Ok(json_response(200, &body));
        };
        let mut tiles = Vec::new();
        for tile in document["tiles"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(tile_key) = tile["key"].as_str() else { continue };
            let (tile_url, _) = self.presign_get(tile_key);
            let mut entry = tile.clone();
            entry["url"] = Value::from(tile_url);
            if let Some(cdn_url) = self.cdn_url(tile_key).await {
                entry["cdn_url"] = Value::from(cdn_url);
            }
            tiles.push(entry);
        }
        Ok(json_response(
            200,
            &json!({
                "output_key": stored.key, "manifest_key": stored.key, "url": url, "expires_at": expires_at,
                "width": document["width"], "height": document["height"], "format": document["format"],
                "rows": document["rows"], "cols": document["cols"], "tiles": tiles, "cached": cached,
            }),
        ))
    }
}

/// What the response describes: a result just stored, or one an earlier request stored.
struct Answer {
    key: String,
    format: OutputFormat,
    width: u32,
    height: u32,
    bytes: u64,
    manifest: Option<Value>,
    cached: bool,
}

impl Answer {
    fn fresh(s: Stored) -> Answer {
        Answer {
            key: s.key,
            format: s.format,
            width: s.width,
            height: s.height,
            bytes: s.bytes,
            manifest: s.manifest,
            cached: false,
        }
    }
}

/// An image stored by an earlier identical request, as its HeadObject describes it; `None`
/// when it was not written by us as expected (then it is recomputed and overwritten).
fn cached_image(key: &str, head: &Head, format: OutputFormat) -> Option<Answer> {
    let dimension = |name: &str| head.metadata.get(name).and_then(|v| v.parse::<u32>().ok());
    let (width, height) = (dimension("imgfn-width")?, dimension("imgfn-height")?);
    Some(Answer {
        key: key.to_owned(),
        format,
        width,
        height,
        bytes: head.size,
        manifest: None,
        cached: true,
    })
}
