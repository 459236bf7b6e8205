//! A warm fan-out allocates its output `Vec` and its bounded set of
//! in-flight futures, and nothing per item: the same number of blocks over
//! 10 items as over 10 000, and a peak heap of about the output's size.

mod common;

use ndf::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[pattern(timeout = "5s", retries = 2)]
async fn check(x: u64) -> Result<u64, StepError> {
    Ok(x.wrapping_mul(3))
}

#[test]
fn a_fan_out_allocates_nothing_per_item() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = common::runtime();
    let ndf = common::ndf();
    let ctx = PatternContext::new("bench");
    let flow = parallel!(name = "bench.fan_out", max_concurrent = 8; each check);
    rt.block_on(async {
        // Warm up: fill every ring, resolve every slot.
        for _ in 0..3000 {
            ndf.run(&flow, (0..10).collect(), &ctx).await.unwrap();
        }
        // Blocks of one run over `n` items, the input `Vec` made before.
        let blocks_of = async |n: u64| {
            let input: Vec<u64> = (0..n).collect();
            let before = dhat::HeapStats::get();
            let out = ndf.run(&flow, input, &ctx).await.unwrap();
            let after = dhat::HeapStats::get();
            assert_eq!(out.len(), usize::try_from(n).unwrap());
            assert_eq!(out.last().copied(), Some((n - 1) * 3));
            drop(out);
            after.total_blocks - before.total_blocks
        };
        let (few, many) = (blocks_of(10).await, blocks_of(10_000).await);
        println!("blocks per run: {few} over 10 items, {many} over 10 000");
        dhat::assert_eq!(few, many);
        // The output `Vec`, and the set's slots and wakers.
        dhat::assert!(few <= 4, "{few} blocks");

        // Items that finish in order go straight to the output: over
        // 100 000 items, the heap grows by the output and little else (a
        // `Vec<Option<u64>>` filled by index would take twice the output).
        let input: Vec<u64> = (0..100_000).collect();
        let before = dhat::HeapStats::get();
        let out = ndf.run(&flow, input, &ctx).await.unwrap();
        let after = dhat::HeapStats::get();
        let output = out.len() * size_of::<u64>();
        let grown = after.max_bytes.saturating_sub(before.curr_bytes);
        println!("peak heap over 100 000 items: {grown} bytes, the output {output}");
        dhat::assert!(
            grown <= output + output / 4 + 64 * 1024,
            "the heap grew {grown} bytes for an output of {output}"
        );
    });
}
