//! Workflows as values: a workflow is `Copy` and `'static`, named as
//! `impl Workflow<…>` or erased as `DynWorkflow<I, O>`, and shared with
//! spawned tasks as an app's state shares it with its handlers.

use std::sync::Arc;

use ndf::DynWorkflow;
use ndf::prelude::*;

#[pattern]
async fn double(n: u32) -> u32 {
    n * 2
}

#[pattern]
async fn square(n: u32) -> u32 {
    n * n
}

#[pattern]
async fn inc(n: u32) -> u32 {
    n + 1
}

/// A workflow built once, its type named by what it does.
fn pricing() -> impl Workflow<Input = u32, Output = u32> + Copy {
    sequential!(name = "pricing.double_inc"; double => inc)
}

/// What handlers share: the runtime and workflows of one signature.
#[derive(Clone)]
struct AppState {
    ndf: Ndf,
    by_plan: Arc<Vec<(&'static str, DynWorkflow<u32, u32>)>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_of_one_signature_live_in_one_vec_and_serve_spawned_tasks() {
    let state = AppState {
        ndf: Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .build()
            .unwrap(),
        by_plan: Arc::new(vec![
            ("basic", DynWorkflow::new(pricing())),
            (
                "pro",
                DynWorkflow::new(sequential!(name = "pricing.square"; square)),
            ),
        ]),
    };
    let mut handlers = Vec::new();
    for n in 1..=4u32 {
        let state = state.clone();
        handlers.push(tokio::spawn(async move {
            let ctx = PatternContext::new("pricing");
            let mut out = Vec::new();
            for (plan, flow) in state.by_plan.iter() {
                out.push((*plan, flow.run(&state.ndf, n, &ctx).await.unwrap()));
            }
            out
        }));
    }
    let mut results = Vec::new();
    for handler in handlers {
        results.push(handler.await.unwrap());
    }
    assert_eq!(results[2], [("basic", 7), ("pro", 9)]);
    let basic = state.ndf.stats("pricing.double_inc", "pricing").unwrap();
    assert_eq!(basic.executions, 4, "every run learned under its own name");
    assert_eq!(state.by_plan[1].1.name(), "pricing.square");
}

#[tokio::test]
async fn a_workflow_value_is_copied_into_spawned_tasks() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = pricing();
    let mut tasks = Vec::new();
    for n in 0..3u32 {
        let ndf = ndf.clone();
        // `flow` is `Copy`: each task takes its own, no `Arc`, no clone.
        tasks.push(tokio::spawn(async move {
            ndf.run(&flow, n, &PatternContext::new("pricing")).await
        }));
    }
    for (n, task) in (0u32..).zip(tasks) {
        assert_eq!(task.await.unwrap().unwrap(), 2 * n + 1);
    }
    assert_eq!(
        ndf.run(&flow, 10, &PatternContext::new("pricing"))
            .await
            .unwrap(),
        21
    );
}
