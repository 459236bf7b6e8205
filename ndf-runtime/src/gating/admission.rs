//! Admission: new work waits while the machine is above the configured
//! limits, with backoff, up to `resource_wait`.

use std::time::Duration;

use tokio::time::Instant;

use super::probe::ResourceUsage;
use crate::error::Error;
use crate::exec::Cx;
use crate::ndf::Inner;

/// First wait between readings; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Waits, re-reading the probe with backoff, until `over` finds nothing
/// over its limit or `resource_wait` has passed; returns the last excess.
async fn wait_until_admitted(
    inner: &Inner,
    over: impl Fn(ResourceUsage) -> Option<(&'static str, f64, f64)>,
) -> Option<(&'static str, f64, f64)> {
    let mut excess = over(inner.probe.sample())?;
    let deadline = Instant::now() + inner.config.resource_wait;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Some(excess);
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match over(inner.probe.sample()) {
            None => return None,
            Some(e) => excess = e,
        }
    }
}

/// Admission of a run, only with `Config::resource_gating` on (off by
/// default: unrelated load on the machine never stalls a workflow that did
/// not ask for gating). A workflow with a degradation chain is admitted at
/// once: its chains go straight to their cheapest level while the machine
/// is loaded. Any other waits up to `resource_wait` while CPU or memory use
/// is above the configured limits, then fails with
/// [`Error::ResourceExhausted`] naming the resource, the reading, the limit
/// and the setting.
pub(crate) async fn admit_run(inner: &Inner, can_degrade: bool) -> Result<(), Error> {
    if !inner.config.resource_gating || can_degrade {
        return Ok(());
    }
    match wait_until_admitted(inner, |u| inner.config.over_limits(u)).await {
        None => Ok(()),
        Some((resource, usage, limit)) => Err(Error::ResourceExhausted {
            resource: resource.to_owned(),
            usage,
            limit,
            setting: if resource == "cpu" {
                "cpu_limit"
            } else {
                "memory_limit"
            },
        }),
    }
}

/// Admission of a step's declared memory budget against free memory,
/// `(1 - memory) × total`, when the probe knows the total: waits up to
/// `resource_wait` for room.
pub(crate) async fn admit_memory(run: Cx<'_>, budget: u64) -> Result<(), Error> {
    let inner = run.0.inner;
    let Some(total) = inner.probe.total_memory() else {
        return Ok(());
    };
    let needed = budget as f64 / total as f64;
    // The highest memory use at which the budget still fits.
    let limit = (1.0 - needed).max(0.0);
    let over = |u: ResourceUsage| (u.memory > limit).then_some(("memory", u.memory, limit));
    match wait_until_admitted(inner, over).await {
        None => Ok(()),
        Some((resource, usage, limit)) => Err(Error::ResourceExhausted {
            resource: resource.to_owned(),
            usage,
            limit,
            setting: "memory (the step's budget)",
        }),
    }
}
