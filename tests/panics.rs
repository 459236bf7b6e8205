//! A panicking step is an `Error::Execution`, never a crashed runtime.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ndf::prelude::*;

#[pattern]
async fn explode(x: u32) -> u32 {
    assert!(x == 0, "boom at {x}");
    x
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU32>);

#[pattern(retries = 1)]
async fn panics_once(c: Counter) -> u32 {
    let attempt = c.0.fetch_add(1, Ordering::SeqCst);
    assert!(attempt > 0, "first attempt panics");
    7
}

#[tokio::test]
async fn a_panic_becomes_an_execution_error() {
    let ndf = common::ndf();
    let flow = sequential!(name = "ops.explosive"; explode);
    let err = ndf
        .run(&flow, 3, &PatternContext::new("ops"))
        .await
        .unwrap_err();
    match &err {
        ndf::Error::Execution {
            pattern,
            step,
            source,
        } => {
            assert_eq!(
                (pattern.as_str(), step.as_str()),
                ("ops.explosive", "explode")
            );
            assert!(source.is_panic());
            assert_eq!(source.to_string(), "the step panicked: boom at 3");
        }
        other => panic!("expected Execution, got {other:?}"),
    }
    // The runtime is still usable.
    assert_eq!(
        ndf.run(&flow, 0, &PatternContext::new("ops"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(ndf.stats("explode", "ops").unwrap().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_attempt_is_retried() {
    let ndf = common::ndf();
    let c = Counter::default();
    let out = ndf
        .run(
            &sequential!(panics_once),
            c.clone(),
            &PatternContext::new("ops"),
        )
        .await;
    assert_eq!(out.unwrap(), 7);
    assert_eq!(c.0.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_spawned_run_is_returned_not_propagated() {
    let ndf = common::ndf();
    let handle = tokio::spawn(async move {
        ndf.run(&sequential!(explode), 1, &PatternContext::new("ops"))
            .await
    });
    let result = handle.await.expect("the task itself does not panic");
    assert!(matches!(result, Err(ndf::Error::Execution { .. })));
}
