//! Per-step limits shared by every run in the process: a rate (governor's
//! GCRA token bucket, on tokio's clock so that paused time drives it) and a
//! bulkhead (tokio's `Semaphore`, with a bounded queue).

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::{Bulkhead, Rate, StepMeta};

/// Tokio's clock, as governor reads time: nanoseconds since the limiter
/// was made. In governor's `Nanos`, a `u64`, converted from the clock's
/// reading once: as a `Duration`, each of governor's sums and differences
/// normalized seconds and nanoseconds again (about 40 instructions a
/// check). 584 years from its start, a limiter's clock stops.
#[derive(Debug, Clone)]
struct TokioClock {
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        let now = READING.get().unwrap_or_else(tokio::time::Instant::now);
        let since = now.saturating_duration_since(self.start).as_nanos();
        Nanos::new(u64::try_from(since).unwrap_or(u64::MAX))
    }
}

std::thread_local! {
    /// The reading of tokio's clock a check is made at, when its caller
    /// has one as good as a new one ([`StepLimits::try_enter`]): set for
    /// the one check, on its thread, and read by [`TokioClock::now`], as
    /// governor's limiter reads its own clock and takes no time.
    static READING: Cell<Option<tokio::time::Instant>> = const { Cell::new(None) };
}

/// Clears [`READING`] after a check, however it ends.
struct Cleared;

impl Drop for Cleared {
    fn drop(&mut self) {
        READING.set(None);
    }
}

/// Whether `limiter` lets a start through now, or at `at` when given.
#[inline]
fn check_at(limiter: &Limiter, at: Option<tokio::time::Instant>) -> bool {
    let Some(at) = at else {
        return limiter.check().is_ok();
    };
    READING.set(Some(at));
    let _cleared = Cleared;
    limiter.check().is_ok()
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

/// What limits one step.
pub(crate) struct StepLimits {
    rate: Option<(Rate, Limiter, TokioClock)>,
    bulkhead: Option<(Bulkhead, Arc<Semaphore>, AtomicU32)>,
}

impl std::fmt::Debug for StepLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepLimits")
            .field("rate", &self.rate.as_ref().map(|r| r.0))
            .field("bulkhead", &self.bulkhead.as_ref().map(|b| b.0))
            .finish()
    }
}

/// Why a run of a limited step did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// No start was free within the wait allowed.
    Rate(Rate, Duration),
    /// The bulkhead and its queue were full.
    Saturated(Bulkhead),
}

/// A place in a step's bulkhead, held while the step runs.
/// Whether [`StepLimits::try_enter`] took the rate's token before it
/// found the bulkhead full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateTaken(bool);

#[doc(hidden)]
#[derive(Debug)]
pub struct Place(#[allow(dead_code, reason = "held for its Drop")] Option<OwnedSemaphorePermit>);

impl Place {
    /// No place: the step has no bulkhead, or has not taken its place.
    /// One value of the type, not an `Option<Place>`, which took a word
    /// more in every step's future.
    pub(crate) const NONE: Place = Place(None);
}

/// What a `Plain` step's run keeps of the place it took in its bulkhead
/// while its attempt runs: the [`Place`] for a step with a `concurrency`,
/// nothing ([`NoPlace`]) for the others, which never take one. Chosen by
/// `#[pattern]` as `Step::Held`, so that a task of a `parallel!` whose
/// step has no bulkhead keeps no room for a place (16 bytes a task). A
/// step awaited where it stands keeps the [`Place`] whatever its step
/// (`Bounds::Held` says why).
#[doc(hidden)]
pub trait Held: Send + 'static {
    /// What is kept of `place`, the place the step's admission took.
    #[doc(hidden)]
    fn keep(place: Place) -> Self;
}

impl Held for Place {
    #[inline]
    fn keep(place: Place) -> Self {
        place
    }
}

/// The place a step without a bulkhead keeps: none.
#[doc(hidden)]
#[derive(Debug)]
pub struct NoPlace;

impl Held for NoPlace {
    #[inline]
    fn keep(place: Place) -> Self {
        // A step without a bulkhead took no place: `place` holds nothing.
        debug_assert!(place.0.is_none(), "a step without a bulkhead took a place");
        NoPlace
    }
}

/// The limits of one step type, in a static of its own that `#[pattern]`
/// generates for a step with `rate` or `concurrency`: a run finds them
/// with one load, without hashing or counting references.
#[doc(hidden)]
pub struct LimitsCell(OnceLock<StepLimits>);

impl LimitsCell {
    /// An empty cell, made on the first run of its step.
    #[must_use]
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The limits of the step with `meta`, made on its first run.
    pub(crate) fn get(&self, meta: &StepMeta) -> &StepLimits {
        self.0.get_or_init(|| StepLimits::new(meta))
    }
}

impl Default for LimitsCell {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LimitsCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LimitsCell").field(&self.0.get()).finish()
    }
}

impl StepLimits {
    fn new(meta: &StepMeta) -> Self {
        let rate = meta.rate.map(|rate| {
            let clock = TokioClock {
                start: tokio::time::Instant::now(),
            };
            let count = std::num::NonZeroU32::new(rate.count).unwrap_or(std::num::NonZeroU32::MIN);
            let period = (rate.per / rate.count.max(1)).max(Duration::from_nanos(1));
            let quota = Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_second(count))
                .allow_burst(count);
            (
                rate,
                RateLimiter::direct_with_clock(quota, clock.clone()),
                clock,
            )
        });
        let bulkhead = meta.bulkhead.map(|b| {
            let permits = usize::try_from(b.max.max(1)).unwrap_or(usize::MAX);
            (b, Arc::new(Semaphore::new(permits)), AtomicU32::new(0))
        });
        Self { rate, bulkhead }
    }

    /// A start and a place if both are free now, without waiting: the path
    /// of a step under its limits, taken without boxing a wait. `Err` says
    /// to wait with [`StepLimits::enter`], and whether the rate's token
    /// was taken already (it is not given back).
    ///
    /// `at`, when given, is the time to check the rate at, rather than a
    /// new reading of the clock: the start of a run that has not waited
    /// since (`Cx::first_poll_at`). Behind the clock by the work of one
    /// poll, it makes the check stricter, and the start counts as made
    /// then: in any span of time, the starts let through are at most the
    /// burst and the rate over that span and that poll's work.
    pub(crate) fn try_enter(&self, at: Option<tokio::time::Instant>) -> Result<Place, RateTaken> {
        let mut taken = RateTaken(false);
        if let Some((_, limiter, _)) = &self.rate {
            if !check_at(limiter, at) {
                return Err(taken);
            }
            taken = RateTaken(true);
        }
        match &self.bulkhead {
            None => Ok(Place(None)),
            Some((_, semaphore, _)) => match Arc::clone(semaphore).try_acquire_owned() {
                Ok(permit) => Ok(Place(Some(permit))),
                Err(_) => Err(taken),
            },
        }
    }

    /// Waits for a start allowed by the rate (at most `wait`), then for a
    /// place in the bulkhead (queueing within its bound).
    pub(crate) async fn enter(&self, wait: Duration, taken: RateTaken) -> Result<Place, Limited> {
        if let Some((rate, limiter, clock)) = self.rate.as_ref().filter(|_| !taken.0) {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match limiter.check() {
                    Ok(()) => break,
                    Err(not_until) => {
                        let until =
                            tokio::time::Instant::now() + not_until.wait_time_from(clock.now());
                        if until > deadline {
                            return Err(Limited::Rate(*rate, wait));
                        }
                        tokio::time::sleep_until(until).await;
                    }
                }
            }
        }
        let Some((bulkhead, semaphore, waiting)) = &self.bulkhead else {
            return Ok(Place(None));
        };
        if let Ok(permit) = Arc::clone(semaphore).try_acquire_owned() {
            return Ok(Place(Some(permit)));
        }
        if waiting.fetch_add(1, Ordering::AcqRel) >= bulkhead.queue {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Limited::Saturated(*bulkhead));
        }
        let permit = Arc::clone(semaphore).acquire_owned().await;
        waiting.fetch_sub(1, Ordering::AcqRel);
        // The semaphore is never closed.
        Ok(Place(permit.ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn once_a_second() -> StepLimits {
        let meta = StepMeta {
            rate: Some(Rate {
                count: 1,
                per: Duration::from_secs(1),
            }),
            ..StepMeta::new("limited")
        };
        StepLimits::new(&meta)
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_given_a_reading_is_made_at_that_reading_and_only_that_check() {
        let limits = once_a_second();
        let t0 = tokio::time::Instant::now();
        assert!(limits.try_enter(None).is_ok(), "the bucket's one token");
        assert!(limits.try_enter(None).is_err(), "none left at 0 s");
        assert!(
            limits.try_enter(Some(t0)).is_err(),
            "none left at a reading of 0 s"
        );
        // The clock has not moved: only the reading says a second passed.
        assert!(
            limits.try_enter(Some(t0 + Duration::from_secs(1))).is_ok(),
            "a token again at a reading of 1 s"
        );
        assert_eq!(tokio::time::Instant::now(), t0);
        assert!(
            limits.try_enter(None).is_err(),
            "the next check reads the clock again: 0 s, and no token until 2 s"
        );
        assert_eq!(READING.get(), None);
    }
}
