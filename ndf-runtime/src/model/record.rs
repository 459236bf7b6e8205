//! What happened to each step of one run, kept in the run's own future and
//! applied to the statistics once, when the run ends: a step touches no lock
//! and no shared cache line.

use std::sync::atomic::{AtomicU32, Ordering};

const RETRIES: u32 = 0xFFFF;
const OK: u32 = 1 << 16;
const FAILED: u32 = 1 << 17;
const FALLBACK: u32 = 1 << 18;
const COMPENSATED: u32 = 1 << 19;
const COMPENSATION_FAILED: u32 = 1 << 20;
/// The low bits hold the level a `degrade!` node served at, not retries.
const LEVEL: u32 = 1 << 21;
/// The step was held back by low confidence and did not run.
const HELD: u32 = 1 << 22;
/// The step's error was rejected (see `ErrorClass::Rejected`): counted,
/// never learned as its failure.
const REJECTED: u32 = 1 << 23;
/// It succeeded, slower than its `slow_call` threshold: a failure for its
/// breaker.
const SLOW: u32 = 1 << 24;

/// The outcome of one step in one run, in one atomic word.
///
/// Only the runner of that step stage writes it, one write after another
/// (the outcome, then perhaps the compensation), so a relaxed load and store
/// suffice: no read-modify-write instruction on the hot path. The atomic is
/// there so that the run's future stays `Send`.
///
/// In a fan-out (`parallel!(each …)`) every item runs the same stage and
/// writes the same record, one after another (the items are polled by the
/// run's own task): the record then holds all of them. It failed when any
/// item failed, its retries are the items' sum, and a `degrade!` node keeps
/// the lowest level that served.
#[derive(Debug, Default)]
pub struct StepRecord(AtomicU32);

/// A decoded [`StepRecord`].
#[allow(
    clippy::struct_excessive_bools,
    reason = "the decoded flags of a bit field"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StepOutcome {
    pub(crate) ran: bool,
    pub(crate) ok: bool,
    pub(crate) retries: u32,
    pub(crate) fallback: bool,
    pub(crate) compensated: bool,
    pub(crate) compensation_failed: bool,
    /// For a `degrade!` node: the level that served (or the last tried).
    pub(crate) level: Option<u32>,
    /// Held back by low confidence: the step did not run.
    pub(crate) held: bool,
    /// It ended with a rejected error.
    pub(crate) rejected: bool,
    /// It succeeded slower than its `slow_call` threshold.
    pub(crate) slow: bool,
}

impl StepOutcome {
    /// For a `degrade!` node that served: the level that served. A chain
    /// that every alternative failed served nothing.
    pub(crate) fn level_served(self) -> Option<u32> {
        self.level.filter(|_| self.ok)
    }

    /// A `degrade!` node served by an alternative below its preferred one.
    pub(crate) fn degraded(self) -> bool {
        self.level_served() > Some(0)
    }
}

impl StepRecord {
    #[inline]
    pub(crate) fn finish(&self, retries: u32, ok: bool, fallback: bool) {
        let mut bits = if ok { OK } else { FAILED };
        if fallback {
            bits |= FALLBACK;
        }
        self.add(retries, bits);
    }

    /// The step ended with a rejected error (no retry, no fallback).
    #[inline]
    pub(crate) fn rejected(&self, retries: u32) {
        self.add(retries, FAILED | REJECTED);
    }

    #[inline]
    fn set(&self, bits: u32) {
        self.0
            .store(self.0.load(Ordering::Relaxed) | bits, Ordering::Relaxed);
    }

    /// Adds `retries` to the count (the items of a fan-out add theirs up)
    /// and sets `bits`.
    #[inline]
    fn add(&self, retries: u32, bits: u32) {
        let old = self.0.load(Ordering::Relaxed);
        let count = (old & RETRIES).saturating_add(retries).min(RETRIES);
        self.0
            .store((old & !RETRIES) | count | bits, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn level(&self, level: u32, ok: bool) {
        let old = self.0.load(Ordering::Relaxed);
        // The items of a fan-out keep the lowest level that served.
        let level = if old & LEVEL == 0 {
            level.min(RETRIES)
        } else {
            (old & RETRIES).max(level.min(RETRIES))
        };
        let bits = (old & !RETRIES) | level | LEVEL | if ok { OK } else { FAILED };
        self.0.store(bits, Ordering::Relaxed);
    }

    /// The step succeeded slower than its `slow_call` threshold.
    #[inline]
    pub(crate) fn slow(&self) {
        self.set(SLOW);
    }

    /// The step was held back by low confidence; `served` when its
    /// fallback served in its place.
    #[inline]
    pub(crate) fn held(&self, served: bool) {
        self.set(HELD | if served { FALLBACK | OK } else { 0 });
    }

    #[inline]
    pub(crate) fn compensated(&self, ok: bool) {
        self.set(COMPENSATED | if ok { 0 } else { COMPENSATION_FAILED });
    }

    /// For a `degrade!` node that served: the level that served.
    #[must_use]
    pub fn level_served(&self) -> Option<u32> {
        self.read().level_served()
    }

    pub(crate) fn read(&self) -> StepOutcome {
        StepOutcome::decode(self.bits())
    }

    /// The record as one word, for [`StepOutcome::decode`].
    pub(crate) fn bits(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl StepOutcome {
    /// A step that succeeded at its first attempt, and nothing else
    /// happened to it.
    pub(crate) const CLEAN: StepOutcome = StepOutcome {
        ran: true,
        ok: true,
        retries: 0,
        fallback: false,
        compensated: false,
        compensation_failed: false,
        level: None,
        held: false,
        rejected: false,
        slow: false,
    };

    /// Whether a record's [`StepRecord::bits`] hold [`StepOutcome::CLEAN`].
    pub(crate) fn clean(bits: u32) -> bool {
        bits == OK
    }

    /// The outcome a record's [`StepRecord::bits`] hold.
    pub(crate) fn decode(bits: u32) -> Self {
        StepOutcome {
            ran: bits & HELD == 0 && bits & (OK | FAILED) != 0,
            // One failed item of a fan-out fails the record.
            ok: bits & OK != 0 && bits & FAILED == 0,
            retries: if bits & LEVEL == 0 { bits & RETRIES } else { 0 },
            level: (bits & LEVEL != 0).then_some(bits & RETRIES),
            held: bits & HELD != 0,
            rejected: bits & REJECTED != 0,
            fallback: bits & FALLBACK != 0,
            compensated: bits & COMPENSATED != 0,
            compensation_failed: bits & COMPENSATION_FAILED != 0,
            slow: bits & SLOW != 0,
        }
    }
}

/// The records of one run: an array with one record per step stage, as the
/// workflow macros declare it (`type Log = [StepRecord; N]`).
pub trait RunLog: Send + Sync {
    /// A log where nothing has happened yet.
    fn empty() -> Self;
    /// The records, by step index.
    fn records(&self) -> &[StepRecord];
}

// `inline(always)`: in a debug build, a copy inside the run that uses it,
// rather than a codegen unit of its own in the workflow's crate.
#[allow(
    clippy::inline_always,
    reason = "a constant and a coercion: nothing worth a call, or a unit"
)]
impl<const N: usize> RunLog for [StepRecord; N] {
    #[inline(always)]
    fn empty() -> Self {
        // A constant, not `array::from_fn`: nothing of `core::array` (nor
        // of `Default`) is compiled for it in the workflow's crate.
        [const { StepRecord(AtomicU32::new(0)) }; N]
    }

    #[inline(always)]
    fn records(&self) -> &[StepRecord] {
        self
    }
}

/// How a run ended, as learning sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunEnd {
    /// It succeeded.
    Ok,
    /// It failed: learned as the pattern's failure.
    Failed,
    /// It ended with a rejected error: counted, never learned as a failure.
    Rejected,
    /// Its gate refused it: it did not run.
    Refused,
}

impl RunEnd {
    /// How a run that ended with `error` (`None` when it succeeded)
    /// ended: a step held back by its gate refused the run (it did not
    /// fail); a rejected error is the caller's. Not generic over the run's
    /// output: compiled once, here.
    pub(crate) fn of(error: Option<&crate::error::Error>) -> Self {
        match error {
            None => RunEnd::Ok,
            // Held back by a gate, a rate or a bulkhead: backpressure, not
            // a failure of the pattern.
            Some(
                crate::error::Error::ConfidenceThreshold { .. }
                | crate::error::Error::RateLimited { .. }
                | crate::error::Error::Saturated { .. },
            ) => RunEnd::Refused,
            Some(e) if e.class() == crate::error::ErrorClass::Rejected => RunEnd::Rejected,
            Some(_) => RunEnd::Failed,
        }
    }

    /// The `outcome` of spans and metrics: `ok`, `error`, `rejected` or
    /// `refused`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunEnd::Ok => "ok",
            RunEnd::Failed => "error",
            RunEnd::Rejected => "rejected",
            RunEnd::Refused => "refused",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = StepRecord::default();
        assert!(!r.read().ran);
        r.finish(3, true, true);
        r.compensated(false);
        assert_eq!(
            r.read(),
            StepOutcome {
                ran: true,
                ok: true,
                retries: 3,
                fallback: true,
                compensated: true,
                compensation_failed: true,
                level: None,
                held: false,
                rejected: false,
                slow: false,
            }
        );
        r.slow();
        assert!(r.read().slow && r.read().ok, "slow is a success's mark");
    }

    #[test]
    fn levels_are_not_retries() {
        let r = StepRecord::default();
        r.level(2, true);
        let out = r.read();
        assert_eq!((out.level, out.retries, out.ok), (Some(2), 0, true));
    }

    #[test]
    fn retries_saturate() {
        let r = StepRecord::default();
        r.finish(u32::MAX, false, false);
        let out = r.read();
        assert_eq!((out.retries, out.ok, out.ran), (0xFFFF, false, true));
    }

    #[test]
    fn items_of_a_fan_out_add_up() {
        let r = StepRecord::default();
        r.finish(2, true, false);
        r.finish(0, true, false);
        assert_eq!((r.read().ok, r.read().retries), (true, 2));
        r.finish(3, false, false);
        r.finish(1, true, false);
        let out = r.read();
        assert_eq!(
            (out.ok, out.ran, out.retries),
            (false, true, 6),
            "one failed item fails the record; retries add up"
        );
    }

    #[test]
    fn a_fan_out_of_degrade_nodes_keeps_the_lowest_level_served() {
        let r = StepRecord::default();
        r.level(0, true);
        r.level(2, true);
        r.level(1, true);
        let out = r.read();
        assert_eq!((out.level, out.ok, out.retries), (Some(2), true, 0));
    }
}
