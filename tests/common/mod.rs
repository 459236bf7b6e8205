//! Helpers shared by the behaviour tests.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

pub mod ledger;

/// A log that steps append to, passed through a workflow as (part of) its
/// input, so that each test sees only its own events.
#[derive(Clone, Default, Debug)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, event: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }
}

/// A writer that keeps what a tracing subscriber writes, for a test to read.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `fmt` subscriber at INFO, without colours, writing into the returned
/// [`Captured`], set as this thread's default until the guard is dropped.
/// Tests that use it are the only test of their binary: tracing caches
/// each callsite's interest process-wide.
pub fn capture_at_info() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Asserts that `err` is `Error::ResourceExhausted` with this resource,
/// usage and limit.
#[track_caller]
pub fn assert_exhausted(err: ndf::Error, expected: (&str, f64, f64)) {
    match err {
        ndf::Error::ResourceExhausted {
            resource,
            usage,
            limit,
            ..
        } => assert_eq!((resource.as_str(), usage, limit), expected),
        other => panic!("expected ResourceExhausted, got {other:?}"),
    }
}

/// Asserts that `err` is `Error::InsufficientSuccess` with these
/// (succeeded, tasks, required), its source saying `cause`.
#[track_caller]
pub fn assert_insufficient(err: &ndf::Error, counts: (usize, usize, usize), cause: &str) {
    match err {
        ndf::Error::InsufficientSuccess {
            succeeded,
            tasks,
            required,
            source,
            ..
        } => {
            assert_eq!((*succeeded, *tasks, *required), counts);
            assert!(source.to_string().contains(cause), "{source}");
        }
        other => panic!("expected InsufficientSuccess, got {other:?}"),
    }
}

/// A probe that reads a busy CPU (0.95) until `idle_at`, then an idle one
/// (0.2); memory at 0.4 throughout.
pub struct BusyUntil {
    pub idle_at: tokio::time::Instant,
}

impl ndf::ResourceProbe for BusyUntil {
    fn sample(&self) -> ndf::ResourceUsage {
        let cpu = if tokio::time::Instant::now() < self.idle_at {
            0.95
        } else {
            0.2
        };
        ndf::ResourceUsage { cpu, memory: 0.4 }
    }
}

/// A runtime with `config` whose machine is busy until `idle_at`
/// ([`BusyUntil`]).
pub fn busy_until(config: ndf::Config, idle_at: tokio::time::Instant) -> ndf::Ndf {
    ndf::Ndf::builder()
        .config(config)
        .resource_probe(BusyUntil { idle_at })
        .build()
        .expect("a valid configuration")
}

/// A current-thread tokio runtime with its clock and I/O on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// A current-thread tokio runtime whose clock starts paused: waits end at
/// once, in order, when nothing else is ready.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

pub fn ndf() -> ndf::Ndf {
    ndf::Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .expect("default config is valid")
}

/// [`ndf`] without background tasks, for tests that count what runs alone
/// allocate or log: the learner's batches (a blocking task every
/// `learning_interval` while runs end), the timeline's points and the
/// saves are the runtime's, and would fall in the runs' counts at times
/// of the scheduler's choosing.
pub fn ndf_alone() -> ndf::Ndf {
    ndf::Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .background_tasks(false)
        .build()
        .expect("default config is valid")
}

/// A plain HTTP/1.1 GET of `path` on `addr`: the status code and the body.
/// Blocking: call it from a blocking task in async tests.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    http_get_with(addr, path, &[])
}

/// A GET of `path` with these extra headers: its status and body.
pub fn http_get_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let extra: String = headers
        .iter()
        .flat_map(|(name, value)| [*name, ": ", *value, "\r\n"])
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {response:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

/// The `PostgreSQL` server of the store and fleet tests: `DATABASE_URL`
/// when it is set (`.ci/run` sets it), otherwise the throwaway cluster of
/// `.ci/postgres start`, started on first use (Debian's `postgresql`,
/// installed if missing, on 127.0.0.1:54329; `.ci/postgres stop` removes
/// it). No server is an error that says so, never a skipped test.
pub fn database_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            return url;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/postgres");
        let out = std::process::Command::new(script)
            .arg("start")
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| {
                panic!("the Postgres tests need a server: cannot run {script}: {e}")
            });
        let printed = String::from_utf8_lossy(&out.stdout);
        let url = printed
            .trim()
            .strip_prefix("export DATABASE_URL=")
            .filter(|_| out.status.success())
            .unwrap_or_else(|| {
                panic!(
                    "the Postgres tests need a server: set DATABASE_URL, or fix what \
                     `{script} start` reported above ({})",
                    out.status
                )
            });
        url.to_owned()
    })
    .clone()
}

/// Runs SQL statements on the test server (to set a scene or inspect it).
pub fn psql(sql: &str) {
    let sql = sql.to_owned();
    let url = database_url();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach the test server at {url}: {e}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            });
    })
    .join()
    .unwrap();
}

/// A schema of the test server of its own, emptied: `name` plus the
/// process id, so that test binaries and processes never share one by
/// accident.
pub fn fresh_schema(name: &str) -> String {
    let schema = format!("{name}_{}", std::process::id());
    psql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
    schema
}
