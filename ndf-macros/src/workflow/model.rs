//! The workflow as the checks and the expansion see it: a tree of stages,
//! every node keeping the span of the user's tokens.

use proc_macro2::Span;
use quote::ToTokens as _;

/// Which macro built a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sequential,
    Parallel,
    Degrade,
    Orchestrate,
}

impl Kind {
    pub(crate) fn macro_name(self) -> &'static str {
        match self {
            Kind::Sequential => "sequential!",
            Kind::Parallel => "parallel!",
            Kind::Degrade => "degrade!",
            Kind::Orchestrate => "orchestrate!",
        }
    }

    /// The name of the runtime's `node::…` constant for this kind.
    pub(crate) fn node_const(self) -> &'static str {
        match self {
            Kind::Sequential => "SEQUENTIAL",
            Kind::Parallel => "PARALLEL",
            Kind::Degrade => "DEGRADE",
            Kind::Orchestrate => "ORCHESTRATE",
        }
    }

    /// The macro a path names, from its last segment.
    pub(crate) fn from_macro(name: &str) -> Option<Self> {
        match name {
            "sequential" => Some(Kind::Sequential),
            "parallel" => Some(Kind::Parallel),
            "degrade" => Some(Kind::Degrade),
            "orchestrate" => Some(Kind::Orchestrate),
            _ => None,
        }
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
    pub(crate) min_success: Option<syn::LitInt>,
    /// `parallel!`: run the code of the tasks' steps on spawned tasks.
    pub(crate) spawn: bool,
    /// `orchestrate!`: what a failed phase rolls back.
    pub(crate) rollback: Option<Rollback>,
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
        if self.kind == Kind::Degrade {
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
        if self.kind == Kind::Degrade {
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
