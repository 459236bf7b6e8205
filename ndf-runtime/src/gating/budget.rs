//! Retry budgets: retries of a step may add at most a fraction to its
//! calls over a window, so that a dependency that goes down is not met with
//! a retry storm (Finagle's and gRPC's retry budgets, by counting).

use std::any::TypeId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Retries allowed in a window whatever the calls (so that a quiet step can
/// still retry).
const MIN_RETRIES: u64 = 10;

/// The calls and retries of one step in the current window.
#[derive(Debug)]
struct Window {
    /// Milliseconds since the budgets' epoch when the window started.
    started_ms: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
}

/// Every step's retry budget in one runtime: `ratio` of the calls in the
/// last `window` (and at least [`MIN_RETRIES`]).
#[derive(Debug)]
pub(crate) struct RetryBudgets {
    ratio: Option<f64>,
    window: Duration,
    epoch: Instant,
    steps: papaya::HashMap<TypeId, Arc<Window>, foldhash::fast::RandomState>,
}

impl RetryBudgets {
    /// Budgets of `ratio` of the calls per `window`; `None`: no budget.
    pub(crate) fn new(ratio: Option<f64>, window: Duration) -> Self {
        Self {
            ratio,
            window,
            epoch: Instant::now(),
            steps: papaya::HashMap::default(),
        }
    }

    /// Whether a budget is set.
    pub(crate) fn enabled(&self) -> bool {
        self.ratio.is_some()
    }

    fn window(&self, step: TypeId) -> Option<Arc<Window>> {
        self.ratio?;
        let steps = self.steps.pin();
        let w = steps.get_or_insert_with(step, || {
            Arc::new(Window {
                started_ms: AtomicU64::new(self.now_ms()),
                calls: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            })
        });
        let now = self.now_ms();
        let started = w.started_ms.load(Ordering::Relaxed);
        if now.saturating_sub(started) >= u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
            && w.started_ms
                .compare_exchange(started, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // A new window: what the last one counted is forgotten.
            w.calls.store(0, Ordering::Relaxed);
            w.retries.store(0, Ordering::Relaxed);
        }
        Some(Arc::clone(w))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Counts a call of `step` (a first attempt).
    pub(crate) fn call(&self, step: TypeId) {
        if let Some(w) = self.window(step) {
            w.calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether `step` may retry once more, counting the retry if so.
    pub(crate) fn retry(&self, step: TypeId) -> bool {
        let (Some(ratio), Some(w)) = (self.ratio, self.window(step)) else {
            return true;
        };
        let calls = w.calls.load(Ordering::Relaxed);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a share of a count, rounded down"
        )]
        let allowed = ((calls as f64 * ratio) as u64).max(MIN_RETRIES);
        w.retries
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |r| {
                (r < allowed).then_some(r + 1)
            })
            .is_ok()
    }
}
