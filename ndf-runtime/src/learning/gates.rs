//! Judging, at the start of a run, what confidence holds back.

use tokio::time::Instant;

use super::stats::{StatsTable, entry_index};
use crate::config::Config;
use crate::exec::Blocked;
use crate::step::StepMeta;

/// What [`StatsTable::gates`] needs of a run.
pub(crate) struct GateQuery<'a> {
    pub(crate) workflow: &'static str,
    pub(crate) steps: &'static [&'static str],
    pub(crate) metas: &'static [Option<&'static StepMeta>],
    pub(crate) domain: &'a str,
}

/// What a run may not run, and where it records what it learns.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    /// The run's entry among its workflow's entries.
    pub(crate) entry: usize,
    pub(crate) workflow: Option<Blocked>,
    pub(crate) steps: Vec<(usize, Blocked)>,
}

impl StatsTable {
    /// The records of a run held back by low confidence, and whether the
    /// workflow itself is: a pattern is held back once it has `min_samples`
    /// outcomes and its mean is below its threshold, except for one trial run
    /// every `gate_retry`, so that it can earn its confidence back.
    pub(crate) fn gates(&self, query: &GateQuery<'_>, config: &Config, now: Instant) -> Gates {
        let mut guard = self.lock();
        let tables = &mut *guard;
        let index = entry_index(tables, query.workflow, query.steps, query.domain);
        let entry = &tables.workflows[query.workflow][index];
        let mut judge = |slot: usize, threshold: f64| -> Option<Blocked> {
            let evidence = &tables.confidence[slot].evidence;
            let mean = evidence.mean(config.prior);
            if evidence.samples < config.min_samples || mean >= threshold {
                tables.confidence[slot].trial = None;
                return None;
            }
            match tables.confidence[slot].trial {
                Some(last) if now.duration_since(last) >= config.gate_retry => {
                    tables.confidence[slot].trial = Some(now);
                    None
                }
                Some(_) => Some(Blocked {
                    confidence: mean,
                    threshold,
                }),
                None => {
                    // Just fell below: the cool-down starts now.
                    tables.confidence[slot].trial = Some(now);
                    Some(Blocked {
                        confidence: mean,
                        threshold,
                    })
                }
            }
        };
        let workflow = judge(entry.run_slot, config.confidence_threshold);
        if workflow.is_some() {
            // Refused before it started: not an execution, but counted, so
            // that reports and the dashboard show the refusals.
            let entries = tables.workflows.get_mut(query.workflow);
            if let Some(entry) = entries.and_then(|e| e.get_mut(index)) {
                entry.run.held_back += 1;
            }
            return Gates {
                entry: index,
                workflow,
                steps: Vec::new(),
            };
        }
        let entry = &tables.workflows[query.workflow][index];
        let mut steps = Vec::new();
        for (i, meta) in query.metas.iter().enumerate() {
            let Some(meta) = meta else { continue };
            let threshold = config.threshold_of(meta);
            if let Some(blocked) = entry
                .step_slots
                .get(i)
                .and_then(|slot| judge(*slot, threshold))
            {
                steps.push((i, blocked));
            }
        }
        Gates {
            entry: index,
            workflow,
            steps,
        }
    }
}
