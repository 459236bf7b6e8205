//! Loading and saving rows: each save is one transaction of one batched
//! statement per table, its rows passed as arrays and `UNNEST`ed.

use std::collections::HashMap;

use sqlx::Row as _;
use sqlx::postgres::PgPool;

use super::Failure;
use crate::model::{
    Evidence, MemberBreaker, PatternStats, RecentRun, StoredBreaker, StoredPoint, StoredStats,
    TimelinePoint,
};
use crate::store::fleet::Plan;
use crate::store::{breaker_state, to_i64, to_u64};

/// Adds the counts a process added since its last acknowledged save; the
/// confidence evidence and the breaker's state are the last writer's.
const SAVE_COUNTS: &str = "
INSERT INTO ndf_learning AS l (pattern, domain, executions, successes, failures, retries,
    fallbacks, compensations, compensation_failures, degradations, outliers, held_back,
    total_latency_ns, evidence_successes, evidence_failures, evidence_samples, rejected,
    breaker_state, breaker_at_unix_ms)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
    $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[],
    $14::float8[], $15::float8[], $16::int8[], $17::int8[], $18::text[], $19::int8[])
ON CONFLICT (pattern, domain) DO UPDATE SET
    executions = l.executions + excluded.executions,
    successes = l.successes + excluded.successes,
    failures = l.failures + excluded.failures,
    retries = l.retries + excluded.retries,
    fallbacks = l.fallbacks + excluded.fallbacks,
    compensations = l.compensations + excluded.compensations,
    compensation_failures = l.compensation_failures + excluded.compensation_failures,
    degradations = l.degradations + excluded.degradations,
    outliers = l.outliers + excluded.outliers,
    held_back = l.held_back + excluded.held_back,
    total_latency_ns = l.total_latency_ns + excluded.total_latency_ns,
    evidence_successes = excluded.evidence_successes,
    evidence_failures = excluded.evidence_failures,
    evidence_samples = excluded.evidence_samples,
    rejected = l.rejected + excluded.rejected,
    breaker_state = excluded.breaker_state,
    breaker_at_unix_ms = excluded.breaker_at_unix_ms";

/// This process's own breaker evidence, replacing what it published
/// before; rows no process has touched for a day are dropped (their
/// evidence has long faded).
const PUBLISH: &str = "
INSERT INTO ndf_fleet AS f (member, pattern, domain, evidence, calls, failures, at_unix_ms)
SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::float8[], $5::int8[], $6::int8[], $7::int8[])
ON CONFLICT (member, pattern, domain) DO UPDATE SET
    evidence = excluded.evidence,
    calls = excluded.calls,
    failures = excluded.failures,
    at_unix_ms = excluded.at_unix_ms";

/// This process's evidence that went back to zero: nothing to add.
const RETRACT: &str = "
DELETE FROM ndf_fleet f USING UNNEST($2::text[], $3::text[]) AS k(pattern, domain)
WHERE f.member = $1 AND f.pattern = k.pattern AND f.domain = k.domain";

/// Drops what no process has touched for a day (its evidence has long
/// faded): run at most once an hour.
pub(super) const FORGET_MEMBERS: &str = "DELETE FROM ndf_fleet WHERE at_unix_ms < $1";

const ADD_RECENT: &str = "
INSERT INTO ndf_recent_runs (pattern, domain, at_unix_ms, latency_us, ok)
SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::bool[])";

/// Keeps the newest `keep` recent runs of each (pattern, domain) given.
const TRIM_RECENT: &str = "
DELETE FROM ndf_recent_runs r USING (
    SELECT ranked.id FROM (
        SELECT rr.id, k.keep,
               row_number() OVER (PARTITION BY rr.pattern, rr.domain
                                  ORDER BY rr.at_unix_ms DESC, rr.id DESC) AS n
        FROM ndf_recent_runs rr
        JOIN UNNEST($1::text[], $2::text[], $3::int8[]) AS k(pattern, domain, keep)
          ON rr.pattern = k.pattern AND rr.domain = k.domain
    ) ranked WHERE ranked.n > ranked.keep
) old WHERE r.id = old.id";

const LOAD: &str = "
SELECT pattern, domain, executions, successes, failures, retries, fallbacks, compensations,
       compensation_failures, degradations, outliers, held_back, total_latency_ns,
       evidence_successes, evidence_failures, evidence_samples, rejected, breaker_state,
       breaker_at_unix_ms
FROM ndf_learning ORDER BY pattern, domain";

const LOAD_RECENT: &str = "
SELECT pattern, domain, at_unix_ms, latency_us, ok FROM ndf_recent_runs
ORDER BY pattern, domain, at_unix_ms, id";

const ADD_POINTS: &str = "
INSERT INTO ndf_timeline
SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[],
    $6::float8[], $7::float8[], $8::float8[], $9::int8[])";

/// The breaker evidence every process but `member` published.
pub(super) async fn load_fleet(pool: &PgPool, member: &str) -> Result<Vec<MemberBreaker>, Failure> {
    let rows = sqlx::query(
        "SELECT member, pattern, domain, evidence, calls, failures, at_unix_ms
         FROM ndf_fleet WHERE member <> $1",
    )
    .bind(member)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok::<_, sqlx::Error>(MemberBreaker {
            member: r.try_get(0)?,
            pattern: r.try_get(1)?,
            domain: r.try_get(2)?,
            breaker: StoredBreaker {
                evidence: r.try_get(3)?,
                calls: to_u64(r.try_get(4)?),
                failures: u32::try_from(to_u64(r.try_get(5)?)).unwrap_or(u32::MAX),
                at_unix_ms: to_u64(r.try_get(6)?),
                ..StoredBreaker::default()
            },
        })
    })
    .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Everything stored, each row with its gate and recent runs. The
/// breaker's evidence is left at zero: in a fleet each process's own is in
/// `ndf_fleet`, and comes back through [`load_fleet`] (a restarted process
/// is a new member, its previous life one of the others).
pub(super) async fn load(pool: &PgPool) -> Result<Vec<StoredStats>, Failure> {
    let mut conn = pool.acquire().await?;
    let mut rows: Vec<StoredStats> = sqlx::query(LOAD)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let count = |i: usize| r.try_get::<i64, _>(i).map(to_u64);
            let state: String = r.try_get(17)?;
            Ok::<_, sqlx::Error>(StoredStats {
                pattern: r.try_get(0)?,
                domain: r.try_get(1)?,
                stats: PatternStats {
                    executions: count(2)?,
                    successes: count(3)?,
                    failures: count(4)?,
                    retries: count(5)?,
                    fallbacks: count(6)?,
                    compensations: count(7)?,
                    compensation_failures: count(8)?,
                    degradations: count(9)?,
                    outliers: count(10)?,
                    held_back: count(11)?,
                    rejected: count(16)?,
                    total_latency_ns: count(12)?,
                },
                added: PatternStats::default(),
                evidence: Evidence {
                    successes: r.try_get(13)?,
                    failures: r.try_get(14)?,
                    samples: count(15)?,
                },
                breaker: StoredBreaker {
                    state: breaker_state(&state),
                    at_unix_ms: count(18)?,
                    ..StoredBreaker::default()
                },
                recent: Vec::new(),
            })
        })
        .collect::<Result<_, _>>()?;
    let mut recent: HashMap<(String, String), Vec<RecentRun>> = HashMap::new();
    for r in sqlx::query(LOAD_RECENT).fetch_all(&mut *conn).await? {
        recent
            .entry((r.try_get(0)?, r.try_get(1)?))
            .or_default()
            .push(RecentRun {
                at_unix_ms: to_u64(r.try_get(2)?),
                latency_us: to_u64(r.try_get(3)?),
                ok: r.try_get(4)?,
            });
    }
    for row in &mut rows {
        if let Some(runs) = recent.remove(&(row.pattern.clone(), row.domain.clone())) {
            row.recent = runs;
        }
    }
    Ok(rows)
}

/// The timeline points at or after `since_unix_ms`, oldest first.
pub(super) async fn load_timeline(
    pool: &PgPool,
    since_unix_ms: u64,
) -> Result<Vec<StoredPoint>, Failure> {
    let points = sqlx::query(
        "SELECT pattern, domain, at_unix_ms, executions, failures, mean_ms, p95_ms, confidence,
                refused
         FROM ndf_timeline WHERE at_unix_ms >= $1 ORDER BY at_unix_ms",
    )
    .bind(to_i64(since_unix_ms))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok::<_, sqlx::Error>(StoredPoint {
            pattern: r.try_get(0)?,
            domain: r.try_get(1)?,
            point: TimelinePoint {
                at_unix_ms: to_u64(r.try_get(2)?),
                executions: to_u64(r.try_get(3)?),
                failures: to_u64(r.try_get(4)?),
                mean_ms: r.try_get(5)?,
                p95_ms: r.try_get(6)?,
                confidence: r.try_get(7)?,
                refused: to_u64(r.try_get(8)?),
            },
        })
    })
    .collect::<Result<_, _>>()?;
    Ok(points)
}

/// One save's rows as columns, owned, to move onto the store's runtime.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pattern: Vec<String>,
    domain: Vec<String>,
    /// The `added` counts, in `SAVE_COUNTS`'s order.
    counts: [Vec<i64>; 11],
    evidence_successes: Vec<f64>,
    evidence_failures: Vec<f64>,
    evidence_samples: Vec<i64>,
    rejected: Vec<i64>,
    breaker_state: Vec<String>,
    breaker_at: Vec<i64>,
    /// This process's breakers with evidence, to publish.
    publish: FleetColumns,
    /// Its breakers published before whose evidence is back to zero.
    retract: (Vec<String>, Vec<String>),
    /// Whether to drop every process's day-old evidence in this save.
    forget_before: Option<u64>,
    recent: RecentColumns,
    /// (pattern, domain, how many recent runs to keep) of rows that added runs.
    trim: (Vec<String>, Vec<String>, Vec<i64>),
    /// The process publishing its breakers' evidence.
    member: String,
}

#[derive(Debug, Default)]
struct FleetColumns {
    pattern: Vec<String>,
    domain: Vec<String>,
    evidence: Vec<f64>,
    calls: Vec<i64>,
    failures: Vec<i64>,
    at: Vec<i64>,
}

#[derive(Debug, Default)]
struct RecentColumns {
    pattern: Vec<String>,
    domain: Vec<String>,
    at: Vec<i64>,
    latency: Vec<i64>,
    ok: Vec<bool>,
}

impl Batch {
    /// The batch of `rows`, publishing for `member` as `plan` says.
    pub(super) fn of(rows: &[StoredStats], member: &str, plan: &Plan<'_>) -> Self {
        let mut b = Batch {
            member: member.to_owned(),
            forget_before: plan.forget_before,
            retract: (
                plan.retract.iter().map(|k| k.0.clone()).collect(),
                plan.retract.iter().map(|k| k.1.clone()).collect(),
            ),
            ..Batch::default()
        };
        for row in &plan.publish {
            let (f, breaker) = (&mut b.publish, &row.breaker);
            f.pattern.push(row.pattern.clone());
            f.domain.push(row.domain.clone());
            f.evidence.push(breaker.evidence);
            f.calls.push(to_i64(breaker.calls));
            f.failures.push(i64::from(breaker.failures));
            f.at.push(to_i64(breaker.at_unix_ms));
        }
        for row in rows {
            b.pattern.push(row.pattern.clone());
            b.domain.push(row.domain.clone());
            let a = &row.added;
            let added = [
                a.executions,
                a.successes,
                a.failures,
                a.retries,
                a.fallbacks,
                a.compensations,
                a.compensation_failures,
                a.degradations,
                a.outliers,
                a.held_back,
                a.total_latency_ns,
            ];
            for (column, n) in b.counts.iter_mut().zip(added) {
                column.push(to_i64(n));
            }
            b.evidence_successes.push(row.evidence.successes);
            b.evidence_failures.push(row.evidence.failures);
            b.evidence_samples.push(to_i64(row.evidence.samples));
            b.rejected.push(to_i64(a.rejected));
            let breaker = &row.breaker;
            b.breaker_state.push(breaker.state.as_str().to_owned());
            b.breaker_at.push(to_i64(breaker.at_unix_ms));
            // The runs a row added since the last acknowledged save are
            // its newest `added.executions`.
            let new = usize::try_from(a.executions)
                .unwrap_or(usize::MAX)
                .min(row.recent.len());
            if new > 0 {
                for run in &row.recent[row.recent.len() - new..] {
                    b.recent.pattern.push(row.pattern.clone());
                    b.recent.domain.push(row.domain.clone());
                    b.recent.at.push(to_i64(run.at_unix_ms));
                    b.recent.latency.push(to_i64(run.latency_us));
                    b.recent.ok.push(run.ok);
                }
                b.trim.0.push(row.pattern.clone());
                b.trim.1.push(row.domain.clone());
                b.trim
                    .2
                    .push(i64::try_from(row.recent.len()).unwrap_or(i64::MAX));
            }
        }
        b
    }

    /// Writes the batch in one transaction.
    pub(super) async fn save(self, pool: &PgPool) -> Result<(), Failure> {
        if self.pattern.is_empty() {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        let mut counts = sqlx::query(SAVE_COUNTS)
            .bind(&self.pattern)
            .bind(&self.domain);
        for column in &self.counts {
            counts = counts.bind(column);
        }
        counts
            .bind(&self.evidence_successes)
            .bind(&self.evidence_failures)
            .bind(&self.evidence_samples)
            .bind(&self.rejected)
            .bind(&self.breaker_state)
            .bind(&self.breaker_at)
            .execute(&mut *tx)
            .await?;
        if !self.publish.pattern.is_empty() {
            let f = &self.publish;
            sqlx::query(PUBLISH)
                .bind(&self.member)
                .bind(&f.pattern)
                .bind(&f.domain)
                .bind(&f.evidence)
                .bind(&f.calls)
                .bind(&f.failures)
                .bind(&f.at)
                .execute(&mut *tx)
                .await?;
        }
        if !self.retract.0.is_empty() {
            sqlx::query(RETRACT)
                .bind(&self.member)
                .bind(&self.retract.0)
                .bind(&self.retract.1)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(before) = self.forget_before {
            sqlx::query(FORGET_MEMBERS)
                .bind(to_i64(before))
                .execute(&mut *tx)
                .await?;
        }
        if !self.recent.pattern.is_empty() {
            let r = &self.recent;
            sqlx::query(ADD_RECENT)
                .bind(&r.pattern)
                .bind(&r.domain)
                .bind(&r.at)
                .bind(&r.latency)
                .bind(&r.ok)
                .execute(&mut *tx)
                .await?;
            sqlx::query(TRIM_RECENT)
                .bind(&self.trim.0)
                .bind(&self.trim.1)
                .bind(&self.trim.2)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Timeline points as columns.
#[derive(Debug, Default)]
pub(super) struct Points {
    pattern: Vec<String>,
    domain: Vec<String>,
    at: Vec<i64>,
    executions: Vec<i64>,
    failures: Vec<i64>,
    mean_ms: Vec<f64>,
    p95_ms: Vec<f64>,
    confidence: Vec<f64>,
    refused: Vec<i64>,
}

impl Points {
    pub(super) fn of(points: &[StoredPoint]) -> Self {
        let mut c = Points::default();
        for p in points {
            let t = &p.point;
            c.pattern.push(p.pattern.clone());
            c.domain.push(p.domain.clone());
            c.at.push(to_i64(t.at_unix_ms));
            c.executions.push(to_i64(t.executions));
            c.failures.push(to_i64(t.failures));
            c.mean_ms.push(t.mean_ms);
            c.p95_ms.push(t.p95_ms);
            c.confidence.push(t.confidence);
            c.refused.push(to_i64(t.refused));
        }
        c
    }

    /// Adds the points and deletes those taken before `retain_since_unix_ms`.
    pub(super) async fn save(
        self,
        pool: &PgPool,
        retain_since_unix_ms: u64,
    ) -> Result<(), Failure> {
        let mut tx = pool.begin().await?;
        if !self.pattern.is_empty() {
            sqlx::query(ADD_POINTS)
                .bind(&self.pattern)
                .bind(&self.domain)
                .bind(&self.at)
                .bind(&self.executions)
                .bind(&self.failures)
                .bind(&self.mean_ms)
                .bind(&self.p95_ms)
                .bind(&self.confidence)
                .bind(&self.refused)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM ndf_timeline WHERE at_unix_ms < $1")
            .bind(to_i64(retain_since_unix_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
