//! The runs in flight, and whether the runtime drains or was shut down:
//! what [`Ndf::drain`](crate::Ndf::drain) and `shutdown` need, and what
//! every run counts itself in and out of.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

use crate::stripes::StripedCount;

/// What [`Ndf::drain`](crate::Ndf::drain) and `shutdown` need: the runs in
/// flight (kept on a line of their own: every run touches it) and the
/// flags that stop new runs and the background saves.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Striped (see `crate::stripes`): one shared counter, moved twice by
    /// every run, made two threads ending runs side by side slower than one.
    in_flight: StripedCount,
    draining: AtomicBool,
    /// Set by `shutdown`: the background saver stops.
    pub(crate) closed: AtomicBool,
    /// Woken when the last run in flight of a draining runtime ends.
    idle: Notify,
}

impl Lifecycle {
    /// A run starting: `None` when the runtime drains (the run must not
    /// start); otherwise a guard that counts it until it ends.
    #[inline]
    pub(crate) fn enter(&self) -> Option<InFlight<'_>> {
        // Counted before the flag is read; `drain` sets the flag before it
        // reads the count: one of the two sees the other.
        self.in_flight.add();
        let guard = InFlight(self);
        (!self.draining.load(Ordering::SeqCst)).then_some(guard)
    }

    /// Starts no new run from now on; waits for those in flight, at most
    /// until `deadline`; returns how many are still running.
    pub(crate) async fn drain(&self, deadline: tokio::time::Instant) -> usize {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            // Made before the count is read: a run ending after the read
            // wakes it.
            let idle = self.idle.notified();
            let running = self.in_flight.sum();
            if running == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.in_flight.sum();
            }
        }
    }
}

/// A run in flight; its end is counted when it is dropped, however the run
/// ended (cancelled included).
pub(crate) struct InFlight<'a>(&'a Lifecycle);

impl InFlight<'_> {
    /// Hands the count of this run to its `exec::Run`, whose drop counts
    /// its end ([`Lifecycle::ended`]): no guard of its own beside the run
    /// in the run's future.
    #[inline]
    pub(crate) fn counted_by_run(self) {
        std::mem::forget(self);
    }
}

impl Drop for InFlight<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.ended();
    }
}

impl Lifecycle {
    /// A run counted by [`Lifecycle::enter`] ended.
    #[inline]
    pub(crate) fn ended(&self) {
        self.in_flight.sub();
        // Only its stripe is known here, not whether it was the last run:
        // while draining, every run that ends wakes `drain` to count again.
        if self.draining.load(Ordering::SeqCst) {
            self.wake_drain();
        }
    }

    /// Wakes `drain`: rare, and out of line, so that a run's drop stays
    /// small enough to be inlined where the run ends.
    #[cold]
    #[inline(never)]
    fn wake_drain(&self) {
        self.idle.notify_waiters();
    }
}
