//! Permissions are checked before any step runs.

mod common;

use common::Trace;
use ndf::prelude::*;

#[pattern]
async fn plan_release(t: Trace) -> Trace {
    t.push("plan_release");
    t
}

#[pattern(permissions = ["deploy"])]
async fn deploy(t: Trace) -> Trace {
    t.push("deploy");
    t
}

#[pattern(permissions = ["deploy", "db_admin"])]
async fn migrate_schema(t: Trace) -> Trace {
    t.push("migrate_schema");
    t
}

#[tokio::test]
async fn a_missing_permission_runs_nothing() {
    let ndf = common::ndf();
    let flow = sequential!(name = "deployment.release"; plan_release => deploy => migrate_schema);
    let trace = Trace::default();
    let ctx = PatternContext::new("deployment").permissions(["deploy"]);
    let err = ndf.run(&flow, trace.clone(), &ctx).await.unwrap_err();
    match &err {
        ndf::Error::PermissionDenied { pattern, missing } => {
            assert_eq!(pattern, "deployment.release");
            assert_eq!(missing, &["db_admin"]);
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "pattern `deployment.release` needs permission `db_admin` that the context does not grant; nothing was run"
    );
    assert!(
        trace.events().is_empty(),
        "not even the first step ran: {:?}",
        trace.events()
    );
    assert!(ndf.stats("plan_release", "deployment").is_none());
}

#[tokio::test]
async fn every_missing_permission_is_listed_once() {
    let ndf = common::ndf();
    let flow = sequential!(deploy => migrate_schema);
    let err = ndf
        .run(&flow, Trace::default(), &PatternContext::new("deployment"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ndf::Error::PermissionDenied { missing, .. } if missing == ["deploy", "db_admin"])
    );
}

#[tokio::test]
async fn granted_permissions_let_the_workflow_run() {
    let ndf = common::ndf();
    let flow = sequential!(plan_release => deploy => migrate_schema);
    let trace = Trace::default();
    let ctx = PatternContext::new("deployment").permissions(["deploy", "db_admin"]);
    ndf.run(&flow, trace.clone(), &ctx).await.unwrap();
    assert_eq!(trace.events(), ["plan_release", "deploy", "migrate_schema"]);
}
