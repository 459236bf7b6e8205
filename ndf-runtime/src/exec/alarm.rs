//! What bounds an attempt in time: a timer of its own, or, for the steps of
//! a `parallel!`'s tasks, the one alarm of their `parallel!`.
//!
//! A tokio timer is 112 bytes. Every task of a `parallel!` is stored in the
//! `parallel!`'s future whether it waits or not, so a timer per task made a
//! `parallel!` of 64 steps carry 64 of them. The tasks of a `parallel!` are
//! polled together, in one pass, with the `parallel!`'s waker: one timer,
//! armed for the earliest deadline any of them asked for, wakes them all.
//! Each attempt keeps its deadline ([`Due`], in whole milliseconds, as
//! tokio's timers count) and reaches its `parallel!`'s [`Deadlines`]: a
//! step that is itself a task is handed them at each poll (see
//! `exec::task`); a step deeper inside a task keeps a reference to them
//! ([`Shared`]). The `parallel!` keeps the [`Alarm`] and polls it after
//! each pass over its tasks. When it rings, every attempt whose deadline
//! has come times out on the next pass, and the others ask again for
//! theirs. The deadline of each attempt counts, as a timer of its own
//! would, from its first wait.
//!
//! `parallel!(each …)` keeps a timer per item: its set wakes only the item
//! whose waker fired, so a shared alarm would not reach them.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::Cx;
use crate::gating::{Held, Place};
use crate::policy::{Timer, deadline_from};

/// What bounds an attempt in time.
#[doc(hidden)]
pub trait Bound: Send {
    /// Called while the attempt is pending: ready once `after` has passed
    /// since the first call. `after` is asked for at the first call only.
    fn poll_expired(
        self: Pin<&mut Self>,
        after: impl FnOnce() -> Duration,
        cx: &mut Context<'_>,
    ) -> Poll<()>;
}

impl Bound for Timer {
    #[inline]
    fn poll_expired(
        self: Pin<&mut Self>,
        after: impl FnOnce() -> Duration,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        Timer::poll_expired(self, after, cx)
    }
}

/// Which [`Bound`] a step's first attempt has: [`Own`] or [`Joined`].
#[doc(hidden)]
pub trait Bounds: 'static {
    /// What a step's run keeps to make the bound (nothing for [`Own`]).
    type Arg<'a>: Copy + Send;
    /// The bound, for a run of lifetime `'a`.
    type Of<'a>: Bound;
    /// The bound, made where the attempt is.
    fn make(arg: Self::Arg<'_>) -> Self::Of<'_>;
    /// What a `Plain` step's run keeps of its place in its bulkhead, for
    /// a step that keeps `H` (`Step::Held`): a task of a `parallel!`
    /// keeps `H`, nothing for most steps, in each of its tasks; a step
    /// awaited where it stands keeps the place's 16 bytes, once per run.
    /// Nothing there either made LLVM copy each step's idle timer
    /// through the stack where its run is made (about 26 instructions a
    /// step).
    type Held<H: Held>: Held;
}

/// A timer of the attempt's own.
#[doc(hidden)]
#[derive(Debug)]
pub struct Own;

/// The alarm of the attempt's `parallel!`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Joined;

impl Bounds for Own {
    type Arg<'a> = ();
    type Of<'a> = Timer;
    type Held<H: Held> = Place;

    #[inline]
    fn make((): Self::Arg<'_>) -> Self::Of<'_> {
        Timer::Idle
    }
}

impl Bounds for Joined {
    type Arg<'a> = &'a Deadlines;
    type Of<'a> = Shared<'a>;
    type Held<H: Held> = H;

    #[inline]
    fn make(deadlines: Self::Arg<'_>) -> Self::Of<'_> {
        Shared::new(deadlines)
    }
}

/// The deadlines the attempts of one `parallel!`'s tasks ask for, in
/// nanoseconds from the run's start: the earliest asked for since the
/// alarm last rang, and the latest the alarm has rung for. Written and
/// read only while the `parallel!` is polled (atomics: the run's future
/// is `Send`, and they cost what plain loads and stores do).
#[doc(hidden)]
#[derive(Debug)]
pub struct Deadlines {
    base: Instant,
    /// `u64::MAX`: none.
    asked: AtomicU64,
    /// 0: never rang.
    rang: AtomicU64,
}

impl Deadlines {
    /// The deadlines of a `parallel!` of run `run`.
    #[must_use]
    #[inline]
    pub fn new(run: Cx<'_>) -> Self {
        Self {
            base: run.0.at,
            asked: AtomicU64::new(u64::MAX),
            rang: AtomicU64::new(0),
        }
    }
}

/// An attempt's deadline on its `parallel!`'s alarm: whole milliseconds
/// (rounded up, as tokio's timers round) from the run's start, in 40 bits
/// (34 years, more than any timer is armed for: see
/// `policy::deadline_from`), unset until the attempt's first wait. Six
/// bytes, with room for whether the task whose attempt it is has started
/// (see `exec::task`), and spare values in its [`Phase`] that an enum
/// around it keeps its discriminant in.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Due {
    low: u32,
    high: u8,
    phase: Phase,
}

/// Where a [`Due`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Its task has not started.
    Unstarted,
    /// Not set: its attempt has not waited yet.
    #[default]
    Unset,
    /// Set.
    Set,
}

impl Due {
    /// The most milliseconds 40 bits hold.
    const MAX_MS: u64 = (1 << 40) - 1;

    /// Not set, of a task that has not started.
    pub(crate) const UNSTARTED: Due = Due {
        low: 0,
        high: 0,
        phase: Phase::Unstarted,
    };

    /// Whether its task has started.
    #[inline]
    pub(crate) fn started(self) -> bool {
        self.phase != Phase::Unstarted
    }

    /// Its task starts.
    #[inline]
    pub(crate) fn start(&mut self) {
        if self.phase == Phase::Unstarted {
            self.phase = Phase::Unset;
        }
    }

    /// In the nanoseconds of [`Deadlines`].
    #[inline]
    fn nanos(self) -> u64 {
        ((u64::from(self.high) << 32) | u64::from(self.low)) * 1_000_000
    }
}

impl Deadlines {
    /// Ready once the deadline `due` of an attempt has come. At the
    /// attempt's first wait, `due` is set `after()` from then. Else asks
    /// the alarm for it.
    #[inline]
    pub(crate) fn poll_due(&self, due: &mut Due, after: impl FnOnce() -> Duration) -> Poll<()> {
        if due.phase != Phase::Set {
            *due = self.due_after(after());
        }
        let at = due.nanos();
        if self.rang.load(Ordering::Relaxed) >= at {
            return Poll::Ready(());
        }
        self.asked.fetch_min(at, Ordering::Relaxed);
        Poll::Pending
    }

    /// The deadline `after` from now. Out of line: once per attempt that
    /// waits.
    #[inline(never)]
    fn due_after(&self, after: Duration) -> Due {
        let since = Instant::now().saturating_duration_since(self.base);
        let ms = since.saturating_add(after).as_nanos().div_ceil(1_000_000);
        let ms = u64::try_from(ms).map_or(Due::MAX_MS, |ms| ms.clamp(1, Due::MAX_MS));
        let [a, b, c, d, high, ..] = ms.to_le_bytes();
        Due {
            low: u32::from_le_bytes([a, b, c, d]),
            high,
            phase: Phase::Set,
        }
    }
}

pin_project_lite::pin_project! {
    /// The one timer of a `parallel!`'s tasks, beside them: made at the
    /// first deadline one of them asks for, never before.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct Alarm {
        #[pin]
        timer: Timer,
    }
}

impl Default for Alarm {
    fn default() -> Self {
        Self { timer: Timer::Idle }
    }
}

impl Alarm {
    /// Arms the timer for the earliest deadline asked for in `deadlines`
    /// and polls it: `true` when it rang, and the tasks should be polled
    /// again, so that the attempts whose deadline has come time out and
    /// the others ask again.
    pub fn poll_rang(self: Pin<&mut Self>, cx: &mut Context<'_>, deadlines: &Deadlines) -> bool {
        let asked = deadlines.asked.load(Ordering::Relaxed);
        if asked == u64::MAX {
            return false;
        }
        let this = self.project();
        let at = deadline_from(deadlines.base, Duration::from_nanos(asked));
        if this.timer.poll_until(at, cx).is_pending() {
            return false;
        }
        deadlines.rang.fetch_max(asked, Ordering::Relaxed);
        // Asked for again, on the next pass, by those still waiting.
        deadlines.asked.store(u64::MAX, Ordering::Relaxed);
        true
    }
}

/// An attempt's bound by its `parallel!`'s alarm: the deadlines it asks in,
/// and its own once it has waited.
#[doc(hidden)]
#[derive(Debug)]
pub struct Shared<'a> {
    deadlines: &'a Deadlines,
    due: Due,
}

impl<'a> Shared<'a> {
    #[inline]
    pub(crate) fn new(deadlines: &'a Deadlines) -> Self {
        Self {
            deadlines,
            due: Due::default(),
        }
    }
}

impl Bound for Shared<'_> {
    fn poll_expired(
        mut self: Pin<&mut Self>,
        after: impl FnOnce() -> Duration,
        _: &mut Context<'_>,
    ) -> Poll<()> {
        let deadlines = self.deadlines;
        deadlines.poll_due(&mut self.due, after)
    }
}
