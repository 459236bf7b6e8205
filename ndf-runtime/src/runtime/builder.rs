//! [`NdfBuilder`]: a runtime's configuration, store, probe and alert sink,
//! validated and loaded into a running [`Ndf`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::inner::{FlushState, Inner};
use super::ndf::Ndf;
use super::registry::Registry;
use crate::config::Config;
use crate::error::{Error, StoreError};
use crate::exec::Env;
use std::time::Duration;

use crate::gating::{Admission, IdleProbe, Limits, ResourceProbe, RetryBudgets};
use crate::learning::StatsTable;
use crate::model::Clock;
use crate::store::{LearningStore, MemoryStore};
use crate::telemetry::{AlertBoard, AlertSink, Monitor, Timeline, TracingSink};

/// The probe a runtime reads unless told otherwise: the process's shared
/// sysinfo sampler, or, where sysinfo cannot read the system, none (an idle
/// machine), with a warning.
fn default_probe() -> Box<dyn ResourceProbe> {
    match crate::gating::SysinfoProbe::shared() {
        Ok(probe) => Box::new(probe),
        Err(error) => {
            tracing::warn!(target: "ndf::resources", %error, "no resource readings: resource gating is off");
            Box::new(IdleProbe)
        }
    }
}

impl Ndf {
    /// A builder with the development config, a [`MemoryStore`] and the
    /// machine's CPU and memory read by the shared sysinfo sampler.
    pub fn builder() -> NdfBuilder {
        NdfBuilder::default()
    }
}

/// Builds an [`Ndf`].
#[must_use]
#[derive(Default)]
pub struct NdfBuilder {
    config: Config,
    store: Option<Box<dyn LearningStore>>,
    probe: Option<Box<dyn ResourceProbe>>,
    alerts: Option<Box<dyn AlertSink>>,
    /// Set by `background_tasks(false)`.
    no_background_tasks: bool,
}

impl std::fmt::Debug for NdfBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdfBuilder")
            .field("config", &self.config)
            .field("store", &self.store.as_ref().map(|_| "…"))
            .field("resource_probe", &self.probe.as_ref().map(|_| "…"))
            .field("alert_sink", &self.alerts.as_ref().map(|_| "…"))
            .field("background_tasks", &!self.no_background_tasks)
            .finish()
    }
}

impl NdfBuilder {
    /// Uses this configuration (default: development presets).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Keeps learning data in this store (default: a fresh [`MemoryStore`]).
    pub fn store(mut self, store: impl LearningStore) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Sends alerts to this sink (default: [`TracingSink`], a `tracing`
    /// warning per alert).
    pub fn alert_sink(mut self, sink: impl AlertSink) -> Self {
        self.alerts = Some(Box::new(sink));
        self
    }

    /// Reads CPU and memory use from this probe (default:
    /// [`SysinfoProbe::shared`](crate::SysinfoProbe::shared), the machine's
    /// own, sampled every second in the background). [`IdleProbe`] reads an
    /// idle machine: no run ever waits for resources.
    pub fn resource_probe(mut self, probe: impl ResourceProbe) -> Self {
        self.probe = Some(Box::new(probe));
        self
    }

    /// Whether the runtime runs its background tasks (default: `true`):
    /// the learner, the timeline sampler and the saver. Without them, runs
    /// learn what waits for the learner as they end, the timeline takes no
    /// point, and learning data is saved only by [`Ndf::flush`],
    /// [`Ndf::shutdown`] and [`Ndf::drain`]: for tests that count what a
    /// run alone allocates or logs.
    pub fn background_tasks(mut self, on: bool) -> Self {
        self.no_background_tasks = !on;
        self
    }

    /// Validates the configuration, loads what the store holds and returns
    /// the runtime. Its background tasks (the learner, the timeline
    /// sampler, the saver) start on the tokio runtime it is built in; built
    /// outside tokio (in a `static`, say), on the one its first run ends
    /// in, and again on another when that one shuts down.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming a bad key, [`Error::Store`] when the store
    /// cannot be read.
    pub fn build(self) -> Result<Ndf, Error> {
        self.config.validate()?;
        tracing::info!(target: "ndf::config", "effective configuration:\n{}", self.config);
        let store: Arc<dyn LearningStore> = match self.store {
            Some(store) => Arc::from(store),
            None => Arc::new(MemoryStore::new()),
        };
        // `# HELP` and units for whatever recorder is installed now.
        crate::telemetry::describe_metrics();
        let board = Arc::new(AlertBoard::default());
        let stats = StatsTable::observed_by(Monitor::new(&self.config, Arc::clone(&board)));
        // Loading blocks on I/O: on a multi-threaded runtime's worker, hand
        // the worker's other tasks off first.
        let retain_since = Clock::now().unix_ms_ago(self.config.retention);
        let load = || {
            let fleet = if store.is_shared() {
                store.load_fleet()?
            } else {
                Vec::new()
            };
            Ok::<_, StoreError>((store.load()?, store.load_timeline(retain_since)?, fleet))
        };
        let (rows, points, fleet) = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(load)
            }
            _ => load(),
        }?;
        let clock = Clock::now();
        for row in rows {
            stats.seed(&row, &clock);
        }
        stats.join_fleet(&fleet, &clock, &self.config);
        let timeline = Timeline::default();
        timeline.seed(points, self.config.timeline_points);
        let admission = Admission::new(
            self.probe.unwrap_or_else(default_probe),
            Limits::of(&self.config),
        );
        let inner = Arc::new(Inner {
            env: Env {
                budgets: RetryBudgets::new(self.config.retry_budget, Duration::from_secs(10)),
                config: self.config,
                admission,
                stats,
                life: crate::gating::Lifecycle::default(),
            },
            sink: self.alerts.unwrap_or_else(|| Box::new(TracingSink)),
            board,
            registry: Registry::default(),
            store,
            flush: FlushState::default(),
            timeline,
            learning: Arc::default(),
            // Set by `tasks::start`, here when built inside tokio, else at
            // the first run that ends inside it.
            background: AtomicBool::new(false),
            background_allowed: !self.no_background_tasks,
            alive: tokio::sync::watch::Sender::new(()),
        });
        super::tasks::start(&inner);
        Ok(Ndf { inner })
    }
}
