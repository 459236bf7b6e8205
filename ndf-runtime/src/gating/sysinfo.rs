//! The machine's CPU and memory use, sampled by a background thread so that
//! the runtime only ever reads cached values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::probe::{ResourceProbe, ResourceUsage};
use crate::error::{Error, StoreError};

#[derive(Debug, Default)]
struct Readings {
    cpu: AtomicU64,
    memory: AtomicU64,
    total_memory: AtomicU64,
}

fn load(cell: &AtomicU64) -> f64 {
    f64::from_bits(cell.load(Ordering::Relaxed))
}

/// A [`ResourceProbe`] over sysinfo: a background thread refreshes CPU and
/// memory use every interval (never more often than sysinfo's minimum CPU
/// refresh interval) and stores them in atomics; [`ResourceProbe::sample`]
/// reads those, so the hot path never touches the system. The thread ends
/// when the probe is dropped.
///
/// ```no_run
/// use ndf::prelude::*;
///
/// # fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().resource_probe(ndf::SysinfoProbe::start()?).build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SysinfoProbe {
    readings: Arc<Readings>,
}

/// The process's shared sampler while any probe holds it: the machine is
/// one, so is its sampler. Held weakly, so that its thread ends with the
/// last runtime that uses it.
static SHARED: Mutex<Weak<Readings>> = Mutex::new(Weak::new());

impl SysinfoProbe {
    /// The process's shared probe, sampling every second on one background
    /// thread, started when the first probe is taken and ended (within a
    /// second) when the last is dropped: runtimes that live at once share
    /// it, and none outlives the last. It is what [`crate::NdfBuilder`]
    /// uses unless told otherwise.
    ///
    /// # Errors
    ///
    /// When sysinfo cannot read this system, or the thread cannot start.
    pub fn shared() -> Result<Self, Error> {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(readings) = shared.upgrade() {
            return Ok(Self { readings });
        }
        let probe = Self::start()?;
        *shared = Arc::downgrade(&probe.readings);
        Ok(probe)
    }

    /// Samples every second.
    ///
    /// # Errors
    ///
    /// When sysinfo cannot read this system, or the thread cannot start.
    pub fn start() -> Result<Self, Error> {
        Self::with_interval(Duration::from_secs(1))
    }

    /// Samples every `interval` (at least sysinfo's minimum CPU refresh
    /// interval).
    ///
    /// # Errors
    ///
    /// When sysinfo cannot read this system, or the thread cannot start.
    pub fn with_interval(interval: Duration) -> Result<Self, Error> {
        let interval = interval.max(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let mut system = sysinfo::System::new().map_err(|e| {
            Error::Store(StoreError::new(format!(
                "cannot read system resources: {e}"
            )))
        })?;
        let readings = Arc::new(Readings::default());
        refresh(&mut system, &readings);
        let weak: Weak<Readings> = Arc::downgrade(&readings);
        std::thread::Builder::new()
            .name("ndf-sampler".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(readings) = weak.upgrade() else {
                        return;
                    };
                    refresh(&mut system, &readings);
                }
            })
            .map_err(|e| {
                Error::Store(StoreError::with_source(
                    "cannot start the resource sampler",
                    e,
                ))
            })?;
        Ok(Self { readings })
    }
}

fn refresh(system: &mut sysinfo::System, readings: &Readings) {
    system.refresh_cpu_usage();
    system.refresh_memory();
    let cpu = f64::from(system.global_cpu_usage()) / 100.0;
    let total = system.total_memory();
    let used = total.saturating_sub(system.available_memory());
    let memory = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64
    };
    readings
        .cpu
        .store(cpu.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    readings
        .memory
        .store(memory.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    readings.total_memory.store(total, Ordering::Relaxed);
}

impl ResourceProbe for SysinfoProbe {
    fn sample(&self) -> ResourceUsage {
        ResourceUsage {
            cpu: load(&self.readings.cpu),
            memory: load(&self.readings.memory),
        }
    }

    fn total_memory(&self) -> Option<u64> {
        Some(self.readings.total_memory.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_fractions_of_the_machine() {
        let probe = SysinfoProbe::with_interval(Duration::from_millis(1)).unwrap();
        let usage = probe.sample();
        assert!((0.0..=1.0).contains(&usage.cpu), "{usage:?}");
        assert!(
            usage.memory > 0.0 && usage.memory <= 1.0,
            "some memory is in use: {usage:?}"
        );
        assert!(probe.total_memory().is_some_and(|t| t > 1 << 20));
    }
}
