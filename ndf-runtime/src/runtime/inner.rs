//! The runtime's shared state: what the run path reads ([`Env`]), and
//! what the runtime keeps beside it (alerts, the registry, the store, the
//! timeline), with the signals its background tasks wait on.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::registry::Registry;
use crate::exec::Env;
use crate::learning::Learned;
use crate::store::LearningStore;
use crate::telemetry::{AlertBoard, AlertSink, Timeline};

/// The runtime's state, shared by its handles; background tasks hold it
/// weakly and end when the last handle is dropped (see [`Inner::stopped`]).
pub(crate) struct Inner {
    /// What the run path reads.
    pub(crate) env: Env,
    pub(super) sink: Box<dyn AlertSink>,
    /// Alerts learning raised, to deliver to `sink`, and the active ones.
    pub(super) board: Arc<AlertBoard>,
    pub(super) registry: Registry,
    pub(super) store: Arc<dyn LearningStore>,
    pub(super) flush: FlushState,
    pub(super) timeline: Timeline,
    /// Wakes the learner: runs were left queued.
    pub(super) learning: Arc<LearnerWake>,
    /// Whether the background tasks run, on the tokio runtime that the
    /// runtime was built in or first ran in (see `tasks::start`): without
    /// a learner, what waits for it is learned at once.
    pub(super) background: AtomicBool,
    /// `false` when built with `background_tasks(false)`: they never start.
    pub(super) background_allowed: bool,
    /// Dropped with the runtime: its background tasks see the channel close.
    pub(super) alive: tokio::sync::watch::Sender<()>,
}

impl Inner {
    /// Applies the queued runs to the statistics (see [`StatsTable::apply`](crate::learning::StatsTable::apply))
    /// and delivers the alerts that raised. Returns `false` when, without
    /// `wait`, another thread held the statistics.
    pub(super) fn learn(&self, wait: bool) -> bool {
        let learned = self.env.stats.apply(&self.env.config, wait);
        self.learned(&learned);
        !learned.busy
    }

    /// Delivers the alerts learning raised, counts the runs it learned
    /// towards `flush_every`, and wakes the learner when clean runs started
    /// waiting to be folded (their steps' metrics follow within
    /// `learning_interval`).
    pub(super) fn learned(&self, learned: &Learned) {
        if learned.clean_waiting {
            if self.background.load(Ordering::Relaxed) {
                self.learning.wake();
            } else {
                // No learner to fold them: their metrics must not wait
                // for a read.
                self.env.stats.fold_waiting();
            }
        }
        self.board.deliver(&*self.sink);
        self.flush
            .runs_learned(learned.runs, self.env.config.flush_every);
    }

    /// Resolves when the runtime is dropped (at once if it is already).
    pub(super) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut alive = self.alive.subscribe();
        async move { while alive.changed().await.is_ok() {} }
    }
}

/// Runs learned since the last save, and the signal that wakes the
/// background saver.
#[derive(Debug, Default)]
pub(crate) struct FlushState {
    pub(super) runs: AtomicU64,
    pub(super) wake: Arc<Notify>,
    /// Held by a save from its snapshot to its acknowledgement: saves never
    /// overlap, so what one adds is never added again by another.
    pub(super) saving: Mutex<()>,
}

impl FlushState {
    /// Counts `n` runs just learned (once per batch, not per run: no
    /// shared counter on a run's path); past `flush_every` since the last
    /// save, wakes the background saver.
    pub(crate) fn runs_learned(&self, n: u64, flush_every: u64) {
        if n == 0 {
            return;
        }
        let before = self.runs.fetch_add(n, Ordering::Relaxed);
        if before < flush_every && before + n >= flush_every {
            self.wake.notify_one();
        }
    }

    /// Whether a run was learned since the last save.
    pub(super) fn pending(&self) -> bool {
        self.runs.load(Ordering::Relaxed) > 0
    }
}

/// What wakes the learner: a flag in front of its `Notify`, so that runs
/// queued while it is already woken read the flag instead of writing the
/// `Notify`'s state, a line every queueing thread would otherwise take in
/// turn.
#[derive(Debug, Default)]
pub(crate) struct LearnerWake {
    notify: Notify,
    /// Set from the first wake until the learner starts learning.
    woken: AtomicBool,
}

impl LearnerWake {
    /// Wakes the learner, unless it is woken and has not started learning.
    #[inline]
    pub(super) fn wake(&self) {
        // `SeqCst`, as the queue's flags: a run that queues, then finds the
        // learner woken, and the learner, which clears the flag, then reads
        // the queues, cannot both miss the other.
        if !self.woken.load(Ordering::SeqCst) && !self.woken.swap(true, Ordering::SeqCst) {
            self.notify.notify_one();
        }
    }

    /// Resolves at the next wake (at once if one came since the last).
    pub(super) async fn woken(&self) {
        self.notify.notified().await;
    }

    /// Called by the learner as it starts learning: what is queued from
    /// now on wakes it again.
    pub(super) fn learning(&self) {
        self.woken.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::LearnerWake;

    /// Whether `woken` resolves without waiting.
    async fn woken_now(wake: &LearnerWake) -> bool {
        let mut woken = std::pin::pin!(wake.woken());
        std::future::poll_fn(|cx| std::task::Poll::Ready(woken.as_mut().poll(cx).is_ready())).await
    }

    #[tokio::test]
    async fn a_woken_learner_is_woken_again_only_once_it_learns() {
        let wake = LearnerWake::default();
        assert!(!woken_now(&wake).await, "not woken yet");
        wake.wake();
        assert!(woken_now(&wake).await, "woken");
        // Woken, not yet learning: a run queued now is learned anyway.
        wake.wake();
        assert!(!woken_now(&wake).await, "the second wake found it woken");
        wake.learning();
        wake.wake();
        assert!(woken_now(&wake).await, "woken again once it learned");
    }
}
