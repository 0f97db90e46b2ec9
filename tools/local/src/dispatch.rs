//! What S3 bucket notifications and Lambda's asynchronous invocation do, deployed: every object
//! created in the source bucket under a function's trigger prefix becomes one invocation of
//! that function with a real S3 notification event, under a time limit
//! ([`FUNCTION_TIMEOUT`]), retried up to [`RETRIES`] times when it fails (transient S3
//! errors); an invocation that still fails is logged where deployed it would go to the
//! dead-letter queue. At most [`CONCURRENCY`] run at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgfn_lambda::logging::safe;
use imgfn_lambda::s3::S3Store;
use imgfn_lambda::Function;
use lambda_runtime::{Context, LambdaEvent};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::notification::{eventbridge, notification};
use crate::s3::{Changed, REGION};

/// The S3 functions' timeout, as `S3FunctionTimeout` defaults to in the template.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a failed asynchronous invocation (the template's `MaximumRetryAttempts`).
pub const RETRIES: u32 = 2;
/// Invocations running at once.
pub const CONCURRENCY: usize = 2;

/// Routes created objects to functions, like the source bucket's notification configuration.
/// What the invocations came to, for the stack's users and tests: how many events each key got,
/// how many invocations failed and were retried, how many gave up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events delivered per source key (an object created twice gets two).
    pub events: std::collections::BTreeMap<String, usize>,
    /// Invocations that succeeded.
    pub succeeded: usize,
    /// Invocations that failed or timed out (each then retried, or given up).
    pub failed: usize,
    /// Events given up on after every retry (deployed: the dead-letter queue).
    pub gave_up: usize,
    /// Source changes the refresh function handled.
    pub refreshed: usize,
}

pub(crate) struct Dispatcher {
    /// Each function with its trigger prefix.
    pub functions: Arc<Vec<Function>>,
    pub source_bucket: String,
    pub store: S3Store,
    pub retry_delay: Duration,
    pub tally: Arc<std::sync::Mutex<Tally>>,
    /// The refresh function (S3 → EventBridge deployed): every object written or deleted in
    /// the source bucket is handed to it; it acts on those under the rendition prefixes.
    pub refresh: Option<imgfn_lambda::refresh::Refresh>,
}

impl Dispatcher {
    /// Delivers events until told to stop, then waits for running invocations (up to the grace
    /// period given with the stop). Returns the number cut short.
    pub async fn run(
        self,
        mut created: mpsc::UnboundedReceiver<Changed>,
        stop: oneshot::Receiver<Duration>,
    ) -> usize {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut running = JoinSet::new();
        let mut stop = std::pin::pin!(stop);
        let grace = loop {
            tokio::select! {
                grace = &mut stop => break grace.unwrap_or(Duration::ZERO),
                next = created.recv() => {
                    let Some(object) = next else { break Duration::ZERO };
                    if let Some(refresh) = self.refresh(&object) {
                        running.spawn(refresh);
                    }
                    if let Some(invocation) = self.route(object) {
                        let permits = permits.clone();
                        running.spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            invocation.await;
                        });
                    }
                }
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        };
        created.close();
        if !running.is_empty() {
            info!("waiting up to {} s for {} running invocation(s)", grace.as_secs(), running.len());
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !running.is_empty() {
            match tokio::time::timeout_at(deadline, running.join_next()).await {
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let unfinished = running.len();
        running.abort_all();
        unfinished
    }

    /// The refresh function's invocation for an object written or deleted in the source bucket.
    fn refresh(&self, object: &Changed) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let refresh = self.refresh.clone().filter(|_| object.bucket == self.source_bucket)?;
        let (store, object, tally) = (self.store.clone(), object.clone(), self.tally.clone());
        Some(async move {
            let head =
                if object.is_created() { store.head(&object.bucket, &object.key).await.ok() } else { None };
            let (size, etag) = head.map(|h| (h.size, h.etag)).unwrap_or((0, None));
            let event = eventbridge(&object, size, etag.as_deref());
            for attempt in 0..=RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(200) * attempt).await;
                }
                match tokio::time::timeout(FUNCTION_TIMEOUT, refresh.handle(&event)).await {
                    Ok(Ok(done)) => {
                        if done.deleted > 0 {
                            info!(
                                "refresh: deleted {} stored rendition(s) of {}",
                                done.deleted,
                                safe(&object.key)
                            );
                        }
                        if let Ok(mut t) = tally.lock() {
                            t.refreshed += 1;
                        }
                        return;
                    }
                    Ok(Err(e)) => error!("refresh: failed for {}: {}", safe(&object.key), safe(e)),
                    Err(_) => error!("refresh: timed out for {}", safe(&object.key)),
                }
            }
        })
    }

    /// The invocation an object's creation causes, if a function listens there.
    fn route(&self, object: Changed) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let location = safe(format_args!("s3://{}/{}", object.bucket, object.key)).to_string();
        if object.bucket != self.source_bucket || !object.is_created() {
            return None;
        }
        let Some(function) =
            self.functions.iter().find(|f| object.key.starts_with(f.config().trigger_prefix.as_str()))
        else {
            info!("stored {location} (no function listens under this prefix)");
            return None;
        };
        let op = function.config().op.name;
        let (function, store, delay) = (function.clone(), self.store.clone(), self.retry_delay);
        let tally = self.tally.clone();
        let count = move |f: &mut dyn FnMut(&mut Tally)| {
            if let Ok(mut t) = tally.lock() {
                f(&mut t);
            }
        };
        count(&mut |t| *t.events.entry(object.key.clone()).or_default() += 1);
        Some(async move {
            info!("{} <- {location} ({})", op, object.event_name);
            // S3 reports the size and ETag of what was stored; a gone object still gets its event.
            let head = store.head(&object.bucket, &object.key).await.ok();
            let (size, etag) = head.map(|h| (h.size, h.etag)).unwrap_or((0, None));
            let payload = notification(&object, size, etag.as_deref());
            for attempt in 0..=RETRIES {
                if attempt > 0 {
                    tokio::time::sleep(delay * attempt).await;
                    warn!("{op}: retry {attempt} of {RETRIES} for {location}");
                }
                let started = Instant::now();
                let mut context = Context::default();
                context.request_id = uuid::Uuid::new_v4().to_string();
                context.deadline = crate::api::deadline_ms(FUNCTION_TIMEOUT);
                context.invoked_function_arn =
                    format!("arn:aws:lambda:{REGION}:000000000000:function:imgfn-{op}");
                let event = LambdaEvent::new(payload.clone(), context);
                match tokio::time::timeout(FUNCTION_TIMEOUT, function.handle(event)).await {
                    Ok(Ok(())) => {
                        info!("{op}: done with {location} in {} ms", started.elapsed().as_millis());
                        count(&mut |t| t.succeeded += 1);
                        return;
                    }
                    Ok(Err(e)) => error!("{op}: invocation failed for {location}: {}", safe(e)),
                    Err(_) => {
                        error!("{op}: task timed out after {} s for {location}", FUNCTION_TIMEOUT.as_secs())
                    }
                }
                count(&mut |t| t.failed += 1);
            }
            count(&mut |t| t.gave_up += 1);
            error!("{op}: gave up on {location} after {RETRIES} retries (deployed, the event goes to the dead-letter queue)");
        })
    }
}
