//! The embedded default store: one `SQLite` file (bundled `SQLite`, WAL).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::fleet::Membership;
use super::sqlite_fleet::CREATE_FLEET;
use super::{LearningStore, breaker_state, to_i64, to_u64};
use crate::error::{Error, StoreError};
use crate::model::{
    Evidence, MemberBreaker, PatternStats, RecentRun, StoredBreaker, StoredPoint, StoredStats,
    TimelinePoint,
};

/// The schema this build writes, and the newest it reads.
const SCHEMA_VERSION: i64 = 3;

const CREATE: &str = "
CREATE TABLE IF NOT EXISTS ndf_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ndf_learning (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    executions INTEGER NOT NULL,
    successes INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    fallbacks INTEGER NOT NULL,
    compensations INTEGER NOT NULL,
    compensation_failures INTEGER NOT NULL,
    degradations INTEGER NOT NULL,
    outliers INTEGER NOT NULL,
    held_back INTEGER NOT NULL,
    total_latency_ns INTEGER NOT NULL,
    evidence_successes REAL NOT NULL,
    evidence_failures REAL NOT NULL,
    evidence_samples INTEGER NOT NULL,
    PRIMARY KEY (pattern, domain)
);
CREATE TABLE IF NOT EXISTS ndf_recent_runs (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    latency_us INTEGER NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ndf_recent_runs_key ON ndf_recent_runs (pattern, domain);
CREATE TABLE IF NOT EXISTS ndf_timeline (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    executions INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    mean_ms REAL NOT NULL,
    p95_ms REAL NOT NULL,
    confidence REAL NOT NULL,
    refused INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ndf_timeline_at ON ndf_timeline (at_unix_ms);
CREATE TABLE IF NOT EXISTS ndf_gate (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    rejected INTEGER NOT NULL,
    breaker_state TEXT NOT NULL,
    breaker_evidence REAL NOT NULL,
    breaker_calls INTEGER NOT NULL,
    breaker_failures INTEGER NOT NULL,
    breaker_at_unix_ms INTEGER NOT NULL,
    PRIMARY KEY (pattern, domain)
);
";

/// How long a save waits for another runtime's save to the same file.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Brings an older file to the current schema, each step only if it is
/// missing: schema 2 added the gate table (created above) and the
/// timeline's `refused` column; schema 3 keeps latencies in nanoseconds.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_refused: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('ndf_timeline') WHERE name = 'refused'",
        [],
        |row| row.get(0),
    )?;
    if !has_refused {
        conn.execute_batch(
            "ALTER TABLE ndf_timeline ADD COLUMN refused INTEGER NOT NULL DEFAULT 0",
        )?;
    }
    let has_micros: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('ndf_learning') WHERE name = 'total_latency_us'",
        [],
        |row| row.get(0),
    )?;
    if has_micros {
        conn.execute_batch(
            "ALTER TABLE ndf_learning ADD COLUMN total_latency_ns INTEGER NOT NULL DEFAULT 0;
             UPDATE ndf_learning SET total_latency_ns = total_latency_us * 1000;
             ALTER TABLE ndf_learning DROP COLUMN total_latency_us;",
        )?;
    }
    conn.execute("UPDATE ndf_schema SET version = ?1", [SCHEMA_VERSION])?;
    Ok(())
}

/// Learning data in one `SQLite` file, written in write-ahead-log mode.
///
/// A save is one transaction: once [`LearningStore::save`] (and so
/// `Ndf::flush` or `Ndf::shutdown`) returns `Ok`, the rows survive the
/// process being killed. Opening a file written by a newer ndf, a corrupt
/// file or a file that is not a database is an [`Error::Store`] naming the
/// path; nothing is reset.
///
/// ```no_run
/// use ndf::prelude::*;
///
/// # fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().store(ndf::SqliteStore::open("ndf.db")?).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The file opened, to notice when it is deleted or replaced.
    file: Option<FileId>,
    /// This process among those sharing the file, and what it published
    /// of its breakers.
    member: Membership,
}

/// How much a save survives, `SQLite`'s `synchronous` setting (the store
/// always writes ahead, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL`, the default: an acknowledged save survives
    /// the process crashing or being killed; the last saves before a power
    /// loss or an operating system crash may be lost (the database stays
    /// consistent). One `fsync` per checkpoint, not per save.
    #[default]
    Normal,
    /// `synchronous = FULL`: an acknowledged save survives a power loss
    /// too, for an `fsync` per save.
    Full,
}

/// Which file a path named when the store opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(path: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    #[cfg(not(unix))]
    fn of(path: &Path) -> std::io::Result<Self> {
        std::fs::metadata(path).map(|_| Self {
            device: 0,
            inode: 0,
        })
    }
}

pub(super) fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("{}: {what}: {e}", path.display()), e)
}

impl SqliteStore {
    /// Opens (or creates) the store at `path`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] naming the path when the file cannot be opened or
    /// created, is not an ndf database, is corrupt, or was written by a
    /// newer version of ndf.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, Durability::Normal)
    }

    /// [`SqliteStore::open`] with the given [`Durability`].
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|e| sql_error(&path, "cannot open", e))?;
        // SQLite falls back to reading a file it may not write: that would
        // fail at the first save, long after the cause.
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::new(format!(
                "{}: is read-only: the store saves what the runtime learns, so it needs write access to the file and its directory",
                path.display()
            ))
            .into());
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql_error(&path, "is not a usable SQLite database", e))?;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(|e| sql_error(&path, "cannot set synchronous mode", e))?;
        // Runtimes sharing the file take turns: a writer waits for another's
        // transaction instead of failing with `database is locked`.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_error(&path, "cannot set the busy timeout", e))?;
        conn.execute_batch(CREATE)
            .and_then(|()| conn.execute_batch(CREATE_FLEET))
            .map_err(|e| sql_error(&path, "cannot create the ndf tables", e))?;
        let version: Option<i64> = conn
            .query_row("SELECT MAX(version) FROM ndf_schema", [], |row| row.get(0))
            .optional()
            .map_err(|e| sql_error(&path, "cannot read the schema version", e))?
            .flatten();
        match version {
            None => {
                conn.execute(
                    "INSERT INTO ndf_schema (version) VALUES (?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(|e| sql_error(&path, "cannot write the schema version", e))?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::new(format!(
                    "{}: written by a newer ndf (schema version {v}; this build reads up to {SCHEMA_VERSION}); it was left untouched",
                    path.display()
                ))
                .into());
            }
            Some(v) if v < SCHEMA_VERSION => {
                migrate(&conn).map_err(|e| {
                    sql_error(
                        &path,
                        &format!("cannot migrate from schema version {v} to {SCHEMA_VERSION}"),
                        e,
                    )
                })?;
            }
            Some(_) => {}
        }
        let integrity: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|e| sql_error(&path, "cannot check integrity", e))?;
        if integrity != "ok" {
            return Err(StoreError::new(format!(
                "{}: the database is corrupt: {integrity}",
                path.display()
            ))
            .into());
        }
        let file = FileId::of(&path).ok();
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            file,
            member: Membership::new(),
        })
    }

    /// The id under which this process publishes its breakers' evidence
    /// (unique per store opened).
    #[must_use]
    pub fn member(&self) -> &str {
        self.member.id()
    }

    pub(super) fn conn(&self) -> &Mutex<Connection> {
        &self.conn
    }

    /// The file the store lives in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store's [`Durability`], as `SQLite` reports it.
    #[must_use]
    pub fn durability(&self) -> Durability {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let level: i64 = conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap_or(1);
        if level >= 2 {
            Durability::Full
        } else {
            Durability::Normal
        }
    }

    /// An error when the file the store opened was deleted or replaced:
    /// `SQLite` would go on writing to the deleted file, and every save would
    /// succeed into nothing.
    fn check_file(&self) -> Result<(), StoreError> {
        let Some(opened) = self.file else {
            return Ok(());
        };
        match FileId::of(&self.path) {
            Ok(now) if now == opened => Ok(()),
            Ok(_) => Err(StoreError::new(format!(
                "{}: the database file was replaced while the store had it open; what was learned is kept in memory (reopen the store to save to the new file)",
                self.path.display()
            ))),
            Err(e) => Err(StoreError::new(format!(
                "{}: the database file is gone ({e}); what was learned is kept in memory and nothing was saved",
                self.path.display()
            ))),
        }
    }
}

impl LearningStore for SqliteStore {
    fn load(&self) -> Result<Vec<StoredStats>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut stmt = conn
            .prepare(
                "SELECT pattern, domain, executions, successes, failures, retries, fallbacks, compensations,
                        compensation_failures, degradations, outliers, held_back, total_latency_ns,
                        evidence_successes, evidence_failures, evidence_samples
                 FROM ndf_learning ORDER BY pattern, domain",
            )
            .map_err(|e| sql_error(&self.path, "cannot read learning data", e))?;
        let rows = stmt
            .query_map([], |r| {
                let stats = PatternStats {
                    executions: to_u64(r.get(2)?),
                    successes: to_u64(r.get(3)?),
                    failures: to_u64(r.get(4)?),
                    retries: to_u64(r.get(5)?),
                    fallbacks: to_u64(r.get(6)?),
                    compensations: to_u64(r.get(7)?),
                    compensation_failures: to_u64(r.get(8)?),
                    degradations: to_u64(r.get(9)?),
                    outliers: to_u64(r.get(10)?),
                    held_back: to_u64(r.get(11)?),
                    rejected: 0,
                    total_latency_ns: to_u64(r.get(12)?),
                };
                Ok(StoredStats {
                    pattern: r.get(0)?,
                    domain: r.get(1)?,
                    stats,
                    added: PatternStats::default(),
                    evidence: Evidence {
                        successes: r.get(13)?,
                        failures: r.get(14)?,
                        samples: to_u64(r.get(15)?),
                    },
                    breaker: StoredBreaker::default(),
                    recent: Vec::new(),
                })
            })
            .map_err(|e| sql_error(&self.path, "cannot read learning data", e))?;
        let mut rows = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| sql_error(&self.path, "cannot read learning data", e))?;
        let mut gate = conn
            .prepare(
                "SELECT rejected, breaker_state, breaker_evidence, breaker_calls, breaker_failures,
                        breaker_at_unix_ms
                 FROM ndf_gate WHERE pattern = ?1 AND domain = ?2",
            )
            .map_err(|e| sql_error(&self.path, "cannot read the gates", e))?;
        for row in &mut rows {
            let found = gate
                .query_row(params![row.pattern, row.domain], |r| {
                    let state: String = r.get(1)?;
                    Ok((
                        to_u64(r.get(0)?),
                        // The evidence comes back through `load_fleet`:
                        // each process's own, this one's previous life's
                        // among them.
                        StoredBreaker {
                            state: breaker_state(&state),
                            at_unix_ms: to_u64(r.get(5)?),
                            ..StoredBreaker::default()
                        },
                    ))
                })
                .optional()
                .map_err(|e| sql_error(&self.path, "cannot read the gates", e))?;
            if let Some((rejected, breaker)) = found {
                row.stats.rejected = rejected;
                row.breaker = breaker;
            }
        }
        let mut recent = conn
            .prepare(
                "SELECT at_unix_ms, latency_us, ok FROM ndf_recent_runs
                 WHERE pattern = ?1 AND domain = ?2 ORDER BY at_unix_ms, rowid",
            )
            .map_err(|e| sql_error(&self.path, "cannot read recent runs", e))?;
        for row in &mut rows {
            row.recent = recent
                .query_map(params![row.pattern, row.domain], |r| {
                    Ok(RecentRun {
                        at_unix_ms: to_u64(r.get(0)?),
                        latency_us: to_u64(r.get(1)?),
                        ok: r.get(2)?,
                    })
                })
                .and_then(Iterator::collect)
                .map_err(|e| sql_error(&self.path, "cannot read recent runs", e))?;
        }
        Ok(rows)
    }

    fn save(&self, rows: &[StoredStats]) -> Result<(), StoreError> {
        self.check_file()?;
        self.member.save(rows, |plan| {
            let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn
                .transaction()
                .map_err(|e| sql_error(&self.path, "cannot begin a transaction", e))?;
            self.save_counts(&tx, rows)?;
            self.save_gates(&tx, rows)?;
            self.save_recent(&tx, rows)?;
            self.publish(&tx, plan)?;
            tx.commit()
                .map_err(|e| sql_error(&self.path, "cannot commit learning data", e))
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn load_fleet(&self) -> Result<Vec<MemberBreaker>, StoreError> {
        self.others()
    }

    fn load_timeline(&self, since_unix_ms: u64) -> Result<Vec<StoredPoint>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let read = |e| sql_error(&self.path, "cannot read the timeline", e);
        let mut stmt = conn
            .prepare(
                "SELECT pattern, domain, at_unix_ms, executions, failures, mean_ms, p95_ms, confidence,
                        refused
                 FROM ndf_timeline WHERE at_unix_ms >= ?1 ORDER BY at_unix_ms, rowid",
            )
            .map_err(read)?;
        stmt.query_map([to_i64(since_unix_ms)], |r| {
            Ok(StoredPoint {
                pattern: r.get(0)?,
                domain: r.get(1)?,
                point: TimelinePoint {
                    at_unix_ms: to_u64(r.get(2)?),
                    executions: to_u64(r.get(3)?),
                    failures: to_u64(r.get(4)?),
                    mean_ms: r.get(5)?,
                    p95_ms: r.get(6)?,
                    confidence: r.get(7)?,
                    refused: to_u64(r.get(8)?),
                },
            })
        })
        .and_then(Iterator::collect)
        .map_err(read)
    }

    fn save_timeline(
        &self,
        points: &[StoredPoint],
        retain_since_unix_ms: u64,
    ) -> Result<(), StoreError> {
        self.check_file()?;
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let write = |e| sql_error(&self.path, "cannot write the timeline", e);
        let tx = conn.transaction().map_err(write)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO ndf_timeline VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(write)?;
            for p in points {
                let t = &p.point;
                add.execute(params![
                    p.pattern,
                    p.domain,
                    to_i64(t.at_unix_ms),
                    to_i64(t.executions),
                    to_i64(t.failures),
                    t.mean_ms,
                    t.p95_ms,
                    t.confidence,
                    to_i64(t.refused),
                ])
                .map_err(write)?;
            }
            tx.execute(
                "DELETE FROM ndf_timeline WHERE at_unix_ms < ?1",
                [to_i64(retain_since_unix_ms)],
            )
            .map_err(write)?;
        }
        tx.commit().map_err(write)
    }

    fn close(&self) -> Result<(), StoreError> {
        self.check_file()?;
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| sql_error(&self.path, "cannot checkpoint the write-ahead log", e))
    }
}
