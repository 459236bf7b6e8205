//! What bounds an attempt in time: a timer of its own, or, for the steps of
//! a `parallel!`'s tasks, the one alarm of their `parallel!`.
//!
//! A tokio timer is 112 bytes. Every task of a `parallel!` is stored in the
//! `parallel!`'s future whether it waits or not, so a timer per task made a
//! `parallel!` of 64 steps carry 64 of them. The tasks of a `parallel!` are
//! polled together, in one pass, with the `parallel!`'s waker: one timer,
//! armed for the earliest deadline any of them asked for, wakes them all.
//! Each attempt keeps its deadline (a word) and a reference to its
//! `parallel!`'s [`Deadlines`]; the `parallel!` keeps the [`Alarm`] and
//! polls it after each pass over its tasks. When it rings, every attempt
//! whose deadline has come times out on the next pass, and the others ask
//! again for theirs. The deadline of each attempt counts, as a timer of its
//! own would, from its first wait.
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
    /// since the first call.
    fn poll_expired(self: Pin<&mut Self>, after: Duration, cx: &mut Context<'_>) -> Poll<()>;
}

impl Bound for Timer {
    #[inline]
    fn poll_expired(self: Pin<&mut Self>, after: Duration, cx: &mut Context<'_>) -> Poll<()> {
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
    /// In the nanoseconds of [`Deadlines`]; 0 until the first wait.
    due: u64,
}

impl<'a> Shared<'a> {
    #[inline]
    pub(crate) fn new(deadlines: &'a Deadlines) -> Self {
        Self { deadlines, due: 0 }
    }
}

impl Bound for Shared<'_> {
    fn poll_expired(mut self: Pin<&mut Self>, after: Duration, _: &mut Context<'_>) -> Poll<()> {
        let deadlines = self.deadlines;
        if self.due == 0 {
            let since = Instant::now().saturating_duration_since(deadlines.base);
            let due = since.saturating_add(after).as_nanos();
            self.due = u64::try_from(due).unwrap_or(u64::MAX - 1).max(1);
        }
        if deadlines.rang.load(Ordering::Relaxed) >= self.due {
            return Poll::Ready(());
        }
        deadlines.asked.fetch_min(self.due, Ordering::Relaxed);
        Poll::Pending
    }
}
