//! `sequential!` feeds each output to the next input, nests, and names itself.

mod common;

use ndf::prelude::*;

#[derive(Clone, Debug, PartialEq)]
struct RawRecord {
    id: u32,
    payload: String,
}

#[derive(Debug, PartialEq)]
struct ValidRecord {
    id: u32,
    fields: Vec<String>,
}

#[derive(Debug, PartialEq)]
struct Row {
    id: u32,
    columns: usize,
}

#[pattern(domain = "data_processing")]
async fn validate_input(raw: RawRecord) -> Result<ValidRecord, StepError> {
    if raw.payload.is_empty() {
        return Err(StepError::msg(format!("record {} is empty", raw.id)));
    }
    Ok(ValidRecord {
        id: raw.id,
        fields: raw.payload.split(',').map(str::to_owned).collect(),
    })
}

#[pattern]
async fn transform_data(v: ValidRecord, ctx: &PatternContext) -> Row {
    assert_eq!(ctx.domain(), "data_processing");
    Row {
        id: v.id,
        columns: v.fields.len(),
    }
}

#[pattern]
async fn count_columns(row: Row) -> usize {
    row.columns
}

#[tokio::test]
async fn outputs_feed_the_next_stage_in_order() {
    let ndf = common::ndf();
    let etl = sequential!(name = "data_processing.etl"; validate_input => transform_data => count_columns);
    let ctx = PatternContext::new("data_processing");
    let raw = RawRecord {
        id: 7,
        payload: "a,b,c".into(),
    };
    assert_eq!(ndf.run(&etl, raw, &ctx).await.unwrap(), 3);
}

#[tokio::test]
async fn a_failing_stage_stops_the_chain_and_names_the_step() {
    let ndf = common::ndf();
    let etl = sequential!(name = "data_processing.etl"; validate_input => transform_data);
    let ctx = PatternContext::new("data_processing");
    let err = ndf
        .run(
            &etl,
            RawRecord {
                id: 9,
                payload: String::new(),
            },
            &ctx,
        )
        .await
        .unwrap_err();
    match &err {
        ndf::Error::Execution {
            pattern,
            step,
            source,
        } => {
            assert_eq!(pattern, "data_processing.etl");
            assert_eq!(step, "validate_input");
            assert_eq!(source.to_string(), "record 9 is empty");
        }
        other => panic!("expected Execution, got {other:?}"),
    }
    // transform_data never ran.
    assert!(ndf.stats("transform_data", "data_processing").is_none());
    assert_eq!(
        ndf.stats("validate_input", "data_processing")
            .unwrap()
            .failures,
        1
    );
}

#[tokio::test]
async fn nested_workflows_run_inline_in_order() {
    let ndf = common::ndf();
    let flow = sequential!(name = "data_processing.nested";
        sequential!(validate_input => transform_data) => sequential!(count_columns));
    let ctx = PatternContext::new("data_processing");
    let out = ndf
        .run(
            &flow,
            RawRecord {
                id: 1,
                payload: "x,y".into(),
            },
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(out, 2);
}

#[tokio::test]
async fn unnamed_workflows_are_named_after_their_stages() {
    let flow = sequential!(validate_input => sequential!(transform_data => count_columns));
    assert_eq!(flow.name(), "validate_input>transform_data>count_columns");
    assert!(!flow.is_named());
    let named = sequential!(name = "data_processing.etl"; validate_input);
    assert_eq!(named.name(), "data_processing.etl");
    assert!(named.is_named());
}

#[tokio::test]
async fn the_step_fn_stays_callable_as_written() {
    let valid = validate_input(RawRecord {
        id: 2,
        payload: "q".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        valid,
        ValidRecord {
            id: 2,
            fields: vec!["q".into()]
        }
    );
}

#[tokio::test]
async fn runs_learn_per_pattern_and_domain() {
    let ndf = common::ndf();
    let etl = sequential!(name = "data_processing.learned"; validate_input => transform_data);
    let ctx = PatternContext::new("data_processing");
    for id in 0..3 {
        ndf.run(
            &etl,
            RawRecord {
                id,
                payload: "a".into(),
            },
            &ctx,
        )
        .await
        .unwrap();
    }
    let stats = ndf
        .stats("data_processing.learned", "data_processing")
        .unwrap();
    assert_eq!(
        (stats.executions, stats.successes, stats.failures),
        (3, 3, 0)
    );
    assert_eq!(stats.success_rate(), Some(1.0));
    assert!(
        ndf.stats("data_processing.learned", "other_domain")
            .is_none()
    );
}

#[tokio::test]
async fn workflow_futures_are_send_and_spawnable() {
    let ndf = common::ndf();
    let handle = tokio::spawn(async move {
        let etl = sequential!(name = "data_processing.spawned"; validate_input => transform_data => count_columns);
        let ctx = PatternContext::new("data_processing");
        ndf.run(
            &etl,
            RawRecord {
                id: 3,
                payload: "1,2,3,4".into(),
            },
            &ctx,
        )
        .await
    });
    assert_eq!(handle.await.unwrap().unwrap(), 4);
}

#[tokio::test]
async fn learning_survives_in_the_store_across_runtimes() {
    let store = MemoryStore::new();
    let etl = sequential!(name = "data_processing.persisted"; validate_input);
    let ctx = PatternContext::new("data_processing");
    {
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .store(store.clone())
            .build()
            .unwrap();
        ndf.run(
            &etl,
            RawRecord {
                id: 1,
                payload: "a".into(),
            },
            &ctx,
        )
        .await
        .unwrap();
        ndf.shutdown().await.unwrap();
    }
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store)
        .build()
        .unwrap();
    ndf.run(
        &etl,
        RawRecord {
            id: 2,
            payload: "b".into(),
        },
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(
        ndf.stats("data_processing.persisted", "data_processing")
            .unwrap()
            .executions,
        2
    );
}
