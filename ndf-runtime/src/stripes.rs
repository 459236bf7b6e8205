//! What threads ending runs side by side write without sharing a cache
//! line: each thread is given a stripe number once, and a striped value
//! keeps one cache line per stripe. A single shared counter written by
//! every run bounces its line between the cores on every run: on two
//! cores that alone made a run cost about 1.7 times what it costs on one
//! (`benches/concurrent.rs`).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

thread_local! {
    /// This thread's stripe number, given when it first asks.
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Stripe numbers are given to threads in turn.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// This thread's stripe number: threads get 0, 1, 2, … in the order they
/// first ask.
#[inline]
fn this_thread() -> usize {
    STRIPE.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_STRIPE.fetch_add(1, Ordering::Relaxed));
        }
        s.get()
    })
}

/// This thread's stripe of `stripes` (a power-of-two number of them, as
/// [`stripes_for`] gives, each on a cache line of its own).
#[inline]
pub(crate) fn this_threads<T>(stripes: &[CachePadded<T>]) -> &T {
    &stripes[this_thread() & (stripes.len() - 1)]
}

/// How many stripes to keep: one per thread the machine runs at once, to
/// the next power of two, at most `max`.
pub(crate) fn stripes_for(max: usize) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    threads.next_power_of_two().min(max)
}

/// At most this many stripes in a [`StripedCount`].
const MAX_STRIPES: usize = 64;

/// A count that many threads move at once: each thread adds to and takes
/// from its own stripe, and the count is the sum of the stripes. A unit
/// taken on another thread than the one it was added on leaves one
/// stripe above and another below zero (wrapping): the sum stays exact.
///
/// Every operation is `SeqCst`, as on a single atomic: a thread that adds
/// then reads a flag, and one that sets the flag then sums, cannot both
/// miss the other.
#[derive(Debug)]
pub(crate) struct StripedCount {
    stripes: Box<[CachePadded<AtomicUsize>]>,
}

impl Default for StripedCount {
    /// Four stripes per thread the machine runs at once: threads are
    /// numbered in the order they first ask, not by core, so with one
    /// stripe per core two busy threads could share one; a stripe is a
    /// cache line, and only `sum` reads them all.
    fn default() -> Self {
        Self::with_stripes((stripes_for(MAX_STRIPES) * 4).min(MAX_STRIPES))
    }
}

impl StripedCount {
    /// A count of `n` stripes (a power of two).
    fn with_stripes(n: usize) -> Self {
        debug_assert!(n.is_power_of_two());
        Self {
            stripes: (0..n)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
        }
    }

    #[inline]
    fn mine(&self) -> &AtomicUsize {
        this_threads(&self.stripes)
    }

    /// Adds one, on this thread's stripe.
    #[inline]
    pub(crate) fn add(&self) {
        self.mine().fetch_add(1, Ordering::SeqCst);
    }

    /// Takes one away, on this thread's stripe.
    #[inline]
    pub(crate) fn sub(&self) {
        self.mine().fetch_sub(1, Ordering::SeqCst);
    }

    /// The count: the sum of the stripes. While units move it is at least
    /// what remains of the units added before the call (never less), so
    /// that zero means none of them is left.
    pub(crate) fn sum(&self) -> usize {
        self.stripes
            .iter()
            .fold(0usize, |sum, s| sum.wrapping_add(s.load(Ordering::SeqCst)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_taken_on_other_threads_than_they_were_added_on_sum_exactly() {
        let count = std::sync::Arc::new(StripedCount::with_stripes(8));
        // Added on this thread, taken on four others, one each.
        for _ in 0..4 {
            count.add();
        }
        assert_eq!(count.sum(), 4);
        let takers: Vec<_> = (0..4)
            .map(|_| {
                let count = std::sync::Arc::clone(&count);
                std::thread::spawn(move || count.sub())
            })
            .collect();
        for t in takers {
            t.join().unwrap();
        }
        assert_eq!(count.sum(), 0);
    }

    #[test]
    fn threads_moving_the_count_at_once_leave_it_exact() {
        let count = std::sync::Arc::new(StripedCount::with_stripes(4));
        let workers: Vec<_> = (0..8)
            .map(|i| {
                let count = std::sync::Arc::clone(&count);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        count.add();
                    }
                    // Half the threads take back fewer than they added.
                    let back = if i % 2 == 0 { 10_000 } else { 9_000 };
                    for _ in 0..back {
                        count.sub();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(count.sum(), 4 * 1_000);
    }
}
