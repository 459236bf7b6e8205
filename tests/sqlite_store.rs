//! `SqliteStore`: learning survives a restart; bad files are clear errors,
//! never a panic and never a silent reset.

use std::path::{Path, PathBuf};

use ndf::prelude::*;
use ndf::{LearningStore, SqliteStore};

#[pattern]
async fn charge(amount: u32) -> Result<u32, StepError> {
    if amount == 0 {
        return Err(StepError::msg("nothing to charge"));
    }
    Ok(amount)
}

/// A fresh directory under the target dir, removed first if left over.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn learning_survives_a_restart() {
    let path = scratch("sqlite-restart").join("ndf.db");
    let flow = sequential!(name = "billing.charge"; charge);
    let ctx = PatternContext::new("billing");
    let (stats, confidence) = {
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .store(SqliteStore::open(&path).unwrap())
            .build()
            .unwrap();
        for amount in [5, 0, 7, 9] {
            let _ = ndf.run(&flow, amount, &ctx).await;
        }
        ndf.shutdown().await.unwrap();
        (
            ndf.stats("billing.charge", "billing").unwrap(),
            ndf.confidence("charge", "billing").unwrap(),
        )
    };
    assert_eq!((stats.executions, stats.failures), (4, 1));

    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(&path).unwrap())
        .build()
        .unwrap();
    assert_eq!(ndf.stats("billing.charge", "billing"), Some(stats));
    assert_eq!(ndf.confidence("charge", "billing"), Some(confidence));
    ndf.run(&flow, 2, &ctx).await.unwrap();
    let report = ndf.report(std::time::Duration::from_hours(1));
    let row = report
        .patterns
        .iter()
        .find(|p| p.pattern == "billing.charge")
        .unwrap();
    assert_eq!(
        (row.executions, row.successes),
        (5, 4),
        "the report's window holds the runs from before the restart"
    );
    ndf.shutdown().await.unwrap();

    let rows = SqliteStore::open(&path).unwrap().load().unwrap();
    let row = rows.iter().find(|r| r.pattern == "billing.charge").unwrap();
    assert_eq!(row.stats.executions, 5);
    assert_eq!(row.evidence.samples, 5);
    assert_eq!(row.recent.len(), 5, "the recent runs are kept for reports");
    assert_eq!(row.recent.iter().filter(|r| !r.ok).count(), 1);
}

fn store_error(result: Result<SqliteStore, ndf::Error>) -> String {
    match result {
        Err(e @ ndf::Error::Store(_)) => e.to_string(),
        Err(other) => panic!("expected Error::Store, got {other:?}"),
        Ok(_) => panic!("expected Error::Store, the file opened"),
    }
}

#[test]
fn a_text_file_is_not_a_database() {
    let path = scratch("sqlite-text").join("notes.txt");
    let text = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &text).unwrap();
    let message = store_error(SqliteStore::open(&path));
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the file was left untouched"
    );
}

#[test]
fn a_corrupt_database_is_reported() {
    let path = scratch("sqlite-corrupt").join("ndf.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        let row = ndf::StoredStats {
            pattern: "billing.charge".into(),
            domain: "billing".into(),
            stats: ndf::PatternStats::default(),
            added: ndf::PatternStats::default(),
            ..ndf::StoredStats::default()
        };
        store.save(&vec![row; 1]).unwrap();
    }
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep SQLite's header, scramble the pages after it.
    for b in bytes.iter_mut().skip(100) {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&path, &bytes).unwrap();
    let message = store_error(SqliteStore::open(&path));
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn a_newer_schema_is_refused_not_reset() {
    let path = scratch("sqlite-future").join("ndf.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE ndf_schema SET version = 99", [])
        .unwrap();
    drop(conn);
    let message = store_error(SqliteStore::open(&path));
    assert!(
        message.contains("newer ndf") && message.contains("schema version 99"),
        "{message}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT version FROM ndf_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99, "nothing was reset");
}

#[test]
fn a_path_that_cannot_be_written_is_reported() {
    let message = store_error(SqliteStore::open("/proc/ndf-cannot-live-here.db"));
    assert!(
        message.contains("/proc/ndf-cannot-live-here.db"),
        "{message}"
    );
}

/// One run of `billing.charge` on a runtime keeping its learning in the
/// file at `path`, then a shutdown.
async fn charge_once_and_shut_down(path: &Path) {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(path).unwrap())
        .build()
        .unwrap();
    ndf.run(
        &sequential!(name = "billing.charge"; charge),
        4,
        &PatternContext::new("billing"),
    )
    .await
    .unwrap();
    ndf.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_on_a_worker_thread_loads_without_stalling_it() {
    let path = scratch("sqlite-worker").join("ndf.db");
    charge_once_and_shut_down(&path).await;
    // Built on a worker: the load is handed off with block_in_place.
    let ndf = tokio::spawn(async move {
        Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .store(SqliteStore::open(&path).unwrap())
            .build()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        ndf.stats("billing.charge", "billing").unwrap().executions,
        1
    );
}

#[tokio::test]
async fn shutdown_folds_the_write_ahead_log_into_the_file() {
    let path = scratch("sqlite-close").join("ndf.db");
    charge_once_and_shut_down(&path).await;
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0, "the log was checkpointed and truncated");
    assert_eq!(SqliteStore::open(&path).unwrap().load().unwrap().len(), 2);
}

fn point(pattern: &str, at_unix_ms: u64, executions: u64) -> ndf::StoredPoint {
    ndf::StoredPoint {
        pattern: pattern.to_owned(),
        domain: "billing".to_owned(),
        point: ndf::TimelinePoint {
            at_unix_ms,
            executions,
            failures: 1,
            refused: 3,
            mean_ms: 2.5,
            p95_ms: 4.0,
            confidence: 0.75,
        },
    }
}

#[test]
fn timeline_points_are_kept_for_the_retention_and_no_longer() {
    let path = scratch("sqlite-timeline").join("ndf.db");
    let store = SqliteStore::open(&path).unwrap();
    let old = [
        point("billing.charge", 1_000, 3),
        point("billing.refund", 2_000, 4),
    ];
    store.save_timeline(&old, 0).unwrap();
    let new = [point("billing.charge", 5_000, 7)];
    // Saving with a cut-off of 1 500 ms deletes the point taken at 1 000.
    store.save_timeline(&new, 1_500).unwrap();
    drop(store);

    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened.load_timeline(0).unwrap(),
        vec![old[1].clone(), new[0].clone()],
        "oldest first; the point before the cut-off is gone"
    );
    assert_eq!(reopened.load_timeline(3_000).unwrap(), vec![new[0].clone()]);
}

/// The rowids of the recent runs stored for `pattern`, oldest first.
fn recent_rowids(path: &Path, pattern: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT rowid FROM ndf_recent_runs WHERE pattern = ?1 ORDER BY at_unix_ms, rowid")
        .unwrap();
    stmt.query_map([pattern], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn a_save_appends_new_runs_and_leaves_the_stored_ones_alone() {
    let path = scratch("sqlite-append").join("ndf.db");
    let flow = sequential!(name = "billing.charge"; charge);
    let idle = sequential!(name = "billing.idle"; charge);
    let ctx = PatternContext::new("billing");
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(&path).unwrap())
        .build()
        .unwrap();
    for amount in [1, 2, 3] {
        ndf.run(&flow, amount, &ctx).await.unwrap();
    }
    ndf.run(&idle, 1, &ctx).await.unwrap();
    ndf.flush().unwrap();
    let first = recent_rowids(&path, "billing.charge");
    let idle_first = recent_rowids(&path, "billing.idle");
    assert_eq!(first.len(), 3);
    for amount in [4, 5] {
        ndf.run(&flow, amount, &ctx).await.unwrap();
    }
    ndf.flush().unwrap();
    let second = recent_rowids(&path, "billing.charge");
    assert_eq!(second.len(), 5);
    assert_eq!(second[..3], first[..], "the stored runs were not rewritten");
    assert_eq!(
        recent_rowids(&path, "billing.idle"),
        idle_first,
        "a workflow without new runs is not touched"
    );
    ndf.shutdown().await.unwrap();
    // And they load back in order.
    let rows = SqliteStore::open(&path).unwrap().load().unwrap();
    let charge = rows.iter().find(|r| r.pattern == "billing.charge").unwrap();
    assert_eq!(charge.recent.len(), 5);
    assert_eq!(charge.stats.executions, 5);
}

/// A runtime on the store at `path` that has run `billing.charge` once
/// and saved it.
async fn saved_once(path: &Path) -> Ndf {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(path).unwrap())
        .build()
        .unwrap();
    let flow = sequential!(name = "billing.charge"; charge);
    ndf.run(&flow, 4, &PatternContext::new("billing"))
        .await
        .unwrap();
    ndf.flush().unwrap();
    ndf.run(&flow, 5, &PatternContext::new("billing"))
        .await
        .unwrap();
    ndf
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

#[tokio::test]
async fn a_database_deleted_under_the_runtime_fails_the_save_and_keeps_the_learning() {
    let path = scratch("sqlite-deleted").join("ndf.db");
    let ndf = saved_once(&path).await;
    remove_database(&path);
    let err = ndf.flush().unwrap_err().to_string();
    assert!(err.contains("ndf.db") && err.contains("is gone"), "{err}");
    let err = ndf.shutdown().await.unwrap_err().to_string();
    assert!(err.contains("is gone"), "{err}");
    // Nothing was lost: the runtime still holds both runs.
    assert_eq!(
        ndf.stats("billing.charge", "billing").unwrap().executions,
        2
    );
}

#[tokio::test]
async fn a_database_replaced_under_the_runtime_fails_the_save() {
    let dir = scratch("sqlite-replaced");
    let path = dir.join("ndf.db");
    let ndf = saved_once(&path).await;
    // Another database moved over the path (a restore, a deploy script).
    let other = dir.join("other.db");
    drop(SqliteStore::open(&other).unwrap());
    std::fs::rename(&other, &path).unwrap();
    let err = ndf.flush().unwrap_err().to_string();
    assert!(err.contains("was replaced"), "{err}");
}

#[test]
fn a_read_only_database_is_refused_when_opened() {
    let path = scratch("sqlite-read-only").join("ndf.db");
    drop(SqliteStore::open(&path).unwrap());
    // Opened read-only (as SQLite does a file it may not write).
    let uri = format!("file:{}?mode=ro", path.display());
    let message = store_error(SqliteStore::open(&uri));
    assert!(message.contains("is read-only"), "{message}");
}

#[test]
fn durability_is_normal_unless_full_is_asked_for() {
    let dir = scratch("sqlite-durability");
    let normal = SqliteStore::open(dir.join("normal.db")).unwrap();
    assert_eq!(normal.durability(), ndf::Durability::Normal);
    let full = SqliteStore::open_with(dir.join("full.db"), ndf::Durability::Full).unwrap();
    assert_eq!(full.durability(), ndf::Durability::Full);
}

/// The tables of a schema-2 file, as ndf wrote them before latencies were
/// kept in nanoseconds.
const SCHEMA_2: &str = "
CREATE TABLE ndf_schema (version INTEGER NOT NULL);
INSERT INTO ndf_schema VALUES (2);
CREATE TABLE ndf_learning (
    pattern TEXT NOT NULL, domain TEXT NOT NULL, executions INTEGER NOT NULL,
    successes INTEGER NOT NULL, failures INTEGER NOT NULL, retries INTEGER NOT NULL,
    fallbacks INTEGER NOT NULL, compensations INTEGER NOT NULL,
    compensation_failures INTEGER NOT NULL, degradations INTEGER NOT NULL,
    outliers INTEGER NOT NULL, held_back INTEGER NOT NULL, total_latency_us INTEGER NOT NULL,
    evidence_successes REAL NOT NULL, evidence_failures REAL NOT NULL,
    evidence_samples INTEGER NOT NULL, PRIMARY KEY (pattern, domain));
INSERT INTO ndf_learning VALUES ('billing.charge', 'billing', 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 2500, 3.0, 0.0, 4);
";

#[tokio::test]
async fn a_schema_2_file_is_migrated_to_nanoseconds_and_saves_after() {
    let path = scratch("sqlite-schema-2").join("ndf.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SCHEMA_2)
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let rows = store.load().unwrap();
    let row = rows.iter().find(|r| r.pattern == "billing.charge").unwrap();
    assert_eq!(
        (row.stats.executions, row.stats.total_latency_ns),
        (4, 2_500_000),
        "microseconds became nanoseconds"
    );
    drop(store);
    // A run on the migrated file adds to it.
    charge_once_and_shut_down(&path).await;
    let rows = SqliteStore::open(&path).unwrap().load().unwrap();
    let row = rows.iter().find(|r| r.pattern == "billing.charge").unwrap();
    assert_eq!(row.stats.executions, 5);
    assert!(row.stats.total_latency_ns > 2_500_000, "{row:?}");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT version FROM ndf_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}
