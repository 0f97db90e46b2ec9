//! The one job path every way in shares: a source object that HeadObject has seen, a pipeline
//! validated once, and a destination → the assets and the source are fetched, the pipeline
//! runs on a blocking thread (probing and decoding the input once), and the result is stored.
//!
//! The S3 runner ([`crate::runner`]) and `POST /process` ([`crate::api`]) differ only in where
//! the params come from, how the output is named ([`crate::keys`]) and how an outcome is
//! reported; everything between HeadObject and the last PutObject is here.
//!
//! Nothing partial is final: an image is one PutObject; a slice's tiles are written first and
//! its manifest last, so a manifest means every tile it lists is there (a retry after a failure
//! half-way rewrites the same tile keys).

use std::collections::HashMap;

use image_ops::decode::Probe;
use image_ops::ops::slice::Manifest;
use image_ops::{Assets, Encoded, Output, OutputFormat, Pipeline};
use serde_json::{json, Value};

use crate::s3::{Head, S3Store};
use crate::{keys, Error};

/// Cache-Control of outputs. Outputs are overwritten in place when their source is uploaded
/// again (deterministic keys), so they are NOT immutable: a day of caching bounds how long a
/// CDN or browser may serve a replaced output.
pub const OUTPUT_CACHE_CONTROL: &str = "public, max-age=86400";

/// Tiles uploaded at once when slicing.
const TILE_UPLOAD_CONCURRENCY: usize = 8;

/// The source of a job, as HeadObject saw it (size checked, ETag kept for the conditional
/// GetObject).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub head: &'a Head,
}

/// Where a job's result goes and what it is labelled with.
#[derive(Debug, Clone)]
pub struct Destination<'a> {
    pub bucket: &'a str,
    /// The key base ([`crate::keys`]): `<base>.<ext>`, or tiles and a manifest under `<base>/`;
    /// with [`Destination::exact`], the image's key itself.
    pub base: String,
    /// Store the image at `base` itself (a rendition, whose key is its cache key).
    pub exact: bool,
    /// The outputs' `Cache-Control`.
    pub cache_control: &'a str,
    /// Keep the encoded image in [`Stored::body`] (to answer with it).
    pub keep_body: bool,
    /// Who wrote it: the `imgfn-op` metadata and the manifest's `op`.
    pub op: &'a str,
    /// SHA-256 of the params: the `imgfn-params-sha256` metadata.
    pub params_sha256: String,
}

/// What a job stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// What the input's header said.
    pub input: Probe,
    pub input_bytes: u64,
    /// The image's key, or the manifest's.
    pub key: String,
    pub format: OutputFormat,
    /// The output image's size (for tiles: the whole image's).
    pub width: u32,
    pub height: u32,
    /// Bytes written (for tiles: all tiles).
    pub bytes: u64,
    /// Objects written (1, or tiles + manifest).
    pub objects: usize,
    /// The manifest document of a sliced image.
    pub manifest: Option<Value>,
    /// The stored image's ETag.
    pub etag: Option<String>,
    /// The encoded image, when [`Destination::keep_body`] asked for it.
    pub body: Option<Vec<u8>>,
}

impl Destination<'_> {
    /// A destination under `base` with the outputs' usual Cache-Control.
    pub fn new<'a>(bucket: &'a str, base: String, op: &'a str, params_sha256: String) -> Destination<'a> {
        Destination {
            bucket,
            base,
            exact: false,
            cache_control: OUTPUT_CACHE_CONTROL,
            keep_body: false,
            op,
            params_sha256,
        }
    }
}

/// Fetches the pipeline's assets (from `assets_bucket`) and the source, runs the pipeline and
/// stores the result. A missing asset is invalid params naming its field.
pub async fn run(
    s3: &S3Store,
    assets_bucket: &str,
    source: Source<'_>,
    pipeline: Pipeline,
    dest: Destination<'_>,
) -> Result<Stored, Error> {
    let assets = load_assets(s3, assets_bucket, &pipeline).await?;
    let limit = pipeline.limits().max_input_bytes;
    let input = s3.get(source.bucket, source.key, source.head.etag.as_deref(), limit).await?;
    let input_bytes = input.len() as u64;
    let rendered = tokio::task::spawn_blocking(move || pipeline.run(&input, &assets))
        .await
        .map_err(|e| Error::Internal(format!("image processing panicked: {e}")))??;

    let mut metadata = HashMap::new();
    metadata.insert("imgfn-source-key".to_owned(), crate::event::encode_key(source.key));
    metadata.insert(
        "imgfn-source-etag".to_owned(),
        source.head.etag.as_deref().unwrap_or("").trim_matches('"').to_owned(),
    );
    metadata.insert("imgfn-op".to_owned(), dest.op.to_owned());
    metadata.insert("imgfn-params-sha256".to_owned(), dest.params_sha256.clone());

    let mut stored = Stored {
        input: rendered.input,
        input_bytes,
        key: String::new(),
        format: OutputFormat::Jpeg,
        width: 0,
        height: 0,
        bytes: 0,
        objects: 0,
        manifest: None,
        etag: None,
        body: None,
    };
    match rendered.output {
        Output::Image(image) => {
            let key = if dest.exact {
                dest.base.clone()
            } else {
                keys::image_key(&dest.base, image.format.extension())
            };
            metadata.insert("imgfn-width".into(), image.width.to_string());
            metadata.insert("imgfn-height".into(), image.height.to_string());
            (stored.format, stored.width, stored.height) = (image.format, image.width, image.height);
            stored.bytes = image.bytes.len() as u64;
            let content_type = image.format.content_type();
            stored.body = dest.keep_body.then(|| image.bytes.clone());
            stored.etag =
                s3.put(dest.bucket, &key, image.bytes, content_type, dest.cache_control, &metadata).await?;
            (stored.key, stored.objects) = (key, 1);
        }
        Output::Tiles { manifest, tiles } => {
            (stored.format, stored.width, stored.height) = (manifest.format, manifest.width, manifest.height);
            stored.bytes = tiles.iter().map(|t| t.bytes.len() as u64).sum();
            stored.objects = tiles.len() + 1;
            let about = json!({"bucket": source.bucket, "key": source.key, "etag": source.head.etag});
            let document = write_tiles(s3, &dest, about, manifest, tiles, &metadata).await?;
            stored.key = keys::manifest_key(&dest.base);
            stored.manifest = Some(document);
        }
    }
    Ok(stored)
}

/// Fetches the assets `pipeline` names from `bucket`, each checked against the asset limit
/// from HeadObject first. A missing asset is invalid params naming its field.
async fn load_assets(s3: &S3Store, bucket: &str, pipeline: &Pipeline) -> Result<Assets, Error> {
    let mut assets = Assets::new();
    let limits = pipeline.limits();
    for asset in pipeline.assets() {
        if assets.contains_key(asset.name) {
            continue;
        }
        let missing = |e: Error| match e {
            Error::SourceNotFound { .. } | Error::SourceChanged { .. } => {
                Error::invalid(asset.field.as_str(), format!("asset {:?} does not exist", asset.name))
            }
            other => other,
        };
        let head = s3.head(bucket, asset.name).await.map_err(missing)?;
        limits.check_asset(&asset.field, asset.name, head.size)?;
        let bytes = s3.get(bucket, asset.name, head.etag.as_deref(), limits.max_asset_bytes).await;
        let bytes = bytes.map_err(|e| match e {
            Error::Image(image_ops::Error::InputTooLarge { bytes, .. }) => {
                limits.check_asset(&asset.field, asset.name, bytes).err().map_or(e, Error::from)
            }
            other => missing(other),
        })?;
        assets.insert(asset.name.to_owned(), bytes);
    }
    Ok(assets)
}

/// Uploads the tiles (keys from [`keys::tile_key`]), then the manifest LAST. Returns the
/// manifest document.
async fn write_tiles(
    s3: &S3Store,
    dest: &Destination<'_>,
    source: Value,
    manifest: Manifest,
    tiles: Vec<Encoded>,
    metadata: &HashMap<String, String>,
) -> Result<Value, Error> {
    let ext = manifest.format.extension();
    let mut listed = Vec::with_capacity(tiles.len());
    let mut pending = manifest.tiles.iter().zip(tiles).peekable();
    while pending.peek().is_some() {
        let mut uploads = tokio::task::JoinSet::new();
        for (info, tile) in pending.by_ref().take(TILE_UPLOAD_CONCURRENCY) {
            let key = keys::tile_key(&dest.base, info.row, info.col, ext);
            let mut entry = serde_json::to_value(info).map_err(|e| Error::Internal(e.to_string()))?;
            entry["key"] = Value::String(key.clone());
            listed.push(entry);
            let (s3, bucket, metadata) = (s3.clone(), dest.bucket.to_owned(), metadata.clone());
            let content_type = tile.format.content_type();
            let cache_control = dest.cache_control.to_owned();
            uploads.spawn(async move {
                s3.put(&bucket, &key, tile.bytes, content_type, &cache_control, &metadata).await.map(|_| ())
            });
        }
        while let Some(done) = uploads.join_next().await {
            done.map_err(|e| Error::Internal(format!("tile upload task: {e}")))??;
        }
    }
    let document = json!({
        "source": source,
        "op": dest.op,
        "width": manifest.width,
        "height": manifest.height,
        "rows": manifest.rows,
        "cols": manifest.cols,
        "format": manifest.format,
        "tiles": listed,
    });
    let body = serde_json::to_vec_pretty(&document).map_err(|e| Error::Internal(e.to_string()))?;
    let key = keys::manifest_key(&dest.base);
    s3.put(dest.bucket, &key, body, "application/json", dest.cache_control, metadata).await?;
    Ok(document)
}
