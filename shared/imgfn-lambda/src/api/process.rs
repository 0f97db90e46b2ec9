//! `POST /process`: run a pipeline over an uploaded object, store the result in the output
//! bucket under a key derived from the source ETag and the pipeline, answer its location.

use std::collections::HashMap;

use image_ops::{Op, Output, OutputFormat, OutputParams, Pipeline};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{in_scope, json_response, request, Api};
use crate::params::write_canonical;
use crate::runner::{load_assets, run_pipeline, write_tiles, Tiles, OUTPUT_CACHE_CONTROL};
use crate::{event, Error};

/// Largest manifest read back for a cached slice (1024 tiles of JSON fit easily).
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The `imgfn-op` metadata of outputs written by `/process`.
const PROCESS_OP: &str = "process";

impl Api {
    /// `POST /process` with `{key, ops?, output?}`. Params are validated before anything is
    /// fetched; the output key is `<processed prefix><scope>/<sha256>.<ext>` (slices:
    /// `<…>/<sha256>/r<row>-c<col>.<ext>` and `<…>/<sha256>/manifest.json`) where the hash
    /// covers the source ETag and the canonical pipeline, so a repeat finds the stored result
    /// (HeadObject) and answers `"cached": true` without recomputing.
    pub(super) async fn process(&self, scope: &str, req: &Request) -> Result<Response<Body>, Error> {
        let c = &self.config;
        let mut body = request::object(req.body().as_ref(), &["key", "ops", "output"])?;
        let key: String = request::require(&mut body, "key")?;
        let ops_json: Vec<Value> = request::take(&mut body, "ops")?.unwrap_or_default();
        let mut output_json: Map<String, Value> = request::take(&mut body, "output")?.unwrap_or_default();
        let mut ops = Vec::with_capacity(ops_json.len().min(32));
        for (i, op) in ops_json.iter().enumerate() {
            ops.push(request::parse::<Op>(op.clone(), &format!("ops[{i}]"))?);
        }
        let output: OutputParams = request::parse(Value::Object(output_json.clone()), "output")?;
        let mut pipeline = Pipeline { ops, output };
        pipeline.validate(&c.limits)?;
        for (field, name) in pipeline.assets() {
            if !name.starts_with(&c.asset_prefix) || name.len() == c.asset_prefix.len() {
                return Err(Error::invalid(
                    field,
                    format!("assets must be keys under {:?} in the source bucket", c.asset_prefix),
                ));
            }
        }

        // Only now touch S3. A key outside the caller's scope is "not found", like a missing one.
        let key = in_scope(&key, &self.source_scopes(scope))?;
        let head = self.s3.head(&c.source_bucket, key).await.map_err(|e| match e {
            Error::SourceNotFound { .. } => Error::NotFound(key.to_owned()),
            other => other,
        })?;
        head.check_size(&c.limits)?;
        let format = match pipeline.output.format {
            Some(f) => f,
            None => source_format(head.content_type.as_deref(), key).ok_or_else(|| {
                image_ops::Error::UnsupportedFormat(
                    "the source's format is unknown (no image Content-Type or extension): set output.format"
                        .into(),
                )
            })?,
        };
        pipeline.output.format = Some(format);
        output_json.insert(
            "format".into(),
            serde_json::to_value(format).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let etag = head.etag.clone().unwrap_or_default();
        let hash = output_hash(&etag, &ops_json, &output_json);
        let slicing = matches!(pipeline.ops.last(), Some(Op::Slice(_)));
        let base = format!("{}{scope}/{hash}", c.processed_prefix);

        if slicing {
            self.process_slices(key, &head.etag, &base, &hash, pipeline).await
        } else {
            let output_key = format!("{base}.{}", format.extension());
            if let Some(cached) = self.cached_image(&output_key).await? {
                return Ok(json_response(200, &cached));
            }
            let (input, assets) = self.fetch(key, &head.etag, &pipeline).await?;
            let (_, output) = run_pipeline(pipeline, input, assets, c.limits).await?;
            let Output::Image(image) = output else {
                return Err(Error::Internal("a pipeline without slice produced tiles".into()));
            };
            let mut metadata = output_metadata(key, &etag, &hash);
            metadata.insert("imgfn-width".into(), image.width.to_string());
            metadata.insert("imgfn-height".into(), image.height.to_string());
            let (width, height, bytes) = (image.width, image.height, image.bytes.len());
            let content_type = image.format.content_type();
            self.s3
                .put(
                    &c.output_bucket,
                    &output_key,
                    image.bytes,
                    content_type,
                    OUTPUT_CACHE_CONTROL,
                    &metadata,
                )
                .await?;
            let (url, expires_at) = self.presign_get(&output_key).await?;
            Ok(json_response(
                200,
                &json!({
                    "output_key": output_key, "url": url, "expires_at": expires_at,
                    "width": width, "height": height, "format": image.format, "bytes": bytes,
                    "cached": false,
                }),
            ))
        }
    }

    async fn process_slices(
        &self,
        key: &str,
        etag: &Option<String>,
        base: &str,
        hash: &str,
        pipeline: Pipeline,
    ) -> Result<Response<Body>, Error> {
        let c = &self.config;
        let manifest_key = format!("{base}/manifest.json");
        let (document, cached) = match self.cached_manifest(&manifest_key).await? {
            Some(document) => (document, true),
            None => {
                let (input, assets) = self.fetch(key, etag, &pipeline).await?;
                let (_, output) = run_pipeline(pipeline, input, assets, c.limits).await?;
                let Output::Tiles { manifest, tiles } = output else {
                    return Err(Error::Internal("a pipeline ending in slice produced one image".into()));
                };
                let metadata = output_metadata(key, etag.as_deref().unwrap_or(""), hash);
                let source = json!({"bucket": c.source_bucket, "key": key, "etag": etag});
                let tiles = Tiles { source, op: PROCESS_OP, manifest, tiles, metadata: &metadata };
                let tile_key = |row, col, ext: &str| format!("{base}/r{row}-c{col}.{ext}");
                (write_tiles(&self.s3, &c.output_bucket, tiles, &tile_key, &manifest_key).await?, false)
            }
        };
        let (url, expires_at) = self.presign_get(&manifest_key).await?;
        let mut tiles = Vec::new();
        for tile in document["tiles"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let Some(tile_key) = tile["key"].as_str() else { continue };
            let (tile_url, _) = self.presign_get(tile_key).await?;
            let mut entry = tile.clone();
            entry["url"] = Value::from(tile_url);
            tiles.push(entry);
        }
        Ok(json_response(
            200,
            &json!({
                "output_key": manifest_key, "manifest_key": manifest_key, "url": url, "expires_at": expires_at,
                "width": document["width"], "height": document["height"], "format": document["format"],
                "rows": document["rows"], "cols": document["cols"], "tiles": tiles, "cached": cached,
            }),
        ))
    }

    /// The source bytes (conditional on the ETag HeadObject saw) and the pipeline's assets.
    async fn fetch(
        &self,
        key: &str,
        etag: &Option<String>,
        pipeline: &Pipeline,
    ) -> Result<(Vec<u8>, image_ops::Assets), Error> {
        let c = &self.config;
        let assets = load_assets(&self.s3, &c.source_bucket, pipeline, c.limits.max_asset_bytes).await?;
        let input =
            self.s3.get(&c.source_bucket, key, etag.as_deref(), c.limits.max_input_bytes).await.map_err(
                |e| match e {
                    Error::SourceNotFound { .. } => Error::NotFound(key.to_owned()),
                    other => other,
                },
            )?;
        Ok((input, assets))
    }

    /// The response for an image stored by an earlier identical request, if any.
    async fn cached_image(&self, output_key: &str) -> Result<Option<Value>, Error> {
        let head = match self.s3.head(&self.config.output_bucket, output_key).await {
            Ok(head) => head,
            Err(Error::SourceNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let dimension = |name: &str| head.metadata.get(name).and_then(|v| v.parse::<u32>().ok());
        let (Some(width), Some(height)) = (dimension("imgfn-width"), dimension("imgfn-height")) else {
            return Ok(None); // not written by us as expected: recompute and overwrite
        };
        let format = source_format(head.content_type.as_deref(), output_key);
        let (url, expires_at) = self.presign_get(output_key).await?;
        Ok(Some(json!({
            "output_key": output_key, "url": url, "expires_at": expires_at,
            "width": width, "height": height, "format": format, "bytes": head.size, "cached": true,
        })))
    }

    /// The manifest document stored by an earlier identical slicing request, if any.
    async fn cached_manifest(&self, manifest_key: &str) -> Result<Option<Value>, Error> {
        let bucket = &self.config.output_bucket;
        let head = match self.s3.head(bucket, manifest_key).await {
            Ok(head) => head,
            Err(Error::SourceNotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let body = match self.s3.get(bucket, manifest_key, head.etag.as_deref(), MAX_MANIFEST_BYTES).await {
            Ok(body) => body,
            Err(Error::SourceNotFound { .. } | Error::SourceChanged { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(serde_json::from_slice::<Value>(&body).ok().filter(|d| d["tiles"].is_array()))
    }
}

/// The output format for a source without an explicit `output.format`: from its Content-Type
/// (signed at upload), else from its key's extension.
fn source_format(content_type: Option<&str>, key: &str) -> Option<OutputFormat> {
    let from_type = content_type.map(|t| t.trim().to_ascii_lowercase()).and_then(|t| match t.as_str() {
        "image/jpeg" | "image/jpg" => Some(OutputFormat::Jpeg),
        "image/png" => Some(OutputFormat::Png),
        "image/webp" => Some(OutputFormat::Webp),
        "image/gif" => Some(OutputFormat::Gif),
        _ => None,
    });
    from_type.or_else(|| {
        let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "jpg" | "jpeg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::Webp),
            "gif" => Some(OutputFormat::Gif),
            _ => None,
        }
    })
}

/// SHA-256 (hex) of the source ETag and the canonical pipeline (sorted keys, resolved format).
fn output_hash(etag: &str, ops: &[Value], output: &Map<String, Value>) -> String {
    let mut canonical = String::new();
    write_canonical(&json!({"ops": ops, "output": output}), &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(etag.trim_matches('"').as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn output_metadata(key: &str, etag: &str, hash: &str) -> HashMap<String, String> {
    let mut metadata = HashMap::new();
    metadata.insert("imgfn-source-key".to_owned(), event::encode_key(key));
    metadata.insert("imgfn-source-etag".to_owned(), etag.trim_matches('"').to_owned());
    metadata.insert("imgfn-op".to_owned(), PROCESS_OP.to_owned());
    metadata.insert("imgfn-params-sha256".to_owned(), hash.to_owned());
    metadata
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ignores_key_order_but_not_values_or_etag() {
        let ops = [json!({"op": "resize", "width": 10, "height": 20})];
        let reordered = [json!({"height": 20, "width": 10, "op": "resize"})];
        let out: Map<String, Value> = serde_json::from_value(json!({"format": "png"})).unwrap_or_default();
        let h = output_hash("\"e1\"", &ops, &out);
        assert_eq!(h, output_hash("e1", &reordered, &out));
        assert_ne!(h, output_hash("e2", &ops, &out));
        assert_ne!(h, output_hash("e1", &[json!({"op": "resize", "width": 11, "height": 20})], &out));
        assert_eq!(h.len(), 64);
    }

    #[test]
    fn format_from_content_type_then_extension() {
        assert_eq!(source_format(Some("image/png"), "a.jpg"), Some(OutputFormat::Png));
        assert_eq!(source_format(Some("binary/octet-stream"), "a.JPG"), Some(OutputFormat::Jpeg));
        assert_eq!(source_format(None, "a"), None);
    }
}
