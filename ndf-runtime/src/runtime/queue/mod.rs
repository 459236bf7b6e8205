//! Runs across processes (feature `fleet`): a registered workflow is
//! enqueued by name on Postgres and run by whichever [`QueueWorker`]
//! takes it, through the same policies, learning and gating as
//! [`Ndf::run`]. The queue is apalis's (`SKIP LOCKED`, heartbeats, orphaned
//! tasks taken over); each run's outcome is kept in `ndf_queued_runs`.
//!
//! What crosses the queue: the workflow's name, its input as JSON, and the
//! context's domain, agent, priority, permissions and plain attributes.
//! Secrets never do: a worker supplies them
//! ([`QueueWorker::secrets`]).

mod checkpoints;
mod durable;
mod worker;

use std::time::Duration;

use apalis_core::backend::TaskSink as _;
use apalis_postgres::{Config as ApalisConfig, PostgresStorage};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::Row as _;

pub(crate) use durable::JsonRun;
pub use worker::QueueWorker;

use crate::context::{PatternContext, Priority};
use crate::error::Error;
use crate::runtime::Ndf;

/// The apalis queue ndf's runs go through.
const QUEUE: &str = "ndf.runs";

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS ndf_queued_runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    output JSONB,
    error TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    stages_done INTEGER NOT NULL DEFAULT 0,
    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS ndf_checkpoints (
    run TEXT NOT NULL,
    stage INTEGER NOT NULL,
    output JSONB NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run, stage)
)";

/// A run as it waits in the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueuedRun {
    pub(crate) run: String,
    pub(crate) workflow: String,
    pub(crate) input: serde_json::Value,
    pub(crate) context: QueuedContext,
}

/// What of a [`PatternContext`] crosses the queue: never its secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueuedContext {
    domain: String,
    agent: Option<String>,
    priority: Priority,
    permissions: Vec<String>,
    attributes: Vec<(String, String)>,
}

impl QueuedContext {
    fn of(ctx: &PatternContext) -> Self {
        Self {
            domain: ctx.domain().to_owned(),
            agent: ctx.agent().map(str::to_owned),
            priority: ctx.run_priority(),
            permissions: ctx.granted_permissions().to_vec(),
            attributes: ctx
                .plain_attributes()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    pub(crate) fn context(&self) -> PatternContext {
        let mut ctx = PatternContext::new(self.domain.clone())
            .priority(self.priority)
            .permissions(self.permissions.iter().cloned());
        if let Some(agent) = &self.agent {
            ctx = ctx.agent_type(agent.clone());
        }
        for (k, v) in &self.attributes {
            ctx = ctx.attribute(k.clone(), v.clone());
        }
        ctx
    }
}

/// Where an enqueued run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// It ended with an output.
    Succeeded,
    /// It ended with an error, kept in [`RunOutcome::error`].
    Failed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }

    /// Whether the run has ended.
    #[must_use]
    pub fn is_done(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

/// What became of an enqueued run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The run's id, as [`RunQueue::enqueue`] gave it.
    pub id: String,
    /// The workflow it runs.
    pub workflow: String,
    /// Where it is.
    pub status: RunStatus,
    /// Its output, once it succeeded.
    pub output: Option<serde_json::Value>,
    /// Its error, once it failed.
    pub error: Option<String>,
    /// The worker that ran it last.
    pub worker: Option<String>,
    /// How many times a worker started it.
    pub attempts: u32,
    /// How many stages of a top-level `sequential!` completed and were
    /// checkpointed: a worker that takes the run over resumes after them.
    pub stages_done: u32,
}

/// A queue of workflow runs on Postgres, shared by the processes that
/// enqueue runs and the [`QueueWorker`]s that run them.
///
/// ```no_run
/// # async fn doc(ndf: ndf_runtime::Ndf) -> Result<(), ndf_runtime::Error> {
/// use ndf_runtime::{PatternContext, RunQueue};
/// let queue = RunQueue::connect(&ndf, "postgres://ndf@127.0.0.1/app").await?;
/// let id = queue.enqueue("billing.invoice", &42u64, &PatternContext::new("billing")).await?;
/// let total: u64 = queue.wait(&id, std::time::Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RunQueue {
    ndf: Ndf,
    pool: PgPool,
    storage: PostgresStorage<QueuedRun>,
    name: String,
    takeover: Duration,
}

/// How long a worker may miss its heartbeats before its runs are taken
/// over, by default.
const TAKEOVER: Duration = Duration::from_secs(30);

/// apalis's queue `name`, whose runs are taken over `takeover` after their
/// worker's last heartbeat. A worker beats every second: an idle worker
/// also looks for new runs then, and apalis counts silence in seconds.
fn storage(pool: &PgPool, name: &str, takeover: Duration) -> PostgresStorage<QueuedRun> {
    let beats = takeover.as_secs().max(3);
    let config = ApalisConfig::default()
        .queue(name)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(usize::try_from(beats).unwrap_or(usize::MAX));
    PostgresStorage::new(pool).with_config(config)
}

impl std::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue").field("queue", &QUEUE).finish()
    }
}

/// A queue error that names what failed.
fn queue_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Queue(format!("{what}: {e}"))
}

impl RunQueue {
    /// Connects to the database at `url` and prepares the queue's tables
    /// (apalis's, and `ndf_queued_runs`).
    ///
    /// # Errors
    ///
    /// [`Error::Queue`] when the database cannot be reached or prepared.
    pub async fn connect(ndf: &Ndf, url: &str) -> Result<Self, Error> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| queue_error("connecting to the queue's database", e))?;
        Self::with_pool(ndf, pool).await
    }

    /// [`RunQueue::connect`] on a pool of the application's.
    ///
    /// # Errors
    ///
    /// As [`RunQueue::connect`].
    pub async fn with_pool(ndf: &Ndf, pool: PgPool) -> Result<Self, Error> {
        PostgresStorage::setup(&pool)
            .await
            .map_err(|e| queue_error("preparing apalis's tables", e))?;
        let mut tx = pool
            .begin()
            .await
            .map_err(|e| queue_error("preparing ndf_queued_runs", e))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ndf.queue'))")
            .execute(&mut *tx)
            .await
            .and(sqlx::raw_sql(CREATE).execute(&mut *tx).await)
            .map_err(|e| queue_error("preparing ndf_queued_runs", e))?;
        tx.commit()
            .await
            .map_err(|e| queue_error("preparing ndf_queued_runs", e))?;
        Ok(Self {
            ndf: ndf.clone(),
            storage: storage(&pool, QUEUE, TAKEOVER),
            pool,
            name: QUEUE.to_owned(),
            takeover: TAKEOVER,
        })
    }

    /// Enqueues a run of the workflow registered as `workflow` (with
    /// [`Ndf::register_durable`]) on `input`, in `ctx` without its
    /// secrets; its id, for [`RunQueue::outcome`] and [`RunQueue::wait`].
    ///
    /// # Errors
    ///
    /// [`Error::PatternNotFound`] with the nearest names when no such
    /// workflow is registered for the queue; [`Error::Queue`] when the
    /// input cannot be written as JSON or the database fails.
    pub async fn enqueue<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
        ctx: &PatternContext,
    ) -> Result<String, Error> {
        self.ndf.inner.registry.durable(workflow)?;
        let input =
            serde_json::to_value(input).map_err(|e| queue_error("writing the input as JSON", e))?;
        let run = ulid::Ulid::generate().to_string();
        sqlx::query("INSERT INTO ndf_queued_runs (id, workflow, status) VALUES ($1, $2, $3)")
            .bind(&run)
            .bind(workflow)
            .bind(RunStatus::Queued.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| queue_error("recording the run", e))?;
        let queued = QueuedRun {
            run: run.clone(),
            workflow: workflow.to_owned(),
            input,
            context: QueuedContext::of(ctx),
        };
        let mut storage = self.storage.clone();
        if let Err(e) = storage.push(queued).await {
            // Never queued: nothing will run it.
            let _ = sqlx::query("DELETE FROM ndf_queued_runs WHERE id = $1")
                .bind(&run)
                .execute(&self.pool)
                .await;
            return Err(queue_error("enqueueing the run", e));
        }
        Ok(run)
    }

    /// What became of run `id`; `None` for an id this queue never gave.
    ///
    /// # Errors
    ///
    /// [`Error::Queue`] when the database fails.
    pub async fn outcome(&self, id: &str) -> Result<Option<RunOutcome>, Error> {
        let row = sqlx::query(
            "SELECT workflow, status, output, error, worker, attempts, stages_done
             FROM ndf_queued_runs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| queue_error("reading the run", e))?;
        let Some(row) = row else { return Ok(None) };
        let read = |e| queue_error("reading the run", e);
        let status: String = row.try_get("status").map_err(read)?;
        let attempts: i32 = row.try_get("attempts").map_err(read)?;
        let stages_done: i32 = row.try_get("stages_done").map_err(read)?;
        Ok(Some(RunOutcome {
            id: id.to_owned(),
            workflow: row.try_get("workflow").map_err(read)?,
            status: RunStatus::parse(&status).ok_or_else(|| {
                Error::Queue(format!("run `{id}` has an unknown status `{status}`"))
            })?,
            output: row.try_get("output").map_err(read)?,
            error: row.try_get("error").map_err(read)?,
            worker: row.try_get("worker").map_err(read)?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            stages_done: u32::try_from(stages_done).unwrap_or(0),
        }))
    }

    /// Waits up to `timeout` for run `id` to end, and gives its output.
    ///
    /// # Errors
    ///
    /// [`Error::RunFailed`] with the run's error when it failed;
    /// [`Error::Queue`] when the id is unknown, the run did not end in
    /// time, its output is not an `O`, or the database fails.
    pub async fn wait<O: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<O, Error> {
        let until = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(10);
        loop {
            let Some(outcome) = self.outcome(id).await? else {
                return Err(Error::Queue(format!("no run `{id}` was enqueued")));
            };
            match outcome.status {
                RunStatus::Succeeded => {
                    return serde_json::from_value(outcome.output.unwrap_or_default()).map_err(
                        |e| {
                            queue_error(
                                &format!(
                                    "run `{id}`'s output is not a {}",
                                    std::any::type_name::<O>()
                                ),
                                e,
                            )
                        },
                    );
                }
                RunStatus::Failed => {
                    return Err(Error::RunFailed {
                        run: id.to_owned(),
                        workflow: outcome.workflow,
                        error: outcome.error.unwrap_or_default(),
                    });
                }
                RunStatus::Queued | RunStatus::Running => {}
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Err(Error::Queue(format!(
                    "run `{id}` did not end within {timeout:?} (it is {})",
                    outcome.status.as_str()
                )));
            }
            tokio::time::sleep(pause.min(until - now)).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// This queue under another name: runs enqueued on one name are taken
    /// only by workers of the same name (the default is `ndf.runs`).
    #[must_use]
    pub fn named(mut self, queue: &str) -> Self {
        queue.clone_into(&mut self.name);
        self.storage = storage(&self.pool, &self.name, self.takeover);
        self
    }

    /// How long a worker may be silent (dead, or cut off) before the
    /// other workers take its runs over: 30 s by default, at least 3 s.
    /// Too short, and a worker that is only slow has its runs started
    /// twice. Workers and producers of one queue should agree on it.
    #[must_use]
    pub fn takeover_after(mut self, silence: Duration) -> Self {
        self.takeover = silence;
        self.storage = storage(&self.pool, &self.name, self.takeover);
        self
    }

    /// A worker that runs this queue's runs on `self`'s [`Ndf`].
    #[must_use]
    pub fn worker(&self) -> QueueWorker {
        QueueWorker::new(self.clone())
    }
}
