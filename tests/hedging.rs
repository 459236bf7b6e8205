//! Hedging: a slow attempt gets company after `after`; the first success
//! wins and the others are cancelled. Only `idempotent` steps may be
//! hedged (a compile error otherwise: tests/ui/pattern/hedge-not-idempotent.rs).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ndf::prelude::*;
use tokio::time::Instant;

/// Replicas: call `n` (from 0) takes `delays[n]` ms and answers `n`.
#[derive(Clone, Default)]
struct Replicas {
    delays: Arc<Vec<u64>>,
    calls: Arc<AtomicU32>,
    finished: Arc<AtomicU32>,
}

#[pattern(idempotent, hedge(after = "50ms", max = 2))]
async fn read_profile(r: Replicas) -> Result<u32, StepError> {
    let n = r.calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(r.delays[n as usize])).await;
    r.finished.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

fn replicas(delays: &[u64]) -> Replicas {
    Replicas {
        delays: Arc::new(delays.to_vec()),
        ..Replicas::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_is_hedged_and_the_faster_one_wins() {
    let ndf = common::ndf();
    let r = replicas(&[1_000, 10]);
    let started = Instant::now();
    let out = ndf
        .run(
            &sequential!(read_profile),
            r.clone(),
            &PatternContext::new("users"),
        )
        .await
        .unwrap();
    assert_eq!(out, 1, "the hedge answered");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(60),
        "50 ms, then 10 ms"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(r.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        r.finished.load(Ordering::SeqCst),
        1,
        "the slow attempt was cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_attempt_is_not_hedged() {
    let ndf = common::ndf();
    let r = replicas(&[20, 10]);
    let out = ndf
        .run(
            &sequential!(read_profile),
            r.clone(),
            &PatternContext::new("users"),
        )
        .await
        .unwrap();
    assert_eq!(out, 0);
    assert_eq!(r.calls.load(Ordering::SeqCst), 1, "no hedge before 50 ms");
}

#[tokio::test(start_paused = true)]
async fn hedges_stop_at_max_in_flight() {
    let ndf = common::ndf();
    let r = replicas(&[300, 300, 10]);
    let started = Instant::now();
    let out = ndf
        .run(
            &sequential!(read_profile),
            r.clone(),
            &PatternContext::new("users"),
        )
        .await
        .unwrap();
    assert_eq!(out, 0, "max = 2: no third attempt while two run");
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(r.calls.load(Ordering::SeqCst), 2);
}

/// An input that counts its copies.
struct Counted(Arc<AtomicU32>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::SeqCst);
        Counted(Arc::clone(&self.0))
    }
}

#[pattern(idempotent, hedge(after = "50ms", max = 2))]
async fn quick_read(_input: Counted) -> u32 {
    7
}

#[tokio::test(start_paused = true)]
async fn a_hedged_step_copies_its_input_twice_before_its_first_attempt() {
    let ndf = common::ndf();
    let copies = Arc::new(AtomicU32::new(0));
    let out = ndf
        .run(
            &sequential!(quick_read),
            Counted(Arc::clone(&copies)),
            &PatternContext::new("users"),
        )
        .await
        .unwrap();
    assert_eq!(out, 7);
    // One kept for a retry or the fallback, one for the hedges (none of
    // which started: the first attempt answered at once), as the README
    // says.
    assert_eq!(copies.load(Ordering::SeqCst), 2);
}
