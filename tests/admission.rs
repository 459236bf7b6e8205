//! Admission: with `resource_gating` on, runs wait while the machine is
//! above the configured limits, then fail with `ResourceExhausted`; a
//! `degrade!` goes straight to its cheapest level; declared memory budgets
//! wait for room. With the defaults, unrelated load stalls nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Trace;
use ndf::prelude::*;
use ndf::{ResourceProbe, ResourceUsage};

/// A probe whose readings the test sets.
#[derive(Clone)]
struct Dial {
    usage: Arc<Mutex<ResourceUsage>>,
    total: Option<u64>,
}

impl Dial {
    fn new(cpu: f64, memory: f64) -> Self {
        Self {
            usage: Arc::new(Mutex::new(ResourceUsage { cpu, memory })),
            total: None,
        }
    }

    fn set(&self, cpu: f64, memory: f64) {
        *self.usage.lock().unwrap() = ResourceUsage { cpu, memory };
    }
}

impl ResourceProbe for Dial {
    fn sample(&self) -> ResourceUsage {
        *self.usage.lock().unwrap()
    }

    fn total_memory(&self) -> Option<u64> {
        self.total
    }
}

#[pattern]
async fn work(t: Trace) -> Trace {
    t.push("work");
    t
}

#[pattern(memory = "4GB")]
async fn big_join(t: Trace) -> Trace {
    t.push("big_join");
    t
}

#[pattern]
async fn precise(t: Trace) -> Result<Trace, StepError> {
    t.push("precise");
    Ok(t)
}

#[pattern]
async fn rough(t: Trace) -> Trace {
    t.push("rough");
    t
}

fn ndf(probe: Dial) -> Ndf {
    gated(probe, true)
}

fn gated(probe: Dial, resource_gating: bool) -> Ndf {
    let mut config = Config::default();
    config.resource_wait = Duration::from_secs(2);
    config.resource_gating = resource_gating;
    Ndf::builder()
        .config(config)
        .resource_probe(probe)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_run_waits_until_the_machine_is_below_the_limits() {
    let dial = Dial::new(0.95, 0.5);
    let ndf = ndf(dial.clone());
    let relief = tokio::spawn({
        let dial = dial.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            dial.set(0.3, 0.5);
        }
    });
    let started = tokio::time::Instant::now();
    let t = Trace::default();
    ndf.run(
        &sequential!(name = "ops.work"; work),
        t.clone(),
        &PatternContext::new("ops"),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "it waited: {:?}",
        started.elapsed()
    );
    assert_eq!(t.events(), ["work"]);
    relief.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_run_that_cannot_degrade_fails_with_resource_exhausted() {
    let ndf = ndf(Dial::new(0.4, 0.93));
    let t = Trace::default();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &sequential!(name = "ops.work"; work),
            t.clone(),
            &PatternContext::new("ops"),
        )
        .await
        .unwrap_err();
    common::assert_exhausted(err, ("memory", 0.93, 0.8));
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "after resource_wait"
    );
    assert!(t.events().is_empty(), "nothing ran");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_loaded_machine_stalls_no_run() {
    let ndf = gated(Dial::new(0.99, 0.97), false);
    let t = Trace::default();
    let started = tokio::time::Instant::now();
    ndf.run(
        &sequential!(name = "ops.work"; work),
        t.clone(),
        &PatternContext::new("ops"),
    )
    .await
    .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
    assert_eq!(t.events(), ["work"]);
}

#[tokio::test(start_paused = true)]
async fn resource_exhausted_names_the_setting_to_change() {
    let err = ndf(Dial::new(0.95, 0.4))
        .run(
            &sequential!(name = "ops.work"; work),
            Trace::default(),
            &PatternContext::new("ops"),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("raise `cpu_limit`"), "{message}");
    assert!(message.contains("`resource_wait`"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_degradation_chain_goes_straight_to_its_cheapest_level() {
    for resource_gating in [false, true] {
        let ndf = gated(Dial::new(0.97, 0.5), resource_gating);
        let t = Trace::default();
        let flow = degrade!(name = "ops.estimate"; precise | rough);
        let started = tokio::time::Instant::now();
        ndf.run(&flow, t.clone(), &PatternContext::new("ops"))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait first");
        assert_eq!(t.events(), ["rough"], "the costly level was skipped");
        assert_eq!(ndf.stats("ops.estimate", "ops").unwrap().degradations, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_memory_budget_waits_for_free_memory() {
    let dial = Dial {
        total: Some(16 << 30),
        ..Dial::new(0.2, 0.78)
    };
    let ndf = ndf(dial.clone());
    let t = Trace::default();
    // 4 GB of 16 GB needs memory use at most 75%: 78% is too much.
    let err = ndf
        .run(
            &sequential!(name = "ops.join"; big_join),
            t.clone(),
            &PatternContext::new("ops"),
        )
        .await
        .unwrap_err();
    common::assert_exhausted(err, ("memory", 0.78, 0.75));
    assert!(t.events().is_empty());
    dial.set(0.2, 0.5);
    ndf.run(
        &sequential!(name = "ops.join"; big_join),
        t.clone(),
        &PatternContext::new("ops"),
    )
    .await
    .unwrap();
    assert_eq!(t.events(), ["big_join"]);
}

#[test]
fn the_sysinfo_probe_reads_this_machine() {
    let probe = ndf::SysinfoProbe::start().unwrap();
    let usage = probe.sample();
    assert!(
        (0.0..=1.0).contains(&usage.cpu) && (0.0..=1.0).contains(&usage.memory),
        "{usage:?}"
    );
    assert!(probe.total_memory().is_some());
}

#[tokio::test]
async fn by_default_the_machine_itself_is_read() {
    // The shared sysinfo sampler: real memory use, never the idle machine's 0.
    let ndf = Ndf::builder().build().unwrap();
    let resources = ndf.dashboard().resources;
    assert!(
        resources.memory > 0.0 && resources.memory <= 1.0,
        "{resources:?}"
    );
    assert!((0.0..=1.0).contains(&resources.cpu), "{resources:?}");
}

#[pattern(retries = 3, timeout = "5s")]
async fn fetch_order(id: u32) -> Result<String, StepError> {
    Ok(format!("order-{id}"))
}

#[pattern]
async fn notify(order: String) -> usize {
    order.len()
}

/// The README's quick start, with the default builder (the machine's own
/// CPU read by sysinfo), while two threads keep both cores busy.
#[tokio::test(start_paused = true)]
async fn the_quick_start_runs_normally_under_two_cpu_hogs() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    // Let the sampler see the load.
    std::thread::sleep(Duration::from_millis(1500));
    let ndf = Ndf::builder().build().unwrap();
    let flow = sequential!(name = "shop.fetch_and_notify"; fetch_order => notify);
    let started = tokio::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(
            ndf.run(&flow, 42, &PatternContext::new("shop"))
                .await
                .unwrap(),
            8
        );
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "no run waited");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for hog in hogs {
        hog.join().unwrap();
    }
    ndf.shutdown().await.unwrap();
}
