//! A workflow of more than 12 steps polls each step in a call of its own
//! (the runtime's `Outlined`), not inlined into its own poll: a long
//! sequence runs, waits, retries and compensates as a short one does.

mod common;

use std::time::Duration;

use common::Trace;
use ndf::prelude::*;

/// What the steps carry: a value each step changes in its own way (so the
/// output says the steps ran, each once, in order), and the trace.
#[derive(Clone, Debug, Default)]
struct Work {
    value: u64,
    trace: Trace,
    fail_at: u64,
}

impl Work {
    fn step(mut self, name: &str, k: u64) -> Result<Self, StepError> {
        self.value = self.value.wrapping_mul(3).wrapping_add(k);
        if self.value == self.fail_at {
            self.trace.push(format!("{name} failed"));
            return Err(StepError::msg(format!("{name} failed")));
        }
        self.trace.push(name);
        Ok(self)
    }
}

#[pattern]
async fn add_one(w: Work) -> Result<Work, StepError> {
    w.step("add_one", 1)
}

/// Waits before it completes: its run is polled again after `Pending`.
#[pattern]
async fn add_two_later(w: Work) -> Result<Work, StepError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    w.step("add_two_later", 2)
}

#[pattern(compensate = undo_three)]
async fn add_three(w: Work) -> Result<Work, StepError> {
    w.step("add_three", 3)
}

#[pattern]
async fn undo_three(w: Work) {
    w.trace.push(format!("undo_three {}", w.value));
}

/// A step with retries runs on its cell (`Resilient`), not as a plain step.
#[pattern(retries = 2)]
async fn add_four_retried(w: Work) -> Result<Work, StepError> {
    w.step("add_four_retried", 4)
}

/// The value `add_one => add_two_later => add_three => add_four_retried`,
/// `rounds` times over, gives for `start`.
fn by_hand(start: u64, rounds: usize) -> u64 {
    let mut v = start;
    for _ in 0..rounds {
        for k in 1..=4 {
            v = v.wrapping_mul(3).wrapping_add(k);
        }
    }
    v
}

fn work(value: u64, fail_at: u64) -> Work {
    Work {
        value,
        fail_at,
        ..Work::default()
    }
}

macro_rules! twenty {
    ($name:literal) => {
        sequential!(name = $name;
            add_one => add_two_later => add_three => add_four_retried =>
            add_one => add_two_later => add_three => add_four_retried =>
            sequential!(add_one => add_two_later => add_three => add_four_retried) =>
            add_one => add_two_later => add_three => add_four_retried =>
            add_one => add_two_later => add_three => add_four_retried)
    };
}

#[tokio::test]
async fn a_twenty_step_sequence_runs_each_step_once_in_order() {
    let ndf = common::ndf();
    let flow = twenty!("long.twenty_steps");
    let done = ndf
        .run(&flow, work(1, u64::MAX), &PatternContext::new("long"))
        .await
        .unwrap();
    assert_eq!(done.value, by_hand(1, 5));
    let names = ["add_one", "add_two_later", "add_three", "add_four_retried"];
    let expected: Vec<String> = names.iter().cycle().take(20).map(|n| (*n).into()).collect();
    assert_eq!(done.trace.events(), expected);
}

#[tokio::test]
async fn a_failure_late_in_a_long_sequence_compensates_every_completed_step_last_first() {
    let ndf = common::ndf();
    let flow = twenty!("long.twenty_steps_failing");
    // The 18th step (`add_two_later` of the fifth round) fails.
    let fail_at = by_hand(1, 4)
        .wrapping_mul(3)
        .wrapping_add(1)
        .wrapping_mul(3)
        .wrapping_add(2);
    let w = work(1, fail_at);
    let trace = w.trace.clone();
    let err = ndf
        .run(&flow, w, &PatternContext::new("long"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("add_two_later failed"),
        "the error names the failed step: {err}"
    );
    let events = trace.events();
    assert_eq!(events[17], "add_two_later failed");
    // The four completed `add_three` stages, last first, each with what
    // it returned.
    let undone: Vec<u64> = (1..=4)
        .rev()
        .map(|round| by_hand(1, round - 1).wrapping_mul(3).wrapping_add(1))
        .map(|v| {
            v.wrapping_mul(3)
                .wrapping_add(2)
                .wrapping_mul(3)
                .wrapping_add(3)
        })
        .collect();
    let expected: Vec<String> = undone.iter().map(|v| format!("undo_three {v}")).collect();
    assert_eq!(events[18..], expected[..]);
}
