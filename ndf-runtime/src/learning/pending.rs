//! Runs waiting to be learned. A run ends by queueing its outcome here —
//! no lock, no allocation once warm — and the queued runs are applied to
//! the statistics in batches, by whichever thread finds them free.
//!
//! The queue is sharded: each thread pushes to its own shard (its own cache
//! lines), so threads ending runs side by side do not contend. A run that
//! finds the statistics free learns, before itself, whatever any thread
//! queued meanwhile: under contention the thread that gets the lock learns
//! the runs of all, in a batch, while the others only queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use tokio::time::Instant;

use crate::model::{RunEnd, StepMeta, StepRecord};

/// What learning needs of a run besides its step records.
#[derive(Debug, Clone, Copy)]
pub(super) struct RunHead {
    pub(super) workflow: &'static str,
    /// Its entry's id.
    pub(super) entry: usize,
    pub(super) metas: &'static [Option<&'static StepMeta>],
    pub(super) end: RunEnd,
    pub(super) latency: Duration,
    /// When it ended.
    pub(super) at: Instant,
}

/// A run waiting to be learned.
#[derive(Debug)]
pub(super) struct PendingRun {
    pub(super) head: RunHead,
    /// Its step records ([`StepRecord::bits`]), by step index.
    pub(super) steps: Vec<u32>,
}

/// Runs a shard holds before the thread that fills it applies them itself.
const SHARD_CAPACITY: usize = 1024;
/// Shards at most; there are as many as the machine has threads, up to this.
const MAX_SHARDS: usize = 64;

#[derive(Debug)]
struct Shard {
    runs: ArrayQueue<PendingRun>,
    /// Emptied step buffers, reused so that a warm run allocates nothing.
    buffers: ArrayQueue<Vec<u32>>,
    /// Whether a run was queued since the shard was last drained.
    queued: AtomicBool,
}

/// What queueing a run found (nothing waits when it was learned at once).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Queued {
    /// Runs now waiting in the shard.
    pub(crate) waiting: usize,
    /// The shard was empty since its last drain: the applier should hear.
    pub(crate) first: bool,
}

/// The queue of runs waiting to be learned.
#[derive(Debug)]
pub(super) struct Pending {
    shards: Box<[CachePadded<Shard>]>,
    /// Whether a shard was flagged since the last [`Pending::drain_waiting`]:
    /// set by the run that flags its shard, so that finding nothing
    /// waiting, on every run learned at once, is one load of a line no run
    /// writes while none queues.
    any: CachePadded<AtomicBool>,
}

impl Default for Pending {
    fn default() -> Self {
        let shards = crate::stripes::stripes_for(MAX_SHARDS);
        Self {
            shards: (0..shards)
                .map(|_| {
                    CachePadded::new(Shard {
                        runs: ArrayQueue::new(SHARD_CAPACITY),
                        buffers: ArrayQueue::new(SHARD_CAPACITY),
                        queued: AtomicBool::new(false),
                    })
                })
                .collect(),
            any: CachePadded::new(AtomicBool::new(false)),
        }
    }
}

impl Pending {
    fn shard(&self) -> &Shard {
        crate::stripes::this_threads(&self.shards)
    }

    /// Queues a run; gives it back when this thread's shard is full.
    pub(super) fn push(
        &self,
        run: impl FnOnce(Vec<u32>) -> PendingRun,
        log: &[StepRecord],
    ) -> Result<Queued, PendingRun> {
        let shard = self.shard();
        let mut steps = shard.buffers.pop().unwrap_or_default();
        steps.extend(log.iter().map(StepRecord::bits));
        shard.runs.push(run(steps))?;
        // `SeqCst`, as the learner's wake flag (see `LearnerWake::wake`).
        let first = !shard.queued.swap(true, Ordering::SeqCst);
        if first {
            self.any.store(true, Ordering::Release);
        }
        Ok(Queued {
            waiting: shard.runs.len(),
            first,
        })
    }

    /// Hands every waiting run to `learn`, oldest first within each shard,
    /// and keeps their buffers for reuse.
    pub(super) fn drain(&self, mut learn: impl FnMut(&PendingRun)) {
        for shard in &*self.shards {
            drain_shard(shard, &mut learn);
        }
    }

    /// [`Pending::drain`], if a shard was flagged since the last call:
    /// one load when nothing waits (the usual case).
    #[inline]
    pub(super) fn drain_waiting(&self, learn: impl FnMut(&PendingRun)) {
        if self.any.load(Ordering::Relaxed) && self.any.swap(false, Ordering::AcqRel) {
            // A shard flagged after the swap sets it again: nothing is
            // left behind unflagged.
            self.drain(learn);
        }
    }

    /// Whether runs are waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.runs.is_empty())
    }
}

/// Hands the runs waiting in `shard` to `learn` and keeps their buffers.
/// Takes only the runs waiting when it starts, so threads that keep
/// queueing cannot keep the one draining busy forever; what arrives
/// meanwhile flags the shard again.
fn drain_shard(shard: &Shard, learn: &mut impl FnMut(&PendingRun)) {
    if !shard.queued.swap(false, Ordering::SeqCst) {
        return;
    }
    for _ in 0..shard.runs.len() {
        let Some(mut run) = shard.runs.pop() else {
            break;
        };
        learn(&run);
        run.steps.clear();
        let _ = shard.buffers.push(std::mem::take(&mut run.steps));
    }
}
