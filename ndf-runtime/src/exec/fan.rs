//! Dynamic fan-out, `parallel!(each stage)`: one stage run over every item
//! of an iterable, at most `max_concurrent` at once, outputs in input order.
//!
//! A new item is polled first in a slot of the fan-out's own, with the
//! fan-out's waker: an item that finishes at its first poll never touches
//! the set's per-item wakers. The other items in flight
//! live in one bounded set of futures
//! ([`futures_buffered::FuturesUnordered`], whose slots are allocated once
//! and reused): a run over a million items allocates its output `Vec` and
//! that set, and nothing per item (plus, when items finish out of order, a
//! window for those waiting on an earlier one). Every item runs the same
//! stage, so the items share the stage's step records: a record says the
//! step failed when any item failed, and counts the retries of all items
//! (see [`crate::model::StepRecord`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use futures::StreamExt as _;
use futures_buffered::FuturesUnordered;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::Cx;
use super::compensate::StageError;
use super::join::Gate;
use crate::error::{Error, StepError};

/// What a fan-out keeps of each item's result.
pub trait Keep<O> {
    /// The element of the output `Vec`.
    type Slot;
    /// A success.
    fn ok(out: O) -> Self::Slot;
    /// A failure: `Ok` when it is tolerated (kept as the element), `Err`
    /// when it stops the fan-out.
    ///
    /// # Errors
    ///
    /// The error, when it stops the fan-out.
    fn failed(error: Error) -> Result<Self::Slot, Error>;
}

/// Every item must succeed: the output is `Vec<O>`, and the first failure
/// cancels the items in flight and starts no more.
#[derive(Debug)]
pub enum Strict {}

impl<O> Keep<O> for Strict {
    type Slot = O;

    fn ok(out: O) -> O {
        out
    }

    fn failed(error: Error) -> Result<O, Error> {
        Err(error)
    }
}

/// `min_success`: failures are kept, as `Vec<Result<O, StepError>>`.
#[derive(Debug)]
pub enum Tolerant {}

impl<O> Keep<O> for Tolerant {
    type Slot = Result<O, StepError>;

    fn ok(out: O) -> Self::Slot {
        Ok(out)
    }

    fn failed(error: Error) -> Result<Self::Slot, Error> {
        Ok(Err(StepError::new(error)))
    }
}

/// The end of a fan-out.
#[derive(Debug)]
pub struct FanOut<S, U> {
    /// The results of the first items, in input order: an item's moves
    /// here once every item before it has finished. Items that finish in
    /// order (the usual case) go straight here, so the output is the only
    /// per-item memory.
    outs: Vec<S>,
    /// The items after those, by input index from `outs.len()` on, up to
    /// the last one that finished: `None` while running (or if it never
    /// finished). Allocated only when an item finishes before one started
    /// earlier.
    pending: VecDeque<Option<S>>,
    /// How many items started.
    started: usize,
    /// What the succeeded items keep to be compensated, in the order they
    /// finished.
    undos: Vec<U>,
    /// What stopped the fan-out early, if anything did.
    error: Option<Error>,
    succeeded: usize,
}

impl<S, U> FanOut<S, U> {
    /// The error that stopped the fan-out, if one did.
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// How many items ran, and how many of them succeeded.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.started, self.succeeded)
    }

    /// The outputs, in input order (items that did not finish are left
    /// out), and what to keep to compensate them. The output `Vec` is the
    /// one the fan-out filled (`tests/allocations_fan_out.rs`).
    #[must_use]
    pub fn into_parts(self) -> (Vec<S>, Vec<U>) {
        let mut outs = self.outs;
        outs.extend(self.pending.into_iter().flatten());
        (outs, self.undos)
    }

    /// Item `index` finished with `slot`: when every item before it has
    /// finished, it goes to the output, with those after it that finished
    /// meanwhile.
    fn finished(&mut self, index: usize, slot: S, max: usize) {
        let Some(offset) = index.checked_sub(self.outs.len()) else {
            return;
        };
        if offset == 0 && self.pending.is_empty() {
            self.outs.push(slot);
            return;
        }
        if self.pending.len() <= offset {
            if self.pending.capacity() == 0 {
                // Room for every item in flight, once.
                self.pending
                    .reserve(max.min(self.started - self.outs.len()));
            }
            self.pending.resize_with(offset + 1, || None);
        }
        self.pending[offset] = Some(slot);
        while let Some(Some(_)) = self.pending.front() {
            if let Some(Some(out)) = self.pending.pop_front() {
                self.outs.push(out);
            }
        }
    }

    /// Item `index` ended with `result`: kept (in input order), or the
    /// error that stops the fan-out, when `K` does not tolerate it. Returns
    /// whether the fan-out stops.
    fn take<K: Keep<O, Slot = S>, O>(
        &mut self,
        index: usize,
        result: Result<(O, U), Error>,
        max: usize,
    ) -> bool {
        let slot = match result {
            Ok((out, undo)) => {
                self.undos.push(undo);
                self.succeeded += 1;
                K::ok(out)
            }
            Err(error) => match K::failed(error) {
                Ok(kept) => kept,
                Err(error) => {
                    self.error = Some(error);
                    return true;
                }
            },
        };
        self.finished(index, slot, max);
        false
    }

    /// An item in flight when the fan-out stopped ended with `result`: if
    /// it succeeded, what it keeps to be compensated. (If it failed, its
    /// workflows compensated themselves, and its error is not the one that
    /// stopped the fan-out.)
    fn cancelled<O>(&mut self, result: Result<(O, U), Error>) {
        if let Ok((_, undo)) = result {
            self.undos.push(undo);
        }
    }

    /// What to keep to compensate the items that succeeded, the output
    /// dropped.
    #[must_use]
    pub fn into_undos(self) -> Vec<U> {
        self.undos
    }
}

pin_project_lite::pin_project! {
    /// An item's future with its index beside it: what `parallel!(each …)`
    /// starts for each item (for a step, its run itself, with no `async`
    /// block around it).
    #[must_use = "futures do nothing unless polled"]
    pub struct Indexed<F> {
        index: usize,
        #[pin]
        fut: F,
    }
}

impl<F> Indexed<F> {
    /// Item `index`'s future `fut`.
    pub fn new(index: usize, fut: F) -> Self {
        Self { index, fut }
    }
}

/// The item's result, its error unboxed if its stage boxed it (a step's
/// run does): a fan-out keeps only the first error, and its items in
/// flight are futures, not results.
impl<T, E: StageError, F: Future<Output = Result<T, E>>> Future for Indexed<F> {
    type Output = (usize, Result<T, Error>);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.fut
            .poll(cx)
            .map(|out| (index, out.map_err(StageError::into_error)))
    }
}

impl<F> std::fmt::Debug for Indexed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Runs `start(index, item)` for every item, at most `max` at once and none
/// while the resource probe reads above `threshold`. A failure that `K`
/// does not tolerate stops the fan-out: no more items start, and those in
/// flight are cancelled. With `drive`, the items are nested workflows:
/// they are driven to their end as cancelled (each compensates the stages
/// it completed; those that succeed meanwhile are kept to be compensated).
/// Without, each item is one step, which has nothing of its own to
/// compensate until it succeeds: the items in flight are dropped, and so
/// never wait to be woken for the cancellation.
pub async fn fan_out<K, I, O, U, Start, Fut>(
    cx: Cx<'_>,
    items: I,
    max: usize,
    threshold: Option<f64>,
    drive: bool,
    mut start: Start,
) -> FanOut<K::Slot, U>
where
    K: Keep<O>,
    I: IntoIterator,
    Start: FnMut(usize, I::Item) -> Fut,
    Fut: Future<Output = (usize, Result<(O, U), Error>)>,
{
    let mut items = items.into_iter().fuse();
    let (lower, _) = items.size_hint();
    let mut fan = FanOut {
        outs: Vec::with_capacity(lower),
        pending: VecDeque::new(),
        started: 0,
        undos: Vec::new(),
        error: None,
        succeeded: 0,
    };
    // The set polls only the items that were woken: when the fan-out
    // stops, this wakes those that wait (if they are to be driven), so that
    // they see the cancellation.
    let cancel = Notify::new();
    let notify = drive.then_some(&cancel);
    let mut running = FuturesUnordered::with_capacity(max.min(lower).max(1));
    // The first slot: a new item starts here and is polled with the
    // fan-out's own waker, so an item that finishes at its first poll (a
    // cache hit, a check) never touches the set's wakers. An item still
    // pending stays here (it is pinned) until it finishes, polled once per
    // wake of the fan-out; meanwhile new items go to the set.
    let mut first = pin!(None::<Woken<'_, Fut>>);
    let mut gate = Gate::new(max, threshold);
    let mut exhausted = false;
    std::future::poll_fn(|w| {
        // Woken: its item may be why.
        let mut first_due = first.is_some();
        loop {
            if first_due {
                first_due = false;
                if let Some(item) = first.as_mut().as_pin_mut()
                    && let Poll::Ready((index, result)) = item.poll(w)
                {
                    first.set(None);
                    gate.finish();
                    if fan.take::<K, O>(index, result, max) {
                        return Poll::Ready(());
                    }
                }
            }
            let mut waiting = false;
            while !exhausted {
                if !gate.try_start(cx) {
                    waiting = true;
                    break;
                }
                if let Some(item) = items.next() {
                    let item = Woken {
                        item: start(fan.started, item),
                        notify,
                        cancel: None,
                    };
                    fan.started += 1;
                    if first.is_none() {
                        first.set(Some(item));
                        first_due = true;
                        break;
                    }
                    running.push(item);
                } else {
                    gate.finish();
                    exhausted = true;
                }
            }
            if first_due {
                continue;
            }
            match running.poll_next_unpin(w) {
                Poll::Ready(Some((index, result))) => {
                    gate.finish();
                    if fan.take::<K, O>(index, result, max) {
                        return Poll::Ready(());
                    }
                    continue;
                }
                Poll::Ready(None) if exhausted && first.is_none() => return Poll::Ready(()),
                Poll::Ready(None) | Poll::Pending => {}
            }
            match gate.end_pass(w, cx, waiting) {
                Err(error) => {
                    fan.error = Some(error);
                    return Poll::Ready(());
                }
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
            }
        }
    })
    .await;
    if fan.error.is_some() && drive {
        cancel.notify_waiters();
        drive_cancelled(cx, first, &mut running, &mut fan).await;
    }
    fan
}

/// Drives the items still in flight, cancelled, to their end: those that
/// succeed meanwhile are kept to be compensated.
async fn drive_cancelled<F, O, S, U>(
    cx: Cx<'_>,
    mut first: Pin<&mut Option<F>>,
    running: &mut FuturesUnordered<F>,
    fan: &mut FanOut<S, U>,
) where
    F: Future<Output = (usize, Result<(O, U), Error>)>,
{
    std::future::poll_fn(|w| {
        if let Some(item) = first.as_mut().as_pin_mut()
            && let Poll::Ready((_, result)) = cx.as_cancelled(|| item.poll(w))
        {
            first.set(None);
            fan.cancelled(result);
        }
        loop {
            match cx.as_cancelled(|| running.poll_next_unpin(w)) {
                Poll::Ready(Some((_, result))) => fan.cancelled(result),
                Poll::Ready(None) if first.is_none() => return Poll::Ready(()),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
}

pin_project_lite::pin_project! {
    /// An item in flight, woken when the fan-out is cancelled (with a
    /// `notify`) as well as by its own events. It waits for the
    /// cancellation only once it has been pending: an item that finishes
    /// at its first poll never touches it.
    struct Woken<'n, F> {
        #[pin]
        item: F,
        notify: Option<&'n Notify>,
        #[pin]
        cancel: Option<Notified<'n>>,
    }
}

impl<F: Future> Future for Woken<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        match this.item.poll(cx) {
            Poll::Ready(out) => Poll::Ready(out),
            Poll::Pending => {
                // Registers the waker; once notified, it stays ready, and
                // the item is polled as cancelled from then on.
                if this.cancel.is_none()
                    && let Some(notify) = this.notify
                {
                    this.cancel.set(Some(notify.notified()));
                }
                if let Some(cancel) = this.cancel.as_pin_mut() {
                    let _ = cancel.poll(cx);
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_out_in_input_order_and_unfinished_items_are_left_out() {
        let mut fan = FanOut::<u32, ()> {
            outs: Vec::new(),
            pending: VecDeque::new(),
            started: 5,
            undos: Vec::new(),
            error: None,
            succeeded: 0,
        };
        fan.finished(0, 0, 8);
        assert_eq!((fan.outs.as_slice(), fan.pending.len()), (&[0][..], 0));
        assert_eq!(fan.pending.capacity(), 0, "in order: no window");
        fan.finished(2, 2, 8);
        assert_eq!(fan.outs, [0]);
        assert_eq!(fan.pending, [None, Some(2)]);
        fan.finished(1, 1, 8);
        assert_eq!(fan.outs, [0, 1, 2]);
        assert!(fan.pending.is_empty());
        fan.finished(4, 4, 8);
        assert_eq!(fan.pending, [None, Some(4)]);
        // Item 3 never finishes (the fan-out stopped).
        assert_eq!(fan.counts(), (5, 0));
        assert_eq!(fan.into_parts().0, [0, 1, 2, 4]);
    }
}
