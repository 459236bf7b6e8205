//! Entries idle for `evict_idle_after` give their rings back at the next
//! save, and learn on when they run again. Measured with dhat, in a binary
//! of its own (one heap profiler per process).

use std::time::Duration;

use ndf::prelude::*;

mod common;

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

/// A store that keeps nothing: what is measured is the statistics alone
/// (a `MemoryStore` would hold the saved recent runs too).
struct Discard;

impl ndf::LearningStore for Discard {
    fn load(&self) -> Result<Vec<ndf::StoredStats>, ndf::StoreError> {
        Ok(Vec::new())
    }
    fn save(&self, _rows: &[ndf::StoredStats]) -> Result<(), ndf::StoreError> {
        Ok(())
    }
}

const ENTRIES: u64 = 40;
const RUNS: u64 = 1_100;
/// What the README says an evicted entry of a three-step workflow keeps.
const README_EVICTED: u64 = 6 * 1024;

#[test]
fn an_idle_entry_is_evicted_after_a_save_and_learns_on() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = common::paused_runtime();
    let mut config = Config::default();
    config.evict_idle_after = Duration::from_hours(1);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(Discard)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "shop.checkout"; parse => price => total);
    let contexts: Vec<PatternContext> = (0..=ENTRIES)
        .map(|i| PatternContext::new(format!("tenant-{i}")))
        .collect();
    rt.block_on(async {
        for i in 0..RUNS {
            ndf.run(&flow, i, &contexts[0]).await.unwrap();
        }
        ndf.flush().unwrap();
        let empty = dhat::HeapStats::get().curr_bytes;
        for ctx in &contexts[1..] {
            for i in 0..RUNS {
                ndf.run(&flow, i, ctx).await.unwrap();
            }
        }
        ndf.flush().unwrap();
        let full = dhat::HeapStats::get().curr_bytes;
        // Half an hour on: nothing is idle long enough.
        tokio::time::advance(Duration::from_mins(30)).await;
        ndf.run(&flow, 0, &contexts[0]).await.unwrap();
        ndf.flush().unwrap();
        assert!(
            dhat::HeapStats::get().curr_bytes + 1024 >= full,
            "nothing evicted yet"
        );
        // Two hours on: all but tenant-0 (which ran at 30 min) are idle.
        tokio::time::advance(Duration::from_mins(90)).await;
        ndf.flush().unwrap();
        let evicted = dhat::HeapStats::get().curr_bytes;
        let kept = (evicted - empty) as u64 / ENTRIES;
        let freed = (full - evicted) as u64 / ENTRIES;
        println!("an evicted entry keeps {kept} bytes; {freed} freed");
        assert!(freed > 16 * 1024, "its ring of runs was freed: {freed}");
        assert!(
            kept <= README_EVICTED,
            "an evicted entry keeps {kept} bytes, more than the README's {README_EVICTED}"
        );
        // It runs again: its counters went on, its rings start afresh.
        ndf.run(&flow, 1, &contexts[1]).await.unwrap();
        let stats = ndf.stats("shop.checkout", "tenant-1").unwrap();
        assert_eq!(stats.executions, RUNS + 1);
        let report = ndf.report(Duration::from_mins(10));
        let tenant_1 = report
            .patterns
            .iter()
            .find(|p| p.pattern == "shop.checkout" && p.domain == "tenant-1")
            .unwrap();
        assert_eq!(tenant_1.executions, 1, "the window sees the new run");
    });
}
