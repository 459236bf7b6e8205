//! Learning that the runtime acknowledged as saved survives the process
//! being killed with SIGKILL in the middle of saving, again and again.
//!
//! The test re-executes its own binary as a child (the ignored test
//! `crash_child`), which runs a workflow and saves to `SQLite` in a tight
//! loop, printing `ACK n` after each save returns `Ok`. The parent kills it
//! at a random moment, reopens the store, and checks that it opens cleanly
//! and holds at least the last acknowledged count.

mod common;

use std::path::PathBuf;

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
    let rt = common::runtime();
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
        // Let it acknowledge a few saves, a different number each round,
        // then kill it wherever it is: most of its time is spent saving.
        acknowledged = common::ledger::kill_after_acks(
            "crash_child",
            CHILD_ENV,
            &path.display().to_string(),
            2 + round % 4,
        );
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
