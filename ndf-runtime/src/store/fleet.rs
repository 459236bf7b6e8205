//! What a store shared by processes publishes of this process's breakers:
//! their own evidence, one row per (process, pattern, domain), for the
//! others to add to theirs (`learning/fleet.rs` says how).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use crate::error::StoreError;
use crate::model::{Clock, StoredStats};

/// Evidence no process has changed for this long is dropped: it has long
/// faded (a day is 144 half-lives of the default ten minutes).
const MEMBER_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;
/// How often a store drops it.
const FORGET_EVERY_MS: u64 = 60 * 60 * 1000;

/// This process among those sharing a store, and what it published.
#[derive(Debug)]
pub(super) struct Membership {
    /// Unique per store opened: a restarted process is a new member, its
    /// previous life one of the others.
    id: String,
    published: Mutex<Publication>,
}

impl Membership {
    pub(super) fn new() -> Self {
        Self {
            id: format!("pid{}-{:016x}", std::process::id(), fastrand::u64(..)),
            published: Mutex::default(),
        }
    }

    /// The id under which this process publishes.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Saves `rows` with `write`, which also publishes, retracts and drops
    /// what the plan it is given says, in the same transaction; once it
    /// returns `Ok`, the plan is what the store holds.
    pub(super) fn save(
        &self,
        rows: &[StoredStats],
        write: impl FnOnce(&Plan<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let plan = published.plan(rows);
        write(&plan)?;
        published.done(&plan);
        Ok(())
    }
}

/// The keys this store published evidence for, and when it last dropped
/// every process's day-old evidence.
#[derive(Debug, Default)]
struct Publication {
    keys: HashSet<(String, String)>,
    forgot_at_unix_ms: u64,
}

/// What one save publishes.
#[derive(Debug)]
pub(super) struct Plan<'a> {
    /// Rows whose breaker has evidence: published.
    pub(super) publish: Vec<&'a StoredStats>,
    /// Keys published before whose evidence is back to zero: retracted (a
    /// healthy breaker adds nothing to the fleet).
    pub(super) retract: Vec<(String, String)>,
    /// Drop every process's evidence unchanged since then.
    pub(super) forget_before: Option<u64>,
    now_unix_ms: u64,
}

impl Publication {
    /// What saving `rows` publishes, retracts and drops.
    fn plan<'a>(&self, rows: &'a [StoredStats]) -> Plan<'a> {
        let now = Clock::now().unix_ms;
        let mut plan = Plan {
            publish: Vec::new(),
            retract: Vec::new(),
            forget_before: (now.saturating_sub(self.forgot_at_unix_ms) >= FORGET_EVERY_MS)
                .then(|| now.saturating_sub(MEMBER_RETENTION_MS)),
            now_unix_ms: now,
        };
        for row in rows {
            let evidence = row.breaker.evidence;
            if evidence > 0.0 && evidence.is_finite() {
                plan.publish.push(row);
            } else {
                let key = (row.pattern.clone(), row.domain.clone());
                if self.keys.contains(&key) {
                    plan.retract.push(key);
                }
            }
        }
        plan
    }

    /// Records that the store committed `plan`.
    fn done(&mut self, plan: &Plan<'_>) {
        self.keys.extend(
            plan.publish
                .iter()
                .map(|row| (row.pattern.clone(), row.domain.clone())),
        );
        for key in &plan.retract {
            self.keys.remove(key);
        }
        if plan.forget_before.is_some() {
            self.forgot_at_unix_ms = plan.now_unix_ms;
        }
    }
}
