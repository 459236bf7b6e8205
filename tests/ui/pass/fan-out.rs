//! `parallel!(each …)` at the top, nested in a sequence after a stage that
//! returns a set, over a nested workflow, with `min_success`, and a step
//! named `each` that is not a fan-out.
use std::collections::BTreeSet;

use ndf::prelude::*;

#[pattern]
async fn hosts(region: String) -> BTreeSet<String> {
    [region].into_iter().collect()
}

#[pattern]
async fn check_service(host: String) -> bool {
    !host.is_empty()
}

#[pattern]
async fn each(host: String) -> String {
    host
}

#[pattern]
async fn count(ok: Vec<bool>) -> usize {
    ok.len()
}

fn all() -> impl Workflow<Input = Vec<String>, Output = Vec<bool>> + Copy {
    parallel!(name = "ops.checks", max_concurrent = 8; each check_service)
}

fn tolerant() -> impl Workflow<Input = Vec<String>, Output = Vec<Result<bool, StepError>>> {
    parallel!(min_success = 1; each sequential!(each => check_service))
}

fn nested() -> impl Workflow<Input = String, Output = usize> {
    sequential!(hosts => parallel!(each check_service) => count)
}

fn not_a_fan_out() -> impl Workflow<Input = String, Output = (String, bool)> {
    parallel!(each, check_service)
}

fn main() {
    let _ = (all(), tolerant(), nested(), not_a_fan_out());
}
