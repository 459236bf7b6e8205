//! Runtimes sharing one `SQLite` file add what they learned instead of
//! overwriting each other: in one process, and in four OS processes saving
//! at once (the test binary re-executed, as `tests/crash.rs` does).

use std::path::{Path, PathBuf};
use std::process::Command;

use ndf::prelude::*;
use ndf::{LearningStore, SqliteStore};

/// Fails every seventh call.
#[pattern]
async fn settle(n: u64) -> Result<u64, StepError> {
    if n % 7 == 6 {
        return Err(StepError::msg("declined"));
    }
    Ok(n)
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ndf.db")
}

fn runtime(path: &Path) -> Ndf {
    let mut config = Config::default();
    // Every run runs: this counts, it does not gate.
    config.confidence_threshold = 0.0;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .store(SqliteStore::open(path).unwrap())
        .build()
        .unwrap()
}

/// Runs `count` calls of `payments.settle`, numbered from `from`.
async fn settle_many(ndf: &Ndf, from: u64, count: u64) {
    let flow = sequential!(name = "payments.settle"; settle);
    let ctx = PatternContext::new("payments");
    for n in from..from + count {
        let _ = ndf.run(&flow, n, &ctx).await;
    }
}

/// (executions, successes, failures) of `payments.settle` in the file.
fn stored(path: &Path) -> (u64, u64, u64) {
    let rows = SqliteStore::open(path).unwrap().load().unwrap();
    let row = rows
        .iter()
        .find(|r| r.pattern == "payments.settle" && r.domain == "payments")
        .expect("the workflow's row");
    (
        row.stats.executions,
        row.stats.successes,
        row.stats.failures,
    )
}

/// Failures among calls numbered `0..n`.
fn failures_below(n: u64) -> u64 {
    (0..n).filter(|k| k % 7 == 6).count() as u64
}

#[tokio::test]
async fn two_runtimes_on_one_file_lose_nothing_whatever_the_order_of_saves() {
    let path = scratch("shared-sqlite-two");
    let a = runtime(&path);
    let b = runtime(&path);
    settle_many(&a, 0, 35).await;
    settle_many(&b, 35, 20).await;
    a.flush().unwrap();
    b.flush().unwrap();
    settle_many(&a, 55, 10).await;
    a.flush().unwrap();
    // Nothing new: saving again adds nothing.
    b.flush().unwrap();
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let failures = failures_below(65);
    assert_eq!(stored(&path), (65, 65 - failures, failures));
    // A runtime that opens the file now starts from all of it.
    let c = runtime(&path);
    assert_eq!(
        c.stats("payments.settle", "payments").unwrap().executions,
        65
    );
}

const CHILD_ENV: &str = "NDF_SHARED_SQLITE_CHILD";
const RUNS: u64 = 2_000;
const PROCESSES: u64 = 4;

#[test]
#[ignore = "run by `four_processes_on_one_file_add_up_to_every_run` as its child process"]
fn shared_sqlite_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (path, first) = spec.split_once('|').unwrap();
    let first: u64 = first.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ndf = runtime(Path::new(path));
        // Saves often, so that the processes' saves interleave.
        for chunk in 0..20 {
            settle_many(&ndf, first + chunk * (RUNS / 20), RUNS / 20).await;
            ndf.flush().unwrap();
        }
        ndf.shutdown().await.unwrap();
    });
}

#[test]
fn four_processes_on_one_file_add_up_to_every_run() {
    let path = scratch("shared-sqlite-four");
    // The schema first, so that the children race only on their saves.
    drop(SqliteStore::open(&path).unwrap());
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--ignored",
                    "--exact",
                    "shared_sqlite_child",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{}|{}", path.display(), i * RUNS))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child failed");
    }
    let total = PROCESSES * RUNS;
    let failures = failures_below(total);
    assert_eq!(
        stored(&path),
        (total, total - failures, failures),
        "every run of every process, none overwritten"
    );
}
