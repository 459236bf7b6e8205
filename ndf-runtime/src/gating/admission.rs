//! Admission: new work waits while the machine is above the configured
//! limits, with backoff, up to `resource_wait`.

use std::time::Duration;

use tokio::time::Instant;

use super::probe::{ResourceProbe, ResourceUsage};
use crate::config::Config;
use crate::error::Error;

/// First wait between readings; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What admission is judged against: the `Config` keys of resource gating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    pub(crate) cpu_limit: f64,
    pub(crate) memory_limit: f64,
    pub(crate) resource_wait: Duration,
    /// Whether every run waits for resources (`Config::resource_gating`).
    pub(crate) every_run: bool,
}

impl Limits {
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            cpu_limit: config.cpu_limit,
            memory_limit: config.memory_limit,
            resource_wait: config.resource_wait,
            every_run: config.resource_gating,
        }
    }

    /// The resource of `usage` above its limit, with the reading and the
    /// limit; CPU first.
    pub(crate) fn over(&self, usage: ResourceUsage) -> Option<(&'static str, f64, f64)> {
        if usage.cpu > self.cpu_limit {
            Some(("cpu", usage.cpu, self.cpu_limit))
        } else if usage.memory > self.memory_limit {
            Some(("memory", usage.memory, self.memory_limit))
        } else {
            None
        }
    }
}

/// Resource gating: a probe of the machine's load and the limits it is
/// held to.
pub(crate) struct Admission {
    probe: Box<dyn ResourceProbe>,
    limits: Limits,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The wait of a run for CPU or memory below their limits (see
/// [`Admission::admit_run`]).
pub(crate) type RunWait<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send + 'a>>;

impl Admission {
    pub(crate) fn new(probe: Box<dyn ResourceProbe>, limits: Limits) -> Self {
        Self { probe, limits }
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The probe's latest reading.
    pub(crate) fn sample(&self) -> ResourceUsage {
        self.probe.sample()
    }

    /// The resource now above its limit, with the reading and the limit.
    pub(crate) fn over_limits(&self) -> Option<(&'static str, f64, f64)> {
        self.limits.over(self.probe.sample())
    }

    /// Waits, re-reading the probe with backoff, until `over` finds nothing
    /// over its limit or `resource_wait` has passed; returns the last excess.
    async fn wait_until_admitted(
        &self,
        over: impl Fn(ResourceUsage) -> Option<(&'static str, f64, f64)>,
        wait: Duration,
    ) -> Option<(&'static str, f64, f64)> {
        let excess = over(self.probe.sample())?;
        self.wait_while_over(excess, over, wait).await
    }

    /// [`Self::wait_until_admitted`] once a reading found `excess`.
    async fn wait_while_over(
        &self,
        mut excess: (&'static str, f64, f64),
        over: impl Fn(ResourceUsage) -> Option<(&'static str, f64, f64)>,
        wait: Duration,
    ) -> Option<(&'static str, f64, f64)> {
        let deadline = Instant::now() + wait;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Some(excess);
            }
            tokio::time::sleep(backoff.min(deadline - now)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match over(self.probe.sample()) {
                None => return None,
                Some(e) => excess = e,
            }
        }
    }

    /// Admission of a run, only with `Config::resource_gating` on (off by
    /// default: unrelated load on the machine never stalls a workflow that
    /// did not ask for gating). A workflow with a degradation chain is
    /// admitted at once: its chains go straight to their cheapest level
    /// while the machine is loaded. Any other waits up to `resource_wait`
    /// while CPU or memory use is above the configured limits, then fails
    /// with [`Error::ResourceExhausted`] naming the resource, the reading,
    /// the limit and the setting.
    ///
    /// `None` when the run is admitted at once; else its wait, boxed: rare
    /// and slow, and so not kept, at its 200-odd bytes, in every run's
    /// future.
    pub(crate) fn admit_run(&self, can_degrade: bool) -> Option<RunWait<'_>> {
        if !self.limits.every_run || can_degrade {
            return None;
        }
        let excess = self.limits.over(self.probe.sample())?;
        Some(Box::pin(self.run_wait(excess)))
    }

    /// The wait of a run that found `excess` (see [`Self::admit_run`]).
    async fn run_wait(&self, excess: (&'static str, f64, f64)) -> Result<(), Error> {
        match self
            .wait_while_over(excess, |u| self.limits.over(u), self.limits.resource_wait)
            .await
        {
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

    /// The highest memory use at which a budget of `budget` bytes still
    /// fits, when the probe knows the machine's memory.
    fn memory_limit_for(&self, budget: u64) -> Option<f64> {
        let total = self.probe.total_memory()?;
        let needed = budget as f64 / total as f64;
        Some((1.0 - needed).max(0.0))
    }

    /// Whether a step's declared memory budget fits now (or cannot be
    /// judged): then it is admitted without waiting.
    pub(crate) fn memory_fits(&self, budget: u64) -> bool {
        self.memory_limit_for(budget)
            .is_none_or(|limit| self.probe.sample().memory <= limit)
    }

    /// Admission of a step's declared memory budget against free memory,
    /// `(1 - memory) × total`, when the probe knows the total: waits up to
    /// `resource_wait` for room (at most `wait`, what a workflow's deadline
    /// leaves).
    pub(crate) async fn admit_memory(&self, budget: u64, wait: Duration) -> Result<(), Error> {
        let Some(limit) = self.memory_limit_for(budget) else {
            return Ok(());
        };
        let over = |u: ResourceUsage| (u.memory > limit).then_some(("memory", u.memory, limit));
        match self
            .wait_until_admitted(over, wait.min(self.limits.resource_wait))
            .await
        {
            None => Ok(()),
            Some((resource, usage, limit)) => Err(Error::ResourceExhausted {
                resource: resource.to_owned(),
                usage,
                limit,
                setting: "memory (the step's budget)",
            }),
        }
    }
}
