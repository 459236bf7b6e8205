//! No thread outlives the last runtime: the resource sampler that
//! runtimes share (the default probe) ends within a second of the last
//! one being dropped, and starts again for the next. The only test of its
//! binary: it counts the process's threads.

use std::time::{Duration, Instant};

use ndf::prelude::*;

/// The process's resource sampler threads (Linux: `/proc/self/task`).
fn samplers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("Linux's /proc")
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "ndf-sampler")
        .count()
}

/// Waits up to `limit` for the samplers to be `count`.
fn settle_at(count: usize, limit: Duration) -> usize {
    let start = Instant::now();
    while samplers() != count && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    samplers()
}

#[test]
fn the_shared_sampler_lives_only_as_long_as_a_runtime_uses_it() {
    assert_eq!(samplers(), 0);
    let first = Ndf::builder().build().unwrap();
    let second = Ndf::builder().build().unwrap();
    // A new thread names itself once it runs.
    assert_eq!(
        settle_at(1, Duration::from_secs(1)),
        1,
        "runtimes that live at once share one"
    );
    drop(first);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(samplers(), 1, "a runtime still uses it");
    drop(second);
    assert_eq!(
        settle_at(0, Duration::from_secs(3)),
        0,
        "it ends after the last runtime"
    );
    let again = Ndf::builder().build().unwrap();
    assert_eq!(
        settle_at(1, Duration::from_secs(1)),
        1,
        "and starts again for the next"
    );
    drop(again);
    assert_eq!(settle_at(0, Duration::from_secs(3)), 0);
}
