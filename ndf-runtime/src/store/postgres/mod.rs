//! Learning shared by a fleet on a `PostgreSQL` server (cargo feature
//! `postgres`), through sqlx.

mod rows;
mod schema;

use std::future::Future;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::LearningStore;
use crate::error::{Error, StoreError};
use crate::model::{MemberBreaker, StoredPoint, StoredStats};
use crate::store::fleet::Membership;

/// What a failed save says: nothing is lost.
const SAVE_FAILED: &str =
    "cannot save learning data (what was learned is kept in memory and saved again later)";

/// How long one load or save may take, connecting included, by default.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Learning data in a `PostgreSQL` database, shared by every process that
/// opens it: replicas add what they learn, they never overwrite each other.
///
/// A save is one transaction of batched upserts (one statement per table
/// for all rows, over `UNNEST`ed arrays). The counts a process `added`
/// since its last acknowledged save are added to the database's
/// (commutative, so saves may interleave in any order); the confidence
/// evidence and the breaker, weighted by forgetting rather than counted,
/// are the last writer's. When the server cannot be reached or does not
/// answer within the store's timeout, the save is an [`Error::Store`]
/// naming the server, the runtime keeps learning in memory, and the next
/// save (the background flush, or [`crate::Ndf::flush`]) writes everything
/// still pending: nothing acknowledged is lost, nothing is counted twice
/// for a save that failed before its commit.
///
/// The store creates its tables (named `ndf_*`) in its schema and records
/// their version in `ndf_schema`: a database written by a newer ndf, or
/// whose `ndf_*` tables belong to something else, is refused with an error
/// naming it, and never reset.
///
/// sqlx's I/O runs on the store's own small tokio runtime (one thread,
/// `ndf-postgres`), so the store works whether or not it is called from
/// inside a runtime. TLS is sqlx's: enable one of its `tls-*` features in
/// your `Cargo.toml` and put `sslmode=require` in the URL.
///
/// ```no_run
/// # fn main() -> Result<(), ndf::Error> {
/// let store = ndf::PostgresStore::builder("postgres://app@db.internal/app")
///     .schema("ndf")
///     .connect()?;
/// let ndf = ndf::Ndf::builder().store(store).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// `user@host:port/database`, never the password.
    server: String,
    timeout: Duration,
    /// This process among those sharing the database.
    member: Membership,
    io: Io,
}

/// How a [`PostgresStore`] connects: [`PostgresStore::builder`].
#[derive(Debug, Clone)]
pub struct PostgresStoreBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    timeout: Duration,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// with the defaults of [`PostgresStore::builder`].
    ///
    /// # Errors
    ///
    /// As [`PostgresStoreBuilder::connect`].
    pub fn connect(url: &str) -> Result<Self, Error> {
        Self::builder(url).connect()
    }

    /// A store at `url`, to configure before [`PostgresStoreBuilder::connect`]:
    /// the tables go in the connection's default schema (`public`), through
    /// a pool of at most 4 connections, and a load or save that takes more
    /// than 10 s fails.
    #[must_use]
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            url: url.to_owned(),
            schema: None,
            max_connections: 4,
            timeout: TIMEOUT,
        }
    }

    /// `user@host:port/database` of the server, as errors name it.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The id under which this process publishes its breakers' evidence
    /// (unique per store opened).
    #[must_use]
    pub fn member(&self) -> &str {
        self.member.id()
    }

    /// Runs `work` with the pool on the store's runtime, within the
    /// store's timeout.
    fn run<T, F>(&self, what: &str, work: impl FnOnce(PgPool) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        let future = work(self.pool.clone());
        self.io
            .block_on(self.timeout, future)
            .map_err(|failure| failure.into_store_error(&self.server, what, self.timeout))
    }
}

impl PostgresStoreBuilder {
    /// Puts the store's tables in this schema, created when missing (an
    /// identifier: lowercase letters, digits and `_`, not starting with a
    /// digit, at most 63 characters). Processes that should learn together
    /// name the same schema.
    #[must_use]
    pub fn schema(mut self, schema: &str) -> Self {
        self.schema = Some(schema.to_owned());
        self
    }

    /// At most this many connections (at least 1; default 4). Saves never
    /// overlap, so a few are plenty.
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// How long one load or save may take, waiting for a connection
    /// included, before it fails (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connects, then creates the store's tables or checks the ones there.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] naming what is wrong: a URL that is not a Postgres
    /// URL, a schema name that is not a plain identifier, a server that
    /// cannot be reached or refuses the login, a database whose `ndf_*`
    /// tables were not created by ndf or were written by a newer ndf.
    pub fn connect(self) -> Result<PostgresStore, Error> {
        let scheme = self.url.split_once("://").map(|(scheme, _)| scheme);
        if !matches!(scheme, Some("postgres" | "postgresql")) {
            return Err(StoreError::new(format!(
                "`{}` is not a PostgreSQL URL; expected postgres://user:password@host:port/database",
                redact_url(&self.url)
            ))
            .into());
        }
        let options = PgConnectOptions::from_str(&self.url).map_err(|e| {
            StoreError::new(format!(
                "`{}` is not a PostgreSQL URL ({e}); expected postgres://user:password@host:port/database",
                redact_url(&self.url)
            ))
        })?;
        let server = format!(
            "postgres {}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username()),
        );
        let options = match &self.schema {
            Some(name) => {
                schema::check_name(name).map_err(|e| StoreError::new(format!("{server}: {e}")))?;
                options.options([("search_path", name.as_str())])
            }
            None => options,
        };
        let io = Io::start().map_err(|e| {
            StoreError::with_source(format!("{server}: cannot start the store's I/O thread"), e)
        })?;
        let pool = {
            let _entered = io.enter();
            PgPoolOptions::new()
                .max_connections(self.max_connections)
                .acquire_timeout(self.timeout)
                .connect_lazy_with(options)
        };
        let store = PostgresStore {
            pool,
            server,
            timeout: self.timeout,
            member: Membership::new(),
            io,
        };
        let name = self.schema.clone();
        store.run("cannot open the store", move |pool| async move {
            schema::prepare(&pool, name.as_deref()).await
        })?;
        Ok(store)
    }
}

impl LearningStore for PostgresStore {
    fn load(&self) -> Result<Vec<StoredStats>, StoreError> {
        self.run("cannot read learning data", |pool| async move {
            rows::load(&pool).await
        })
    }

    fn save(&self, rows: &[StoredStats]) -> Result<(), StoreError> {
        self.member.save(rows, |plan| {
            let batch = rows::Batch::of(rows, self.member.id(), plan);
            self.run(
                SAVE_FAILED,
                move |pool| async move { batch.save(&pool).await },
            )
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn load_fleet(&self) -> Result<Vec<MemberBreaker>, StoreError> {
        let member = self.member.id().to_owned();
        self.run("cannot read the fleet's evidence", move |pool| async move {
            rows::load_fleet(&pool, &member).await
        })
    }

    fn load_timeline(&self, since_unix_ms: u64) -> Result<Vec<StoredPoint>, StoreError> {
        self.run("cannot read the timeline", move |pool| async move {
            rows::load_timeline(&pool, since_unix_ms).await
        })
    }

    fn save_timeline(
        &self,
        points: &[StoredPoint],
        retain_since_unix_ms: u64,
    ) -> Result<(), StoreError> {
        let points = rows::Points::of(points);
        self.run(
            "cannot save the timeline (its points are kept in memory and saved again later)",
            move |pool| async move { points.save(&pool, retain_since_unix_ms).await },
        )
    }
}

/// The URL without its password, for an error message.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((login, host)) => match login.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The store's own tokio runtime: one worker thread that runs sqlx.
#[derive(Debug)]
struct Io {
    runtime: Option<tokio::runtime::Runtime>,
}

/// Why a load or save did not finish.
#[derive(Debug)]
enum Failure {
    Sql(sqlx::Error),
    /// The database is not one the store may write.
    Refused(String),
    TimedOut,
    Stopped,
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Sql(e)
    }
}

impl Failure {
    fn into_store_error(self, server: &str, what: &str, timeout: Duration) -> StoreError {
        match self {
            Failure::Sql(e) => StoreError::new(format!("{server}: {what}: {}", describe(&e))),
            Failure::Refused(why) => StoreError::new(format!("{server}: {why}")),
            Failure::TimedOut => StoreError::new(format!(
                "{server}: {what}: no answer within {}",
                humantime::format_duration(timeout)
            )),
            Failure::Stopped => {
                StoreError::new(format!("{server}: {what}: the store's I/O thread stopped"))
            }
        }
    }
}

/// sqlx's error in words a user acts on.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => {
            "cannot connect: the server did not accept a connection in time (is it running, and is the URL's host and port right?)".to_owned()
        }
        sqlx::Error::Io(io) => format!("cannot reach the server: {io}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => format!("the server refused the login: {db}"),
            Some("3D000") => format!("no such database: {db}"),
            _ => db.to_string(),
        },
        other => other.to_string(),
    }
}

impl Io {
    fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ndf-postgres")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.runtime.as_ref().map(tokio::runtime::Runtime::enter)
    }

    /// Runs `future` on the store's runtime and waits for it on this
    /// thread (a plain channel: no runtime context is needed or disturbed).
    fn block_on<T: Send + 'static>(
        &self,
        timeout: Duration,
        future: impl Future<Output = Result<T, Failure>> + Send + 'static,
    ) -> Result<T, Failure> {
        let Some(runtime) = &self.runtime else {
            return Err(Failure::Stopped);
        };
        let (done, outcome) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = match tokio::time::timeout(timeout, future).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Failure::TimedOut),
            };
            let _ = done.send(result);
        });
        outcome.recv().unwrap_or(Err(Failure::Stopped))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Say goodbye to the server on the store's runtime (sqlx's closing
        // needs one), briefly: a server that is gone does not hold us up.
        let pool = self.pool.clone();
        let _ = self.io.block_on(Duration::from_secs(1), async move {
            pool.close().await;
            Ok(())
        });
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another
        // runtime: let its thread wind down on its own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
