//! The worker: takes runs from the queue and runs them on its [`Ndf`](crate::Ndf).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt as _};
use futures::FutureExt as _;

use super::checkpoints::Stored;
use super::{QueuedContext, QueuedRun, RunQueue, RunStatus, queue_error};
use crate::context::PatternContext;
use crate::error::Error;

/// Supplies a worker's secrets to the context of each run it takes: the
/// queue never holds them.
type SecretSource = dyn Fn(&str, PatternContext) -> PatternContext + Send + Sync;

/// Times a run may be started before it is failed for good: a run whose
/// worker keeps dying (a poisoned run that aborts its process) ends.
const MAX_ATTEMPTS: i32 = 3;

/// Runs the runs of a [`RunQueue`], at most `concurrency` at once, each
/// through [`Ndf::run`](crate::Ndf::run): the same policies, learning and
/// gating as a run made in process.
///
/// A run is delivered at least once: when a worker dies, another takes its
/// runs over after apalis's heartbeat timeout and starts them again. A run
/// started three times without ending is failed with its error kept.
pub struct QueueWorker {
    shared: Shared,
    concurrency: usize,
}

impl std::fmt::Debug for QueueWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueWorker")
            .field("name", &self.shared.name)
            .field("concurrency", &self.concurrency)
            .field("secrets", &self.shared.secrets.is_some())
            .finish_non_exhaustive()
    }
}

/// What the worker's runs share: all of the worker but its bound.
struct Shared {
    queue: RunQueue,
    name: String,
    secrets: Option<Arc<SecretSource>>,
}

impl QueueWorker {
    pub(super) fn new(queue: RunQueue) -> Self {
        Self {
            shared: Shared {
                queue,
                name: format!("ndf-{}-{}", std::process::id(), ulid::Ulid::generate()),
                secrets: None,
            },
            concurrency: 8,
        }
    }

    /// Names the worker (unique per process; the default is made so).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.shared.name = name.into();
        self
    }

    /// Runs at most `n` runs at once (8 by default; at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Supplies secrets to each run's context: `source(workflow, ctx)`
    /// returns the context to run with, for example with
    /// [`PatternContext::secret`] values from the worker's own vault.
    #[must_use]
    pub fn secrets(
        mut self,
        source: impl Fn(&str, PatternContext) -> PatternContext + Send + Sync + 'static,
    ) -> Self {
        self.shared.secrets = Some(Arc::new(source));
        self
    }

    /// Runs queued runs until `shutdown` completes; then takes no more and
    /// finishes the runs it holds.
    ///
    /// # Errors
    ///
    /// [`Error::Queue`] when the worker cannot keep taking runs.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let storage = self.shared.queue.storage.clone();
        let name = self.shared.name.clone();
        // Polling, not apalis's NOTIFY stream: runs re-enqueued after a
        // takeover send no notification, and under load the stream
        // stalled with runs waiting (measured in benches/queue.rs). An
        // idle worker looks again at each heartbeat (every second).
        let worker = WorkerBuilder::new(name.as_str())
            .backend(storage)
            .data(Arc::new(self.shared))
            .concurrency(self.concurrency)
            .build(take);
        worker
            .run_until(shutdown.map(Ok::<(), std::io::Error>))
            .await
            .map_err(|e| queue_error("the worker stopped", e))
    }
}

/// Runs one queued run and keeps its outcome.
async fn take(queued: QueuedRun, shared: Data<Arc<Shared>>) -> Result<(), BoxDynError> {
    let pool = &shared.queue.pool;
    let QueuedRun {
        run: id,
        workflow,
        input,
        context,
    } = queued;
    let attempts: i32 = sqlx::query_scalar(
        "UPDATE ndf_queued_runs SET status = $2, worker = $3, attempts = attempts + 1
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING attempts",
    )
    .bind(&id)
    .bind(RunStatus::Running.as_str())
    .bind(&shared.name)
    .fetch_optional(pool)
    .await?
    .unwrap_or(0);
    if attempts == 0 {
        // Ended already (delivered again after its outcome was kept).
        return Ok(());
    }
    let result = if attempts > MAX_ATTEMPTS {
        Err(format!(
            "started {} times without ending (its workers died); not started again",
            attempts - 1
        ))
    } else {
        run(&shared, &id, &workflow, input, &context).await
    };
    let (status, output, error) = match result {
        Ok(output) => (RunStatus::Succeeded, Some(output), None),
        Err(error) => (RunStatus::Failed, None, Some(error)),
    };
    sqlx::query(
        "UPDATE ndf_queued_runs SET status = $2, output = $3, error = $4, finished_at = now()
         WHERE id = $1",
    )
    .bind(&id)
    .bind(status.as_str())
    .bind(output)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// The output of run `id` of `name` on `input`, or its error in words.
async fn run(
    shared: &Shared,
    id: &str,
    name: &str,
    input: serde_json::Value,
    context: &QueuedContext,
) -> Result<serde_json::Value, String> {
    let ndf = &shared.queue.ndf;
    let workflow = ndf
        .inner
        .registry
        .durable(name)
        .map_err(|e| e.to_string())?;
    let mut ctx = context.context();
    if let Some(source) = &shared.secrets {
        ctx = source(name, ctx);
    }
    let checkpoints = Stored::load(&shared.queue.pool, id, workflow.codec())
        .await
        .map_err(|e| e.to_string())?;
    let ran = AssertUnwindSafe(workflow.run_json(ndf, input, &ctx, &checkpoints))
        .catch_unwind()
        .await;
    match ran {
        Ok(result) => result.map_err(|refusal| refusal.to_string()),
        Err(_) => Err("the run panicked outside its steps".to_owned()),
    }
}
