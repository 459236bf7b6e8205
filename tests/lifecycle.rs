//! A runtime's background tasks (the learner, the timeline sampler, the
//! saver) live as long as the runtime, not longer.

use std::time::Duration;

use ndf::prelude::*;

#[pattern]
async fn tick(x: u32) -> u32 {
    x + 1
}

/// Waits, on tokio's paused clock, until the runtime's alive tasks are
/// `count`; returns what they are when it gives up.
async fn settle_at(count: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    for _ in 0..100 {
        if metrics.num_alive_tasks() == count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    metrics.num_alive_tasks()
}

#[tokio::test(start_paused = true)]
async fn dropped_runtimes_leave_no_task_behind() {
    let before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let flow = sequential!(name = "ops.tick"; tick);
    let ctx = PatternContext::new("ops");
    for i in 0..200 {
        let mut config = Config::default();
        config.learning_batch = 4;
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .config(config)
            .build()
            .unwrap();
        // Runs left queued wake the learner; a clone dropped first leaves
        // the runtime alive.
        let copy = ndf.clone();
        assert_eq!(copy.run(&flow, i, &ctx).await.unwrap(), i + 1);
        drop(copy);
        if i == 0 {
            let running = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks();
            assert!(running > before, "a runtime has background tasks");
        }
    }
    assert_eq!(
        settle_at(before).await,
        before,
        "every task of the 200 dropped runtimes ended"
    );
}

#[tokio::test(start_paused = true)]
async fn a_runtime_keeps_its_tasks_while_a_handle_lives() {
    let before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    tokio::time::sleep(Duration::from_mins(5)).await;
    let running = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert_eq!(
        running,
        before + 3,
        "the learner, the sampler and the saver"
    );
    drop(ndf);
    assert_eq!(settle_at(before).await, before);
}
