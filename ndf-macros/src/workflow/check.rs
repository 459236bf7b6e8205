//! Rules checked on the workflow tree before anything is generated. Rules
//! that need types (chaining, `after` ordering) are checked by rustc on the
//! generated code instead; see `expand`.

use super::model::{Kind, Stage, Workflow};

/// Checks `workflow` and every nested workflow, reporting every problem.
pub(crate) fn check(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    non_empty(workflow, errors);
    if let Some(name) = workflow.name() {
        hierarchical_name(name, errors);
    }
    match workflow.kind {
        Kind::Orchestrate => phases(workflow, errors),
        Kind::Parallel if workflow.each.is_some() => fan_out(workflow, errors),
        Kind::Parallel => min_success_within_tasks(workflow, errors),
        Kind::Degrade => alternatives(workflow, errors),
        Kind::Sequential => {}
    }
    for stage in &workflow.stages {
        if let Stage::Nested(nested) = stage {
            check(nested, errors);
        }
    }
}

fn error(span: proc_macro2::Span, message: String) -> darling::Error {
    darling::Error::from(syn::Error::new(span, message))
}

/// The rule: a workflow has at least one stage.
fn non_empty(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    if workflow.stages.is_empty() {
        let spec = workflow.kind.spec();
        let (m, example) = (spec.macro_name, spec.example);
        errors.push(error(
            workflow.span,
            format!("this `{m}` has no stages; an empty workflow does nothing\nhelp: add stages, such as `{example}`"),
        ));
    }
}

/// The rules of `orchestrate!`: at least two phases (one phase is a plain
/// workflow), each name used once.
fn phases(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    if workflow.phases.len() == 1 {
        let phase = &workflow.phases[0].name;
        errors.push(error(
            phase.span(),
            format!(
                "this `orchestrate!` has a single phase, `{phase}`; phases exist to order several workflows\nhelp: use the phase's workflow directly, such as `sequential!(…)` or `parallel!(…)`"
            ),
        ));
    }
    for (i, phase) in workflow.phases.iter().enumerate() {
        if workflow.phases[..i].iter().any(|p| p.name == phase.name) {
            errors.push(error(
                phase.name.span(),
                format!("phase `{}` is defined twice; each phase of an `orchestrate!` needs its own name", phase.name),
            ));
        }
    }
}

/// The rule of `parallel!(each …)`: its items are consumed, so it cannot
/// keep its input.
fn fan_out(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    if workflow.options.keep_input {
        errors.push(error(
            workflow.each.unwrap_or(workflow.span),
            "`keep_input` cannot be used with `each`: the items are consumed as they run\nhelp: collect what you need of the items in a step before the fan-out".to_owned(),
        ));
    }
}

/// The rule: `min_success` of a `parallel!` is at most its number of tasks.
fn min_success_within_tasks(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    if let Some(min) = workflow.options.min_success
        && min.tasks > workflow.stages.len()
    {
        let k = min.tasks;
        errors.push(error(
            min.span,
            format!(
                "`min_success = {k}`, but this `parallel!` has {} tasks",
                workflow.stages.len()
            ),
        ));
    }
}

/// The rules of `degrade!`: at least two alternatives, each named once
/// (a repeated alternative would run the same thing again).
fn alternatives(workflow: &Workflow, errors: &mut darling::error::Accumulator) {
    if workflow.stages.len() == 1 {
        errors.push(error(
            workflow.stages[0].span(),
            "a `degrade!` needs at least two alternatives, in order of preference, such as `degrade!(deep_analysis | basic_analysis)`".into(),
        ));
    }
    for (i, stage) in workflow.stages.iter().enumerate() {
        let Stage::Step(step) = stage else { continue };
        let repeated = workflow.stages[..i]
            .iter()
            .any(|s| matches!(s, Stage::Step(other) if other.path == step.path));
        if repeated {
            errors.push(error(
                stage.span(),
                format!("{} is an alternative twice in this `degrade!`; a failed alternative is not tried again", stage.describe()),
            ));
        }
    }
}

/// Names a workflow may not have, since they say nothing of what it does.
const GENERIC_WORDS: &[&str] = &[
    "pattern", "workflow", "flow", "step", "task", "test", "example", "foo",
];

/// The rule: a workflow name is hierarchical lowercase, `domain.name`, with
/// segments of `[a-z0-9_]` that say what it is: `pattern1` or `workflow` are
/// not names.
fn hierarchical_name(lit: &syn::LitStr, errors: &mut darling::error::Accumulator) {
    let name = lit.value();
    let segments: Vec<&str> = name.split('.').collect();
    let problem = if segments.len() < 2 {
        Some("it has a single segment".to_owned())
    } else if segments.iter().any(|s| s.is_empty()) {
        Some("it has an empty segment".to_owned())
    } else if let Some(bad) = segments.iter().find(|s| {
        !s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }) {
        Some(format!(
            "segment `{bad}` has characters other than `a-z`, `0-9` and `_`"
        ))
    } else if let Some(bad) = segments
        .iter()
        .find(|s| s.starts_with(|c: char| !c.is_ascii_lowercase()))
    {
        Some(format!("segment `{bad}` does not start with a letter"))
    } else {
        segments
            .iter()
            .find(|s| {
                GENERIC_WORDS
                    .contains(&s.trim_end_matches(|c: char| c.is_ascii_digit() || c == '_'))
            })
            .map(|bad| {
                format!("segment `{bad}` is generic: it does not say what the workflow does")
            })
    };
    if let Some(problem) = problem {
        errors.push(
            darling::Error::custom(format!(
                "workflow name `{name}` is not a hierarchical name: {problem}\nhelp: name it `domain.what_it_does` in lowercase, such as \"data_processing.etl_pipeline\""
            ))
            .with_span(lit),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(name: &str) -> usize {
        let mut errors = darling::Error::accumulator();
        hierarchical_name(
            &syn::LitStr::new(name, proc_macro2::Span::call_site()),
            &mut errors,
        );
        errors.finish().err().map_or(0, |e| e.len())
    }

    #[test]
    fn hierarchical_lowercase_names_pass() {
        for name in [
            "data_processing.etl_pipeline",
            "ops.service_health_checks",
            "a.b.c",
            "deployment.v2_rollout",
        ] {
            assert_eq!(problems(name), 0, "{name}");
        }
    }

    #[test]
    fn other_names_fail() {
        for name in [
            "etl",
            "DataProcessing.etl",
            "data..etl",
            "data.etl-pipeline",
            "data.2fast",
            "data.workflow",
            "data.pattern1",
            "ops.task_2",
            "",
        ] {
            assert_eq!(problems(name), 1, "{name}");
        }
    }
}
