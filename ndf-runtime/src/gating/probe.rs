//! What the machine's load is: [`ResourceUsage`] and the [`ResourceProbe`]
//! that reads it.

/// CPU and memory use, each a fraction of the machine (0..=1).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ResourceUsage {
    /// CPU use.
    pub cpu: f64,
    /// Memory use.
    pub memory: f64,
}

impl ResourceUsage {
    /// The resource most over `limit`, with its reading, if any is.
    #[must_use]
    pub fn over(&self, limit: f64) -> Option<(&'static str, f64)> {
        if self.cpu > limit && self.cpu >= self.memory {
            Some(("cpu", self.cpu))
        } else if self.memory > limit {
            Some(("memory", self.memory))
        } else if self.cpu > limit {
            Some(("cpu", self.cpu))
        } else {
            None
        }
    }
}

/// Reads the machine's load. The runtime calls `sample` on the hot path, so
/// an implementation returns a cached reading; tests drive it with a fake.
pub trait ResourceProbe: Send + Sync + 'static {
    /// The latest reading.
    fn sample(&self) -> ResourceUsage;

    /// The machine's memory in bytes, if known: declared `memory` budgets
    /// are admitted against `(1 - memory) × total`. Without it, budgets are
    /// not checked.
    fn total_memory(&self) -> Option<u64> {
        None
    }
}

/// A probe that always reads an idle machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdleProbe;

impl ResourceProbe for IdleProbe {
    fn sample(&self) -> ResourceUsage {
        ResourceUsage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_names_the_most_loaded_resource() {
        let u = ResourceUsage {
            cpu: 0.9,
            memory: 0.95,
        };
        assert_eq!(u.over(0.8), Some(("memory", 0.95)));
        let u = ResourceUsage {
            cpu: 0.9,
            memory: 0.5,
        };
        assert_eq!(u.over(0.8), Some(("cpu", 0.9)));
        assert_eq!(u.over(0.95), None);
    }
}
