//! The store's tables: created once, versioned in `ndf_schema`, never
//! reset.

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row as _};

use super::Failure;

/// The schema this build writes, and the newest it reads.
pub(super) const SCHEMA_VERSION: i32 = 1;

/// The tables the store owns.
const TABLES: [&str; 5] = [
    "ndf_schema",
    "ndf_learning",
    "ndf_recent_runs",
    "ndf_timeline",
    "ndf_fleet",
];

const CREATE: &str = "
CREATE TABLE ndf_schema (version INTEGER NOT NULL);
CREATE TABLE ndf_learning (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    executions BIGINT NOT NULL,
    successes BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    fallbacks BIGINT NOT NULL,
    compensations BIGINT NOT NULL,
    compensation_failures BIGINT NOT NULL,
    degradations BIGINT NOT NULL,
    outliers BIGINT NOT NULL,
    held_back BIGINT NOT NULL,
    total_latency_ns BIGINT NOT NULL,
    evidence_successes DOUBLE PRECISION NOT NULL,
    evidence_failures DOUBLE PRECISION NOT NULL,
    evidence_samples BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    breaker_state TEXT NOT NULL,
    breaker_at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (pattern, domain)
);
CREATE TABLE ndf_recent_runs (
    id BIGSERIAL PRIMARY KEY,
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    ok BOOLEAN NOT NULL
);
CREATE INDEX ndf_recent_runs_key ON ndf_recent_runs (pattern, domain, at_unix_ms);
CREATE TABLE ndf_timeline (
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    executions BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    mean_ms DOUBLE PRECISION NOT NULL,
    p95_ms DOUBLE PRECISION NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    refused BIGINT NOT NULL
);
CREATE INDEX ndf_timeline_at ON ndf_timeline (at_unix_ms);
CREATE TABLE ndf_fleet (
    member TEXT NOT NULL,
    pattern TEXT NOT NULL,
    domain TEXT NOT NULL,
    evidence DOUBLE PRECISION NOT NULL,
    calls BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (member, pattern, domain)
);
";

/// An error when `name` is not a schema name the store can put in SQL as
/// it is (it cannot be a bind parameter).
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if name.starts_with("pg_") {
        Err(format!(
            "schema `{name}` starts with `pg_`, which PostgreSQL reserves for its own schemas"
        ))
    } else if starts_well && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(format!(
            "schema `{name}` is not a plain identifier: use lowercase letters, digits and `_`, not starting with a digit, at most 63 characters"
        ))
    }
}

/// Creates the tables, or checks the ones there, in one transaction that
/// holds an advisory lock: processes starting together create them once.
pub(super) async fn prepare(pool: &PgPool, schema: Option<&str>) -> Result<(), Failure> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ndf.schema:' || $1))")
        .bind(schema.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
    if let Some(schema) = schema {
        // `check_name` let only an identifier through.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut *tx)
        .await?;
    }
    let present: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name = ANY($1)",
    )
    .bind(TABLES.as_slice())
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| row.try_get(0))
    .collect::<Result<_, _>>()?;
    let ours = present.iter().any(|t| t == "ndf_schema");
    if !ours && !present.is_empty() {
        return Err(Failure::Refused(format!(
            "the database already has table(s) {} that ndf did not create (there is no ndf_schema table): they look like another application's, and were left untouched; give ndf a schema of its own with PostgresStore::builder(url).schema(\"ndf\")",
            present.join(", ")
        )));
    }
    if ours {
        let version: Option<i32> = sqlx::query("SELECT MAX(version) FROM ndf_schema")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        match version {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Failure::Refused(format!(
                    "written by a newer ndf (schema version {v}; this build reads up to {SCHEMA_VERSION}); it was left untouched"
                )));
            }
            Some(_) => {}
            None => {
                sqlx::query("INSERT INTO ndf_schema (version) VALUES ($1)")
                    .bind(SCHEMA_VERSION)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let missing: Vec<&str> = TABLES
            .iter()
            .copied()
            .filter(|t| !present.iter().any(|p| p == t))
            .collect();
        if !missing.is_empty() {
            return Err(Failure::Refused(format!(
                "the ndf tables are incomplete (missing {}); they were left untouched",
                missing.join(", ")
            )));
        }
    } else {
        sqlx::raw_sql(CREATE).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO ndf_schema (version) VALUES ($1)")
            .bind(SCHEMA_VERSION)
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx.commit().await?)
}
