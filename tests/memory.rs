//! What the statistics hold at most: an entry per (workflow, domain), each
//! keeping its last 1 024 runs and its counts by minute and hour, at most
//! `max_entries` of them. The README
//! states the bound per entry; this measures it with every ring full.

use ndf::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[pattern]
async fn parse(x: u64) -> u64 {
    x + 1
}

#[pattern]
async fn price(x: u64) -> u64 {
    x * 2
}

#[pattern]
async fn total(x: u64) -> u64 {
    x ^ 3
}

/// Entries filled.
const ENTRIES: u64 = 40;
/// Runs per entry: more than its rings hold.
const RUNS: u64 = 1_100;
/// What the README says an entry of a three-step workflow takes at most.
const README_BOUND: u64 = 36 * 1024;

#[test]
fn a_full_entry_of_a_three_step_workflow_takes_at_most_36_kib() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "shop.checkout"; parse => price => total);
    let contexts: Vec<PatternContext> = (0..=ENTRIES)
        .map(|i| PatternContext::new(format!("tenant-{i}")))
        .collect();
    let bytes = rt.block_on(async {
        // One entry first, so that what every runtime holds once is not
        // counted against the entries.
        for i in 0..RUNS {
            ndf.run(&flow, i, &contexts[0]).await.unwrap();
        }
        let _ = ndf.stats("shop.checkout", "tenant-0");
        let before = dhat::HeapStats::get().curr_bytes;
        for ctx in &contexts[1..] {
            for i in 0..RUNS {
                ndf.run(&flow, i, ctx).await.unwrap();
            }
        }
        let _ = ndf.stats("shop.checkout", "tenant-1");
        dhat::HeapStats::get().curr_bytes - before
    });
    let per_entry = bytes as u64 / ENTRIES;
    println!("{per_entry} bytes per entry");
    assert!(
        per_entry <= README_BOUND,
        "an entry took {per_entry} bytes, more than the README's {README_BOUND}"
    );
    assert!(
        per_entry > 16 * 1024,
        "its 1 024 runs are counted: {per_entry}"
    );
}
