//! Saving learning data to the store: on demand, at shutdown, and in the
//! background every `flush_interval` or after `flush_every` runs (when a
//! run finished since the last save). Saves run on tokio's blocking pool,
//! never on an async worker.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::inner::Inner;
use crate::error::{Error, StoreError};
use crate::model::Clock;

impl Inner {
    /// Saves on the calling thread. Queued runs are learned first; the
    /// count is reset before the snapshot is taken, so a run learned
    /// meanwhile is saved now or next time; a save that fails leaves the
    /// data pending, to be tried again.
    pub(crate) fn save_here(&self) -> Result<(), Error> {
        let _saving = self
            .flush
            .saving
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.learn(true);
        let runs = self.flush.runs.swap(0, Ordering::Relaxed);
        // Only the rows that changed since the last acknowledged save.
        let rows = self.env.stats.snapshot();
        if !rows.is_empty()
            && let Err(error) = self.store.save(&rows)
        {
            self.flush.runs.fetch_add(runs.max(1), Ordering::Relaxed);
            return Err(error.into());
        }
        self.env.stats.acknowledge(&rows);
        // What was saved can be freed: entries idle for long give back
        // their rings.
        self.env.stats.evict_idle(self.env.config.evict_idle_after);
        let points = self.timeline.take_pending();
        let retain_since = Clock::now().unix_ms_ago(self.env.config.retention);
        if let Err(error) = self.store.save_timeline(&points, retain_since) {
            self.timeline.restore_pending(points);
            return Err(error.into());
        }
        Ok(())
    }

    /// Whether anything waits to be saved: only runs change what is
    /// learned, and the timeline's points come from runs.
    pub(super) fn pending(&self) -> bool {
        self.flush.pending() || self.env.stats.has_queued() || self.timeline.has_pending()
    }
}

/// Runs `work` with the runtime on tokio's blocking pool when inside a
/// runtime (never on an async worker: it does the store's I/O), here
/// otherwise.
async fn with_store(
    inner: &Arc<Inner>,
    work: impl FnOnce(&Inner) -> Result<(), Error> + Send + 'static,
) -> Result<(), Error> {
    let inner = Arc::clone(inner);
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return work(&inner);
    };
    handle
        .spawn_blocking(move || work(&inner))
        .await
        .map_err(|e| StoreError::with_source("the store's writer stopped", e))?
}

/// Saves; with `close`, then lets the store tidy up.
pub(crate) async fn save(inner: &Arc<Inner>, close: bool) -> Result<(), Error> {
    with_store(inner, move |inner| {
        inner.save_here()?;
        if close {
            inner.store.close()?;
        }
        Ok(())
    })
    .await
}

/// Saves what waits and pulls the other processes' evidence into the
/// gates.
pub(crate) async fn sync(inner: &Arc<Inner>) -> Result<(), Error> {
    with_store(inner, |inner| {
        if inner.pending() {
            inner.save_here()?;
        }
        let fleet = inner.store.load_fleet()?;
        inner
            .env
            .stats
            .join_fleet(&fleet, &Clock::now(), &inner.env.config);
        Ok(())
    })
    .await
}
