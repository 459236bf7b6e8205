//! The workflow macros: parse → model → check → expand.

mod check;
mod expand;
mod model;
mod parse;

use proc_macro2::{Span, TokenStream};

pub(crate) use model::Kind;

/// Entry point of every workflow macro.
pub(crate) fn workflow(kind: Kind, tokens: TokenStream) -> TokenStream {
    let mut errors = darling::Error::accumulator();
    let span = Span::call_site();
    let mut workflow = match parse::parse(kind, span, tokens, &mut errors) {
        Ok(w) => w,
        Err(e) => {
            errors.push(e.into());
            return fallback(errors);
        }
    };
    workflow.number(&mut 0, &mut Vec::new());
    check::check(&workflow, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&workflow),
        Err(e) => with_placeholder(e),
    }
}

fn fallback(errors: darling::error::Accumulator) -> TokenStream {
    match errors.finish() {
        Ok(()) => with_placeholder(darling::Error::custom("invalid workflow")),
        Err(e) => with_placeholder(e),
    }
}

/// The errors as statements of a block whose value has any type, so that the
/// user's surrounding code raises no second error.
fn with_placeholder(errors: darling::Error) -> TokenStream {
    let errors = errors.into_iter().map(darling::Error::write_errors);
    quote::quote!({ #(#errors;)* ::core::unreachable!() })
}
