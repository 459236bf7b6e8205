//! The runtime's background tasks: the learner, the timeline sampler and
//! the saver. Each holds the runtime weakly and also waits for it to be
//! dropped, so that every task ends as soon as the last [`Ndf`] handle
//! goes, whatever it was waiting for.
//!
//! [`Ndf`]: super::Ndf

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::time::Instant;

use super::inner::Inner;

/// Starts the background tasks on the tokio runtime this is called in, if
/// they do not run already: when the runtime is built, and, from
/// `Ndf::learn_run`, when a run ends while they do not run (the
/// runtime was built outside tokio, or the tokio runtime they ran on shut
/// down). Outside tokio, starts nothing: runs learn what waits for the
/// learner as they end.
#[cold]
#[inline(never)]
pub(super) fn start(inner: &Arc<Inner>) {
    if !inner.background_allowed {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if inner.background.swap(true, Ordering::AcqRel) {
        // Another thread started them.
        return;
    }
    // A learner that died woken would never be woken again.
    inner.learning.learning();
    let running = Arc::new(Running(Arc::downgrade(inner)));
    handle.spawn(until_stopped(
        inner,
        learner(Arc::downgrade(inner)),
        &running,
    ));
    handle.spawn(until_stopped(inner, sampler(inner), &running));
    handle.spawn(until_stopped(inner, saver(inner), &running));
    if inner.store.is_shared() {
        handle.spawn(until_stopped(inner, syncer(inner), &running));
    }
    // What waited for a learner while none ran.
    inner.learning.wake();
}

/// Held by each background task: when the last is dropped — the runtime is
/// dropped, or the tokio runtime they ran on shut down and dropped them —
/// the tasks no longer run, and the next run to end starts them again.
/// Not after a task panicked (a tokio runtime without its time driver, say):
/// started again, they would panic again at every run.
struct Running(Weak<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Some(inner) = self.0.upgrade() {
            inner.background.store(false, Ordering::Release);
        }
    }
}

/// `task`, ended early when the runtime is dropped.
fn until_stopped(
    inner: &Inner,
    task: impl Future<Output = ()> + Send + 'static,
    running: &Arc<Running>,
) -> impl Future<Output = ()> + Send + 'static {
    let stopped = inner.stopped();
    let running = Arc::clone(running);
    async move {
        let _running = running;
        tokio::select! {
            () = stopped => {}
            () = task => {}
        }
    }
}

/// Woken when runs were left queued, or clean runs started waiting to be
/// folded, learns them after `learning_interval`.
async fn learner(weak: Weak<Inner>) {
    let Some((wake, interval)) = weak.upgrade().map(|inner| {
        (
            Arc::clone(&inner.learning),
            inner.env.config.learning_interval,
        )
    }) else {
        return;
    };
    loop {
        wake.woken().await;
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        // Before the queues are read: a run queued after this wakes it
        // again, one queued before is learned now.
        wake.learning();
        // Off the async workers: a batch that overflowed while the
        // statistics were busy can take a while to learn.
        let _ = tokio::task::spawn_blocking(move || {
            inner.learn(true);
            inner.env.stats.fold_waiting();
        })
        .await;
    }
}

/// Takes a timeline point every `timeline_interval`.
fn sampler(inner: &Arc<Inner>) -> impl Future<Output = ()> + Send + 'static {
    let weak = Arc::downgrade(inner);
    let interval = inner.env.config.timeline_interval;
    async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            inner.learn(true);
            let config = &inner.env.config;
            inner
                .timeline
                .sample(&inner.env.stats, config.prior, config.timeline_points);
        }
    }
}

/// Saves every `flush_interval`, or when `flush_every` runs were learned,
/// if anything waits to be saved.
fn saver(inner: &Arc<Inner>) -> impl Future<Output = ()> + Send + 'static {
    let weak = Arc::downgrade(inner);
    let wake = Arc::clone(&inner.flush.wake);
    let interval = inner.env.config.flush_interval;
    async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.notified() => {}
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.env.life.closed.load(Ordering::Acquire) {
                // Shut down: the last save was `shutdown`'s.
                return;
            }
            if !inner.pending() {
                continue;
            }
            if let Err(error) = super::persist::save(&inner, false).await {
                crate::telemetry::store_failed("save");
                tracing::warn!(target: "ndf::store", %error, "saving learning data failed; it stays in memory and is tried again");
            }
        }
    }
}

/// With a store shared by several processes: every `sync_interval`, saves
/// what waits (publishing this process's evidence) and pulls the others'
/// evidence into the gates.
fn syncer(inner: &Arc<Inner>) -> impl Future<Output = ()> + Send + 'static {
    let weak = Arc::downgrade(inner);
    let interval = inner.env.config.sync_interval;
    async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            ticks.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            if inner.env.life.closed.load(Ordering::Acquire) {
                return;
            }
            match super::persist::sync(&inner).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(target: "ndf::store", "syncing with the other processes sharing the store works again");
                }
                // Said once, not every interval, while it lasts; counted
                // every time.
                Err(error) if !failing => {
                    crate::telemetry::store_failed("sync");
                    failing = true;
                    tracing::warn!(target: "ndf::store", %error, "syncing with the other processes sharing the store failed; gating goes on with what this process learned and last pulled, and syncing is tried every sync_interval");
                }
                Err(_) => crate::telemetry::store_failed("sync"),
                Ok(()) => {}
            }
        }
    }
}
