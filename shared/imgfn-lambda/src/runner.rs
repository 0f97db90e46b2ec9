//! The per-record runner: one S3 object in, its outputs (or its error record) out. Every
//! function binary hands its [`crate::OpKind`] to [`Function`]; nothing here knows which
//! operation runs beyond the params it builds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use image_ops::{Assets, Output};
use lambda_runtime::tracing::{self, error, info, warn, Instrument};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

use crate::event::{self, ObjectRef};
use crate::params::PARAMS_METADATA_KEY;
use crate::s3::S3Store;
use crate::{keys, Config, Error, Outcome};

/// Cache-Control of outputs. Outputs are overwritten in place when their source is uploaded
/// again (deterministic keys), so they are NOT immutable: a day of caching bounds how long a
/// CDN or browser may serve a replaced thumbnail.
pub const OUTPUT_CACHE_CONTROL: &str = "public, max-age=86400";

/// Tiles uploaded at once when slicing.
const TILE_UPLOAD_CONCURRENCY: usize = 8;

/// A configured function: its config and its S3 store, built once at init.
#[derive(Debug, Clone)]
pub struct Function {
    config: Arc<Config>,
    s3: S3Store,
}

/// What a successfully processed record produced (logged as fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub input_bytes: u64,
    pub input_width: u32,
    pub input_height: u32,
    pub output_bytes: u64,
    pub output_width: u32,
    pub output_height: u32,
    /// Objects written (1, or tiles + manifest).
    pub objects: usize,
    /// The first object written (the image, or the manifest).
    pub key: String,
}

impl Function {
    pub fn new(config: Config, s3: S3Store) -> Function {
        Function { config: Arc::new(config), s3 }
    }

    /// Serves invocations until the runtime stops.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let this = self.clone();
            async move { this.handle(event).await }
        }))
        .await
    }

    /// Handles one invocation: every record is processed, one after the other (image work is
    /// CPU-bound and memory-heavy), independently of the others. Returns `Err` when any record
    /// failed transiently, after all records were processed, so Lambda retries the event
    /// (records that succeeded are redone then, overwriting the same keys).
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<(), lambda_runtime::Error> {
        let request_id = event.context.request_id.clone();
        let records = event::records(&event.payload).inspect_err(|e| {
            // No bucket and key to write an error record for: fail so the event lands in the
            // on-failure destination, where it stays visible.
            error!(op = %self.config.op, error = %e, "unrecognised event");
        })?;
        let total = records.len();
        let mut transient = 0usize;
        for (index, record) in records.into_iter().enumerate() {
            let failed = match record {
                Ok(object) => {
                    let span =
                        tracing::info_span!("record", index, bucket = %object.bucket, key = %object.key);
                    self.record(&object, &request_id).instrument(span).await
                }
                Err(e) => {
                    warn!(op = %self.config.op, index, code = e.code(), error = %e, "record skipped");
                    false
                }
            };
            transient += usize::from(failed);
        }
        if transient > 0 {
            return Err(
                format!("{transient} of {total} records failed transiently; Lambda will retry").into()
            );
        }
        Ok(())
    }

    /// Processes one record and applies its outcome. Returns true when it failed transiently.
    async fn record(&self, object: &ObjectRef, request_id: &str) -> bool {
        let op = self.config.op;
        let started = Instant::now();
        let mut etag = None;
        let result = self.process(object, &mut etag).await;
        let ms = started.elapsed().as_millis() as u64;
        let err = match result {
            Ok(p) => {
                info!(
                    %op, bucket = %object.bucket, key = %object.key,
                    input_bytes = p.input_bytes, input_width = p.input_width, input_height = p.input_height,
                    output_bytes = p.output_bytes, output_width = p.output_width, output_height = p.output_height,
                    objects = p.objects, output_key = %p.key, ms, "processed"
                );
                return false;
            }
            Err(e) => e,
        };
        match err.outcome() {
            Outcome::Skip => {
                warn!(%op, bucket = %object.bucket, key = %object.key, code = err.code(), error = %err, ms, "skipped");
                false
            }
            Outcome::Permanent => {
                // An expected client error: logged as a warning, never as an error.
                warn!(
                    %op, bucket = %object.bucket, key = %object.key, code = err.code(),
                    field = err.field(), error = %err, ms, "rejected"
                );
                match self.write_error_record(object, etag.as_deref(), &err, request_id).await {
                    Ok(()) => false,
                    Err(e) => {
                        error!(%op, bucket = %object.bucket, key = %object.key, error = %e, "writing the error record failed");
                        true
                    }
                }
            }
            Outcome::Transient => {
                error!(%op, bucket = %object.bucket, key = %object.key, code = err.code(), error = %err, ms, "failed, will retry");
                true
            }
        }
    }

    /// The source key without the trigger prefix, or the reason the record is refused.
    fn admit<'k>(&self, object: &'k ObjectRef) -> Result<&'k str, Error> {
        let c = &self.config;
        if let Some(source) = &c.source_bucket {
            if object.bucket != *source {
                return Err(Error::Refused(format!("bucket {:?} is not IMGFN_SOURCE_BUCKET", object.bucket)));
            }
        }
        // Loop guard: whatever the notification configuration says, never process what this
        // code writes (outputs and error records live in the output bucket).
        if object.bucket == c.output_bucket {
            return Err(Error::Refused("loop guard: the record comes from the output bucket".into()));
        }
        if object.key.starts_with(&c.error_prefix) {
            return Err(Error::Refused("loop guard: the key is under the error prefix".into()));
        }
        if object.key.starts_with(&c.asset_prefix) {
            return Err(Error::Refused("assets are not processed".into()));
        }
        let rest = object
            .key
            .strip_prefix(&c.trigger_prefix)
            .ok_or_else(|| Error::Refused(format!("the key is not under {:?}", c.trigger_prefix)))?;
        if rest.is_empty() || rest.ends_with('/') {
            return Err(Error::Refused("folder marker".into()));
        }
        Ok(rest)
    }

    async fn process(&self, object: &ObjectRef, etag_out: &mut Option<String>) -> Result<Processed, Error> {
        let c = &self.config;
        let rest = self.admit(object)?;
        let head = self.s3.head(&object.bucket, &object.key).await?;
        etag_out.clone_from(&head.etag);
        head.check_size(&c.limits)?;
        let request = match head.metadata.get(PARAMS_METADATA_KEY) {
            Some(json) => c.defaults.with_overrides(json)?,
            None => c.defaults.clone(),
        };
        let pipeline = request.pipeline(&c.limits, &c.asset_prefix)?;
        let assets = self.assets(&object.bucket, &pipeline).await?;
        let input =
            self.s3.get(&object.bucket, &object.key, head.etag.as_deref(), c.limits.max_input_bytes).await?;

        let input_bytes = input.len() as u64;
        let (probe, output) = run_pipeline(pipeline, input, assets, c.limits).await?;

        let mut metadata = HashMap::new();
        metadata.insert("imgfn-source-key".to_owned(), event::encode_key(&object.key));
        metadata.insert(
            "imgfn-source-etag".to_owned(),
            head.etag.as_deref().unwrap_or("").trim_matches('"').to_owned(),
        );
        metadata.insert("imgfn-op".to_owned(), c.op.name().to_owned());
        metadata.insert("imgfn-params-sha256".to_owned(), request.sha256());

        let mut processed = Processed {
            input_bytes,
            input_width: probe.width,
            input_height: probe.height,
            output_bytes: 0,
            output_width: 0,
            output_height: 0,
            objects: 0,
            key: String::new(),
        };
        let op = c.op.name();
        match output {
            Output::Image(image) => {
                let key = keys::image_key(op, rest, image.format.extension());
                processed.output_bytes = image.bytes.len() as u64;
                (processed.output_width, processed.output_height) = (image.width, image.height);
                let content_type = image.format.content_type();
                self.s3
                    .put(&c.output_bucket, &key, image.bytes, content_type, OUTPUT_CACHE_CONTROL, &metadata)
                    .await?;
                processed.objects = 1;
                processed.key = key;
            }
            Output::Tiles { manifest, tiles } => {
                processed.output_bytes = tiles.iter().map(|t| t.bytes.len() as u64).sum();
                (processed.output_width, processed.output_height) = (manifest.width, manifest.height);
                processed.objects = tiles.len() + 1;
                let source = json!({"bucket": object.bucket, "key": object.key, "etag": head.etag});
                let tile_key = |row, col, ext: &str| keys::tile_key(op, rest, row, col, ext);
                let manifest_key = keys::manifest_key(op, rest);
                let tiles = Tiles { source, op, manifest, tiles, metadata: &metadata };
                write_tiles(&self.s3, &c.output_bucket, tiles, &tile_key, &manifest_key).await?;
                processed.key = manifest_key;
            }
        }

        // A successful run supersedes an error record left by an earlier upload of this key.
        let error_key = keys::error_key(&c.error_prefix, op, rest);
        if let Err(e) = self.s3.delete(&c.output_bucket, &error_key).await {
            warn!(error = %e, key = %error_key, "could not delete a stale error record");
        }
        Ok(processed)
    }

    /// Fetches the assets the pipeline names (keys under the asset prefix of the source
    /// bucket), each checked against `max_asset_bytes` from HeadObject first.
    async fn assets(&self, bucket: &str, pipeline: &image_ops::Pipeline) -> Result<Assets, Error> {
        let assets = load_assets(&self.s3, bucket, pipeline, self.config.limits.max_asset_bytes).await;
        assets.map_err(|e| match e {
            Error::Image(image_ops::Error::InvalidParams { field, message }) => {
                Error::invalid(field.replace("ops[0]", "params"), message)
            }
            other => other,
        })
    }

    /// Writes `<error prefix><op>/<rest>.json` to the output bucket.
    async fn write_error_record(
        &self,
        object: &ObjectRef,
        etag: Option<&str>,
        err: &Error,
        request_id: &str,
    ) -> Result<(), Error> {
        let c = &self.config;
        let rest = object.key.strip_prefix(&c.trigger_prefix).unwrap_or(&object.key);
        let key = keys::error_key(&c.error_prefix, c.op.name(), rest);
        let record = json!({
            "code": err.code(),
            "message": err.to_string(),
            "field": err.field(),
            "op": c.op.name(),
            "source": {"bucket": object.bucket, "key": object.key, "etag": etag},
            "request_id": request_id,
        });
        let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
        let mut metadata = HashMap::new();
        metadata.insert("imgfn-source-key".to_owned(), event::encode_key(&object.key));
        metadata.insert("imgfn-op".to_owned(), c.op.name().to_owned());
        self.s3.put(&c.output_bucket, &key, body, "application/json", "no-cache", &metadata).await
    }
}

/// Fetches the assets `pipeline` names (keys under the asset prefix of `bucket`), each checked
/// against `limit` from HeadObject first. A missing asset is invalid params naming its field.
pub(crate) async fn load_assets(
    s3: &S3Store,
    bucket: &str,
    pipeline: &image_ops::Pipeline,
    limit: u64,
) -> Result<Assets, Error> {
    let mut assets = Assets::new();
    for (field, name) in pipeline.assets() {
        if assets.contains_key(name) {
            continue;
        }
        let missing = |e: Error| match e {
            Error::SourceNotFound { .. } | Error::SourceChanged { .. } => {
                Error::invalid(field.as_str(), format!("asset {name:?} does not exist"))
            }
            other => other,
        };
        let head = s3.head(bucket, name).await.map_err(missing)?;
        if head.size > limit {
            return Err(image_ops::Error::InputTooLarge { bytes: head.size, limit }.into());
        }
        let bytes = s3.get(bucket, name, head.etag.as_deref(), limit).await.map_err(missing)?;
        assets.insert(name.to_owned(), bytes);
    }
    Ok(assets)
}

/// Probes `input` and runs `pipeline` over it on a blocking thread (image work is CPU-bound).
/// A panic inside image processing becomes [`Error::Internal`].
pub(crate) async fn run_pipeline(
    pipeline: image_ops::Pipeline,
    input: Vec<u8>,
    assets: Assets,
    limits: image_ops::Limits,
) -> Result<(image_ops::decode::Probe, Output), Error> {
    let (probe, output) = tokio::task::spawn_blocking(move || {
        let probe = image_ops::decode::probe(&input, &limits)?;
        let output = pipeline.run(&input, &assets, &limits)?;
        Ok::<_, image_ops::Error>((probe, output))
    })
    .await
    .map_err(|e| Error::Internal(format!("image processing panicked: {e}")))??;
    Ok((probe, output))
}

/// A sliced image to store: its tiles, their manifest, and what the manifest document says
/// about where they came from.
pub(crate) struct Tiles<'a> {
    /// The manifest's `source` (bucket, key, etag).
    pub source: Value,
    /// The manifest's `op`.
    pub op: &'a str,
    pub manifest: image_ops::ops::slice::Manifest,
    pub tiles: Vec<image_ops::Encoded>,
    /// User metadata of every tile and of the manifest.
    pub metadata: &'a HashMap<String, String>,
}

/// Uploads the tiles to `bucket` (keys from `tile_key(row, col, ext)`), then the manifest LAST
/// at `manifest_key`: a manifest means every tile it lists is there. After a transient failure
/// half-way, a retry rewrites the same tile keys. Returns the manifest document.
pub(crate) async fn write_tiles(
    s3: &S3Store,
    bucket: &str,
    t: Tiles<'_>,
    tile_key: &(dyn Fn(u32, u32, &str) -> String + Sync),
    manifest_key: &str,
) -> Result<Value, Error> {
    let Tiles { source, op, manifest, tiles, metadata } = t;
    let ext = manifest.format.extension();
    let mut listed = Vec::with_capacity(tiles.len());
    let mut pending = manifest.tiles.iter().zip(tiles).peekable();
    while pending.peek().is_some() {
        let mut uploads = tokio::task::JoinSet::new();
        for (info, tile) in pending.by_ref().take(TILE_UPLOAD_CONCURRENCY) {
            let key = tile_key(info.row, info.col, ext);
            let mut entry = serde_json::to_value(info).map_err(|e| Error::Internal(e.to_string()))?;
            entry["key"] = Value::String(key.clone());
            listed.push(entry);
            let (s3, bucket, metadata) = (s3.clone(), bucket.to_owned(), metadata.clone());
            let content_type = tile.format.content_type();
            uploads.spawn(async move {
                s3.put(&bucket, &key, tile.bytes, content_type, OUTPUT_CACHE_CONTROL, &metadata).await
            });
        }
        while let Some(done) = uploads.join_next().await {
            done.map_err(|e| Error::Internal(format!("tile upload task: {e}")))??;
        }
    }
    let document = json!({
        "source": source,
        "op": op,
        "width": manifest.width,
        "height": manifest.height,
        "rows": manifest.rows,
        "cols": manifest.cols,
        "format": manifest.format,
        "tiles": listed,
    });
    let body = serde_json::to_vec_pretty(&document).map_err(|e| Error::Internal(e.to_string()))?;
    s3.put(bucket, manifest_key, body, "application/json", OUTPUT_CACHE_CONTROL, metadata).await?;
    Ok(document)
}
