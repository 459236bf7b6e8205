//! What one `SqliteStore` save writes: counts added, gates, recent runs.

use rusqlite::params;

use super::sqlite::{SqliteStore, sql_error};
use super::to_i64;
use crate::error::StoreError;
use crate::model::StoredStats;

impl SqliteStore {
    /// Adds each row's counts to the file's (see [`LearningStore::save`](super::LearningStore::save)).
    pub(super) fn save_counts(
        &self,
        tx: &rusqlite::Transaction<'_>,
        rows: &[StoredStats],
    ) -> Result<(), StoreError> {
        // The counts each runtime added since its last acknowledged save
        // are added to what the file holds, so that runtimes sharing the
        // file (replicas, or an old and a new process during a restart)
        // never overwrite each other's. The confidence evidence, a
        // weighted quantity, is the last writer's.
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO ndf_learning (pattern, domain, executions, successes, failures,
                   retries, fallbacks, compensations, compensation_failures, degradations,
                   outliers, held_back, total_latency_ns, evidence_successes,
                   evidence_failures, evidence_samples)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (pattern, domain) DO UPDATE SET
                   executions = executions + excluded.executions,
                   successes = successes + excluded.successes,
                   failures = failures + excluded.failures,
                   retries = retries + excluded.retries,
                   fallbacks = fallbacks + excluded.fallbacks,
                   compensations = compensations + excluded.compensations,
                   compensation_failures = compensation_failures + excluded.compensation_failures,
                   degradations = degradations + excluded.degradations,
                   outliers = outliers + excluded.outliers,
                   held_back = held_back + excluded.held_back,
                   total_latency_ns = total_latency_ns + excluded.total_latency_ns,
                   evidence_successes = excluded.evidence_successes,
                   evidence_failures = excluded.evidence_failures,
                   evidence_samples = excluded.evidence_samples",
            )
            .map_err(|e| sql_error(self.path(), "cannot write learning data", e))?;
        for row in rows {
            let s = &row.added;
            stmt.execute(params![
                row.pattern,
                row.domain,
                to_i64(s.executions),
                to_i64(s.successes),
                to_i64(s.failures),
                to_i64(s.retries),
                to_i64(s.fallbacks),
                to_i64(s.compensations),
                to_i64(s.compensation_failures),
                to_i64(s.degradations),
                to_i64(s.outliers),
                to_i64(s.held_back),
                to_i64(s.total_latency_ns),
                row.evidence.successes,
                row.evidence.failures,
                to_i64(row.evidence.samples),
            ])
            .map_err(|e| sql_error(self.path(), "cannot write learning data", e))?;
        }
        Ok(())
    }

    /// Adds each row's refusals, and writes its breaker.
    pub(super) fn save_gates(
        &self,
        tx: &rusqlite::Transaction<'_>,
        rows: &[StoredStats],
    ) -> Result<(), StoreError> {
        let mut gate = tx
            .prepare_cached(
                "INSERT INTO ndf_gate VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (pattern, domain) DO UPDATE SET
                   rejected = rejected + excluded.rejected,
                   breaker_state = excluded.breaker_state,
                   breaker_evidence = excluded.breaker_evidence,
                   breaker_calls = excluded.breaker_calls,
                   breaker_failures = excluded.breaker_failures,
                   breaker_at_unix_ms = excluded.breaker_at_unix_ms",
            )
            .map_err(|e| sql_error(self.path(), "cannot write the gates", e))?;
        for row in rows {
            let b = &row.breaker;
            gate.execute(params![
                row.pattern,
                row.domain,
                to_i64(row.added.rejected),
                b.state.as_str(),
                b.evidence,
                to_i64(b.calls),
                i64::from(b.failures),
                to_i64(b.at_unix_ms),
            ])
            .map_err(|e| sql_error(self.path(), "cannot write the gates", e))?;
        }
        Ok(())
    }

    /// Appends each row's new recent runs.
    pub(super) fn save_recent(
        &self,
        tx: &rusqlite::Transaction<'_>,
        rows: &[StoredStats],
    ) -> Result<(), StoreError> {
        // Recent runs are appended, not rewritten: the runs a row
        // added since the last acknowledged save are its newest
        // `added.executions`; then the oldest beyond the window the
        // runtime keeps are trimmed.
        let mut remember = tx
            .prepare_cached("INSERT INTO ndf_recent_runs VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(|e| sql_error(self.path(), "cannot write recent runs", e))?;
        let mut trim = tx
            .prepare_cached(
                "DELETE FROM ndf_recent_runs WHERE rowid IN (
                     SELECT rowid FROM ndf_recent_runs WHERE pattern = ?1 AND domain = ?2
                     ORDER BY at_unix_ms DESC, rowid DESC LIMIT -1 OFFSET ?3)",
            )
            .map_err(|e| sql_error(self.path(), "cannot write recent runs", e))?;
        for row in rows.iter().filter(|r| !r.recent.is_empty()) {
            let new = usize::try_from(row.added.executions)
                .unwrap_or(usize::MAX)
                .min(row.recent.len());
            for run in &row.recent[row.recent.len() - new..] {
                remember
                    .execute(params![
                        row.pattern,
                        row.domain,
                        to_i64(run.at_unix_ms),
                        to_i64(run.latency_us),
                        run.ok
                    ])
                    .map_err(|e| sql_error(self.path(), "cannot write recent runs", e))?;
            }
            if new > 0 {
                trim.execute(params![
                    row.pattern,
                    row.domain,
                    i64::try_from(row.recent.len()).unwrap_or(i64::MAX)
                ])
                .map_err(|e| sql_error(self.path(), "cannot write recent runs", e))?;
            }
        }
        Ok(())
    }
}
