//! The breaker's unit tests: the learned rule and a step's own window.

use super::*;
use crate::config::Environment;

fn production() -> Config {
    Config::for_environment(Environment::Production)
}

#[test]
fn a_dead_pattern_opens_after_min_samples() {
    let config = production();
    let mut b = Breaker::default();
    let now = Instant::now();
    let mut opened_at = None;
    for call in 1..=30 {
        if b.observe(false, 0.85, now, &config) == Some(Transition::Opened) {
            opened_at = Some(call);
            break;
        }
    }
    assert_eq!(opened_at, Some(config.min_samples));
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn successes_do_not_bank_credit_against_an_outage() {
    let config = production();
    let mut b = Breaker::default();
    let now = Instant::now();
    for _ in 0..10_000 {
        b.observe(true, 0.85, now, &config);
    }
    let mut failures = 0;
    while b.observe(false, 0.85, now, &config).is_none() {
        failures += 1;
        assert!(failures < 20, "still closed after {failures} failures");
    }
}

#[test]
fn evidence_fades_with_time() {
    let config = production();
    let mut b = Breaker::default();
    let start = Instant::now();
    for _ in 0..5 {
        b.observe(false, 0.85, start, &config);
    }
    let before = b.evidence;
    b.observe(true, 0.85, start + config.evidence_half_life * 4, &config);
    assert!(b.evidence < before / 10.0, "{before} -> {}", b.evidence);
}

#[test]
fn half_open_closes_after_the_needed_probes_and_reopens_on_failure() {
    let config = production();
    let mut b = Breaker::default();
    let t0 = Instant::now();
    while b.observe(false, 0.85, t0, &config).is_none() {}
    assert!(
        matches!(b.admit(t0, &config), Admission::Refuse { state: BreakerState::Open, retry_in: Some(d) } if d == config.break_duration)
    );
    let t1 = t0 + config.break_duration;
    for _ in 0..config.half_open_probes {
        assert_eq!(b.admit(t1, &config), Admission::Probe);
    }
    assert!(matches!(
        b.admit(t1, &config),
        Admission::Refuse {
            state: BreakerState::HalfOpen,
            retry_in: None
        }
    ));
    // Production's 0.85 needs every one of 5 probes: one failure reopens.
    assert_eq!(probes_needed(5, 0.85), 5);
    assert_eq!(
        b.observe(false, 0.85, t1, &config),
        Some(Transition::Reopened)
    );
    let t2 = t1 + config.break_duration;
    for _ in 0..5 {
        assert_eq!(b.admit(t2, &config), Admission::Probe);
    }
    for i in 0..5 {
        let change = b.observe(true, 0.85, t2, &config);
        assert_eq!(change, (i == 4).then_some(Transition::Closed));
    }
    assert_eq!(b.admit(t2, &config), Admission::Serve);
}

#[test]
fn lost_probes_are_replaced_after_a_break() {
    let config = production();
    let mut b = Breaker::default();
    let t0 = Instant::now();
    while b.observe(false, 0.85, t0, &config).is_none() {}
    let t1 = t0 + config.break_duration;
    for _ in 0..config.half_open_probes {
        b.admit(t1, &config);
    }
    assert!(matches!(b.admit(t1, &config), Admission::Refuse { .. }));
    assert_eq!(
        b.admit(t1 + config.break_duration, &config),
        Admission::Probe
    );
}

#[test]
fn probes_needed_follow_the_threshold() {
    assert_eq!(probes_needed(5, 0.6), 3);
    assert_eq!(probes_needed(5, 0.75), 4);
    assert_eq!(probes_needed(5, 0.8), 4);
    assert_eq!(probes_needed(5, 0.0), 1);
    assert_eq!(probes_needed(5, 1.0), 5);
}

#[test]
fn a_window_breaker_opens_on_its_ratio_with_its_own_break_and_probes() {
    static POLICY: WindowBreaker = WindowBreaker {
        window: crate::model::SlidingWindow::Calls(10),
        failure_ratio: 0.5,
        min_calls: 6,
        break_for: Some(Duration::from_secs(5)),
        probes: Some(2),
    };
    let config = production();
    let mut b = Breaker::default();
    let t0 = Instant::now();
    // Three of five failed: past the ratio, short of `min_calls`.
    assert_eq!(b.observe_window(false, (5, 3), &POLICY, t0, &config), None);
    // Two of six: under the ratio.
    assert_eq!(b.observe_window(true, (6, 2), &POLICY, t0, &config), None);
    assert_eq!(
        b.observe_window(false, (6, 3), &POLICY, t0, &config),
        Some(Transition::Opened)
    );
    assert_eq!((b.failures(), b.calls()), (3, 6), "for the message");
    assert!(matches!(
        b.admit(t0, &config),
        Admission::Refuse { state: BreakerState::Open, retry_in: Some(d) } if d == Duration::from_secs(5)
    ));
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(b.admit(t1, &config), Admission::Probe);
    assert_eq!(b.admit(t1, &config), Admission::Probe);
    assert!(matches!(b.admit(t1, &config), Admission::Refuse { .. }));
    // ⌈2 × 0.5⌉ = 1 success of the two probes closes it.
    assert_eq!(
        b.observe_window(true, (1, 0), &POLICY, t1, &config),
        Some(Transition::Closed)
    );
    assert_eq!(b.admit(t1, &config), Admission::Serve);
}

#[test]
fn a_window_breaker_ignores_the_learned_evidence() {
    static POLICY: WindowBreaker = WindowBreaker {
        window: crate::model::SlidingWindow::Calls(100),
        failure_ratio: 0.9,
        min_calls: 50,
        break_for: None,
        probes: None,
    };
    let config = production();
    let mut b = Breaker::default();
    let now = Instant::now();
    // Half failing opens the learned rule within a few dozen outcomes;
    // this window wants nine in ten.
    for i in 1..=100u32 {
        let counts = (i, i / 2);
        assert_eq!(
            b.observe_window(i % 2 == 0, counts, &POLICY, now, &config),
            None
        );
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.break_for(&config), config.break_duration);
}

#[test]
fn a_threshold_of_zero_never_opens() {
    let config = production();
    let mut b = Breaker::default();
    for _ in 0..100 {
        assert_eq!(b.observe(false, 0.0, Instant::now(), &config), None);
    }
}
