//! The gate's operating characteristics, simulated on paused time with
//! fixed seeds, one call every 100 ms, for each preset with its defaults:
//!
//! - a dependency at threshold + 0.1 → at most 1% of calls refused;
//! - a dead dependency (every call fails) → held back within 20 calls;
//! - a dependency at threshold − 0.2 → held back within 50 calls on
//!   average;
//! - a dependency that heals → served again within `break_duration` plus
//!   5 probes.
//!
//! `cargo test --test gate_simulation -- --nocapture` prints the table the
//! README shows.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndf::prelude::*;

/// A dependency that succeeds with probability `p`, drawn from a seeded
/// generator.
#[derive(Clone)]
struct Dependency {
    rng: Arc<Mutex<fastrand::Rng>>,
    p: Arc<Mutex<f64>>,
}

#[pattern]
async fn call_dependency(d: Dependency) -> Result<(), StepError> {
    let draw = d.rng.lock().unwrap().f64();
    if draw < *d.p.lock().unwrap() {
        Ok(())
    } else {
        Err(StepError::msg("dependency failed"))
    }
}

const SEEDS: u64 = 10;
const CALL_EVERY: Duration = Duration::from_millis(100);

/// Runs `phases` of (calls, success rate) against a fresh runtime of
/// `env`'s preset; returns, per call, whether it was refused.
async fn simulate(env: Environment, phases: &[(usize, f64)], seed: u64) -> Vec<bool> {
    let ndf = Ndf::builder()
        .config(Config::for_environment(env))
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let dependency = Dependency {
        rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(seed))),
        p: Arc::new(Mutex::new(1.0)),
    };
    let flow = sequential!(name = "sim.dependency"; call_dependency);
    let ctx = PatternContext::new("sim");
    let mut refused = Vec::new();
    for &(calls, p) in phases {
        *dependency.p.lock().unwrap() = p;
        for _ in 0..calls {
            let result = ndf.run(&flow, dependency.clone(), &ctx).await;
            refused.push(matches!(
                result,
                Err(ndf::Error::ConfidenceThreshold { .. })
            ));
            tokio::time::sleep(CALL_EVERY).await;
        }
    }
    refused
}

/// Calls from `from` until the first refusal.
fn held_back_after(refused: &[bool], from: usize) -> Option<usize> {
    refused[from..].iter().position(|r| *r).map(|i| i + 1)
}

fn threshold(env: Environment) -> f64 {
    Config::for_environment(env).confidence_threshold
}

const PRESETS: [Environment; 3] = [
    Environment::Development,
    Environment::Staging,
    Environment::Production,
];

#[tokio::test(start_paused = true)]
async fn a_healthy_dependency_is_almost_never_refused() {
    for env in PRESETS {
        let t = threshold(env);
        let mut refused = 0;
        for seed in 0..SEEDS {
            let r = simulate(env, &[(2000, t + 0.1)], seed).await;
            refused += r.iter().filter(|r| **r).count();
        }
        let share = refused as f64 / (2000 * SEEDS) as f64;
        eprintln!(
            "{env:?}: success rate {:.2}: {:.3}% of calls refused",
            t + 0.1,
            share * 100.0
        );
        assert!(share <= 0.01, "{env:?}: {share} of healthy calls refused");
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_dependency_is_held_back_within_20_calls() {
    for env in PRESETS {
        let t = threshold(env);
        let mut worst = 0;
        for seed in 0..SEEDS {
            let r = simulate(env, &[(300, t + 0.1), (40, 0.0)], seed).await;
            let after = held_back_after(&r, 300).expect("held back");
            worst = worst.max(after);
        }
        eprintln!("{env:?}: dead dependency held back after at most {worst} calls");
        assert!(worst <= 20, "{env:?}: {worst} calls");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_dependency_is_held_back_within_50_calls_on_average() {
    for env in PRESETS {
        let t = threshold(env);
        let mut delays = Vec::new();
        for seed in 0..SEEDS {
            let r = simulate(env, &[(300, t + 0.1), (300, t - 0.2)], seed).await;
            delays.push(held_back_after(&r, 300).expect("held back"));
        }
        let mean = delays.iter().sum::<usize>() as f64 / delays.len() as f64;
        delays.sort_unstable();
        eprintln!(
            "{env:?}: success rate {:.2}: held back after {mean:.1} calls on average (slowest {})",
            t - 0.2,
            delays[delays.len() - 1]
        );
        assert!(mean <= 50.0, "{env:?}: {mean} calls on average");
    }
}

#[tokio::test(start_paused = true)]
async fn a_healed_dependency_is_served_after_the_break_and_its_probes() {
    for env in PRESETS {
        let config = Config::for_environment(env);
        let t = config.confidence_threshold;
        let break_calls =
            usize::try_from(config.break_duration.as_millis() / CALL_EVERY.as_millis()).unwrap();
        let bound = break_calls + config.half_open_probes as usize;
        for seed in 0..SEEDS {
            let r = simulate(env, &[(300, t + 0.1), (40, 0.0), (200, 1.0)], seed).await;
            // Once healed, refusals end within the break plus the probes.
            let last_refused = r[340..].iter().rposition(|r| *r).map_or(0, |i| i + 1);
            assert!(
                last_refused <= bound,
                "{env:?}, seed {seed}: refused until call {last_refused} of the healed dependency"
            );
            assert!(r[340 + bound..].iter().all(|r| !r), "{env:?}: served again");
        }
        eprintln!(
            "{env:?}: healed dependency served again within {bound} calls ({break_calls} of break, {} probes)",
            config.half_open_probes
        );
    }
}

/// The service of the issue: production preset, 1 % of calls failing,
/// 100 calls a second for 30 s.
#[tokio::test(start_paused = true)]
async fn a_service_with_one_percent_failures_is_not_refused() {
    let ndf = Ndf::builder()
        .config(Config::for_environment(Environment::Production))
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let dependency = Dependency {
        rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(7))),
        p: Arc::new(Mutex::new(0.99)),
    };
    let flow = sequential!(name = "shop.checkout"; call_dependency);
    let ctx = PatternContext::new("shop");
    let (mut refused, mut failed) = (0, 0);
    for _ in 0..3000 {
        match ndf.run(&flow, dependency.clone(), &ctx).await {
            Err(ndf::Error::ConfidenceThreshold { .. }) => refused += 1,
            Err(_) => failed += 1,
            Ok(()) => {}
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("production, 1% failures, 3000 calls in 30 s: {failed} failed, {refused} refused");
    assert!(failed > 0, "the failures were injected");
    assert!(refused <= 30, "{refused} of 3000 calls refused");
}
