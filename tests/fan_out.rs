//! `parallel!(each stage)`: one stage over every item of an iterable, in
//! input order, bounded, fail-fast with cancellation and compensation,
//! `min_success`, resource gating, nesting, and what learning records.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Trace;
use ndf::prelude::*;

/// Sleeps longer for smaller numbers, so that items finish in the reverse
/// of input order.
#[pattern]
async fn square_slowly(n: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(100 - n)).await;
    n * n
}

#[tokio::test(start_paused = true)]
async fn outputs_follow_input_order_not_completion_order() {
    let ndf = common::ndf();
    let flow = parallel!(name = "math.squares"; each square_slowly);
    let started = tokio::time::Instant::now();
    let out = ndf
        .run(&flow, vec![1, 2, 3, 4], &PatternContext::new("math"))
        .await
        .unwrap();
    assert_eq!(out, [1, 4, 9, 16]);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(99),
        "without a bound every item runs at once"
    );
}

#[tokio::test(start_paused = true)]
async fn an_empty_input_gives_an_empty_output_and_runs_nothing() {
    let ndf = common::ndf();
    let flow = parallel!(name = "math.none"; each square_slowly);
    let out = ndf
        .run(&flow, Vec::new(), &PatternContext::new("math"))
        .await
        .unwrap();
    assert!(out.is_empty());
    assert!(
        ndf.stats("square_slowly", "math")
            .is_none_or(|s| s.executions == 0)
    );
}

/// Counts items in flight and the most seen at once.
#[derive(Clone, Default)]
struct Load {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

#[pattern]
async fn busy(job: (Load, u32)) -> u32 {
    let (load, n) = job;
    let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
    load.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    load.now.fetch_sub(1, Ordering::SeqCst);
    n + 1
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_bounds_the_items_in_flight() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.each_bounded", max_concurrent = 3; each busy);
    let load = Load::default();
    let items: Vec<(Load, u32)> = (0..10).map(|n| (load.clone(), n)).collect();
    let started = tokio::time::Instant::now();
    let out = ndf
        .run(&flow, items, &PatternContext::new("ops"))
        .await
        .unwrap();
    assert_eq!(out, (1..=10).collect::<Vec<_>>());
    assert_eq!(load.peak.load(Ordering::SeqCst), 3);
    // ceil(10 / 3) = 4 waves of 10 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(40));
}

#[pattern]
async fn parse(raw: String) -> Result<u32, std::num::ParseIntError> {
    raw.trim().parse()
}

#[pattern]
async fn split(line: String) -> BTreeSet<String> {
    line.split(',').map(str::to_owned).collect()
}

#[pattern]
async fn total(parts: Vec<u32>) -> u32 {
    parts.iter().sum()
}

#[tokio::test(start_paused = true)]
async fn nested_it_takes_any_iterable_that_the_stage_before_returns() {
    let ndf = common::ndf();
    // `split` returns a set, not a `Vec`: any `IntoIterator` of what the
    // fanned-out stage takes will do.
    let flow = sequential!(name = "math.sum_line";
        split => parallel!(max_concurrent = 2; each parse) => total);
    let out = ndf
        .run(&flow, "1,20,300".to_owned(), &PatternContext::new("math"))
        .await
        .unwrap();
    assert_eq!(out, 321);
}

#[pattern]
async fn add_one(n: u32) -> u32 {
    n + 1
}

#[tokio::test(start_paused = true)]
async fn each_item_can_run_a_whole_workflow() {
    let ndf = common::ndf();
    let flow = parallel!(name = "math.pipelines"; each sequential!(parse => add_one));
    let out = ndf
        .run(
            &flow,
            vec!["1".to_owned(), " 2".to_owned()],
            &PatternContext::new("math"),
        )
        .await
        .unwrap();
    assert_eq!(out, [2, 3]);
}

/// Waits `n` ms when `n` is above zero; otherwise finishes at its first
/// poll. Records the order in which items finish.
#[pattern]
async fn wait_or_not(job: (Trace, u64)) -> u64 {
    let (trace, n) = job;
    if n > 0 {
        tokio::time::sleep(Duration::from_millis(n)).await;
    }
    trace.push(format!("{n}"));
    n
}

#[tokio::test(start_paused = true)]
async fn an_item_that_waits_holds_back_none_of_the_items_after_it() {
    let ndf = common::ndf();
    let flow = parallel!(name = "math.mixed", max_concurrent = 2; each wait_or_not);
    let trace = Trace::default();
    // The first item waits; those after it finish at their first poll, one
    // at a time beside it; the fourth waits too, and the rest go on beside
    // that one once the first is done.
    let items = [30, 0, 0, 20, 0, 0].map(|n| (trace.clone(), n));
    let started = tokio::time::Instant::now();
    let out = ndf
        .run(&flow, items.to_vec(), &PatternContext::new("math"))
        .await
        .unwrap();
    assert_eq!(out, [30, 0, 0, 20, 0, 0], "in input order");
    assert_eq!(trace.events(), ["0", "0", "20", "0", "0", "30"]);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(30),
        "the two waits overlap"
    );
}

#[derive(Clone, Debug, Default)]
struct Order {
    id: u32,
    trace: Trace,
}

#[pattern(compensate = release)]
async fn reserve(order: Order) -> Result<Order, StepError> {
    tokio::time::sleep(Duration::from_millis(u64::from(order.id))).await;
    if order.id == 13 {
        order.trace.push("refused 13");
        return Err(StepError::msg("no stock for 13"));
    }
    order.trace.push(format!("reserved {}", order.id));
    Ok(order)
}

#[pattern]
async fn release(order: Order) {
    order.trace.push(format!("released {}", order.id));
}

fn orders(ids: &[u32], trace: &Trace) -> Vec<Order> {
    ids.iter()
        .map(|&id| Order {
            id,
            trace: trace.clone(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_the_rest_and_compensates_the_completed_last_first() {
    let ndf = common::ndf();
    let flow = parallel!(name = "shop.reserve_all", max_concurrent = 2; each reserve);
    let trace = Trace::default();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &flow,
            orders(&[1, 2, 13, 50, 3, 4], &trace),
            &PatternContext::new("shop"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no stock for 13"), "{err}");
    // 1 and 2 start; 13 starts when 1 ends (1 ms), 50 when 2 ends (2 ms);
    // 13 fails at 14 ms, 50 is cancelled in flight, 3 and 4 never start.
    assert_eq!(started.elapsed(), Duration::from_millis(14));
    assert_eq!(
        trace.events(),
        [
            "reserved 1",
            "reserved 2",
            "refused 13",
            "released 2",
            "released 1"
        ]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        trace.count("reserved 50"),
        0,
        "the item in flight was cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_later_stage_failing_compensates_every_item_of_the_fan_out() {
    #[pattern]
    async fn then_fail(_orders: Vec<Order>) -> Result<(), StepError> {
        Err(StepError::msg("payment declined"))
    }
    let ndf = common::ndf();
    let flow = sequential!(name = "shop.reserve_then_pay"; parallel!(each reserve) => then_fail);
    let trace = Trace::default();
    let err = ndf
        .run(
            &flow,
            orders(&[3, 1, 2], &trace),
            &PatternContext::new("shop"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("payment declined"), "{err}");
    // Finished 1, 2, 3: compensated 3, 2, 1.
    assert_eq!(
        trace.events(),
        [
            "reserved 1",
            "reserved 2",
            "reserved 3",
            "released 3",
            "released 2",
            "released 1"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn min_success_keeps_every_result_in_input_order() {
    let ndf = common::ndf();
    let flow = parallel!(name = "shop.reserve_most", min_success = 2; each reserve);
    let trace = Trace::default();
    let out = ndf
        .run(
            &flow,
            orders(&[2, 13, 1], &trace),
            &PatternContext::new("shop"),
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].as_ref().map(|o| o.id).ok(), Some(2));
    let refused = out[1].as_ref().unwrap_err();
    assert!(refused.to_string().contains("no stock for 13"), "{refused}");
    assert_eq!(out[2].as_ref().map(|o| o.id).ok(), Some(1));
    assert_eq!(trace.count("released 1") + trace.count("released 2"), 0);
}

#[tokio::test(start_paused = true)]
async fn min_success_fails_when_too_few_items_succeed_and_compensates_them() {
    let ndf = common::ndf();
    let flow = parallel!(name = "shop.reserve_most", min_success = 3; each reserve);
    let trace = Trace::default();
    let err = ndf
        .run(
            &flow,
            orders(&[2, 13, 1], &trace),
            &PatternContext::new("shop"),
        )
        .await
        .unwrap_err();
    common::assert_insufficient(&err, (2, 3, 3), "no stock for 13");
    assert_eq!(trace.count("released 1") + trace.count("released 2"), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_run_cancels_every_item() {
    let ndf = common::ndf();
    let flow = parallel!(each reserve);
    let trace = Trace::default();
    let ctx = PatternContext::new("shop");
    let run = ndf.run(&flow, orders(&[40, 50], &trace), &ctx);
    assert!(
        tokio::time::timeout(Duration::from_millis(10), run)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(trace.events().is_empty(), "{:?}", trace.events());
}

#[tokio::test(start_paused = true)]
async fn items_wait_while_resources_are_above_the_threshold() {
    let start = tokio::time::Instant::now();
    let mut config = Config::default();
    config.cpu_limit = 1.0;
    let ndf = common::busy_until(config, start + Duration::from_millis(300));
    let flow = parallel!(name = "ops.each_gated", resource_threshold = 0.7; each busy);
    let load = Load::default();
    let items = vec![(load.clone(), 1), (load.clone(), 2)];
    let out = ndf
        .run(&flow, items, &PatternContext::new("ops"))
        .await
        .unwrap();
    assert_eq!(out, [2, 3]);
    assert!(
        start.elapsed() >= Duration::from_millis(310),
        "no item started before the machine was idle: {:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn the_items_of_one_run_are_one_observation_of_the_step() {
    let ndf = common::ndf();
    let flow = parallel!(name = "shop.reserve_all"; each reserve);
    let ctx = PatternContext::new("shop");
    let trace = Trace::default();
    ndf.run(&flow, orders(&[1, 2, 3], &trace), &ctx)
        .await
        .unwrap();
    ndf.run(&flow, orders(&[4, 13], &trace), &ctx)
        .await
        .unwrap_err();
    let stats = ndf.stats("reserve", "shop").unwrap();
    assert_eq!(
        (stats.executions, stats.successes, stats.failures),
        (2, 1, 1),
        "one run of the fan-out is one run of its step: failed when any item failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_is_send_and_spawnable() {
    let ndf = common::ndf();
    let handle = tokio::spawn(async move {
        let flow = parallel!(name = "math.spawned", max_concurrent = 4, spawn = true; each add_one);
        ndf.run(&flow, (0..100).collect(), &PatternContext::new("math"))
            .await
    });
    let out = handle.await.unwrap().unwrap();
    assert_eq!(out, (1..=100).collect::<Vec<u32>>());
}

#[tokio::test]
async fn a_million_items_run_through_a_bounded_fan_out() {
    let ndf = common::ndf();
    let flow = parallel!(name = "math.million", max_concurrent = 64; each add_one);
    let out = ndf
        .run(
            &flow,
            (0..1_000_000).collect(),
            &PatternContext::new("math"),
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 1_000_000);
    assert!(out.iter().enumerate().all(|(i, &n)| n as usize == i + 1));
}

#[pattern]
async fn settle(order: Order) -> Order {
    tokio::time::sleep(Duration::from_mins(1)).await;
    order.trace.push(format!("settled {}", order.id));
    order
}

#[tokio::test(start_paused = true)]
async fn an_item_cancelled_in_flight_compensates_what_its_workflow_completed() {
    let ndf = common::ndf();
    let flow = parallel!(name = "shop.reserve_and_settle"; each sequential!(reserve => settle));
    let trace = Trace::default();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &flow,
            orders(&[5, 13], &trace),
            &PatternContext::new("shop"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no stock for 13"), "{err}");
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(13),
        "nothing waited for `settle`"
    );
    assert_eq!(trace.events(), ["reserved 5", "refused 13", "released 5"]);
}

#[pattern(timeout = "100ms")]
async fn take_60ms(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(60)).await;
    n
}

#[tokio::test(start_paused = true)]
async fn a_deadline_counts_one_wave_at_compile_time_and_bounds_every_item_at_run_time() {
    let ndf = common::ndf();
    // One wave (100 ms) fits 200 ms, so this compiles; five items one at a
    // time take 300 ms, so the run ends at the deadline.
    let flow = parallel!(name = "ops.each_deadline", deadline = "200ms", max_concurrent = 1; each take_60ms);
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(&flow, vec![1, 2, 3, 4, 5], &PatternContext::new("ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::DeadlineExceeded { step, .. } if step == "take_60ms"),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(200));
}
