//! Fresh after an overwrite (`functions/refresh`): when a source under a rendition prefix is
//! written or deleted, its stored renditions (`r/<key>/…` in the output bucket) are deleted and
//! the CDN's copies invalidated, so the next request renders the new image.
//!
//! Deployed, S3 sends the source bucket's events to EventBridge, and a rule on the rendition
//! prefixes ("Object Created", "Object Deleted") invokes this function: S3 notifications cannot
//! be used, because a trigger function already listens for ObjectCreated under the same
//! prefixes. Locally, `imgfn-local` hands it the same EventBridge event for every object
//! written or deleted in its source bucket.
//!
//! Invalidated paths (CloudFront matches both the viewer's URI and the URI the viewer-request
//! function rewrote it to, so both are listed, as CloudFront's documentation advises):
//! `/v1/<key>/*` and `/r/<key>/*` for renditions; for a source under a trigger prefix, also the
//! trigger's output, `/o/<output stem>*` and `/<output stem>*`. Nothing is invalidated when no
//! rendition was stored and no output could be cached, so uploads that were never rendered
//! cost no invalidation.

use std::time::{SystemTime, UNIX_EPOCH};

use image_ops::ops;
use serde_json::Value;
use tracing::{info, warn};

use crate::api::ApiConfig;
use crate::rendition::{self, encode};
use crate::s3::S3Store;
use crate::{keys, Error};

/// Most stored renditions of one source deleted per event (every width and format of an image
/// stays far below).
const MAX_RENDITIONS: usize = 10_000;

/// What one event came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// The source key the event named (decoded).
    pub key: String,
    /// Stored renditions deleted.
    pub deleted: usize,
    /// Paths invalidated at the CDN (empty without one).
    pub invalidated: Vec<String>,
}

/// The refresh function: the buckets and rendition prefixes of the [`ApiConfig`], and the CDN.
#[derive(Debug, Clone)]
pub struct Refresh {
    s3: S3Store,
    source_bucket: String,
    output_bucket: String,
    prefixes: Vec<String>,
    cdn: Option<Cdn>,
}

#[derive(Debug, Clone)]
struct Cdn {
    client: crate::aws::AwsClient,
    distribution_id: String,
}

impl Refresh {
    /// A refresh over `s3` without a CDN (locally).
    pub fn new(config: &ApiConfig, s3: S3Store) -> Refresh {
        Refresh {
            s3,
            source_bucket: config.source_bucket.clone(),
            output_bucket: config.output_bucket.clone(),
            prefixes: config.rendition_prefixes.clone(),
            cdn: None,
        }
    }

    /// This refresh invalidating the changed paths of CloudFront distribution
    /// `distribution_id` through `client`.
    pub fn with_cdn(mut self, client: crate::aws::AwsClient, distribution_id: &str) -> Refresh {
        self.cdn = Some(Cdn { client, distribution_id: distribution_id.to_owned() });
        self
    }

    /// Reads the API's configuration and `IMGFN_CDN_DISTRIBUTION_ID` (the distribution whose
    /// paths are invalidated; unset: none) from the environment.
    pub async fn from_env() -> Result<Refresh, crate::ConfigError> {
        let config = ApiConfig::from_env()?;
        let client = crate::aws::AwsClient::new(crate::aws::AwsConfig::from_env()?, Default::default());
        let mut refresh = Refresh::new(&config, S3Store::with_client(client.clone()));
        if let Some(id) = std::env::var("IMGFN_CDN_DISTRIBUTION_ID").ok().filter(|v| !v.trim().is_empty()) {
            refresh = refresh.with_cdn(client, &id);
        }
        Ok(refresh)
    }

    /// Serves EventBridge events until the runtime stops. A failure (S3 or CloudFront trouble)
    /// is returned, so Lambda retries the event.
    pub async fn run(self) -> Result<(), crate::BoxError> {
        lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
            let this = self.clone();
            // Boxed: keeps the runtime's future shallow (deep async nesting overflowed the
            // compiler's layout queries when inlined into the runtime's).
            let handled: std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), crate::BoxError>> + Send>,
            > = Box::pin(async move {
                let s3 = this.s3.until(event.context.deadline);
                let this = Refresh { s3, ..this };
                this.handle(&event.payload).await.map(|_| ()).map_err(crate::BoxError::from)
            });
            handled
        }))
        .await
    }

    /// Handles one EventBridge S3 event ("Object Created" or "Object Deleted"). Events for
    /// another bucket or outside the rendition prefixes are ignored.
    pub async fn handle(&self, event: &Value) -> Result<Refreshed, Error> {
        let detail = &event["detail"];
        let bucket = detail["bucket"]["name"].as_str().unwrap_or_default();
        let raw = detail["object"]["key"].as_str().unwrap_or_default();
        if bucket != self.source_bucket || raw.is_empty() {
            return Ok(Refreshed::default());
        }
        // S3 notifications write keys form-URL-encoded; EventBridge's examples show them
        // plain. Both readings are refreshed, so neither can leave a stale rendition behind.
        let decoded = crate::event::decode_key(raw).unwrap_or_else(|_| raw.to_owned());
        let mut out = self.source_changed(&decoded).await?;
        if decoded != raw {
            let other = self.source_changed(raw).await?;
            out.deleted += other.deleted;
            out.invalidated.extend(other.invalidated);
        }
        Ok(out)
    }

    /// Deletes the stored renditions of source `key` and invalidates its CDN paths.
    pub async fn source_changed(&self, key: &str) -> Result<Refreshed, Error> {
        let mut out = Refreshed { key: key.to_owned(), ..Refreshed::default() };
        if !self.prefixes.iter().any(|p| key.starts_with(p.as_str())) || keys::check(key).is_err() {
            return Ok(out);
        }
        let prefix = format!("{}{}/", rendition::STORED_PREFIX, encode(key, true));
        let stored = self.s3.list(&self.output_bucket, &prefix, MAX_RENDITIONS).await?;
        for rendition in &stored {
            self.s3.delete(&self.output_bucket, rendition).await?;
        }
        out.deleted = stored.len();
        let mut paths = Vec::new();
        if !stored.is_empty() {
            paths.push(format!("/{}/{}/*", rendition::VERSION, encode(key, true)));
            paths.push(format!("/{}*", cdn_uri(&prefix)));
        }
        // A trigger's output is rewritten by the trigger itself; its CDN copy must go too.
        if let Some(op) = ops::triggers().find(|op| op.trigger_prefix().is_some_and(|p| key.starts_with(&p)))
        {
            let rest = &key[op.name.len() + 1..];
            let stem = keys::trigger_base(op.name, rest);
            paths.push(format!("/{}/{}*", rendition::STORED_URL_PREFIX, encode(&stem, true)));
            paths.push(format!("/{}*", cdn_uri(&stem)));
        }
        if let (Some(cdn), false) = (&self.cdn, paths.is_empty()) {
            cdn.invalidate(&paths).await?;
            out.invalidated = paths;
        }
        info!(key = %crate::logging::safe(key), deleted = out.deleted, invalidated = out.invalidated.len(), "refreshed");
        Ok(out)
    }
}

/// A key as the URI CloudFront sends to the S3 origin for it: each byte outside the unreserved
/// set (`/` kept) percent-encoded, so a key that itself holds `%XX` (a stored rendition's)
/// reaches S3 as `%25XX`.
pub fn cdn_uri(key: &str) -> String {
    encode(key, true)
}

impl Cdn {
    /// CloudFront's CreateInvalidation (its REST-XML protocol, global endpoint signed for
    /// us-east-1).
    async fn invalidate(&self, paths: &[String]) -> Result<(), Error> {
        use crate::aws::xml::escape;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let items: String = paths.iter().map(|p| format!("<Path>{}</Path>", escape(p))).collect();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
             <Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths>\
             <CallerReference>imgfn-refresh-{now}-{}</CallerReference></InvalidationBatch>",
            paths.len(),
            uuid::Uuid::new_v4()
        );
        let config = self.client.config();
        let origin = config
            .endpoint_for("cloudfront")
            .map_or_else(|| "https://cloudfront.amazonaws.com".to_owned(), str::to_owned);
        let id = crate::aws::sigv4::encode(&self.distribution_id, crate::aws::sigv4::UNRESERVED);
        let request = crate::aws::Request {
            operation: "CreateInvalidation",
            service: "cloudfront",
            region: "us-east-1".into(),
            method: http::Method::POST,
            origin,
            path: format!("/2020-05-31/distribution/{id}/invalidation"),
            query: Vec::new(),
            headers: vec![("content-type".into(), "text/xml".into())],
            body: body.into(),
        };
        match self.client.send(&request).await {
            Ok(_) => Ok(()),
            Err(e) => {
                warn!("CloudFront CreateInvalidation failed: {e}");
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdn_uris_keep_percent_signs_literal() {
        assert_eq!(
            cdn_uri("r/originals/a%20b.jpg/thumbnail,width=8"),
            "r/originals/a%2520b.jpg/thumbnail%2Cwidth%3D8"
        );
        assert_eq!(cdn_uri("thumbnail/u/x y"), "thumbnail/u/x%20y");
    }
}
