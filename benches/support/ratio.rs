//! Reads criterion's estimates of this run and prints candidate / baseline.

/// Prints the mean times of `candidate` and `baseline` in `group` and their
/// ratio, from the estimates criterion wrote in this run.
pub fn report(group: &str, candidate: &str, baseline: &str) {
    match (mean_ns(group, candidate), mean_ns(group, baseline)) {
        (Some(c), Some(b)) => println!(
            "{group}: {candidate} {c:.1} ns, {baseline} {b:.1} ns, ratio {:.2}",
            c / b
        ),
        _ => println!(
            "{group}: {candidate} vs {baseline}: no estimates (run without --test to measure)"
        ),
    }
}

fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").to_owned());
    let path = format!("{dir}/criterion/{group}/{id}/new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let estimates: serde_json::Value = serde_json::from_str(&text).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

/// Prints the time `candidate` adds to `baseline` in `group`, in ns.
#[allow(dead_code, reason = "not every benchmark reports an addition")]
pub fn added(group: &str, candidate: &str, baseline: &str) {
    if let (Some(c), Some(b)) = (mean_ns(group, candidate), mean_ns(group, baseline)) {
        println!("{group}: {candidate} adds {:.1} ns to {baseline}", c - b);
    }
}

/// Prints how many `items` per second one iteration of `id` in `group` gives.
#[allow(dead_code, reason = "not every benchmark reports a throughput")]
pub fn throughput(group: &str, id: &str, items: u64) {
    if let Some(ns) = mean_ns(group, id) {
        println!("{group}: {id} {:.0} items/s", items as f64 / (ns / 1e9));
    }
}

/// Prints what each of `extra` more steps costs: the time `candidate`
/// (`ndf`) adds to `hand_written` in group `many`, less what it adds in group
/// `few`, divided by `extra`.
#[allow(dead_code, reason = "only the sequential benchmark compares lengths")]
pub fn per_extra_step(many: &str, few: &str, extra: u32) {
    if let (Some(m), Some(f)) = (ndf_over_hand(many), ndf_over_hand(few)) {
        println!(
            "each extra step: ndf adds {:.1} ns over a hand-written step ({many} against {few})",
            (m - f) / f64::from(extra)
        );
    }
}

/// Prints what each of `extra` more steps costs when group `group` timed
/// what they add to a run itself (`ndf`, `hand_written`): the first less
/// the second, divided by `extra`.
#[allow(dead_code, reason = "only the sequential benchmark compares lengths")]
pub fn per_step_paired(group: &str, extra: u32) {
    if let Some(added) = ndf_over_hand(group) {
        println!(
            "each extra step: ndf adds {:.1} ns over a hand-written step ({group}: {extra} more steps timed in pairs)",
            added / f64::from(extra)
        );
    }
}

/// The mean time of `ndf` less that of `hand_written` in `group`.
fn ndf_over_hand(group: &str) -> Option<f64> {
    Some(mean_ns(group, "ndf")? - mean_ns(group, "hand_written")?)
}

/// Prints how many times the items a second of `one` thread, `many` on
/// `threads` threads give (each thread doing what `one` does).
#[allow(dead_code, reason = "not every benchmark measures scaling")]
pub fn scaling(group: &str, one: &str, many: &str, threads: u32) {
    if let (Some(one_ns), Some(many_ns)) = (mean_ns(group, one), mean_ns(group, many)) {
        println!(
            "{group}: {many} on {threads} threads ends {:.2} times the runs a second of {one}",
            f64::from(threads) * one_ns / many_ns
        );
    }
}
