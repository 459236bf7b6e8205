//! Worker processes on one queue. A thousand runs on two of them: each
//! finishes exactly once. And a worker killed (SIGKILL) in the middle of a
//! three-stage run: another worker takes the run over after the heartbeat
//! timeout and resumes after the last checkpointed stage. Completed stages
//! do not run again; the one in flight does (at least once); and when a
//! later stage fails, the compensation of a stage completed before the
//! crash still runs.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::database_url;
use ndf::prelude::*;
use ndf::{RunQueue, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Set in the child: the worker that is killed while charging.
const CHILD: &str = "NDF_QUEUE_CRASH_CHILD";
/// Set in the children of the thousand-run test: the queue to work.
const STEADY: &str = "NDF_QUEUE_STEADY_CHILD";

/// The pool of a worker process (one runtime, one queue).
static POOL: OnceLock<PgPool> = OnceLock::new();
/// The pool of each test in this process, by its side-effect table: a
/// pool's connections belong to the runtime that opened them, and the
/// tests run side by side, each on a runtime of its own that ends with it.
static POOLS: Mutex<BTreeMap<String, PgPool>> = Mutex::new(BTreeMap::new());

/// The pool that writes to `table`: its test's, else the worker process's.
fn pool_for(table: &str) -> PgPool {
    let tests = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match tests.get(table) {
        Some(pool) => pool.clone(),
        None => POOL.get().expect("the pool is set").clone(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    table: String,
}

/// What each stage leaves behind: a row per side effect.
async fn effect(o: &Order, what: &str) {
    let pool = pool_for(&o.table);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (order_id, effect) VALUES ($1, $2)",
        o.table
    )))
    .bind(i64::try_from(o.id).unwrap())
    .bind(what)
    .execute(&pool)
    .await
    .unwrap();
}

#[pattern(compensate = unreserve)]
async fn reserve(o: Order) -> Order {
    effect(&o, "reserve").await;
    o
}

#[pattern]
async fn unreserve(o: Order) -> Result<(), StepError> {
    effect(&o, "unreserve").await;
    Ok(())
}

#[pattern(timeout = "1h")]
async fn charge(o: Order) -> Order {
    effect(&o, "charge").await;
    if std::env::var_os(CHILD).is_some() {
        // The worker that dies: it is killed here, charging.
        tokio::time::sleep(Duration::from_hours(1)).await;
    }
    o
}

#[pattern]
async fn ship(o: Order) -> Result<u64, StepError> {
    if o.id % 2 == 1 {
        return Err(StepError::permanent(StepError::msg("no courier")));
    }
    effect(&o, "ship").await;
    Ok(o.id)
}

#[pattern]
async fn tally(o: Order) -> u64 {
    effect(&o, "tally").await;
    o.id
}

fn runtime() -> Ndf {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    ndf.register_durable(sequential!(name = "orders.fulfil"; reserve => charge => ship))
        .unwrap();
    ndf.register_durable(sequential!(name = "orders.tally"; tally))
        .unwrap();
    ndf
}

async fn queue(ndf: &Ndf, name: &str) -> RunQueue {
    RunQueue::connect(ndf, &database_url())
        .await
        .unwrap()
        .named(name)
        .takeover_after(Duration::from_secs(3))
}

/// A child's body: when `env` names a queue, works it (as `prefix-pid`,
/// `concurrency` runs at once) until the parent kills the process.
async fn work_until_killed(env: &str, prefix: &str, concurrency: usize) {
    let Ok(queue_name) = std::env::var(env) else {
        return;
    };
    POOL.get_or_init(|| PgPool::connect_lazy(&database_url()).unwrap());
    let ndf = runtime();
    let queue = queue(&ndf, &queue_name).await;
    queue
        .worker()
        .name(format!("{prefix}-{}", std::process::id()))
        .concurrency(concurrency)
        .run_until(std::future::pending())
        .await
        .unwrap();
}

/// Starts this test binary's ignored test `child` as a worker process on
/// `queue_name` (passed in `env`).
fn spawn_worker(child: &str, env: &str, queue_name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", child, "--test-threads=1"])
        .env(env, queue_name)
        .env("DATABASE_URL", database_url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A test's queue (`kind.pid`) and its side-effect table, created empty,
/// with the test's own pool to read it.
async fn fixture(kind: &str) -> (Ndf, RunQueue, String, String, PgPool) {
    let pid = std::process::id();
    let (table, queue_name) = (
        format!("queue_{kind}_effects_{pid}"),
        format!("{kind}.{pid}"),
    );
    let ndf = runtime();
    let queue = queue(&ndf, &queue_name).await;
    let pool = PgPool::connect_lazy(&database_url()).unwrap();
    POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(table.clone(), pool.clone());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {table} (order_id BIGINT NOT NULL, effect TEXT NOT NULL)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    (ndf, queue, queue_name, table, pool)
}

/// Whether `effect` is in `table` `n` times within two minutes.
async fn effects_reach(pool: &PgPool, table: &str, effect: &str, n: i64) -> bool {
    let sql = format!("SELECT count(*) FROM {table} WHERE effect = $1");
    for _ in 0..2400 {
        let (seen,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(effect)
            .fetch_one(pool)
            .await
            .unwrap();
        if seen >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Each (order, effect) in `table`, with how many times it happened.
async fn effects(pool: &PgPool, table: &str) -> Vec<(i64, String, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT order_id, effect, count(*) FROM {table} GROUP BY order_id, effect ORDER BY order_id, effect"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Starts a worker process on `queue_name`, waits until it charges both
/// runs, and kills it (SIGKILL) there.
async fn kill_a_worker_while_charging(
    queue: &RunQueue,
    queue_name: &str,
    table: &str,
    [shipped, stranded]: [&String; 2],
) {
    let pool = &pool_for(table);
    let mut child = spawn_worker("dying_worker", CHILD, queue_name);
    // Both orders are in flight once both charges were made.
    if !effects_reach(pool, table, "charge", 2).await {
        child.kill().unwrap();
        panic!(
            "the child did not charge both orders: {:?}",
            (queue.outcome(shipped).await, queue.outcome(stranded).await)
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A child of the thousand-run test: works its queue until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child of `a_thousand_runs_on_two_worker_processes_each_finish_once`"]
async fn steady_worker() {
    work_until_killed(STEADY, "steady", 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_runs_on_two_worker_processes_each_finish_once() {
    let (_ndf, queue, queue_name, table, pool) = fixture("steady").await;
    let pool = &pool;
    let ctx = PatternContext::new("orders");
    let mut ids = Vec::new();
    for id in 0..1_000 {
        let order = Order {
            id,
            table: table.clone(),
        };
        ids.push(queue.enqueue("orders.tally", &order, &ctx).await.unwrap());
    }
    let mut workers: Vec<_> = (0..2)
        .map(|_| spawn_worker("steady_worker", STEADY, &queue_name))
        .collect();
    let mut ran_by = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let out: u64 = queue.wait(id, Duration::from_mins(2)).await.unwrap();
        assert_eq!(out, i as u64);
        let outcome = queue.outcome(id).await.unwrap().unwrap();
        assert_eq!(outcome.attempts, 1, "{outcome:?}");
        ran_by.insert(outcome.worker.unwrap_or_default());
    }
    for worker in &mut workers {
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
    let (rows, orders): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT order_id) FROM {table}"
    )))
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!((rows, orders), (1_000, 1_000), "each run ran exactly once");
    assert_eq!(ran_by.len(), 2, "both processes took runs: {ran_by:?}");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(pool)
        .await
        .unwrap();
}

/// The child: a worker that takes both runs and is killed while charging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child of `a_killed_worker_s_run_resumes_after_its_last_checkpoint`"]
async fn dying_worker() {
    work_until_killed(CHILD, "dying", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_run_resumes_after_its_last_checkpoint() {
    let pid = std::process::id();
    let (_ndf, queue, queue_name, table, pool) = fixture("crash").await;
    let pool = &pool;
    let ctx = PatternContext::new("orders");
    // Order 2 ships; order 1 finds no courier, after the crash.
    let shipped = queue
        .enqueue(
            "orders.fulfil",
            &Order {
                id: 2,
                table: table.clone(),
            },
            &ctx,
        )
        .await
        .unwrap();
    let stranded = queue
        .enqueue(
            "orders.fulfil",
            &Order {
                id: 1,
                table: table.clone(),
            },
            &ctx,
        )
        .await
        .unwrap();

    kill_a_worker_while_charging(&queue, &queue_name, &table, [&shipped, &stranded]).await;
    for id in [&shipped, &stranded] {
        let outcome = queue.outcome(id).await.unwrap().unwrap();
        assert_eq!(outcome.status, RunStatus::Running, "{outcome:?}");
        assert_eq!(
            outcome.stages_done, 1,
            "reserve was checkpointed: {outcome:?}"
        );
    }

    // This worker takes both runs over once the dead one is silent.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().name(format!("survivor-{pid}")).run_until(
        async move {
            let _ = stop_rx.await;
        },
    ));
    let out: u64 = queue.wait(&shipped, Duration::from_mins(1)).await.unwrap();
    assert_eq!(out, 2);
    let error = queue
        .wait::<u64>(&stranded, Duration::from_mins(1))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no courier"), "{error}");
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();

    let outcome = queue.outcome(&shipped).await.unwrap().unwrap();
    assert_eq!(
        outcome.attempts, 2,
        "started by the dead worker, then taken over"
    );
    assert!(outcome.worker.is_some_and(|w| w.starts_with("survivor")));

    let counts = effects(pool, &table).await;
    let count = |order: i64, effect: &str| {
        counts
            .iter()
            .find(|(o, e, _)| *o == order && e == effect)
            .map_or(0, |(_, _, n)| *n)
    };
    // Completed before the crash: once. In flight: twice. After: once.
    assert_eq!(count(2, "reserve"), 1, "{counts:?}");
    assert_eq!(count(2, "charge"), 2, "{counts:?}");
    assert_eq!(count(2, "ship"), 1, "{counts:?}");
    assert_eq!(count(2, "unreserve"), 0, "{counts:?}");
    // Order 1 failed after the crash: the reservation made before it was
    // compensated.
    assert_eq!(count(1, "reserve"), 1, "{counts:?}");
    assert_eq!(count(1, "charge"), 2, "{counts:?}");
    assert_eq!(count(1, "unreserve"), 1, "{counts:?}");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(pool)
        .await
        .unwrap();
}
