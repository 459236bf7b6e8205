//! `degrade!`: alternatives in order of preference; a failure moves to the
//! next; the level that served is recorded.

mod common;

use common::Trace;
use ndf::prelude::*;

#[derive(Clone, Debug, Default)]
struct Request {
    trace: Trace,
    /// Alternatives that fail.
    broken: Vec<&'static str>,
}

impl Request {
    fn try_level(&self, name: &'static str, quality: u8) -> Result<(u8, Trace), StepError> {
        self.trace.push(name);
        if self.broken.contains(&name) {
            Err(StepError::msg(format!("{name} is unavailable")))
        } else {
            Ok((quality, self.trace.clone()))
        }
    }
}

#[pattern]
async fn deep_analysis(r: Request) -> Result<(u8, Trace), StepError> {
    r.try_level("deep_analysis", 3)
}

#[pattern]
async fn standard_analysis(r: Request) -> Result<(u8, Trace), StepError> {
    r.try_level("standard_analysis", 2)
}

#[pattern(compensate = forget_basic)]
async fn basic_analysis(r: Request) -> Result<(u8, Trace), StepError> {
    r.try_level("basic_analysis", 1)
}

#[pattern]
async fn forget_basic(out: (u8, Trace)) {
    out.1.push("forget_basic");
}

#[pattern]
async fn publish(out: (u8, Trace)) -> Result<u8, StepError> {
    out.1.push("publish");
    Err(StepError::msg("publisher down"))
}

fn request(broken: &[&'static str]) -> Request {
    Request {
        broken: broken.to_vec(),
        ..Request::default()
    }
}

#[tokio::test]
async fn the_preferred_alternative_serves_when_it_works() {
    let ndf = common::ndf();
    let flow =
        degrade!(name = "analysis.complex"; deep_analysis | standard_analysis | basic_analysis);
    let r = request(&[]);
    let (quality, _) = ndf
        .run(&flow, r.clone(), &PatternContext::new("analysis"))
        .await
        .unwrap();
    assert_eq!(quality, 3);
    assert_eq!(r.trace.events(), ["deep_analysis"]);
    let stats = ndf.stats("analysis.complex", "analysis").unwrap();
    assert_eq!((stats.executions, stats.degradations), (1, 0));
}

#[tokio::test]
async fn failures_move_down_the_chain_in_order() {
    let ndf = common::ndf();
    let flow =
        degrade!(name = "analysis.complex"; deep_analysis | standard_analysis | basic_analysis);
    let r = request(&["deep_analysis", "standard_analysis"]);
    let (quality, _) = ndf
        .run(&flow, r.clone(), &PatternContext::new("analysis"))
        .await
        .unwrap();
    assert_eq!(quality, 1);
    assert_eq!(
        r.trace.events(),
        ["deep_analysis", "standard_analysis", "basic_analysis"]
    );
    let stats = ndf.stats("analysis.complex", "analysis").unwrap();
    assert_eq!((stats.successes, stats.degradations), (1, 1));
    assert_eq!(ndf.stats("deep_analysis", "analysis").unwrap().failures, 1);
}

#[tokio::test]
async fn when_every_alternative_fails_the_last_error_is_returned() {
    let ndf = common::ndf();
    let flow = degrade!(name = "analysis.complex"; deep_analysis | basic_analysis);
    let r = request(&["deep_analysis", "basic_analysis"]);
    let err = ndf
        .run(&flow, r, &PatternContext::new("analysis"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::Execution { step, .. } if step == "basic_analysis"),
        "{err}"
    );
    assert_eq!(
        ndf.stats("analysis.complex", "analysis").unwrap().failures,
        1
    );
}

#[tokio::test]
async fn a_chain_that_no_alternative_served_is_not_counted_as_degraded() {
    let ndf = common::ndf();
    // Once at the top (the chain is the workflow), once nested in a sequence.
    let top = degrade!(name = "analysis.complex"; deep_analysis | basic_analysis);
    let nested = sequential!(name = "analysis.outer"; degrade!(deep_analysis | basic_analysis));
    let ctx = PatternContext::new("analysis");
    let both_fail = || request(&["deep_analysis", "basic_analysis"]);
    ndf.run(&top, both_fail(), &ctx).await.unwrap_err();
    ndf.run(&nested, both_fail(), &ctx).await.unwrap_err();
    for name in ["analysis.complex", "deep_analysis|basic_analysis"] {
        let stats = ndf.stats(name, "analysis").unwrap();
        assert_eq!(
            (stats.failures, stats.degradations),
            (1, 0),
            "{name}: nothing served, below the preferred level or otherwise"
        );
    }
}

#[tokio::test]
async fn the_alternative_that_served_is_compensated_when_a_later_stage_fails() {
    let ndf = common::ndf();
    let flow =
        sequential!(name = "analysis.publish"; degrade!(deep_analysis | basic_analysis) => publish);
    let r = request(&["deep_analysis"]);
    ndf.run(&flow, r.clone(), &PatternContext::new("analysis"))
        .await
        .unwrap_err();
    assert_eq!(
        r.trace.events(),
        ["deep_analysis", "basic_analysis", "publish", "forget_basic"]
    );
}

#[tokio::test]
async fn an_unnamed_chain_is_named_after_its_alternatives() {
    let flow = degrade!(deep_analysis | standard_analysis);
    assert_eq!(flow.name(), "deep_analysis|standard_analysis");
    let shape = flow.shape();
    assert_eq!(
        (shape.degradation_chains, shape.steps, shape.complexity),
        (1, 2, 4)
    );
}

struct Saturated;

impl ndf::ResourceProbe for Saturated {
    fn sample(&self) -> ndf::ResourceUsage {
        ndf::ResourceUsage {
            cpu: 0.97,
            memory: 0.5,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_saturated_machine_skips_to_the_last_level() {
    let ndf = Ndf::builder().resource_probe(Saturated).build().unwrap();
    let flow =
        degrade!(name = "analysis.complex"; deep_analysis | standard_analysis | basic_analysis);
    let r = request(&[]);
    let (quality, _) = ndf
        .run(&flow, r.clone(), &PatternContext::new("analysis"))
        .await
        .unwrap();
    assert_eq!(quality, 1);
    assert_eq!(
        r.trace.events(),
        ["basic_analysis"],
        "the costly levels never ran"
    );
    assert_eq!(
        ndf.stats("analysis.complex", "analysis")
            .unwrap()
            .degradations,
        1
    );
}
