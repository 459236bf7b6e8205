//! An enterprise system migration in the shape of the guide's
//! `enterprise_system_migration`: assessment → migration → validation, with
//! rollback triggers on the validation phase.
//!
//! The first run migrates cleanly. The second finds a failing security audit
//! in validation: with `rollback = phase_level`, validation's completed steps
//! are compensated and the error is returned.
//!
//! Run it with `cargo run --example migration`.

use std::time::Duration;

use ndf::prelude::*;

/// The state of a migration, handed from step to step.
#[derive(Clone, Debug, Default)]
struct Plan {
    system: &'static str,
    services: Vec<&'static str>,
    risk: &'static str,
    audit_finds_issue: bool,
}

#[derive(Debug, thiserror::Error)]
enum MigrationError {
    #[error("security audit failed: {0}")]
    Audit(&'static str),
}

async fn work(what: &str, ms: u64) {
    println!("    {what}");
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[pattern(domain = "deployment")]
async fn system_analysis(plan: Plan) -> Plan {
    work(&format!("analysing {}", plan.system), 30).await;
    Plan {
        services: vec!["billing", "orders", "inventory"],
        ..plan
    }
}

#[pattern(domain = "deployment")]
async fn dependency_mapping(plan: Plan) -> Plan {
    work(
        &format!("mapping dependencies of {} services", plan.services.len()),
        20,
    )
    .await;
    plan
}

#[pattern(domain = "deployment", confidence_threshold = 0.9)]
async fn risk_assessment(plan: Plan) -> Plan {
    work("assessing risk: medium (one stateful service)", 10).await;
    Plan {
        risk: "medium",
        ..plan
    }
}

#[pattern(domain = "deployment", timeout = "5m", retries = 2, compensate = restore_data)]
async fn data_migration(plan: Plan) -> Plan {
    work("copying 1.2 TB of order history", 60).await;
    plan
}

#[pattern]
async fn restore_data(plan: Plan) {
    println!("    rollback: restoring data of {}", plan.system);
}

#[pattern(domain = "deployment", compensate = restore_services)]
async fn service_migration(plan: Plan) -> Plan {
    work(&format!("moving services {:?}", plan.services), 40).await;
    plan
}

#[pattern]
async fn restore_services(plan: Plan) {
    println!(
        "    rollback: pointing {:?} back at the old cluster",
        plan.services
    );
}

#[pattern(domain = "deployment", compensate = restore_integrations)]
async fn integration_migration(plan: Plan) -> Plan {
    work("re-registering webhooks and queues", 30).await;
    plan
}

#[pattern]
async fn restore_integrations(plan: Plan) {
    println!("    rollback: restoring webhooks of {}", plan.system);
}

#[pattern]
async fn merge_migrations(parts: (Plan, Plan, Plan)) -> Plan {
    parts.0
}

#[pattern(domain = "deployment", compensate = tear_down_test_env)]
async fn integration_testing(plan: Plan) -> Plan {
    work("running 412 integration tests against the new cluster", 50).await;
    plan
}

#[pattern]
async fn tear_down_test_env(plan: Plan) {
    println!(
        "    rollback: tearing down the test environment of {}",
        plan.system
    );
}

#[pattern(domain = "deployment", compensate = reset_baselines)]
async fn performance_validation(plan: Plan) -> Plan {
    work("p99 latency 41 ms (baseline 45 ms)", 30).await;
    plan
}

#[pattern]
async fn reset_baselines(plan: Plan) {
    println!(
        "    rollback: resetting performance baselines of {}",
        plan.system
    );
}

#[pattern(domain = "deployment", permissions = ["security_review"])]
async fn security_audit(plan: Plan) -> Result<Plan, MigrationError> {
    work("auditing exposed ports and IAM policies", 20).await;
    if plan.audit_finds_issue {
        return Err(MigrationError::Audit("port 5432 open to 0.0.0.0/0"));
    }
    Ok(plan)
}

#[tokio::main]
async fn main() -> Result<(), ndf::Error> {
    let ndf = Ndf::builder().build()?;
    let migration = orchestrate!(name = "deployment.enterprise_migration", rollback = phase_level;
        assessment: sequential!(system_analysis => dependency_mapping => risk_assessment);
        migration: sequential!(
            parallel!(max_concurrent = 3; data_migration, service_migration, integration_migration)
            => merge_migrations);
        validation: sequential!(integration_testing => performance_validation => security_audit),
                    rollback_if(error_rate > 0.05, slowdown > 0.2));

    let shape = migration.shape();
    println!(
        "{}: phases {:?}, {} steps, complexity {}",
        migration.name(),
        shape.phases,
        shape.steps,
        shape.complexity
    );
    let ctx = PatternContext::new("deployment")
        .priority(Priority::Critical)
        .permissions(["security_review"]);

    println!("\nrun 1: legacy-erp");
    let plan = Plan {
        system: "legacy-erp",
        ..Plan::default()
    };
    let done = ndf.run(&migration, plan, &ctx).await?;
    println!("  migrated {} (risk {})", done.system, done.risk);

    println!("\nrun 2: legacy-crm (the security audit finds an open port)");
    let plan = Plan {
        system: "legacy-crm",
        audit_finds_issue: true,
        ..Plan::default()
    };
    match ndf.run(&migration, plan, &ctx).await {
        Ok(_) => println!("  unexpectedly migrated"),
        Err(e) => println!(
            "  {e}\n  assessment and migration stay done; validation was rolled back (phase_level)"
        ),
    }

    println!("\nrun 3: without the `security_review` permission nothing runs");
    let plan = Plan {
        system: "legacy-hr",
        ..Plan::default()
    };
    if let Err(e) = ndf
        .run(&migration, plan, &PatternContext::new("deployment"))
        .await
    {
        println!("  {e}");
    }

    let stats = ndf.stats(migration.name(), "deployment").expect("recorded");
    println!(
        "\n{}: {} runs, {} succeeded, {} failed",
        migration.name(),
        stats.executions,
        stats.successes,
        stats.failures
    );
    ndf.shutdown().await
}
