//! Syntax of the workflow macros: `[key = value, …;] body`, where the body of
//! `sequential!` is `stage => stage => …` and a stage is a step path or a
//! nested workflow macro.

use darling::FromMeta as _;
use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser as _};
use syn::spanned::Spanned as _;

use super::model::{Kind, Stage, StepRef, Workflow};
use crate::keys::check_keys;

/// Options of `sequential!`.
pub(crate) const SEQUENTIAL_KEYS: &[&str] = &["name"];

#[derive(darling::FromMeta, Default)]
struct SequentialOptions {
    name: Option<syn::LitStr>,
}

/// Parses the input of a workflow macro of `kind`. Syntax errors end the
/// parse; option errors go to `errors` and parsing goes on.
pub(crate) fn parse(
    kind: Kind,
    span: Span,
    tokens: TokenStream,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<Workflow> {
    let (options, body) = split_options(tokens);
    let mut workflow = Workflow {
        kind,
        span,
        name: None,
        stages: Vec::new(),
    };
    if let Some(options) = options {
        let items = errors
            .handle(NestedMeta::parse_meta_list(options).map_err(Into::into))
            .unwrap_or_default();
        let items = check_keys(
            items,
            SEQUENTIAL_KEYS,
            &format!("`{}`", kind.macro_name()),
            errors,
        );
        if let Some(opts) = errors.handle(SequentialOptions::from_list(&items)) {
            workflow.name = opts.name;
        }
    }
    let parser = |input: ParseStream<'_>| parse_sequential_body(input, errors);
    workflow.stages = parser.parse2(body)?;
    Ok(workflow)
}

/// Options come first as `key = value` pairs ended by `;`. They are present
/// when the input starts with `ident =` (and not `ident =>`).
fn split_options(tokens: TokenStream) -> (Option<TokenStream>, TokenStream) {
    let trees: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let starts_with_option = matches!(
        trees.as_slice(),
        [TokenTree::Ident(_), TokenTree::Punct(eq), next, ..]
            if eq.as_char() == '=' && !matches!(next, TokenTree::Punct(p) if p.as_char() == '>')
    );
    if !starts_with_option {
        return (None, tokens);
    }
    let split = trees
        .iter()
        .position(|t| matches!(t, TokenTree::Punct(p) if p.as_char() == ';'));
    match split {
        Some(at) => (
            Some(trees[..at].iter().cloned().collect()),
            trees[at + 1..].iter().cloned().collect(),
        ),
        None => (Some(tokens), TokenStream::new()),
    }
}

fn parse_sequential_body(
    input: ParseStream<'_>,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<Vec<Stage>> {
    let mut stages = Vec::new();
    if input.is_empty() {
        return Ok(stages);
    }
    loop {
        stages.push(parse_stage(input, errors)?);
        if input.is_empty() {
            return Ok(stages);
        }
        if input.peek(syn::Token![,]) {
            return Err(input.error("stages of `sequential!` are joined by `=>`; for stages that run side by side use `parallel!`"));
        }
        input.parse::<syn::Token![=>]>()?;
        if input.is_empty() {
            return Err(input.error("expected a stage after `=>`"));
        }
    }
}

fn parse_stage(
    input: ParseStream<'_>,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<Stage> {
    let path = input.call(syn::Path::parse_mod_style).map_err(|e| {
        syn::Error::new(e.span(), "expected a stage: the path of a `#[pattern]` step, or a nested workflow macro such as `sequential!(…)`")
    })?;
    if !input.peek(syn::Token![!]) {
        if input.peek(syn::token::Paren) {
            return Err(
                input.error("a stage names a step; it is not called: remove the parentheses")
            );
        }
        return Ok(Stage::Step(StepRef { path, index: 0 }));
    }
    input.parse::<syn::Token![!]>()?;
    let content;
    syn::parenthesized!(content in input);
    let macro_ident = path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let kind = match macro_ident.as_str() {
        "sequential" => Kind::Sequential,
        other => {
            return Err(syn::Error::new(
                path.span(),
                format!(
                    "`{other}!` cannot stand as a stage here; nest `sequential!(…)` or name a `#[pattern]` step"
                ),
            ));
        }
    };
    let tokens: TokenStream = content.parse()?;
    parse(kind, path.span(), tokens, errors).map(Stage::Nested)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> (Workflow, usize) {
        let mut errors = darling::Error::accumulator();
        let w = parse(Kind::Sequential, Span::call_site(), tokens, &mut errors).expect("parses");
        let n = errors.finish().err().map_or(0, |e| e.len());
        (w, n)
    }

    #[test]
    fn options_come_before_the_semicolon() {
        let (w, errors) = parse_ok(quote!(name = "a.b"; x => y::z => sequential!(p => q)));
        assert_eq!(errors, 0);
        assert_eq!(w.name.map(|n| n.value()).as_deref(), Some("a.b"));
        assert_eq!(w.stages.len(), 3);
        assert!(matches!(&w.stages[2], Stage::Nested(n) if n.stages.len() == 2));
    }

    #[test]
    fn a_body_without_options_starts_with_a_stage() {
        let (w, errors) = parse_ok(quote!(x => y));
        assert_eq!((errors, w.stages.len()), (0, 2));
        assert!(w.name.is_none());
    }

    #[test]
    fn commas_between_stages_point_to_parallel() {
        let mut errors = darling::Error::accumulator();
        let err = parse(
            Kind::Sequential,
            Span::call_site(),
            quote!(a, b),
            &mut errors,
        )
        .err()
        .expect("a syntax error");
        errors.finish().expect("no option errors");
        assert!(err.to_string().contains("parallel!"), "{err}");
    }

    #[test]
    fn calling_a_stage_is_rejected() {
        let mut errors = darling::Error::accumulator();
        let err = parse(
            Kind::Sequential,
            Span::call_site(),
            quote!(a() => b),
            &mut errors,
        )
        .err()
        .expect("a syntax error");
        errors.finish().expect("no option errors");
        assert!(err.to_string().contains("remove the parentheses"), "{err}");
    }
}
