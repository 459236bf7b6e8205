//! Where learning data outlives a run: the [`LearningStore`] trait and its
//! in-memory implementation.

mod fleet;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod sqlite;
mod sqlite_fleet;
mod sqlite_save;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
pub use sqlite::{Durability, SqliteStore};

use crate::error::StoreError;
use crate::model::{BreakerState, MemberBreaker, StoredPoint, StoredStats};

/// A count as a database integer (saturating; counts never get near).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A database integer as a count (a negative one, never written, is 0).
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A breaker state as [`BreakerState::as_str`] wrote it.
fn breaker_state(name: &str) -> BreakerState {
    match name {
        "open" => BreakerState::Open,
        "half_open" => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    }
}

/// Keeps learning data between runs of the process.
///
/// The runtime loads everything once when it is built and, when it flushes,
/// saves every row with both its totals (`stats`, safe to write again) and
/// what it added since the last acknowledged save (`added`, for a store
/// shared by a fleet, which adds them in commutative upserts). Saves never
/// overlap; the runtime's own loads and saves run off its async workers (on
/// tokio's blocking pool), so a store may block on its I/O. The confidence evidence is saved as the
/// runtime holds it (forgetting makes it a weighted, not an additive,
/// quantity); a shared store picks its own rule to combine writers'
/// (`SqliteStore` and `PostgresStore` add the counts, keep the last
/// writer's confidence evidence, and keep each process's breaker evidence
/// apart for [`LearningStore::load_fleet`]).
pub trait LearningStore: Send + Sync + 'static {
    /// Everything stored.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be read.
    fn load(&self) -> Result<Vec<StoredStats>, StoreError>;

    /// Stores these rows, replacing earlier rows of the same (pattern, domain).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be written; nothing is then
    /// half-written.
    fn save(&self, rows: &[StoredStats]) -> Result<(), StoreError>;

    /// The timeline points taken at or after `since_unix_ms`, oldest first
    /// (the dashboard's history after a restart). The default keeps none.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be read.
    fn load_timeline(&self, since_unix_ms: u64) -> Result<Vec<StoredPoint>, StoreError> {
        let _ = since_unix_ms;
        Ok(Vec::new())
    }

    /// Adds these timeline points (each is new) and deletes the points
    /// taken before `retain_since_unix_ms`. The default keeps none.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be written; nothing is then
    /// half-written.
    fn save_timeline(
        &self,
        points: &[StoredPoint],
        retain_since_unix_ms: u64,
    ) -> Result<(), StoreError> {
        let _ = (points, retain_since_unix_ms);
        Ok(())
    }

    /// Whether several processes share this store and each publishes its
    /// own breaker evidence in [`LearningStore::save`] (`PostgresStore`,
    /// `SqliteStore`): the runtime then saves and calls
    /// [`LearningStore::load_fleet`] every `sync_interval`. The default
    /// shares nothing.
    fn is_shared(&self) -> bool {
        false
    }

    /// The breaker evidence the *other* processes sharing the store
    /// published, one row per (process, pattern, domain). The runtime ages
    /// each by `evidence_half_life` from when it last changed and adds
    /// them to its own: the evidence is a log-likelihood ratio, and the
    /// ratios of independent outcomes add. The default has none.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be read.
    fn load_fleet(&self) -> Result<Vec<MemberBreaker>, StoreError> {
        Ok(Vec::new())
    }

    /// Called by `Ndf::shutdown` after the last save: release what can be
    /// released (the `SQLite` store folds its write-ahead log back into the
    /// database file). The store stays usable.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store cannot be tidied; the data is saved.
    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
