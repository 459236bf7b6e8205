//! Registering workflows by name and running them dynamically.

mod common;

use ndf::prelude::*;

#[pattern]
async fn parse(text: String) -> Result<u32, StepError> {
    Ok(text.trim().parse()?)
}

#[pattern]
async fn double(x: u32) -> u32 {
    x * 2
}

fn ctx() -> PatternContext {
    PatternContext::new("math")
}

#[tokio::test]
async fn a_registered_workflow_runs_by_name() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.parse_and_double"; parse => double))
        .unwrap();
    let out: u32 = ndf
        .run_named("math.parse_and_double", " 21 ".to_owned(), &ctx())
        .await
        .unwrap();
    assert_eq!(out, 42);
    assert_eq!(
        ndf.stats("math.parse_and_double", "math")
            .unwrap()
            .executions,
        1
    );
}

#[tokio::test]
async fn an_unknown_name_suggests_the_nearest_registered_ones() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.parse_and_double"; parse => double))
        .unwrap();
    ndf.register(sequential!(name = "math.double"; double))
        .unwrap();
    let err = ndf
        .run_named::<String, u32>("math.parse_and_dubble", "1".into(), &ctx())
        .await
        .unwrap_err();
    match &err {
        ndf::Error::PatternNotFound { name, suggestions } => {
            assert_eq!(name, "math.parse_and_dubble");
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("math.parse_and_double")
            );
        }
        other => panic!("expected PatternNotFound, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("did you mean `math.parse_and_double`"),
        "{err}"
    );
}

#[tokio::test]
async fn wrong_types_are_a_type_mismatch_naming_both_signatures() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.double"; double))
        .unwrap();
    let err = ndf
        .run_named::<String, u32>("math.double", "2".into(), &ctx())
        .await
        .unwrap_err();
    match err {
        ndf::Error::TypeMismatch {
            name,
            expected,
            found,
        } => {
            assert_eq!(name, "math.double");
            assert_eq!(expected, "u32 -> u32");
            assert_eq!(found, "alloc::string::String -> u32");
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    let err = ndf
        .run_named::<u32, String>("math.double", 2, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ndf::Error::TypeMismatch { .. }), "{err}");
}

#[tokio::test]
async fn a_name_is_registered_once() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.double"; double))
        .unwrap();
    let err = ndf
        .register(sequential!(name = "math.double"; double => double))
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::DuplicatePattern { name } if name == "math.double"),
        "{err}"
    );
}

#[tokio::test]
async fn unnamed_workflows_cannot_be_registered() {
    let ndf = common::ndf();
    let err = ndf.register(sequential!(double)).unwrap_err();
    assert!(
        err.to_string()
            .contains("only a workflow with a `name` can be registered"),
        "{err}"
    );
    assert!(ndf.registered().is_empty());
}

#[tokio::test]
async fn the_domain_index_lists_workflows_by_first_segment() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.double"; double))
        .unwrap();
    ndf.register(sequential!(name = "math.parse"; parse))
        .unwrap();
    ndf.register(sequential!(name = "text.parse"; parse))
        .unwrap();
    assert_eq!(ndf.by_domain("math"), ["math.double", "math.parse"]);
    assert_eq!(ndf.by_domain("text"), ["text.parse"]);
    assert!(ndf.by_domain("ops").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_named_futures_are_send() {
    let ndf = common::ndf();
    ndf.register(sequential!(name = "math.double"; double))
        .unwrap();
    let out =
        tokio::spawn(async move { ndf.run_named::<u32, u32>("math.double", 4, &ctx()).await });
    assert_eq!(out.await.unwrap().unwrap(), 8);
}
