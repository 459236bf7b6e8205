//! What a store keeps: learning rows, recent runs, timeline points.

use super::confidence::Evidence;
use super::gate::StoredBreaker;
use super::stats::PatternStats;

/// One row of learning data: the statistics of a pattern in a domain.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StoredStats {
    /// Pattern name.
    pub pattern: String,
    /// Domain the pattern ran in.
    pub domain: String,
    /// What was learned, in total: what the store held when the runtime
    /// started plus what the runtime learned since.
    pub stats: PatternStats,
    /// What the runtime learned since its last save that returned `Ok`
    /// (zero in rows a store loads). A store that one process owns writes
    /// `stats`; a store shared by several processes adds these counts to
    /// what it holds, so that no process overwrites another's.
    #[serde(default)]
    pub added: PatternStats,
    /// The confidence evidence.
    pub evidence: Evidence,
    /// The gate's breaker: its state and evidence. A runtime that loads an
    /// open or half-open breaker starts it half-open: probes decide at once
    /// whether the pattern is served again.
    #[serde(default)]
    pub breaker: StoredBreaker,
    /// The most recent runs of a workflow (empty for steps), oldest first,
    /// for reports over a window after a restart.
    pub recent: Vec<RecentRun>,
}

/// One recent run of a workflow, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecentRun {
    /// When it ended, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// How long it took, in microseconds.
    pub latency_us: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// What the runs of one workflow in one domain did in one interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelinePoint {
    /// The end of the interval, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Runs that ended in the interval.
    pub executions: u64,
    /// Of those, the failed ones.
    pub failures: u64,
    /// Calls refused by the workflow's gate in the interval (they did not
    /// run: not in `executions`).
    #[serde(default)]
    pub refused: u64,
    /// Mean latency of the runs, in milliseconds.
    pub mean_ms: f64,
    /// 95th percentile latency of the runs, in milliseconds.
    pub p95_ms: f64,
    /// The workflow's confidence mean at the end of the interval.
    pub confidence: f64,
}

/// A timeline point of one (pattern, domain), as a store keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredPoint {
    /// The workflow.
    pub pattern: String,
    /// The domain of its runs.
    pub domain: String,
    /// What its runs did.
    pub point: TimelinePoint,
}

/// One process's breaker evidence for one (pattern, domain), as a store
/// shared by a fleet keeps it: each process publishes its own, and each
/// pulls the others' (see [`crate::LearningStore::load_fleet`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MemberBreaker {
    /// The process that published it (the id its store was opened with).
    pub member: String,
    /// Pattern name.
    pub pattern: String,
    /// Domain the pattern ran in.
    pub domain: String,
    /// Its breaker: the evidence it learned itself (never what it pulled),
    /// the outcomes it weighed, and when the evidence last changed.
    pub breaker: StoredBreaker,
}
