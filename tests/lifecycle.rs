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

/// Built outside tokio, a runtime starts its background tasks when its
/// first runs end inside it: one set, however many end at once on a
/// multi-threaded runtime.
#[test]
fn runs_ending_at_once_start_one_set_of_background_tasks() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let runs: Vec<_> = (0..64)
            .map(|i| {
                let ndf = ndf.clone();
                tokio::spawn(async move {
                    let flow = sequential!(name = "ops.first_ticks"; tick);
                    ndf.run(&flow, i, &PatternContext::new("ops")).await
                })
            })
            .collect();
        for (i, run) in (0..).zip(runs) {
            assert_eq!(run.await.unwrap().unwrap(), i + 1);
        }
        let metrics = tokio::runtime::Handle::current().metrics();
        // The runs' own tasks are gone once joined, but are counted until
        // their last reference goes.
        for _ in 0..1000 {
            if metrics.num_alive_tasks() <= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            metrics.num_alive_tasks(),
            3,
            "the learner, the sampler and the saver, once"
        );
    });
}

/// Without tokio's time driver, the background tasks panic as they start
/// (their timers cannot be made). A runtime built outside tokio starts
/// them once, at its first run, not at every run: they would panic again
/// each time.
#[test]
fn background_tasks_that_panicked_are_not_started_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let this = std::thread::current().id();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == this {
            PANICS.fetch_add(1, Ordering::SeqCst);
        } else {
            hook(info);
        }
    }));
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    // No `enable_time`: ready steps run, timers cannot be made.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.untimed"; tick);
    let ctx = PatternContext::new("ops");
    let mut after_first = 0;
    for i in 0..5 {
        rt.block_on(async {
            assert_eq!(ndf.run(&flow, i, &ctx).await.unwrap(), i + 1);
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        if i == 0 {
            after_first = PANICS.load(Ordering::SeqCst);
        }
    }
    let _ = std::panic::take_hook();
    assert!(after_first > 0, "the tasks started, and panicked");
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        after_first,
        "and were not started again"
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

/// A store that counts its saves.
#[derive(Clone, Default)]
struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl ndf::LearningStore for Counting {
    fn load(&self) -> Result<Vec<ndf::StoredStats>, ndf::StoreError> {
        Ok(Vec::new())
    }
    fn save(&self, _: &[ndf::StoredStats]) -> Result<(), ndf::StoreError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Counting {
    fn saves(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[pattern]
async fn slow_tick(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test(start_paused = true)]
async fn drain_refuses_new_runs_waits_for_those_in_flight_then_saves() {
    let store = Counting::default();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.slow_tick"; slow_tick);
    let ctx = PatternContext::new("ops");
    let in_flight: Vec<_> = [100, 200, 300]
        .into_iter()
        .map(|ms| {
            let (ndf, ctx) = (ndf.clone(), ctx.clone());
            tokio::spawn(async move { ndf.run(&flow, ms, &ctx).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let drain = tokio::spawn({
        let ndf = ndf.clone();
        async move { ndf.drain(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    // No new run while it drains.
    let refused = ndf.run(&flow, 1, &ctx).await.unwrap_err();
    assert!(
        matches!(&refused, ndf::Error::Draining { pattern } if pattern == "ops.slow_tick"),
        "{refused}"
    );
    assert_eq!(drain.await.unwrap().unwrap(), 0, "every run finished");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(290),
        "it waited for the slowest run in flight, no longer"
    );
    for run in in_flight {
        assert!(run.await.unwrap().is_ok(), "the runs in flight finished");
    }
    assert!(store.saves() >= 1, "then it saved");
    assert_eq!(ndf.stats("ops.slow_tick", "ops").unwrap().executions, 3);
}

#[tokio::test(start_paused = true)]
async fn drain_gives_up_on_runs_that_outlast_the_grace() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.slow_tick"; slow_tick);
    let run = tokio::spawn({
        let ndf = ndf.clone();
        async move { ndf.run(&flow, 60_000, &PatternContext::new("ops")).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    assert_eq!(ndf.drain(Duration::from_secs(2)).await.unwrap(), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    run.abort();
}

#[tokio::test(start_paused = true)]
async fn after_shutdown_no_background_save_runs() {
    let store = Counting::default();
    let mut config = Config::default();
    config.flush_interval = Duration::from_secs(1);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.tick"; tick);
    let ctx = PatternContext::new("ops");
    ndf.run(&flow, 1, &ctx).await.unwrap();
    // Before shutdown, the background saver saves.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.saves(), 1);
    ndf.run(&flow, 2, &ctx).await.unwrap();
    ndf.shutdown().await.unwrap();
    assert_eq!(store.saves(), 2);
    // Runs after it are learned, but only saved when asked.
    ndf.run(&flow, 3, &ctx).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(store.saves(), 2, "no background save after shutdown");
    ndf.flush().unwrap();
    assert_eq!(store.saves(), 3);
}

/// Opened by the test: runs of `gated` wait for it.
static OPEN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[pattern]
async fn gated(x: u64) -> u64 {
    OPEN.acquire().await.unwrap().forget();
    x
}

/// Runs are counted in flight per thread; a run that starts on one thread
/// and ends on another is still counted out, and `drain` sees it end.
#[test]
fn drain_sees_runs_end_on_another_thread_than_they_started_on() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.gated"; gated);
    let ctx = PatternContext::new("ops");
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let here = current();
    // Eight runs started here, each waiting in its step.
    let runs: Vec<_> = here.block_on(async {
        let mut runs = Vec::new();
        for i in 0..8 {
            let mut run = Box::pin(ndf.run(&flow, i, &ctx));
            let started = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(run.as_mut().poll(cx).is_pending())
            });
            assert!(started.await, "run {i} waits in its step");
            runs.push(run);
        }
        runs
    });
    std::thread::scope(|s| {
        // Ended on another thread, once the step may go on.
        let there = s.spawn(|| {
            current().block_on(async {
                for run in runs {
                    run.await.unwrap();
                }
            });
        });
        here.block_on(async {
            let mut drain = std::pin::pin!(ndf.drain(Duration::from_secs(10)));
            let waiting = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(drain.as_mut().poll(cx).is_pending())
            });
            assert!(waiting.await, "drain waits for the eight runs");
            OPEN.add_permits(8);
            assert_eq!(
                drain.await.unwrap(),
                0,
                "every run ended, none left counted"
            );
        });
        there.join().unwrap();
    });
    assert_eq!(ndf.stats("ops.gated", "ops").unwrap().executions, 8);
}
