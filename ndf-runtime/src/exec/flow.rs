//! What `degrade!` and `orchestrate!` expand to call: recording which level
//! served, and checking a phase's conditions when it completes.

use std::ops::Range;
use std::time::Duration;

use tokio::time::Instant;

use super::Cx;
use crate::error::Error;
use crate::model::LATENCY_NOISE;

/// Records that the `degrade!` node with record `index` was served at
/// `level` (0 is the preferred alternative), or failed at its last level.
pub fn record_level(run: Cx<'_>, index: usize, level: usize, ok: bool) {
    if run.cancelling() {
        // Stopped by a cancelled `parallel!` task: nothing to learn.
        return;
    }
    if let Some(record) = run.record(index) {
        record.level(u32::try_from(level).unwrap_or(u32::MAX), ok);
    }
    if level > 0 && ok {
        tracing::debug!(pattern = run.pattern(), level, "served by a degraded level");
    }
}

/// Whether a `degrade!` may run a level other than its last: not while its
/// step (`record`) is held back by low confidence, nor while the resource
/// probe reads CPU or memory above the configured limits, when the cheaper
/// levels below should serve instead.
#[must_use]
pub fn admit_level(run: Cx<'_>, level: usize, record: Option<usize>) -> bool {
    if let Some(blocked) = record.and_then(|r| run.blocked(r)) {
        if let Some(held) = record.and_then(|r| run.record(r)) {
            held.held(false);
        }
        tracing::debug!(
            pattern = run.pattern(),
            level,
            confidence = blocked.confidence,
            threshold = blocked.threshold,
            "confidence below threshold, skipping a degradation level"
        );
        return false;
    }
    let Some((resource, usage, limit)) = run.admission().over_limits() else {
        return true;
    };
    tracing::debug!(
        pattern = run.pattern(),
        level,
        resource,
        usage,
        limit,
        "resources constrained, skipping a degradation level"
    );
    false
}

/// An alternative of a `degrade!` failed; the next one runs.
pub fn alternative_failed(run: Cx<'_>, level: usize, error: &Error) {
    tracing::debug!(pattern = run.pattern(), level, %error, "degradation level failed, trying the next");
}

/// The conditions of one `orchestrate!` phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseRule {
    /// The phase's name.
    pub name: &'static str,
    /// `success(min_success = x)`: fraction of the phase's step runs that
    /// must have succeeded.
    pub min_success: Option<f64>,
    /// `rollback_if(error_rate > x)`: failed step attempts (retries
    /// included) over all attempts.
    pub max_error_rate: Option<f64>,
    /// `rollback_if(slowdown > y)`: the phase's duration over its learned
    /// median, minus one; judged only when the phase is at least 1 ms
    /// slower than its median.
    pub max_slowdown: Option<f64>,
}

/// Checks a completed phase, whose steps recorded into `records`, against
/// its rule, and learns its duration.
///
/// # Errors
///
/// [`Error::RolledBack`] naming the phase, the condition, the measured value
/// and the bound.
pub fn check_phase(
    run: Cx<'_>,
    rule: &PhaseRule,
    records: Range<usize>,
    started: Instant,
) -> Result<(), Error> {
    let took = started.elapsed();
    let (mut runs, mut successes, mut attempts, mut failed_attempts) = (0u64, 0u64, 0u64, 0u64);
    for record in run.records(records) {
        let o = record.read();
        if !o.ran || o.level.is_some() {
            continue;
        }
        runs += 1;
        successes += u64::from(o.ok);
        attempts += 1 + u64::from(o.retries);
        failed_attempts += u64::from(o.retries) + u64::from(!o.ok);
    }
    let stats = run.stats();
    let median = rule
        .max_slowdown
        .and_then(|_| stats.phase_median(run.entry(), rule.name));
    if !run.cancelling() {
        stats.record_phase(run.entry(), rule.name, took);
    }

    let rolled_back = |reason: String| Error::RolledBack {
        pattern: run.pattern().to_owned(),
        phase: rule.name.to_owned(),
        reason,
    };
    if let Some(min) = rule.min_success
        && runs > 0
    {
        let rate = successes as f64 / runs as f64;
        if rate < min {
            return Err(rolled_back(format!(
                "{successes} of {runs} steps succeeded ({rate:.2}), below min_success {min}"
            )));
        }
    }
    if let Some(max) = rule.max_error_rate
        && attempts > 0
    {
        let rate = failed_attempts as f64 / attempts as f64;
        if rate > max {
            return Err(rolled_back(format!(
                "error rate {rate:.2} ({failed_attempts} of {attempts} step attempts failed) is above {max}"
            )));
        }
    }
    // Judged only past the clock's and the scheduler's noise: a phase of a
    // few microseconds is not slow for a hiccup under a millisecond.
    if let (Some(max), Some(median)) = (rule.max_slowdown, median)
        && median > Duration::ZERO
        && took.saturating_sub(median) >= LATENCY_NOISE
    {
        let slowdown = took.as_secs_f64() / median.as_secs_f64() - 1.0;
        if slowdown > max {
            return Err(rolled_back(format!(
                "it took {took:?}, {slowdown:.2} slower than its median {median:?}, above {max}"
            )));
        }
    }
    Ok(())
}

/// A `parallel!` with `min_success` in which too few tasks succeeded.
#[must_use]
pub fn insufficient(
    run: Cx<'_>,
    succeeded: usize,
    tasks: usize,
    required: usize,
    first: Option<crate::error::StepError>,
) -> Error {
    Error::InsufficientSuccess {
        pattern: run.pattern().to_owned(),
        succeeded,
        tasks,
        required,
        source: first.unwrap_or_else(|| crate::error::StepError::msg("no task error was recorded")),
    }
}
