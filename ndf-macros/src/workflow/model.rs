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
    Step(syn::Path),
    Nested(Workflow),
}

impl Stage {
    pub(crate) fn span(&self) -> Span {
        match self {
            Stage::Step(path) => syn::spanned::Spanned::span(path),
            Stage::Nested(w) => w.span,
        }
    }

    /// How messages name the stage, quoted: "`store_results`", "the nested
    /// `sequential!`".
    pub(crate) fn describe(&self) -> String {
        match self {
            Stage::Step(path) => {
                format!("`{}`", path.to_token_stream().to_string().replace(' ', ""))
            }
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
            Stage::Step(path) => path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default(),
            Stage::Nested(w) => w.kind.macro_name().trim_end_matches('!').to_owned(),
        }
    }
}
