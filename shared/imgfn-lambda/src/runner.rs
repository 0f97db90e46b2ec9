//! The S3-triggered functions: one S3 object in, its outputs (or its error record) out. Every
//! function binary calls [`serve`] with its name; the registry entry of that name says what it
//! does, and [`crate::job`] does it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use tracing::{error, info, warn, Instrument};

use crate::event::{self, ObjectRef};
use crate::job::{self, Destination, Source, Stored};
use crate::logging::safe;
use crate::params::PARAMS_METADATA_KEY;
use crate::s3::S3Store;
use crate::{keys, Config, Error, Outcome};

/// The `main` of the S3-triggered function called `name` (its crate's name, which is its
/// operation's name in the registry): logging, configuration and the S3 client once at init,
/// then invocations until the runtime stops.
pub async fn serve(name: &str) -> Result<(), crate::BoxError> {
    crate::init_tracing();
    let op = crate::config::trigger_op(name)?;
    let config = Config::from_env(op)?;
    let s3 = crate::s3::S3Store::from_env()?;
    // Boxed: the runtime's future is deep enough that one more level of nesting overflows the
    // compiler's layout query depth in the binaries.
    Box::pin(Function::new(config, s3).run()).await
}

/// A configured function: its config and its S3 store, built once at init.
#[derive(Debug, Clone)]
pub struct Function {
    config: Arc<Config>,
    s3: S3Store,
}

impl Function {
    pub fn new(config: Config, s3: S3Store) -> Function {
        Function { config: Arc::new(config), s3 }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Serves invocations until the runtime stops.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
            let this = self.clone();
            // Boxed: the handler's future is deep, and the runtime nests it further; unboxed,
            // the binaries overflow the compiler's layout query depth.
            Box::pin(async move { this.handle(event).await })
        }))
        .await
    }

    /// Handles one invocation: every record is processed, one after the other (image work is
    /// CPU-bound and memory-heavy), independently of the others. Returns `Err` when any record
    /// failed transiently, after all records were processed, so Lambda retries the event
    /// (records that succeeded are redone then, overwriting the same keys).
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<(), lambda_runtime::Error> {
        let op = self.config.op.name;
        let request_id = event.context.request_id.clone();
        // Every S3 call of this invocation ends before Lambda's deadline.
        let this = Function { config: self.config.clone(), s3: self.s3.until(event.context.deadline) };
        let records = event::records(&event.payload).inspect_err(|e| {
            // No bucket and key to write an error record for: fail so the event lands in the
            // on-failure destination, where it stays visible.
            error!(op, error = %safe(e), "unrecognised event");
        })?;
        let total = records.len();
        let mut transient = 0usize;
        for (index, record) in records.into_iter().enumerate() {
            let failed = match record {
                Ok(object) => {
                    let span = tracing::info_span!(
                        "record",
                        index,
                        bucket = %safe(&object.bucket),
                        key = %safe(&object.key)
                    );
                    this.record(&object, &request_id).instrument(span).await
                }
                Err(e) => {
                    warn!(op, index, code = e.code(), error = %safe(&e), "record skipped");
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
        let op = self.config.op.name;
        let started = Instant::now();
        let mut etag = None;
        let result = self.process(object, &mut etag).await;
        let ms = started.elapsed().as_millis() as u64;
        let err = match result {
            Ok(p) => {
                info!(
                    op, bucket = %safe(&object.bucket), key = %safe(&object.key),
                    input_bytes = p.input_bytes, input_width = p.input.width, input_height = p.input.height,
                    output_bytes = p.bytes, output_width = p.width, output_height = p.height,
                    objects = p.objects, output_key = %safe(&p.key), ms, "processed"
                );
                return false;
            }
            Err(e) => e,
        };
        match err.outcome() {
            Outcome::Skip => {
                warn!(op, bucket = %safe(&object.bucket), key = %safe(&object.key), code = err.code(), error = %safe(&err), ms, "skipped");
                false
            }
            Outcome::Permanent => {
                // An expected client error: logged as a warning, never as an error.
                warn!(
                    op, bucket = %safe(&object.bucket), key = %safe(&object.key), code = err.code(),
                    field = err.field().map(safe).map(tracing::field::display), error = %safe(&err), ms, "rejected"
                );
                match self.write_error_record(object, etag.as_deref(), &err, request_id).await {
                    Ok(()) => false,
                    Err(e) => {
                        error!(op, bucket = %safe(&object.bucket), key = %safe(&object.key), error = %safe(&e), "writing the error record failed");
                        true
                    }
                }
            }
            Outcome::Transient => {
                error!(op, bucket = %safe(&object.bucket), key = %safe(&object.key), code = err.code(), error = %safe(&err), ms, "failed, will retry");
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
        // Keys are literal in S3, but never here: no `..` can walk an output or an error record
        // out of its prefix, and no control character reaches a log line.
        if let Err(why) = crate::keys::check(&object.key) {
            return Err(Error::Refused(format!("the key cannot be processed: {why}")));
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

    /// Admit → HeadObject (size) → params (defaults + metadata, validated once) → the job →
    /// the stale error record removed. Errors name fields as the object's params do.
    async fn process(&self, object: &ObjectRef, etag_out: &mut Option<String>) -> Result<Stored, Error> {
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
        let source = Source { bucket: &object.bucket, key: &object.key, head: &head };
        let op = c.op.name;
        let dest = Destination::new(&c.output_bucket, keys::trigger_base(op, rest), op, request.sha256());
        let stored = job::run(&self.s3, &object.bucket, source, pipeline, dest)
            .await
            .map_err(|e| request.name_field(e))?;

        // A successful run supersedes an error record left by an earlier upload of this key.
        let error_key = keys::error_key(&c.error_prefix, op, rest);
        if let Err(e) = self.s3.delete(&c.output_bucket, &error_key).await {
            warn!(error = %safe(&e), key = %safe(&error_key), "could not delete a stale error record");
        }
        Ok(stored)
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
        let op = c.op.name;
        let rest = object.key.strip_prefix(&c.trigger_prefix).unwrap_or(&object.key);
        let key = keys::error_key(&c.error_prefix, op, rest);
        let record = json!({
            "code": err.code(),
            "message": err.to_string(),
            "field": err.field(),
            "op": op,
            "source": {"bucket": object.bucket, "key": object.key, "etag": etag},
            "request_id": request_id,
        });
        let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::Internal(e.to_string()))?;
        let mut metadata = HashMap::new();
        metadata.insert("imgfn-source-key".to_owned(), event::encode_key(&object.key));
        metadata.insert("imgfn-op".to_owned(), op.to_owned());
        self.s3.put(&c.output_bucket, &key, body, "application/json", "no-cache", &metadata).await.map(|_| ())
    }
}
