//! The workflow as the checks and the expansion see it: a tree of stages,
//! every node keeping the span of the user's tokens.

use proc_macro2::Span;
use quote::ToTokens as _;

/// Which macro built a node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Sequential,
}

impl Kind {
    pub(crate) fn macro_name(self) -> &'static str {
        match self {
            Kind::Sequential => "sequential!",
        }
    }
}

/// One workflow macro invocation.
pub(crate) struct Workflow {
    pub(crate) kind: Kind,
    /// The span of the macro's name (or of the whole invocation at the top).
    pub(crate) span: Span,
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) stages: Vec<Stage>,
}

/// A stage: a `#[pattern]` step or a nested workflow.
pub(crate) enum Stage {
    Step(StepRef),
    Nested(Workflow),
}

/// A step stage: the path of its step type, and its index among the step
/// stages of the whole (flattened) workflow, in textual order. The index
/// says where the run records the step's outcome.
pub(crate) struct StepRef {
    pub(crate) path: syn::Path,
    pub(crate) index: usize,
}

impl Workflow {
    /// Numbers the step stages of the tree in textual order.
    pub(crate) fn number_steps(&mut self, next: &mut usize) {
        for stage in &mut self.stages {
            match stage {
                Stage::Step(step) => {
                    step.index = *next;
                    *next += 1;
                }
                Stage::Nested(w) => w.number_steps(next),
            }
        }
    }

    /// The step stages of the tree in index order.
    pub(crate) fn steps(&self) -> Vec<&StepRef> {
        let mut out = Vec::new();
        for stage in &self.stages {
            match stage {
                Stage::Step(step) => out.push(step),
                Stage::Nested(w) => out.extend(w.steps()),
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
            Stage::Nested(w) => match &w.name {
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
