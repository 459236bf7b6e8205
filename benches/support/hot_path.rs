//! A one-step run's hot path through runtimes that differ in their store:
//! the store is never on a run's path, so they should match.

use std::hint::black_box;

use criterion::Criterion;
use ndf::prelude::*;

#[pattern]
async fn hot_step(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// Measures a one-step run through each of `runtimes` (id, runtime) on
/// `rt`, in the criterion group `group`.
pub fn bench(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    group: &str,
    runtimes: &[(&str, &Ndf)],
) {
    let ctx = PatternContext::new("bench");
    let flow = sequential!(name = "bench.store_hot_path"; hot_step);
    let mut g = c.benchmark_group(group);
    for (id, ndf) in runtimes {
        g.bench_function(*id, |b| {
            b.to_async(rt).iter(|| ndf.run(&flow, black_box(1), &ctx));
        });
    }
    g.finish();
}
