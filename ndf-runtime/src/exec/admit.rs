//! A step's admission, before its first attempt: the workflow's deadline,
//! its gate, its memory budget, its `rate` and `concurrency`. Not generic
//! over the step: one copy serves every step, and the generic run of a step
//! keeps only what the admission decided.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::attempt::past_deadline;
use super::{Cx, DEADLINE};
use crate::error::Error;
use crate::gating::{Limited, LimitsCell, Place, RateTaken, StepLimits};
use crate::learning::Blocked;
use crate::model::StepMeta;

/// A wait for room (memory, a start under the rate, a place in the
/// bulkhead): rare and slow, so boxed, and one type for every step. Its
/// place, or why the step may not run; the step's attempts ask for their
/// timeout themselves, when they first wait.
pub(crate) type Wait<'a> = Pin<Box<dyn Future<Output = Result<Place, Error>> + Send + 'a>>;

/// What the admission of a step decided, when it did not refuse the step
/// (the workflow's deadline has passed): small, so that a step's future
/// keeps no more of it than it needs across a wait.
pub(crate) enum Next<'a> {
    /// Run it, holding the place (if the step has limits) until the step
    /// is done, retries and fallback included.
    Go(Place),
    /// Wait for room first.
    Wait(Wait<'a>),
    /// Its gate holds it back.
    Held(&'a Blocked),
}

/// Whether step of options `meta` (its `limits` if it has a `rate` or a
/// `concurrency`), whose attempts get `timeout` (asked only if the run has
/// a deadline), needs [`admission`]: only when it has limits, or something
/// else to check ([`unchecked`] is false). Most steps need nothing, and
/// their run moves no admission value around.
#[allow(
    clippy::inline_always,
    reason = "a step's start: inlined in the poll of a long workflow too"
)]
#[cfg_attr(not(debug_assertions), inline(always))]
pub(crate) fn needs_admission(
    cx: Cx<'_>,
    meta: &'static StepMeta,
    limits: Option<&'static LimitsCell>,
    timeout: impl FnOnce() -> Duration,
) -> bool {
    limits.is_some() || !unchecked(cx, meta, timeout)
}

/// Whether a step of options `meta`, whose attempts get `timeout`, has
/// nothing to check but its limits: the workflow's deadline has not
/// passed, the run is neither held back in part nor from the queue (where
/// a completed stage may wait to be stored), and it has no memory budget.
/// The timeout is asked for only in a run with a deadline: the timeouts a
/// step is given are longer than zero (the config and `#[pattern]` refuse
/// zero), so only what is left of a deadline can make it zero; a run
/// without one reads neither the clock nor the step's timeout here.
#[allow(
    clippy::inline_always,
    reason = "a step's start: inlined in the poll of a long workflow too"
)]
#[cfg_attr(not(debug_assertions), inline(always))]
fn unchecked(cx: Cx<'_>, meta: &'static StepMeta, timeout: impl FnOnce() -> Duration) -> bool {
    let checks = cx.checks();
    (checks == 0 || (checks == DEADLINE && !timeout().is_zero()))
        && cx.config().memory_of(meta).is_none()
}

/// A start and a place for a step with `limits` (its options `meta`),
/// when nothing else needs checking and both are free: the admission of
/// a healthy limited step, inline. Else what [`admit`] needs to know:
/// whether the rate's token was taken already.
#[inline]
fn try_place(
    cx: Cx<'_>,
    meta: &'static StepMeta,
    limits: &'static LimitsCell,
    timeout: Duration,
) -> Result<Place, Option<RateTaken>> {
    if !unchecked(cx, meta, || timeout) {
        return Err(None);
    }
    limits.get(meta).try_enter(cx.first_poll_at()).map_err(Some)
}

/// The admission of a step of options `meta` (its `limits`), stage
/// `index`, whose attempts get `timeout`, when it [`needs_admission`]. A
/// limited step takes its start and place inline when both are free and
/// nothing else needs checking; the rest of the admission ([`admit`]) is
/// out of line.
///
/// # Errors
///
/// [`Error::DeadlineExceeded`] when the workflow's deadline has passed.
#[inline]
pub(crate) fn admission<'a>(
    cx: Cx<'a>,
    index: usize,
    meta: &'static StepMeta,
    limits: Option<&'static LimitsCell>,
    timeout: Duration,
) -> Result<Next<'a>, Error> {
    let tried = match limits {
        Some(cell) => try_place(cx, meta, cell, timeout),
        None => Err(None),
    };
    match tried {
        Ok(place) => Ok(Next::Go(place)),
        Err(taken) => admit(cx, index, meta, limits, (timeout, taken)),
    }
}

/// [`admission`] out of line; `taken` when [`try_place`] tried the limits
/// already.
#[inline(never)]
fn admit<'a>(
    cx: Cx<'a>,
    index: usize,
    meta: &'static StepMeta,
    limits: Option<&'static LimitsCell>,
    (timeout, taken): (Duration, Option<RateTaken>),
) -> Result<Next<'a>, Error> {
    let step = meta.name;
    if timeout.is_zero()
        && let Some(error) = past_deadline(cx, step)
    {
        return Err(error);
    }
    if let Some(blocked) = cx.blocked(index) {
        // Its fallback, if it has one, stores the checkpoints first.
        return Ok(Next::Held(blocked));
    }
    let ask = Ask {
        index,
        meta,
        limits,
        timeout,
        taken,
    };
    if cx.unsaved().is_some() {
        // A durable run's completed stage is stored before this stage's
        // step runs: rare (a run from the queue), and slow, so boxed.
        return Ok(Next::Wait(Box::pin(stored_then_room(cx, ask))));
    }
    Ok(match room(cx, ask) {
        Ok(place) => Next::Go(place),
        Err(wait) => Next::Wait(wait),
    })
}

/// What a step asks of its admission once nothing holds it back: stage
/// `index`, of options `meta` (its `limits`), whose attempts get
/// `timeout`; `taken` when [`try_place`] tried the limits already.
#[derive(Clone, Copy)]
struct Ask {
    index: usize,
    meta: &'static StepMeta,
    limits: Option<&'static LimitsCell>,
    timeout: Duration,
    taken: Option<RateTaken>,
}

/// Stores the durable run's completed stages (see `exec::durable`), then
/// waits for [`room`].
async fn stored_then_room(cx: Cx<'_>, ask: Ask) -> Result<Place, Error> {
    cx.store_checkpoints().await?;
    match room(cx, ask) {
        Ok(place) => Ok(place),
        Err(wait) => wait.await,
    }
}

/// The room a step needs, once nothing holds it back: its memory budget,
/// its start under the rate and its place in the bulkhead. The place when
/// all are free at once, else the wait for them.
fn room(cx: Cx<'_>, ask: Ask) -> Result<Place, Wait<'_>> {
    let Ask {
        index,
        meta,
        limits,
        timeout,
        taken,
    } = ask;
    let step = meta.name;
    let limits = limits.map(|cell| cell.get(meta));
    if let Some(budget) = cx.config().memory_of(meta)
        && !cx.admission().memory_fits(budget)
    {
        let room = Room {
            index,
            step,
            timeout,
            memory: Some(budget),
            limits,
            taken: None,
        };
        return Err(Box::pin(room.wait(cx)));
    }
    // A start and a place at once when both are free.
    let Some(limits) = limits else {
        return Ok(Place::NONE);
    };
    match taken.map_or_else(|| limits.try_enter(cx.first_poll_at()), Err) {
        Ok(place) => Ok(place),
        Err(taken) => {
            let room = Room {
                index,
                step,
                timeout,
                memory: None,
                limits: Some(limits),
                taken: Some(taken),
            };
            Err(Box::pin(room.wait(cx)))
        }
    }
}

/// What a step waits for before it starts.
struct Room {
    index: usize,
    step: &'static str,
    timeout: Duration,
    /// Its memory budget, when free memory is short of it.
    memory: Option<u64>,
    limits: Option<&'static StepLimits>,
    /// Set when [`StepLimits::try_enter`] already tried (and maybe took
    /// the rate's token).
    taken: Option<RateTaken>,
}

impl Room {
    /// Waits for free memory, then for a start and a place: the
    /// step's place, or why it may not run.
    async fn wait(self, cx: Cx<'_>) -> Result<Place, Error> {
        if let Some(budget) = self.memory {
            let wait = cx.bounded(cx.config().resource_wait);
            if let Err(error) = cx.admission().admit_memory(budget, wait).await {
                return Err(past_deadline(cx, self.step).unwrap_or(error));
            }
        }
        let Some(limits) = self.limits else {
            return Ok(Place::NONE);
        };
        let taken = match self.taken {
            Some(taken) => taken,
            // After the wait for memory, if any: a new reading.
            None => match limits.try_enter(None) {
                Ok(place) => return Ok(place),
                Err(taken) => taken,
            },
        };
        match limits.enter(self.timeout, taken).await {
            Ok(place) => Ok(place),
            Err(limited) => Err(limited_error(cx, self.index, limited, self.step)),
        }
    }
}

/// The error of a run that a step's `rate` or bulkhead held back: the step
/// did not run, and the run is refused, not failed.
#[cold]
fn limited_error(cx: Cx<'_>, index: usize, limited: Limited, step: &'static str) -> Error {
    if let Some(record) = cx.record(index) {
        record.held(false);
    }
    let (pattern, step) = (cx.pattern().to_owned(), step.to_owned());
    match limited {
        Limited::Rate(rate, waited) => Error::RateLimited {
            pattern,
            step,
            rate: rate.to_string(),
            waited,
        },
        Limited::Saturated(bulkhead) => Error::Saturated {
            pattern,
            step,
            running: bulkhead.max,
            queued: bulkhead.queue,
        },
    }
}
