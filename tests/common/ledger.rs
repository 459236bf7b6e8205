//! The scenario the shared-store tests run against `SQLite` and Postgres
//! alike: `payments.settle` runs numbered calls, one in seven declined,
//! in runtimes and OS processes that share one store.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use ndf::prelude::*;

/// Fails every seventh call.
#[pattern]
pub async fn settle(n: u64) -> Result<u64, StepError> {
    if n % 7 == 6 {
        return Err(StepError::msg("declined"));
    }
    Ok(n)
}

/// A runtime that counts every call (nothing is held back) into `store`.
pub fn counting(store: impl ndf::LearningStore) -> Ndf {
    let mut config = Config::default();
    config.confidence_threshold = 0.0;
    on_store(config, store)
}

/// A runtime with `config` (and the idle probe) learning into `store`.
pub fn on_store(config: Config, store: impl ndf::LearningStore) -> Ndf {
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .store(store)
        .build()
        .unwrap()
}

/// Runs `count` calls of `payments.settle`, numbered from `from`.
pub async fn settle_many(ndf: &Ndf, from: u64, count: u64) {
    let flow = sequential!(name = "payments.settle"; settle);
    let ctx = PatternContext::new("payments");
    for n in from..from + count {
        let _ = ndf.run(&flow, n, &ctx).await;
    }
}

/// Failures among calls numbered `0..n`.
pub fn failures_below(n: u64) -> u64 {
    (0..n).filter(|k| k % 7 == 6).count() as u64
}

/// (executions, successes, failures) of `payments.settle` in `rows`.
pub fn settled(rows: &[ndf::StoredStats]) -> (u64, u64, u64) {
    rows.iter()
        .find(|r| r.pattern == "payments.settle" && r.domain == "payments")
        .map_or((0, 0, 0), |r| {
            (r.stats.executions, r.stats.successes, r.stats.failures)
        })
}

/// What `settled` holds after two runtimes on one store saved, in turns
/// and twice with nothing new, 65 calls between them.
pub async fn two_runtimes_save_in_turns(a: Ndf, b: Ndf) -> (u64, u64, u64) {
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
    (65, 65 - failures, failures)
}

/// Runs processes × runs calls in `processes` re-executions of this test
/// binary's ignored test `child`, each given `env = "<spec>|<first call>"`;
/// panics if one fails. Returns what `settled` should then hold.
pub fn run_children(
    child: &str,
    env: &str,
    spec: &str,
    processes: u64,
    runs: u64,
) -> (u64, u64, u64) {
    let children: Vec<_> = (0..processes)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--ignored", "--exact", child, "--test-threads=1"])
                .env(env, format!("{spec}|{}", i * runs))
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child failed");
    }
    let total = processes * runs;
    let failures = failures_below(total);
    (total, total - failures, failures)
}

/// The body of a child of [`run_children`]: its share of the calls,
/// saving after every twentieth so that the processes' saves interleave.
pub fn child_settles(env: &str, runs: u64, ndf: impl FnOnce(&str) -> Ndf) {
    let Ok(spec) = std::env::var(env) else {
        return;
    };
    let (spec, first) = spec.rsplit_once('|').unwrap();
    let first: u64 = first.parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ndf = ndf(spec);
        for chunk in 0..20 {
            settle_many(&ndf, first + chunk * (runs / 20), runs / 20).await;
            ndf.flush().unwrap();
        }
        ndf.shutdown().await.unwrap();
    });
}

/// Starts this test binary's ignored test `child` with `env = value`, reads
/// the `ACK n` lines it prints after each acknowledged save, and kills it
/// (SIGKILL on Unix) after `wanted` of them: the last count acknowledged.
pub fn kill_after_acks(child: &str, env: &str, value: &str, wanted: usize) -> u64 {
    let mut process = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            child,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
    let (mut acknowledged, mut seen) = (0, 0);
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("ACK ") {
            acknowledged = n.trim().parse().unwrap();
            seen += 1;
            if seen == wanted {
                break;
            }
        }
    }
    process.kill().unwrap();
    process.wait().unwrap();
    acknowledged
}
