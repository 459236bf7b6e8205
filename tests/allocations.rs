//! The happy path of a warm runtime allocates nothing: a step with a
//! timeout, retries, a confidence threshold and a fallback, run through
//! `Ndf` with learning, gating and alert judging, in a steady state; and a
//! 16-step workflow, whose queued runs keep their records in pooled buffers.

use ndf::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[pattern(timeout = "5s", retries = 3, confidence_threshold = 0.5, fallback = spare)]
async fn guarded(x: u64) -> Result<u64, StepError> {
    Ok(x.wrapping_mul(3))
}

#[pattern]
async fn spare(x: u64) -> u64 {
    x
}

#[pattern]
async fn plain(x: u64) -> u64 {
    x + 1
}

#[pattern]
async fn sum(pair: (u64, u64)) -> u64 {
    pair.0.wrapping_add(pair.1)
}

#[test]
fn a_warm_run_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::default();
    config.latency_alert = Some(std::time::Duration::from_secs(1));
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let ctx = PatternContext::new("bench").attribute("region", "eu-west-1");
    let flow = sequential!(name = "bench.policies"; guarded => parallel!(plain, plain) => sum => degrade!(spare | plain));
    // More steps than a queued run holds inline: its records go in a
    // pooled buffer.
    let long = sequential!(name = "bench.long";
        plain => plain => plain => plain => plain => plain => plain => plain
        => plain => plain => plain => plain => plain => plain => plain => plain);
    rt.block_on(async {
        // Warm up: fill every ring, resolve every slot.
        for i in 0..3000 {
            ndf.run(&flow, i, &ctx).await.unwrap();
            ndf.run(&long, i, &ctx).await.unwrap();
        }
        let before = dhat::HeapStats::get();
        for i in 0..1000 {
            ndf.run(&flow, i, &ctx).await.unwrap();
            assert_eq!(ndf.run(&long, i, &ctx).await.unwrap(), i + 16);
        }
        let after = dhat::HeapStats::get();
        dhat::assert_eq!(after.total_blocks - before.total_blocks, 0);
    });
}
