//! Runtimes sharing one `SQLite` file add what they learned instead of
//! overwriting each other: in one process, and in four OS processes saving
//! at once (the test binary re-executed, as `tests/crash.rs` does).

mod common;

use std::path::{Path, PathBuf};

use common::ledger::{child_settles, counting, run_children, settled, two_runtimes_save_in_turns};
use ndf::{LearningStore, SqliteStore};

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ndf.db")
}

fn runtime(path: &Path) -> ndf::Ndf {
    counting(SqliteStore::open(path).unwrap())
}

/// (executions, successes, failures) of `payments.settle` in the file.
fn stored(path: &Path) -> (u64, u64, u64) {
    settled(&SqliteStore::open(path).unwrap().load().unwrap())
}

#[tokio::test]
async fn two_runtimes_on_one_file_lose_nothing_whatever_the_order_of_saves() {
    let path = scratch("shared-sqlite-two");
    let expected = two_runtimes_save_in_turns(runtime(&path), runtime(&path)).await;
    assert_eq!(stored(&path), expected);
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
    child_settles(CHILD_ENV, RUNS, |path| runtime(Path::new(path)));
}

#[test]
fn four_processes_on_one_file_add_up_to_every_run() {
    let path = scratch("shared-sqlite-four");
    // The schema first, so that the children race only on their saves.
    drop(SqliteStore::open(&path).unwrap());
    let spec = path.display().to_string();
    let expected = run_children("shared_sqlite_child", CHILD_ENV, &spec, PROCESSES, RUNS);
    assert_eq!(
        stored(&path),
        expected,
        "every run of every process, none overwritten"
    );
}
