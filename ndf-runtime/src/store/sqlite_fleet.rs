//! `SqliteStore` in a fleet: the processes sharing one file publish their
//! breakers' own evidence in `ndf_fleet` and pull each other's, as
//! `PostgresStore` does.

use std::sync::PoisonError;

use rusqlite::params;

use super::fleet::Plan;
use super::sqlite::{SqliteStore, sql_error};
use super::{to_i64, to_u64};
use crate::error::StoreError;
use crate::model::{MemberBreaker, StoredBreaker};

/// The table, created with the others.
pub(super) const CREATE_FLEET: &str = "
CREATE TABLE IF NOT EXISTS ndf_fleet (
    member TEXT NOT NULL,
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    evidence REAL NOT NULL,
    calls INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (member, pattern, domain)
);
";

impl SqliteStore {
    /// Publishes, retracts and drops in the save's transaction what `plan`
    /// says.
    pub(super) fn publish(
        &self,
        tx: &rusqlite::Transaction<'_>,
        plan: &Plan<'_>,
    ) -> Result<(), StoreError> {
        let write = |e| sql_error(self.path(), "cannot publish the gates' evidence", e);
        let mut publish = tx
            .prepare_cached(
                "INSERT INTO ndf_fleet VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (member, pattern, domain) DO UPDATE SET
                   evidence = excluded.evidence, calls = excluded.calls,
                   failures = excluded.failures, at_unix_ms = excluded.at_unix_ms",
            )
            .map_err(write)?;
        for row in &plan.publish {
            let b = &row.breaker;
            publish
                .execute(params![
                    self.member(),
                    row.pattern,
                    row.domain,
                    b.evidence,
                    to_i64(b.calls),
                    i64::from(b.failures),
                    to_i64(b.at_unix_ms),
                ])
                .map_err(write)?;
        }
        let mut retract = tx
            .prepare_cached(
                "DELETE FROM ndf_fleet WHERE member = ?1 AND pattern = ?2 AND domain = ?3",
            )
            .map_err(write)?;
        for (pattern, domain) in &plan.retract {
            retract
                .execute(params![self.member(), pattern, domain])
                .map_err(write)?;
        }
        if let Some(before) = plan.forget_before {
            tx.execute(
                "DELETE FROM ndf_fleet WHERE at_unix_ms < ?1",
                [to_i64(before)],
            )
            .map_err(write)?;
        }
        Ok(())
    }

    /// The evidence every other process sharing the file published.
    pub(super) fn others(&self) -> Result<Vec<MemberBreaker>, StoreError> {
        let conn = self.conn().lock().unwrap_or_else(PoisonError::into_inner);
        let read = |e| sql_error(self.path(), "cannot read the fleet's evidence", e);
        let mut stmt = conn
            .prepare_cached(
                "SELECT member, pattern, domain, evidence, calls, failures, at_unix_ms
                 FROM ndf_fleet WHERE member <> ?1",
            )
            .map_err(read)?;
        stmt.query_map([self.member()], |r| {
            Ok(MemberBreaker {
                member: r.get(0)?,
                pattern: r.get(1)?,
                domain: r.get(2)?,
                breaker: StoredBreaker {
                    evidence: r.get(3)?,
                    calls: to_u64(r.get(4)?),
                    failures: u32::try_from(to_u64(r.get(5)?)).unwrap_or(u32::MAX),
                    at_unix_ms: to_u64(r.get(6)?),
                    ..StoredBreaker::default()
                },
            })
        })
        .and_then(Iterator::collect)
        .map_err(read)
    }
}
