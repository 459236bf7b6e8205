//! Runs across processes: a producer enqueues three-stage runs on Postgres
//! and two worker processes run them. One worker is killed (SIGKILL) in
//! the middle of a run; the other takes its runs over once it falls
//! silent, and resumes each after its last checkpointed stage: a stage
//! that completed is not run again, the one in flight is.
//!
//! ```text
//! eval "$(.ci/postgres start)"     # or DATABASE_URL=postgres://… of your own
//! cargo run --example fleet
//! ```

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use ndf::prelude::*;
use ndf::{Error, RunQueue, RunStatus};
use serde::{Deserialize, Serialize};

/// The queue the producer and its workers share: one per producer.
const QUEUE: &str = "NDF_FLEET_EXAMPLE_QUEUE";

/// This process's worker name, in a worker.
static WORKER: OnceLock<String> = OnceLock::new();

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    id: u64,
    amount_cents: u64,
}

fn say(order: &Order, stage: &str) {
    let worker = WORKER.get().map_or("?", String::as_str);
    println!("worker {worker}: order {} {stage}", order.id);
}

#[pattern(timeout = "10s")]
async fn reserve(o: Order) -> Order {
    say(&o, "reserve");
    tokio::time::sleep(Duration::from_millis(200)).await;
    o
}

#[pattern(timeout = "10s")]
async fn charge(o: Order) -> Order {
    say(&o, "charge");
    tokio::time::sleep(Duration::from_millis(800)).await;
    o
}

#[pattern(timeout = "10s")]
async fn ship(o: Order) -> String {
    say(&o, "ship");
    format!("order {} shipped ({} cents)", o.id, o.amount_cents)
}

fn runtime() -> Result<Ndf, Error> {
    let ndf = Ndf::builder().build()?;
    ndf.register_durable(sequential!(name = "orders.fulfil"; reserve => charge => ship))?;
    Ok(ndf)
}

async fn queue(ndf: &Ndf, url: &str, name: &str) -> Result<RunQueue, Error> {
    Ok(RunQueue::connect(ndf, url)
        .await?
        .named(name)
        .takeover_after(Duration::from_secs(3)))
}

/// A worker process: runs the queue's runs until its stdin closes.
async fn worker(name: String, url: &str) -> Result<(), Error> {
    WORKER.set(name.clone()).expect("set once");
    let queue_name = std::env::var(QUEUE).expect("started by the producer");
    let ndf = runtime()?;
    let queue = queue(&ndf, url, &queue_name).await?;
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
    };
    queue
        .worker()
        .name(format!("{name}-{}", std::process::id()))
        .concurrency(2)
        .run_until(stdin_closed)
        .await
}

/// A worker process, killed if the producer ends first.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts worker `name`; its lines come back on `lines`.
fn start_worker(name: &str, queue_name: &str, lines: &mpsc::Sender<String>) -> Worker {
    let mut child = Command::new(std::env::current_exe().expect("this example"))
        .args(["worker", name])
        .env(QUEUE, queue_name)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("a worker starts");
    let out = child.stdout.take().expect("piped");
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    Worker(child)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "set DATABASE_URL to a Postgres database (for a throwaway one: eval \"$(.ci/postgres start)\")"
        );
        std::process::exit(2);
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [role, name] = args.as_slice()
        && role == "worker"
    {
        return Ok(worker(name.clone(), &url).await?);
    }

    // The producer.
    let queue_name = format!("example.fleet.{}", std::process::id());
    let ndf = runtime()?;
    let queue = queue(&ndf, &url, &queue_name).await?;
    let ctx = PatternContext::new("orders");
    let mut runs = Vec::new();
    for id in 1..=6 {
        let order = Order {
            id,
            amount_cents: 1_000 * id,
        };
        runs.push(queue.enqueue("orders.fulfil", &order, &ctx).await?);
    }
    println!("producer: enqueued {} runs on `{queue_name}`", runs.len());

    let (tx, lines) = mpsc::channel();
    let mut a = start_worker("a", &queue_name, &tx);
    // Worker a starts alone: once it is charging, it is killed mid-run.
    let charging = loop {
        match lines.recv_timeout(Duration::from_mins(1)) {
            Ok(line) => {
                println!("{line}");
                if line.starts_with("worker a") && line.ends_with("charge") {
                    break Ok(());
                }
            }
            Err(e) => break Err(e),
        }
    };
    a.0.kill()?;
    a.0.wait()?;
    charging?;
    // What worker a said before it died.
    std::thread::sleep(Duration::from_millis(100));
    while let Ok(line) = lines.try_recv() {
        println!("{line}");
    }
    println!("producer: killed worker a (SIGKILL) while it was charging");
    let mut b = start_worker("b", &queue_name, &tx);

    let printer = std::thread::spawn(move || {
        while let Ok(line) = lines.recv() {
            println!("{line}");
        }
    });
    for id in &runs {
        let shipped: String = queue.wait(id, Duration::from_mins(2)).await?;
        let outcome = queue.outcome(id).await?.expect("enqueued here");
        assert_eq!(outcome.status, RunStatus::Succeeded);
        println!(
            "producer: {shipped}: ran by {}, started {} time(s)",
            outcome.worker.as_deref().unwrap_or("?"),
            outcome.attempts
        );
    }
    // Closing worker b's stdin stops it: it finishes what it holds.
    drop(b.0.stdin.take());
    b.0.wait()?;
    drop(tx);
    printer.join().expect("the printer ends");
    let _ = std::io::stdout().flush();
    Ok(())
}
