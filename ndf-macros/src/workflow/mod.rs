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
    let workflow = match parse::parse(kind, span, tokens, &mut errors) {
        Ok(w) => w,
        Err(e) => {
            errors.push(e.into());
            return fallback(errors);
        }
    };
    check::check(&workflow, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&workflow),
        Err(e) => {
            let mut out = e.write_errors();
            out.extend(placeholder());
            out
        }
    }
}

fn fallback(errors: darling::error::Accumulator) -> TokenStream {
    let mut out = errors
        .finish()
        .err()
        .map(darling::Error::write_errors)
        .unwrap_or_default();
    out.extend(placeholder());
    out
}

/// Beside a `compile_error!`, an expression of any type, so that the user's
/// surrounding code raises no second error.
fn placeholder() -> TokenStream {
    quote::quote!(::core::unreachable!())
}
