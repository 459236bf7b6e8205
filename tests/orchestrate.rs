//! `orchestrate!`: phase chaining, phase conditions, and each rollback
//! level's compensation order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Trace;
use ndf::prelude::*;

#[derive(Clone, Debug, Default)]
struct Migration {
    trace: Trace,
    fail_at: &'static str,
    /// Attempts of `flaky_migration` that fail before one succeeds.
    flaky_failures: u32,
    attempts: Arc<AtomicU32>,
    /// Extra time `data_migration` takes.
    slow_ms: u64,
}

impl Migration {
    fn step(self, name: &'static str) -> Result<Self, StepError> {
        if self.fail_at == name {
            self.trace.push(format!("{name} failed"));
            return Err(StepError::msg(format!("{name} failed")));
        }
        self.trace.push(name);
        Ok(self)
    }
}

macro_rules! steps {
    ($($step:ident undone by $undo:ident),* $(,)?) => {$(
        #[pattern(compensate = $undo)]
        async fn $step(m: Migration) -> Result<Migration, StepError> {
            m.step(stringify!($step))
        }

        #[pattern]
        async fn $undo(m: Migration) {
            m.trace.push(stringify!($undo));
        }
    )*};
}

steps!(
    system_analysis undone by forget_analysis,
    dependency_mapping undone by forget_mapping,
    service_migration undone by restore_services,
    integration_testing undone by discard_test_env,
    security_audit undone by reopen_findings,
);

#[pattern(compensate = restore_data)]
async fn data_migration(m: Migration) -> Result<Migration, StepError> {
    tokio::time::sleep(Duration::from_millis(10 + m.slow_ms)).await;
    m.step("data_migration")
}

#[pattern]
async fn restore_data(m: Migration) {
    m.trace.push("restore_data");
}

#[pattern(retry(max = 3, initial = "10ms", jitter = false), compensate = restore_flaky)]
async fn flaky_migration(m: Migration) -> Result<Migration, StepError> {
    let n = m.attempts.fetch_add(1, Ordering::SeqCst);
    if n < m.flaky_failures {
        return Err(StepError::msg("lock timeout"));
    }
    m.step("flaky_migration")
}

#[pattern]
async fn restore_flaky(m: Migration) {
    m.trace.push("restore_flaky");
}

#[pattern]
async fn merge_migrations(parts: (Migration, Migration)) -> Migration {
    parts.0
}

fn migration(fail_at: &'static str) -> Migration {
    Migration {
        fail_at,
        ..Migration::default()
    }
}

fn ctx() -> PatternContext {
    PatternContext::new("deployment")
}

#[tokio::test(start_paused = true)]
async fn phases_run_in_order_and_chain_their_outputs() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.enterprise_migration";
        assessment: sequential!(system_analysis => dependency_mapping);
        migration: sequential!(parallel!(data_migration, service_migration) => merge_migrations);
        validation: sequential!(integration_testing => security_audit));
    let m = migration("");
    ndf.run(&flow, m.clone(), &ctx()).await.unwrap();
    let events = m.trace.events();
    assert_eq!(&events[..2], ["system_analysis", "dependency_mapping"]);
    let mut migrated = events[2..4].to_vec();
    migrated.sort();
    assert_eq!(migrated, ["data_migration", "service_migration"]);
    assert_eq!(&events[4..], ["integration_testing", "security_audit"]);
    assert_eq!(
        flow.shape().phases,
        ["assessment", "migration", "validation"]
    );
    assert_eq!(flow.shape().parallel_groups, 1);
}

#[tokio::test(start_paused = true)]
async fn workflow_level_rollback_compensates_every_completed_step_last_first() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.full_rollback", rollback = workflow_level;
        assessment: sequential!(system_analysis => dependency_mapping);
        migration: sequential!(service_migration);
        validation: sequential!(integration_testing => security_audit));
    let m = migration("security_audit");
    let err = ndf.run(&flow, m.clone(), &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::Execution { step, .. } if step == "security_audit"),
        "{err}"
    );
    assert_eq!(
        m.trace.events(),
        [
            "system_analysis",
            "dependency_mapping",
            "service_migration",
            "integration_testing",
            "security_audit failed",
            "discard_test_env",
            "restore_services",
            "forget_mapping",
            "forget_analysis",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn phase_level_rollback_compensates_the_failed_phase_only() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.phase_rollback", rollback = phase_level;
        assessment: sequential!(system_analysis => dependency_mapping);
        migration: sequential!(service_migration);
        validation: sequential!(integration_testing => security_audit));
    let m = migration("security_audit");
    ndf.run(&flow, m.clone(), &ctx()).await.unwrap_err();
    assert_eq!(
        m.trace.events(),
        [
            "system_analysis",
            "dependency_mapping",
            "service_migration",
            "integration_testing",
            "security_audit failed",
            "discard_test_env",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_phase_above_its_error_rate_is_rolled_back() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.error_rate", rollback = phase_level;
        assessment: sequential!(system_analysis);
        migration: sequential!(flaky_migration), rollback_if(error_rate > 0.3));
    let m = Migration {
        flaky_failures: 1,
        ..Migration::default()
    };
    let err = ndf.run(&flow, m.clone(), &ctx()).await.unwrap_err();
    match &err {
        ndf::Error::RolledBack { phase, reason, .. } => {
            assert_eq!(phase, "migration");
            assert!(reason.contains("error rate 0.50"), "{reason}");
        }
        other => panic!("expected RolledBack, got {other:?}"),
    }
    // The phase completed after a retry, then was undone; assessment stays.
    assert_eq!(
        m.trace.events(),
        ["system_analysis", "flaky_migration", "restore_flaky"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_phase_within_its_error_rate_passes() {
    let ndf = common::ndf();
    let flow = orchestrate!(
        assessment: sequential!(system_analysis);
        migration: sequential!(flaky_migration), rollback_if(error_rate > 0.6));
    let m = Migration {
        flaky_failures: 1,
        ..Migration::default()
    };
    ndf.run(&flow, m.clone(), &ctx()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn success_min_success_rolls_back_a_phase_with_too_many_failed_tasks() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.partial";
        assessment: sequential!(system_analysis);
        migration: parallel!(min_success = 1; data_migration, service_migration), success(min_success = 0.75));
    let m = migration("service_migration");
    let err = ndf.run(&flow, m.clone(), &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::RolledBack { reason, .. } if reason.contains("1 of 2 steps succeeded")),
        "{err}"
    );
    // workflow_level by default: the migration phase's completed task, then assessment.
    let events = m.trace.events();
    assert_eq!(
        &events[events.len() - 2..],
        ["restore_data", "forget_analysis"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_phase_much_slower_than_its_median_is_rolled_back() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "deployment.slowdown", rollback = phase_level;
        assessment: sequential!(system_analysis);
        migration: sequential!(data_migration), rollback_if(slowdown > 0.5));
    for _ in 0..5 {
        ndf.run(&flow, migration(""), &ctx()).await.unwrap();
    }
    // Twice as slow as the learned median of 10 ms.
    let slow = Migration {
        slow_ms: 10,
        ..Migration::default()
    };
    let err = ndf.run(&flow, slow.clone(), &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::RolledBack { reason, .. } if reason.contains("slower than its median")),
        "{err}"
    );
    assert_eq!(
        slow.trace.events(),
        ["system_analysis", "data_migration", "restore_data"]
    );
}

/// A phase step that takes `micros` microseconds of the paused clock, and
/// its compensation, which counts rollbacks.
#[pattern(compensate = unwarm)]
async fn warm_cache(micros: u64) -> u64 {
    tokio::time::advance(std::time::Duration::from_micros(micros)).await;
    micros
}

static UNWARMED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[pattern]
async fn unwarm(_micros: u64) {
    UNWARMED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

#[pattern]
async fn serve(micros: u64) -> u64 {
    micros
}

#[tokio::test(start_paused = true)]
async fn sub_millisecond_jitter_of_a_fast_phase_is_no_slowdown() {
    let ndf = common::ndf();
    let flow = orchestrate!(name = "cache.warm", rollback = phase_level;
        warm: sequential!(warm_cache), rollback_if(slowdown > 0.5);
        serve: sequential!(serve));
    // A phase of a few microseconds, with the hiccups a scheduler adds:
    // up to 300 times its median, all under a millisecond.
    for i in 0..1_000_u64 {
        let micros = match i % 97 {
            0 => 900,
            1 | 2 => 150 + i % 50,
            _ => 2 + i % 3,
        };
        ndf.run(&flow, micros, &ctx()).await.unwrap();
    }
    assert_eq!(UNWARMED.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A real stall of it is still rolled back.
    let err = ndf.run(&flow, 5_000, &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::RolledBack { reason, .. } if reason.contains("slower than its median")),
        "{err}"
    );
    assert_eq!(UNWARMED.load(std::sync::atomic::Ordering::SeqCst), 1);
}
