//! Learning that the runtime acknowledged as saved survives the process
//! being killed with SIGKILL in the middle of saving, again and again.
//!
//! The test re-executes its own binary as a child (the ignored test
//! `crash_child`), which runs a workflow and saves to `SQLite` in a tight
//! loop, printing `ACK n` after each save returns `Ok`. The parent kills it
//! at a random moment, reopens the store, and checks that it opens cleanly
//! and holds at least the last acknowledged count.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ndf::prelude::*;
use ndf::{LearningStore, SqliteStore};

#[pattern]
async fn tick(n: u64) -> u64 {
    n
}

const CHILD_ENV: &str = "NDF_CRASH_CHILD_DB";

#[test]
#[ignore = "run by `killed_while_saving_keeps_every_acknowledged_update` as its child process"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(&path).unwrap())
        .build()
        .unwrap();
    let flow = sequential!(name = "crash.ticks"; tick);
    let ctx = PatternContext::new("crash");
    rt.block_on(async {
        loop {
            for n in 0..50 {
                ndf.run(&flow, n, &ctx).await.unwrap();
            }
            ndf.flush().unwrap();
            let acknowledged = ndf.stats("crash.ticks", "crash").unwrap().executions;
            println!("ACK {acknowledged}");
        }
    });
}

fn saved_executions(path: &PathBuf) -> u64 {
    let store = SqliteStore::open(path).expect("the store opens cleanly after a kill");
    store
        .load()
        .unwrap()
        .iter()
        .find(|r| r.pattern == "crash.ticks")
        .map_or(0, |r| r.stats.executions)
}

#[test]
fn killed_while_saving_keeps_every_acknowledged_update() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crash");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ndf.db");
    let mut acknowledged = 0;
    for round in 0..6 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it acknowledge a few saves, a different number each round,
        // then kill it wherever it is: most of its time is spent saving.
        let wanted = 2 + round % 4;
        let mut seen = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line.strip_prefix("ACK ") {
                acknowledged = n.trim().parse().unwrap();
                seen += 1;
                if seen == wanted {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let saved = saved_executions(&path);
        assert!(
            saved >= acknowledged,
            "round {round}: {saved} saved, {acknowledged} acknowledged"
        );
    }
    assert!(
        acknowledged >= 6 * 100,
        "every round resumed from the last: {acknowledged}"
    );
}
