//! Dynamic fan-out, `parallel!(each stage)`: one stage run over every item
//! of an iterable, at most `max_concurrent` at once, outputs in input order.
//!
//! The items in flight live in one bounded set of futures
//! ([`futures_buffered::FuturesUnordered`], whose slots are allocated once
//! and reused): a run over a million items allocates its output `Vec` and
//! that set, and nothing per item (plus, when items finish out of order, a
//! window for those waiting on an earlier one). Every item runs the same
//! stage, so the items share the stage's step records: a record says the
//! step failed when any item failed, and counts the retries of all items
//! (see [`crate::model::StepRecord`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::StreamExt as _;
use futures_buffered::FuturesUnordered;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::Cx;
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

    /// What to keep to compensate the items that succeeded, the output
    /// dropped.
    #[must_use]
    pub fn into_undos(self) -> Vec<U> {
        self.undos
    }
}

/// Runs `start(index, item)` for every item, at most `max` at once and none
/// while the resource probe reads above `threshold`. A failure that `K`
/// does not tolerate stops the fan-out: no more items start, those in
/// flight are cancelled and driven to their end (the workflows inside them
/// compensate what they completed; those that succeed meanwhile are kept
/// to be compensated).
pub async fn fan_out<K, I, O, U, Start, Fut>(
    cx: Cx<'_>,
    items: I,
    max: usize,
    threshold: Option<f64>,
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
    // stops, this wakes those that wait, so that they see the cancellation.
    let cancel = Notify::new();
    let mut running = FuturesUnordered::with_capacity(max.min(lower).max(1));
    let mut gate = Gate::new(max, threshold);
    let mut exhausted = false;
    std::future::poll_fn(|w| {
        loop {
            let mut waiting = false;
            while !exhausted {
                if !gate.try_start(cx) {
                    waiting = true;
                    break;
                }
                if let Some(item) = items.next() {
                    running.push(Woken {
                        item: start(fan.started, item),
                        notify: &cancel,
                        cancel: None,
                    });
                    fan.started += 1;
                } else {
                    gate.finish();
                    exhausted = true;
                }
            }
            match running.poll_next_unpin(w) {
                Poll::Ready(Some((index, result))) => {
                    gate.finish();
                    let slot = match result {
                        Ok((out, undo)) => {
                            fan.undos.push(undo);
                            fan.succeeded += 1;
                            K::ok(out)
                        }
                        Err(error) => match K::failed(error) {
                            Ok(kept) => kept,
                            Err(error) => {
                                fan.error = Some(error);
                                return Poll::Ready(());
                            }
                        },
                    };
                    fan.finished(index, slot, max);
                    continue;
                }
                Poll::Ready(None) if exhausted => return Poll::Ready(()),
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
    if fan.error.is_some() && !running.is_empty() {
        cancel.notify_waiters();
        std::future::poll_fn(|w| {
            loop {
                match cx.as_cancelled(|| running.poll_next_unpin(w)) {
                    Poll::Ready(Some((_, Ok((_, undo))))) => fan.undos.push(undo),
                    // Its workflows compensated themselves; the error is
                    // not the one that stopped the fan-out.
                    Poll::Ready(Some((_, Err(_)))) => {}
                    Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await;
    }
    fan
}

pin_project_lite::pin_project! {
    /// An item in flight, woken when the fan-out is cancelled as well as by
    /// its own events. It waits for the cancellation only once it has been
    /// pending: an item that finishes at its first poll never touches it.
    struct Woken<'n, F> {
        #[pin]
        item: F,
        notify: &'n Notify,
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
                if this.cancel.is_none() {
                    this.cancel.set(Some(this.notify.notified()));
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
