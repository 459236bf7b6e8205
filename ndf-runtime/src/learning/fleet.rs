//! Gating with what the other processes sharing a store learned.
//!
//! # The merge rule
//!
//! A breaker's evidence is a sum of log-likelihood ratios (failing against
//! healthy) that halves every `evidence_half_life` of wall time. The
//! ratios of independent outcomes add, so the fleet's evidence about a
//! pattern is the sum of what each process observed itself: each process
//! publishes its own evidence (never what it pulled) with the time it last
//! changed, and each gates on its own plus every other process's, aged to
//! now by the half-life. A process that stopped publishing (it crashed, or
//! a restart replaced it) keeps counting as its evidence fades, exactly as
//! its outcomes would have in one process. When probes close a breaker,
//! the others' evidence from before the close is superseded: it is
//! ignored until they publish again.

use std::collections::HashMap;

use super::breaker::{Fleet, Transition};
use super::entry::resolve;
use super::observe::BreakerChange;
use super::table::StatsTable;
use crate::config::Config;
use crate::model::{Clock, MemberBreaker};

impl StatsTable {
    /// Takes the other processes' breaker evidence, pulled at `clock`;
    /// returns how many breakers it opened.
    pub(crate) fn join_fleet(
        &self,
        rows: &[MemberBreaker],
        clock: &Clock,
        config: &Config,
    ) -> usize {
        let half_life_ms = config.evidence_half_life.as_secs_f64() * 1000.0;
        let mut by_key: HashMap<(&str, &str), Vec<&MemberBreaker>> = HashMap::new();
        for row in rows {
            by_key
                .entry((row.pattern.as_str(), row.domain.as_str()))
                .or_default()
                .push(row);
        }
        // Held for the slots with evidence pulled now or at the last pull,
        // not for every slot.
        let mut tables = self.lock();
        let tables = &mut *tables;
        let mut opened = 0;
        let mut pulled = Vec::with_capacity(by_key.len());
        for ((pattern, domain), members) in &by_key {
            // A pattern only others ran gets a slot, so that its first run
            // here is judged with their evidence.
            let slot = resolve(
                &mut tables.slots,
                &mut tables.confidence,
                &tables.not_closed,
                ((*pattern).to_owned(), (*domain).to_owned()),
            );
            pulled.push(slot);
            let s = &mut tables.confidence[slot];
            let since = s.breaker.closed_at().map(|at| clock.unix_ms_of(at));
            let mut fleet = Fleet::default();
            for row in members {
                let b = &row.breaker;
                if since.is_some_and(|since| b.at_unix_ms < since) || !b.evidence.is_finite() {
                    continue;
                }
                let age_ms = clock.unix_ms.saturating_sub(b.at_unix_ms) as f64;
                fleet.evidence += b.evidence.max(0.0) * 0.5f64.powf(age_ms / half_life_ms);
                fleet.calls += b.calls;
                fleet.failures = fleet.failures.saturating_add(b.failures);
            }
            if s.breaker.join_fleet(fleet, clock.instant, config) == Some(Transition::Opened) {
                s.gate.publish(s.breaker.state());
                opened += 1;
                tables.watcher.0.breaker(&BreakerChange {
                    pattern,
                    domain,
                    transition: Transition::Opened,
                    confidence: s.evidence.mean(config.prior),
                    threshold: s.breaker.threshold().unwrap_or(config.confidence_threshold),
                    failures: s.breaker.failures(),
                    calls: s.breaker.calls(),
                    break_duration: config.break_duration,
                    fleet: true,
                    window: false,
                });
            }
        }
        // What the others published before and retracted since: nothing of
        // theirs counts there any more.
        pulled.sort_unstable();
        for slot in std::mem::replace(&mut tables.fleet_slots, pulled) {
            if tables.fleet_slots.binary_search(&slot).is_err() {
                tables.confidence[slot].breaker.leave_fleet();
            }
        }
        opened
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{BreakerState, StoredBreaker};

    /// `gate_alpha` 0.01: the breaker opens at ln(100) ≈ 4.6 of evidence.
    fn config() -> Config {
        Config {
            min_samples: 10,
            gate_alpha: 0.01,
            evidence_half_life: Duration::from_mins(10),
            half_open_probes: 1,
            ..Config::default()
        }
    }

    fn member(
        name: &str,
        evidence: f64,
        calls: u64,
        age: Duration,
        clock: &Clock,
    ) -> MemberBreaker {
        MemberBreaker {
            member: name.to_owned(),
            pattern: "billing.charge".to_owned(),
            domain: "billing".to_owned(),
            breaker: StoredBreaker {
                evidence,
                calls,
                at_unix_ms: clock.unix_ms_ago(age),
                ..StoredBreaker::default()
            },
        }
    }

    fn state(table: &StatsTable) -> Option<BreakerState> {
        table.breaker("billing.charge", "billing")
    }

    #[test]
    fn the_fleets_credible_evidence_holds_back_a_pattern_never_run_here() {
        let (table, clock) = (StatsTable::default(), Clock::now());
        let rows = [member("a", 6.0, 40, Duration::ZERO, &clock)];
        assert_eq!(table.join_fleet(&rows, &clock, &config()), 1);
        assert_eq!(state(&table), Some(BreakerState::Open));
    }

    #[test]
    fn members_evidence_adds_up() {
        let (table, clock) = (StatsTable::default(), Clock::now());
        // Neither is credible alone; together they are (3 + 3 > 4.6).
        let one = [member("a", 3.0, 20, Duration::ZERO, &clock)];
        assert_eq!(table.join_fleet(&one, &clock, &config()), 0);
        assert_eq!(state(&table), Some(BreakerState::Closed));
        let two = [
            member("a", 3.0, 20, Duration::ZERO, &clock),
            member("b", 3.0, 20, Duration::ZERO, &clock),
        ];
        assert_eq!(table.join_fleet(&two, &clock, &config()), 1);
    }

    #[test]
    fn evidence_fades_by_its_half_life_from_when_it_last_changed() {
        let (table, clock) = (StatsTable::default(), Clock::now());
        // 8 halved once is 4, under 4.6: a member that went quiet ten
        // minutes ago no longer holds the pattern back.
        let rows = [member("gone", 8.0, 40, Duration::from_mins(10), &clock)];
        assert_eq!(table.join_fleet(&rows, &clock, &config()), 0);
        let rows = [member("gone", 8.0, 40, Duration::from_mins(1), &clock)];
        assert_eq!(table.join_fleet(&rows, &clock, &config()), 1);
    }

    #[test]
    fn too_few_outcomes_in_the_fleet_hold_nothing_back() {
        let (table, clock) = (StatsTable::default(), Clock::now());
        let rows = [member("a", 9.0, 5, Duration::ZERO, &clock)];
        assert_eq!(table.join_fleet(&rows, &clock, &config()), 0);
    }

    #[test]
    fn probes_that_close_the_breaker_supersede_older_fleet_evidence() {
        let (table, clock, config) = (StatsTable::default(), Clock::now(), config());
        let rows = [member("a", 6.0, 40, Duration::ZERO, &clock)];
        table.join_fleet(&rows, &clock, &config);
        {
            let mut tables = table.lock();
            let tables = &mut *tables;
            let slot = tables.slots[&("billing.charge".to_owned(), "billing".to_owned())];
            let b = &mut tables.confidence[slot].breaker;
            let after_break = clock.instant + config.break_duration;
            b.admit(after_break, &config);
            b.observe(true, 0.8, after_break, &config);
            assert_eq!(b.state(), BreakerState::Closed, "the probe closed it");
        }
        // The same rows, published before the probe: superseded.
        let later = Clock {
            instant: clock.instant + config.break_duration,
            unix_ms: clock.unix_ms + u64::try_from(config.break_duration.as_millis()).unwrap(),
        };
        assert_eq!(table.join_fleet(&rows, &later, &config), 0);
        assert_eq!(state(&table), Some(BreakerState::Closed));
        // Evidence published after it counts again.
        let fresh = [member("a", 6.0, 40, Duration::ZERO, &later)];
        assert_eq!(table.join_fleet(&fresh, &later, &config), 1);
    }

    #[test]
    fn evidence_the_others_retracted_no_longer_counts() {
        let (table, clock, config) = (StatsTable::default(), Clock::now(), config());
        let rows = [member("a", 4.0, 40, Duration::ZERO, &clock)];
        assert_eq!(table.join_fleet(&rows, &clock, &config), 0, "4.0 < 4.6");
        // A healthy again: its row is gone from the next pull.
        assert_eq!(table.join_fleet(&[], &clock, &config), 0);
        let mut tables = table.lock();
        let tables = &mut *tables;
        let slot = tables.slots[&("billing.charge".to_owned(), "billing".to_owned())];
        let b = &mut tables.confidence[slot].breaker;
        // Two failures here (about 1.7): with A's 4.0 still counted, the
        // breaker would open.
        for _ in 0..2 {
            assert_eq!(b.observe(false, 0.8, clock.instant, &config), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
