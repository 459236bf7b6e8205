//! The workflow as the checks and the expansion see it: a tree of stages,
//! every node keeping the span of the user's tokens.

use proc_macro2::Span;
use quote::ToTokens as _;

/// Which macro built a node (its index in the table of [`KindSpec`]s).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sequential = 0,
    Parallel = 1,
    Degrade = 2,
    Orchestrate = 3,
}

/// What the parser, the checks and the expansion know of one workflow
/// macro, kept in one table ([`Kind::spec`]) rather than in a `match` at
/// each use.
pub(crate) struct KindSpec {
    pub(crate) kind: Kind,
    /// The macro's name without `!`, as a path's last segment names it.
    pub(crate) keyword: &'static str,
    /// The name in messages, with `!`.
    pub(crate) macro_name: &'static str,
    /// The runtime's `node::…` constant of this kind.
    pub(crate) node_const: &'static str,
    /// The options it accepts, besides `name` and `crate`.
    pub(crate) options: &'static [&'static str],
    /// How its stages are separated, in messages; `None` for the phases of
    /// an `orchestrate!`.
    pub(crate) separator: Option<&'static str>,
    /// Whether a separator may end the list of stages.
    pub(crate) trailing_separator: bool,
    /// A derived name is `open`, the stages' names joined by `join`, `close`.
    pub(crate) derived_name: (&'static str, &'static str, &'static str),
    /// A small workflow of this kind, for the help of an empty one.
    pub(crate) example: &'static str,
    /// What it outputs.
    pub(crate) output: Output,
    /// Whether its stages are named phases (`name: stage`), which also
    /// name it when it has no `name`.
    pub(crate) phases: bool,
    /// Whether the run records which of its levels served (a node of its
    /// own in the run's records).
    pub(crate) records_level: bool,
    /// What it adds to the workflow's static `Shape` beyond its stages.
    pub(crate) shape: ShapeRole,
}

/// What a workflow of a kind outputs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Output {
    /// Its last stage's output.
    Last,
    /// Its first stage's (every alternative gives the same type).
    First,
    /// A tuple of every stage's output, in declared order.
    Tuple,
}

/// What a workflow of a kind counts for in the static shape.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ShapeRole {
    /// Nothing of its own.
    Chain,
    /// A `parallel!` group: one point of complexity per task beyond one.
    Group,
    /// A degradation chain: two per alternative beyond one.
    Alternatives,
}

const SPECS: [KindSpec; 4] = [
    KindSpec {
        kind: Kind::Sequential,
        keyword: "sequential",
        macro_name: "sequential!",
        node_const: "SEQUENTIAL",
        options: &[],
        separator: Some("=>"),
        trailing_separator: false,
        derived_name: ("", ">", ""),
        example: "sequential!(validate_input => transform_data)",
        output: Output::Last,
        phases: false,
        records_level: false,
        shape: ShapeRole::Chain,
    },
    KindSpec {
        kind: Kind::Parallel,
        keyword: "parallel",
        macro_name: "parallel!",
        node_const: "PARALLEL",
        options: &[
            "max_concurrent",
            "resource_threshold",
            "min_success",
            "spawn",
            "keep_input",
        ],
        separator: Some(","),
        trailing_separator: true,
        derived_name: ("(", ",", ")"),
        example: "parallel!(check_database, check_api)",
        output: Output::Tuple,
        phases: false,
        records_level: false,
        shape: ShapeRole::Group,
    },
    KindSpec {
        kind: Kind::Degrade,
        keyword: "degrade",
        macro_name: "degrade!",
        node_const: "DEGRADE",
        options: &["keep_input"],
        separator: Some("|"),
        trailing_separator: false,
        derived_name: ("", "|", ""),
        example: "degrade!(deep_analysis | basic_analysis)",
        output: Output::First,
        phases: false,
        records_level: true,
        shape: ShapeRole::Alternatives,
    },
    KindSpec {
        kind: Kind::Orchestrate,
        keyword: "orchestrate",
        macro_name: "orchestrate!",
        node_const: "ORCHESTRATE",
        options: &["rollback"],
        separator: None,
        trailing_separator: true,
        derived_name: ("", ">", ""),
        example: "orchestrate!(plan: sequential!(…); apply: parallel!(…))",
        output: Output::Last,
        phases: true,
        records_level: false,
        shape: ShapeRole::Chain,
    },
];

impl Kind {
    /// What is known of this kind.
    pub(crate) fn spec(self) -> &'static KindSpec {
        let spec = &SPECS[self as usize];
        debug_assert_eq!(spec.kind, self);
        spec
    }

    pub(crate) fn macro_name(self) -> &'static str {
        self.spec().macro_name
    }

    /// The macro a path names, from its last segment.
    pub(crate) fn from_macro(name: &str) -> Option<Self> {
        SPECS.iter().find(|s| s.keyword == name).map(|s| s.kind)
    }
}

/// What `rollback = …` of `orchestrate!` compensates when a phase fails.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rollback {
    /// The failed phase's completed steps only.
    PhaseLevel,
    /// Every completed step of every phase.
    WorkflowLevel,
}

/// The options a workflow macro was given, validated.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<syn::LitStr>,
    /// `parallel!`: tasks in flight at most.
    pub(crate) max_concurrent: Option<usize>,
    /// `parallel!`: CPU or memory use above which new tasks wait.
    pub(crate) resource_threshold: Option<f64>,
    /// `parallel!`: tasks that must succeed; failures are then tolerated.
    pub(crate) min_success: Option<MinSuccess>,
    /// `parallel!`: run the code of the tasks' steps on spawned tasks.
    pub(crate) spawn: bool,
    /// `parallel!`, `degrade!`: output `(input, outputs)`, a copy of the
    /// input beside what the stages made of it.
    pub(crate) keep_input: bool,
    /// `deadline = "2s"`: the worst case must fit in it (checked by the
    /// compiler); at run time no attempt outlives it. With its span.
    pub(crate) deadline: Option<(std::time::Duration, Span)>,
    /// `orchestrate!`: what a failed phase rolls back.
    pub(crate) rollback: Option<Rollback>,
    /// `crate = "…"`: the path through which generated code reaches ndf.
    pub(crate) krate: Option<syn::Path>,
}

/// `min_success = k` of a `parallel!`, read once.
#[derive(Clone, Copy)]
pub(crate) struct MinSuccess {
    pub(crate) tasks: usize,
    pub(crate) span: Span,
}

/// One phase of an `orchestrate!`: its name and the conditions checked when
/// it completes.
pub(crate) struct Phase {
    pub(crate) name: syn::Ident,
    /// `success(min_success = x)`: fraction of the phase's step runs that
    /// must succeed.
    pub(crate) min_success: Option<f64>,
    /// `rollback_if(error_rate > x)`: fraction of failed step attempts.
    pub(crate) max_error_rate: Option<f64>,
    /// `rollback_if(slowdown > y)`: duration over the learned median, minus one.
    pub(crate) max_slowdown: Option<f64>,
}

/// One workflow macro invocation.
pub(crate) struct Workflow {
    pub(crate) kind: Kind,
    /// The span of the macro's name (or of the whole invocation at the top).
    pub(crate) span: Span,
    pub(crate) options: Options,
    pub(crate) stages: Vec<Stage>,
    /// `orchestrate!` only: one per stage.
    pub(crate) phases: Vec<Phase>,
    /// `degrade!` only: where the run records which level served.
    pub(crate) record: usize,
    /// `parallel!(each stage)`: where `each` stands. The one stage runs
    /// over every item of the input.
    pub(crate) each: Option<Span>,
}

/// A stage: a `#[pattern]` step or a nested workflow.
pub(crate) enum Stage {
    Step(StepRef),
    Nested(Workflow),
}

/// A step stage: the path of its step type, where the run records its
/// outcome, and its place in the tree (node kind and child index from the
/// root), from which the `after` rule decides what runs before it.
pub(crate) struct StepRef {
    pub(crate) path: syn::Path,
    pub(crate) record: usize,
    pub(crate) tree: Vec<(Kind, u32)>,
}

impl StepRef {
    /// The name the expansion gives the step's type: one alias of `path`
    /// per stage, so that a path that is not a type (a fn without
    /// `#[pattern]`) is reported once, where the alias is declared, and
    /// every other use is an error type rustc says nothing more of.
    pub(crate) fn alias(&self) -> syn::Ident {
        syn::Ident::new(
            &format!("__ndf_step_{}", self.record),
            crate::typecheck::at(syn::spanned::Spanned::span(&self.path)),
        )
    }
}

/// Something a run records, in record order.
pub(crate) enum Record<'a> {
    Step(&'a StepRef),
    /// A `degrade!` node: which level served.
    Degrade(&'a Workflow),
}

impl Workflow {
    pub(crate) fn name(&self) -> Option<&syn::LitStr> {
        self.options.name.as_ref()
    }

    /// Gives every step stage and every `degrade!` node its record index, in
    /// textual order, and every step its place in the tree.
    pub(crate) fn number(&mut self, next: &mut usize, tree: &mut Vec<(Kind, u32)>) {
        if self.kind.spec().records_level {
            self.record = *next;
            *next += 1;
        }
        for (i, stage) in self.stages.iter_mut().enumerate() {
            tree.push((self.kind, u32::try_from(i).unwrap_or(u32::MAX)));
            match stage {
                Stage::Step(step) => {
                    step.record = *next;
                    step.tree.clone_from(tree);
                    *next += 1;
                }
                Stage::Nested(w) => w.number(next, tree),
            }
            tree.pop();
        }
    }

    /// What the run records, in record order.
    pub(crate) fn records(&self) -> Vec<Record<'_>> {
        let mut out = Vec::new();
        if self.kind.spec().records_level {
            out.push(Record::Degrade(self));
        }
        for stage in &self.stages {
            match stage {
                Stage::Step(step) => out.push(Record::Step(step)),
                Stage::Nested(w) => out.extend(w.records()),
            }
        }
        out
    }
}

impl Stage {
    pub(crate) fn span(&self) -> Span {
        match self {
            Stage::Step(step) => syn::spanned::Spanned::span(&step.path),
            Stage::Nested(w) => w.span,
        }
    }

    /// How messages name the stage, quoted: "`store_results`", "the nested
    /// `sequential!`".
    pub(crate) fn describe(&self) -> String {
        match self {
            Stage::Step(step) => format!(
                "`{}`",
                step.path.to_token_stream().to_string().replace(' ', "")
            ),
            Stage::Nested(w) => match w.name() {
                Some(name) => format!("`{}`", name.value()),
                None if w.each.is_some() => "the nested `parallel!(each …)`".to_owned(),
                None => format!("the nested `{}`", w.kind.macro_name()),
            },
        }
    }

    /// A fragment of an identifier naming the stage, for generated items
    /// that rustc may name in a message.
    pub(crate) fn ident_hint(&self) -> String {
        match self {
            Stage::Step(step) => step
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default(),
            Stage::Nested(w) => w.kind.macro_name().trim_end_matches('!').to_owned(),
        }
    }
}
