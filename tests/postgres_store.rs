//! `PostgresStore` against a real server (`DATABASE_URL`; `.ci/run` starts
//! one): what is saved comes back, runtimes and OS processes sharing one
//! database add up to every run, a SIGKILL loses nothing acknowledged, and
//! every bad setup is a clear `Error::Store` while the runtime keeps going.

mod common;

use std::process::Command;
use std::process::Stdio;
use std::time::Duration;

use common::ledger::{
    child_settles, counting, failures_below, kill_after_acks, run_children, settle_many, settled,
    two_runtimes_save_in_turns,
};
use common::{database_url, fresh_schema, psql};
use ndf::prelude::*;
use ndf::{LearningStore, PostgresStore};

fn store(schema: &str) -> PostgresStore {
    PostgresStore::builder(&database_url())
        .schema(schema)
        .connect()
        .unwrap()
}

fn runtime(schema: &str) -> Ndf {
    counting(store(schema))
}

/// (executions, successes, failures) of `payments.settle` in the schema.
fn stored(schema: &str) -> (u64, u64, u64) {
    settled(&store(schema).load().unwrap())
}

#[tokio::test]
async fn what_is_saved_comes_back_with_its_steps_gate_and_recent_runs() {
    let schema = fresh_schema("store_round_trip");
    let ndf = runtime(&schema);
    settle_many(&ndf, 0, 30).await;
    ndf.shutdown().await.unwrap();
    let rows = store(&schema).load().unwrap();
    let flow = rows
        .iter()
        .find(|r| r.pattern == "payments.settle")
        .unwrap();
    let failures = failures_below(30);
    assert_eq!(flow.stats.executions, 30);
    assert_eq!(flow.stats.failures, failures);
    assert_eq!(flow.recent.len(), 30, "the workflow's recent runs");
    assert_eq!(
        flow.recent.iter().filter(|r| !r.ok).count() as u64,
        failures
    );
    let step = rows.iter().find(|r| r.pattern == "settle").unwrap();
    assert_eq!(step.stats.executions, 30);
    assert!(
        step.evidence.samples > 0,
        "the confidence evidence is saved"
    );
    // A new runtime starts from all of it.
    let again = runtime(&schema);
    assert_eq!(
        again
            .stats("payments.settle", "payments")
            .unwrap()
            .executions,
        30
    );
}

#[tokio::test]
async fn two_runtimes_on_one_database_lose_nothing_whatever_the_order_of_saves() {
    let schema = fresh_schema("store_two");
    let expected = two_runtimes_save_in_turns(runtime(&schema), runtime(&schema)).await;
    assert_eq!(stored(&schema), expected);
}

const CHILD_ENV: &str = "NDF_PG_CHILD";
const RUNS: u64 = 2_000;
const PROCESSES: u64 = 4;

#[test]
#[ignore = "run by `four_processes_on_one_database_add_up_to_every_run` as its child process"]
fn pg_shared_child() {
    child_settles(CHILD_ENV, RUNS, runtime);
}

#[test]
fn four_processes_on_one_database_add_up_to_every_run() {
    let schema = fresh_schema("store_four");
    drop(store(&schema));
    let expected = run_children("pg_shared_child", CHILD_ENV, &schema, PROCESSES, RUNS);
    assert_eq!(
        stored(&schema),
        expected,
        "every run of every process, none overwritten"
    );
}

const CRASH_ENV: &str = "NDF_PG_CRASH_CHILD";

#[test]
#[ignore = "run by `killed_while_saving_keeps_every_acknowledged_update` as its child process"]
fn pg_crash_child() {
    let Ok(schema) = std::env::var(CRASH_ENV) else {
        return;
    };
    let rt = common::runtime();
    let ndf = runtime(&schema);
    rt.block_on(async {
        let mut next = 0;
        loop {
            settle_many(&ndf, next, 50).await;
            next += 50;
            ndf.flush().unwrap();
            let acknowledged = ndf.stats("payments.settle", "payments").unwrap().executions;
            println!("ACK {acknowledged}");
        }
    });
}

#[test]
fn killed_while_saving_keeps_every_acknowledged_update() {
    let schema = fresh_schema("store_crash");
    let mut acknowledged = 0;
    for round in 0..4 {
        acknowledged = kill_after_acks("pg_crash_child", CRASH_ENV, &schema, 2 + round % 3);
        let (saved, ..) = stored(&schema);
        assert!(
            saved >= acknowledged,
            "round {round}: {saved} saved, {acknowledged} acknowledged"
        );
        // At most the runs of the save in flight beyond what was
        // acknowledged: nothing is counted twice.
        assert!(
            saved <= acknowledged + 50,
            "round {round}: {saved} saved, {acknowledged} acknowledged"
        );
    }
    assert!(
        acknowledged >= 4 * 100,
        "every round resumed from the last: {acknowledged}"
    );
}

fn store_error(result: Result<PostgresStore, ndf::Error>) -> String {
    match result {
        Err(ndf::Error::Store(e)) => e.to_string(),
        Err(other) => panic!("expected Error::Store, got {other:?}"),
        Ok(store) => panic!("expected an error, the store opened: {store:?}"),
    }
}

#[test]
fn a_url_that_is_not_postgres_is_refused_without_showing_its_password() {
    let message = store_error(PostgresStore::connect("mysql://app:hunter2@db/app"));
    assert!(message.contains("is not a PostgreSQL URL"), "{message}");
    assert!(message.contains("mysql://app:***@db/app"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn a_server_that_is_not_there_is_named_in_the_error() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://ndf:secret@127.0.0.1:{port}/app");
    let message = store_error(
        PostgresStore::builder(&url)
            .timeout(Duration::from_secs(2))
            .connect(),
    );
    assert!(
        message.contains(&format!("postgres ndf@127.0.0.1:{port}/app")),
        "{message}"
    );
    assert!(message.contains("cannot"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn a_database_that_does_not_exist_is_named() {
    let url = database_url();
    let (server, _db) = url.rsplit_once('/').unwrap();
    let message = store_error(PostgresStore::connect(&format!("{server}/no_such_db")));
    assert!(message.contains("no such database"), "{message}");
    assert!(message.contains("/no_such_db"), "{message}");
}

#[test]
fn a_schema_name_that_is_not_an_identifier_is_refused() {
    let message = store_error(
        PostgresStore::builder(&database_url())
            .schema("ndf; DROP TABLE users")
            .connect(),
    );
    assert!(message.contains("is not a plain identifier"), "{message}");
    let message = store_error(
        PostgresStore::builder(&database_url())
            .schema("pg_ndf")
            .connect(),
    );
    assert!(message.contains("reserves"), "{message}");
}

#[test]
fn another_applications_tables_are_left_untouched_and_named() {
    let schema = fresh_schema("store_foreign");
    psql(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.ndf_learning (id SERIAL PRIMARY KEY, note TEXT);
         INSERT INTO {schema}.ndf_learning (note) VALUES ('theirs');
         CREATE TABLE {schema}.orders (id SERIAL PRIMARY KEY);"
    ));
    let message = store_error(
        PostgresStore::builder(&database_url())
            .schema(&schema)
            .connect(),
    );
    assert!(message.contains("ndf_learning"), "{message}");
    assert!(message.contains("did not create"), "{message}");
    // Their row is still there: the table was not touched.
    psql(&format!(
        "DO $$ BEGIN
           IF (SELECT COUNT(*) FROM {schema}.ndf_learning WHERE note = 'theirs') <> 1 THEN
             RAISE EXCEPTION 'their table was changed';
           END IF;
         END $$;"
    ));
}

#[test]
fn ndf_shares_a_schema_with_an_applications_own_tables() {
    let schema = fresh_schema("store_beside");
    psql(&format!(
        "CREATE SCHEMA {schema}; CREATE TABLE {schema}.orders (id SERIAL PRIMARY KEY);"
    ));
    let s = store(&schema);
    assert!(s.load().unwrap().is_empty());
}

#[test]
fn a_schema_written_by_a_newer_ndf_is_refused_and_kept() {
    let schema = fresh_schema("store_newer");
    drop(store(&schema));
    psql(&format!("UPDATE {schema}.ndf_schema SET version = 99"));
    let message = store_error(
        PostgresStore::builder(&database_url())
            .schema(&schema)
            .connect(),
    );
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("left untouched"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_keeps_learning_pending_until_it_answers() {
    let schema = fresh_schema("store_stall");
    let ndf = counting(
        PostgresStore::builder(&database_url())
            .schema(&schema)
            .timeout(Duration::from_secs(1))
            .connect()
            .unwrap(),
    );
    settle_many(&ndf, 0, 10).await;
    ndf.flush().unwrap();
    // Another session locks the table for 4 s: saves wait, then time out.
    let locker = {
        let schema = schema.clone();
        std::thread::spawn(move || {
            psql(&format!(
                "BEGIN; LOCK TABLE {schema}.ndf_learning IN ACCESS EXCLUSIVE MODE;
                 SELECT pg_sleep(4); COMMIT;"
            ));
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle_many(&ndf, 10, 15).await;
    let error = ndf
        .flush()
        .expect_err("the save cannot finish while locked");
    let message = error.to_string();
    assert!(message.contains("no answer within 1s"), "{message}");
    assert!(message.contains("kept in memory"), "{message}");
    // The runtime runs and learns meanwhile.
    settle_many(&ndf, 25, 5).await;
    assert_eq!(
        ndf.stats("payments.settle", "payments").unwrap().executions,
        30
    );
    locker.join().unwrap();
    ndf.flush().unwrap();
    let failures = failures_below(30);
    assert_eq!(
        stored(&schema),
        (30, 30 - failures, failures),
        "what waited is saved once, nothing twice"
    );
}

/// Runs `.ci/postgres <command>` for a cluster of this test's own.
fn own_cluster(command: &str, dir: &str, port: u16) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
    let out = Command::new(script)
        .arg(command)
        .env("NDF_PG_DIR", dir)
        .env("NDF_PG_PORT", port.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script} {command} failed");
    let printed = String::from_utf8(out.stdout).unwrap();
    printed
        .trim()
        .strip_prefix("export DATABASE_URL=")
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_mid_run_fails_saves_clearly_and_loses_nothing() {
    // A server of its own, to take away: not the one other tests share.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = format!("/tmp/ndf-pg-gone-{}", std::process::id());
    let url = own_cluster("start", &dir, port);
    let ndf = counting(
        PostgresStore::builder(&url)
            .timeout(Duration::from_secs(2))
            .connect()
            .unwrap(),
    );
    settle_many(&ndf, 0, 10).await;
    ndf.flush().unwrap();

    own_cluster("halt", &dir, port);
    settle_many(&ndf, 10, 15).await;
    let message = ndf.flush().expect_err("no server to save to").to_string();
    assert!(
        message.contains(&format!("postgres ndf@127.0.0.1:{port}/ndf_test")),
        "{message}"
    );
    assert!(message.contains("cannot"), "{message}");
    assert!(message.contains("kept in memory"), "{message}");
    // The runtime keeps running and learning.
    settle_many(&ndf, 25, 5).await;
    assert_eq!(
        ndf.stats("payments.settle", "payments").unwrap().executions,
        30
    );

    own_cluster("start", &dir, port);
    ndf.flush().expect("the server is back");
    let rows = PostgresStore::connect(&url).unwrap().load().unwrap();
    let row = rows
        .iter()
        .find(|r| r.pattern == "payments.settle")
        .unwrap();
    let failures = failures_below(30);
    assert_eq!(
        (row.stats.executions, row.stats.failures),
        (30, failures),
        "every run saved once"
    );
    drop(ndf);
    own_cluster("stop", &dir, port);
}

#[test]
fn a_process_publishes_its_breakers_evidence_and_retracts_it_at_zero() {
    let schema = fresh_schema("store_publish");
    let (a, b) = (store(&schema), store(&schema));
    let now_ms = unix_ms();
    let row = |evidence: f64| ndf::StoredStats {
        pattern: "billing.charge".to_owned(),
        domain: "billing".to_owned(),
        breaker: ndf::StoredBreaker {
            evidence,
            calls: 30,
            failures: 12,
            at_unix_ms: now_ms,
            ..ndf::StoredBreaker::default()
        },
        ..ndf::StoredStats::default()
    };
    a.save(&[row(5.5)]).unwrap();
    let seen = b.load_fleet().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].member, a.member());
    assert_eq!(
        (
            seen[0].breaker.evidence,
            seen[0].breaker.calls,
            seen[0].breaker.failures
        ),
        (5.5, 30, 12)
    );
    assert!(
        a.load_fleet().unwrap().is_empty(),
        "its own is not the others'"
    );
    // Healthy again: nothing of it counts any more.
    a.save(&[row(0.0)]).unwrap();
    assert!(b.load_fleet().unwrap().is_empty());
}

#[test]
fn evidence_no_process_touched_for_a_day_is_dropped() {
    let schema = fresh_schema("store_forget");
    let (a, b) = (store(&schema), store(&schema));
    let old = ndf::StoredStats {
        pattern: "billing.charge".to_owned(),
        domain: "billing".to_owned(),
        breaker: ndf::StoredBreaker {
            evidence: 9.0,
            calls: 30,
            // Two days ago.
            at_unix_ms: unix_ms() - 2 * 24 * 3600 * 1000,
            ..ndf::StoredBreaker::default()
        },
        ..ndf::StoredStats::default()
    };
    a.save(&[old]).unwrap();
    assert!(b.load_fleet().unwrap().is_empty());
}

/// Now, in milliseconds since the Unix epoch.
fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    u64::try_from(since.as_millis()).unwrap()
}
