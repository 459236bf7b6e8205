//! One fleet-wide confidence: runtimes sharing a `PostgresStore`, or one
//! `SqliteStore` file, gate on what all of them learned. Failures learned by
//! one hold the pattern back in the other within `sync_interval`, before it
//! fails there itself.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{database_url, fresh_schema};
use ndf::prelude::*;
use ndf::{BreakerState, PostgresStore};

/// A call to the billing provider: fails while it is down; counts calls.
#[derive(Clone)]
struct Charge {
    down: bool,
    calls: Arc<AtomicUsize>,
}

#[pattern]
async fn charge(c: Charge) -> Result<u64, StepError> {
    c.calls.fetch_add(1, Ordering::SeqCst);
    if c.down {
        return Err(StepError::msg("provider unavailable"));
    }
    Ok(1)
}

const SYNC: Duration = Duration::from_millis(300);

fn replica_on(store: impl ndf::LearningStore) -> Ndf {
    let mut config = Config::default();
    config.sync_interval = SYNC;
    common::ledger::on_store(config, store)
}

fn replica(schema: &str) -> Ndf {
    replica_on(
        PostgresStore::builder(&database_url())
            .schema(schema)
            .connect()
            .unwrap(),
    )
}

/// A replica on the `SQLite` file `name` (made afresh by the first).
fn sqlite_replica(name: &str, fresh: bool) -> Ndf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    if fresh {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    replica_on(ndf::SqliteStore::open(dir.join("ndf.db")).unwrap())
}

/// Runs `billing.charge` on `ndf` until its gate refuses; the calls made.
async fn fail_until_held_back(ndf: &Ndf, calls: &Arc<AtomicUsize>) -> usize {
    let flow = sequential!(name = "billing.charge"; charge);
    let ctx = PatternContext::new("billing");
    let input = Charge {
        down: true,
        calls: Arc::clone(calls),
    };
    for _ in 0..500 {
        if let Err(ndf::Error::ConfidenceThreshold { .. }) =
            ndf.run(&flow, input.clone(), &ctx).await
        {
            return calls.load(Ordering::SeqCst);
        }
    }
    panic!("the failing pattern was never held back");
}

/// Polls `ndf`'s gate of `billing.charge` for up to `within`.
async fn state_within(ndf: &Ndf, within: Duration) -> Option<BreakerState> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let state = ndf.breaker("billing.charge", "billing");
        if state == Some(BreakerState::Open) || tokio::time::Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_learned_by_one_replica_hold_the_pattern_back_in_the_other() {
    let schema = fresh_schema("fleet_gate");
    held_back_in_the_other(replica(&schema), replica(&schema)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_one_sqlite_file_share_their_gates_too() {
    let a = sqlite_replica("fleet-gate-sqlite", true);
    let b = sqlite_replica("fleet-gate-sqlite", false);
    held_back_in_the_other(a, b).await;
}

/// A learns that `billing.charge` fails; B, which never ran it, holds it
/// back within two sync intervals.
async fn held_back_in_the_other(a: Ndf, b: Ndf) {
    let (a_calls, b_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let failed_in_a = fail_until_held_back(&a, &a_calls).await;
    assert!(
        failed_in_a >= 10,
        "held back only on credible evidence: {failed_in_a}"
    );
    // A publishes at its next sync; B pulls at its own: B holds the pattern
    // back within a sync interval of each (polled with room for a busy
    // machine), though it never ran it.
    assert_eq!(
        state_within(&b, SYNC * 2 + Duration::from_secs(2)).await,
        Some(BreakerState::Open),
        "B's gate opened on A's evidence"
    );
    let flow = sequential!(name = "billing.charge"; charge);
    let ctx = PatternContext::new("billing");
    let healthy_here = Charge {
        down: false,
        calls: Arc::clone(&b_calls),
    };
    let err = b.run(&flow, healthy_here, &ctx).await.unwrap_err();
    match &err {
        ndf::Error::ConfidenceThreshold {
            failures, calls, ..
        } => {
            assert!(
                *failures > 0 && *calls > 0,
                "the fleet's outcomes are named: {err}"
            );
        }
        other => panic!("expected ConfidenceThreshold, got {other:?}"),
    }
    assert_eq!(b_calls.load(Ordering::SeqCst), 0, "nothing ran in B");
    // The refusal says what the fleet saw.
    assert!(err.to_string().contains("outcomes failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_pattern_in_one_replica_is_served_in_the_other() {
    let schema = fresh_schema("fleet_healthy");
    let a = replica(&schema);
    let b = replica(&schema);
    let flow = sequential!(name = "billing.charge"; charge);
    let ctx = PatternContext::new("billing");
    let calls = Arc::new(AtomicUsize::new(0));
    let healthy = Charge {
        down: false,
        calls: Arc::clone(&calls),
    };
    for _ in 0..50 {
        a.run(&flow, healthy.clone(), &ctx).await.unwrap();
    }
    a.flush().unwrap();
    tokio::time::sleep(SYNC * 3).await;
    assert_ne!(
        b.breaker("billing.charge", "billing"),
        Some(BreakerState::Open)
    );
    b.run(&flow, healthy, &ctx).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 51);
}
