//! Syntax of the workflow macros: `[key = value, …;] body`. A stage is a
//! step path or a nested workflow macro; stages are joined by `=>` in
//! `sequential!`, `,` in `parallel!`, `|` in `degrade!`, and an
//! `orchestrate!` is a list of `phase: stage [, success(…)] [, rollback_if(…)];`.

use darling::FromMeta;
use darling::ast::NestedMeta;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser as _};
use syn::spanned::Spanned as _;

use super::model::{Kind, Options, Phase, Rollback, Stage, StepRef, Workflow};
use crate::keys::check_keys;

crate::keys::option_table! {
    /// The options of the workflow macros, as darling reads them (each
    /// macro accepts those its [`KindSpec`](super::model::KindSpec) lists).
    struct RawOptions, keys ALL_KEYS, forms form_of {
        name: syn::LitStr => "a string, such as \"orders.checkout\"",
        max_concurrent: syn::LitInt => "a whole number, such as 8",
        resource_threshold: syn::Expr,
        min_success: syn::LitInt => "a whole number of tasks, such as 2",
        spawn: syn::LitBool => "`true` or `false`",
        keep_input: syn::LitBool => "`true` or `false`",
        deadline: syn::LitStr => "a duration string, such as \"2s\"",
        rollback: syn::Expr,
        krate as "crate": syn::LitStr => "a string naming the path of `ndf`, such as \"my_crate::ndf\"",
    }
}

/// The options a macro of `kind` accepts: its own, `name` and `crate`.
fn keys(kind: Kind) -> Vec<&'static str> {
    ALL_KEYS
        .iter()
        .copied()
        .filter(|k| matches!(*k, "name" | "crate" | "deadline") || kind.spec().options.contains(k))
        .collect()
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
        options: Options::default(),
        stages: Vec::new(),
        phases: Vec::new(),
        record: 0,
        each: None,
    };
    if let Some(options) = options {
        workflow.options = parse_options(kind, options, errors);
    }
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        if kind.spec().phases {
            let (stages, phases) = parse_phases(input, errors)?;
            workflow.stages = stages;
            workflow.phases = phases;
        } else if kind == Kind::Parallel
            && let Some(each) = parse_each(input)?
        {
            workflow.each = Some(each);
            workflow.stages = vec![parse_stage(input, errors)?];
            input.parse::<Option<syn::Token![,]>>()?;
            if !input.is_empty() {
                return Err(input.error(
                    "`each` runs one stage over every item; to run several, nest them: `parallel!(each sequential!(a => b))`",
                ));
            }
        } else {
            workflow.stages = parse_stages(kind, input, errors)?;
        }
        Ok(())
    };
    parser.parse2(body)?;
    Ok(workflow)
}

fn parse_options(
    kind: Kind,
    tokens: TokenStream,
    errors: &mut darling::error::Accumulator,
) -> Options {
    let items = errors
        .handle(NestedMeta::parse_meta_list(tokens).map_err(Into::into))
        .unwrap_or_default();
    let items = check_keys(
        items,
        &keys(kind),
        &format!("`{}`", kind.macro_name()),
        errors,
    );
    let mut options = Options::default();
    for item in &items {
        let raw = match RawOptions::from_list(std::slice::from_ref(item)) {
            Ok(raw) => raw,
            Err(error) => {
                errors.push(crate::keys::reword(item, error, form_of));
                continue;
            }
        };
        if let Some(lit) = raw.krate {
            options.krate = errors.handle(crate::keys::crate_path(&lit));
        }
        if raw.name.is_some() {
            options.name = raw.name;
        }
        if let Some(lit) = raw.max_concurrent {
            match lit.base10_parse::<usize>() {
                Ok(n) if n >= 1 => options.max_concurrent = Some(n),
                _ => errors.push(
                    darling::Error::custom("`max_concurrent` must be a whole number of at least 1")
                        .with_span(&lit),
                ),
            }
        }
        if let Some(expr) = raw.resource_threshold {
            match crate::values::number(&expr) {
                Some(x) if (0.0..=1.0).contains(&x) => options.resource_threshold = Some(x),
                _ => errors.push(
                    darling::Error::custom(
                        "`resource_threshold` must be a number between 0.0 and 1.0, such as 0.7",
                    )
                    .with_span(&expr),
                ),
            }
        }
        if let Some(lit) = raw.min_success {
            match lit.base10_parse::<usize>() {
                Ok(tasks) => {
                    options.min_success = Some(super::model::MinSuccess {
                        tasks,
                        span: lit.span(),
                    });
                }
                Err(_) => errors.push(
                    darling::Error::custom("`min_success` must be a whole number of tasks")
                        .with_span(&lit),
                ),
            }
        }
        if let Some(lit) = raw.spawn {
            options.spawn = lit.value;
        }
        if let Some(lit) = raw.keep_input {
            options.keep_input = lit.value;
        }
        if let Some(lit) = raw.deadline {
            match crate::values::parse_duration(&lit.value()) {
                Ok(d) if !d.is_zero() => options.deadline = Some((d, lit.span())),
                Ok(_) => errors.push(
                    darling::Error::custom("a `deadline` must be longer than zero").with_span(&lit),
                ),
                Err(message) => errors.push(darling::Error::custom(message).with_span(&lit)),
            }
        }
        if let Some(expr) = raw.rollback {
            let word = match &expr {
                syn::Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
                _ => None,
            };
            match word.as_deref() {
                Some("phase_level") => options.rollback = Some(Rollback::PhaseLevel),
                Some("workflow_level") => options.rollback = Some(Rollback::WorkflowLevel),
                _ => errors.push(
                    darling::Error::custom("`rollback` is `phase_level` or `workflow_level`")
                        .with_span(&expr),
                ),
            }
        }
    }
    options
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

/// Whether a separator of this kind comes next, consuming it.
fn eat_separator(separator: &str, input: ParseStream<'_>) -> syn::Result<bool> {
    Ok(match separator {
        "=>" => input.parse::<Option<syn::Token![=>]>>()?.is_some(),
        "," => input.parse::<Option<syn::Token![,]>>()?.is_some(),
        _ => input.parse::<Option<syn::Token![|]>>()?.is_some(),
    })
}

/// What separates the stages of `kind`, and how a mistaken separator is
/// explained.
fn separator(kind: Kind, input: ParseStream<'_>) -> syn::Result<bool> {
    let ours = kind.spec().separator.unwrap_or("|");
    if eat_separator(ours, input)? {
        return Ok(true);
    }
    let hint = if input.peek(syn::Token![=>]) {
        "; for stages that run one after another use `sequential!`"
    } else if input.peek(syn::Token![,]) {
        "; for stages that run side by side use `parallel!`"
    } else if input.peek(syn::Token![|]) {
        "; for alternatives use `degrade!`"
    } else {
        ""
    };
    Err(input.error(format!(
        "stages of `{}` are separated by `{ours}`{hint}",
        kind.macro_name()
    )))
}

fn parse_stages(
    kind: Kind,
    input: ParseStream<'_>,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<Vec<Stage>> {
    let mut stages = Vec::new();
    while !input.is_empty() {
        stages.push(parse_stage(input, errors)?);
        if input.is_empty() {
            break;
        }
        separator(kind, input)?;
        if input.is_empty() && !kind.spec().trailing_separator {
            return Err(input.error("expected a stage after the separator"));
        }
    }
    Ok(stages)
}

fn parse_phases(
    input: ParseStream<'_>,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<(Vec<Stage>, Vec<Phase>)> {
    let mut stages = Vec::new();
    let mut phases = Vec::new();
    while !input.is_empty() {
        let name: syn::Ident = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a phase: `name: workflow`, such as `assessment: sequential!(…)`",
            )
        })?;
        input.parse::<syn::Token![:]>()?;
        stages.push(parse_stage(input, errors)?);
        let mut phase = Phase {
            name,
            min_success: None,
            max_error_rate: None,
            max_slowdown: None,
        };
        while input.peek(syn::Token![,]) {
            input.parse::<syn::Token![,]>()?;
            parse_phase_condition(input, &mut phase, errors)?;
        }
        phases.push(phase);
        if input.is_empty() {
            break;
        }
        input
            .parse::<syn::Token![;]>()
            .map_err(|e| syn::Error::new(e.span(), "phases are separated by `;`"))?;
    }
    Ok((stages, phases))
}

/// `success(min_success = x)` or `rollback_if(error_rate > x, slowdown > y)`.
fn parse_phase_condition(
    input: ParseStream<'_>,
    phase: &mut Phase,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<()> {
    let word: syn::Ident = input.parse()?;
    let content;
    syn::parenthesized!(content in input);
    let fraction = |expr: &syn::Expr, what: &str, errors: &mut darling::error::Accumulator| {
        match crate::values::number(expr) {
            Some(x) if (0.0..=1.0).contains(&x) || (what == "slowdown" && x >= 0.0) => Some(x),
            _ => {
                let range = if what == "slowdown" {
                    "a number of at least 0.0, such as 0.2"
                } else {
                    "a number between 0.0 and 1.0"
                };
                errors.push(
                    darling::Error::custom(format!("`{what}` takes {range}")).with_span(expr),
                );
                None
            }
        }
    };
    match word.to_string().as_str() {
        "success" => {
            let key: syn::Ident = content.parse()?;
            if key != "min_success" {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `success(min_success = x)`",
                ));
            }
            content.parse::<syn::Token![=]>()?;
            let value: syn::Expr = content.parse()?;
            phase.min_success = fraction(&value, "min_success", errors);
        }
        "rollback_if" => {
            while !content.is_empty() {
                let key: syn::Ident = content.parse()?;
                content.parse::<syn::Token![>]>()?;
                let value: syn::Expr = content.parse()?;
                match key.to_string().as_str() {
                    "error_rate" => phase.max_error_rate = fraction(&value, "error_rate", errors),
                    "slowdown" => phase.max_slowdown = fraction(&value, "slowdown", errors),
                    other => errors.push(darling::Error::from(syn::Error::new(
                        key.span(),
                        format!("unknown rollback condition `{other}`; expected `error_rate > x` or `slowdown > y`"),
                    ))),
                }
                if !content.is_empty() {
                    content.parse::<syn::Token![,]>()?;
                }
            }
        }
        other => {
            return Err(syn::Error::new(
                word.span(),
                format!(
                    "unknown phase condition `{other}`; expected `success(min_success = x)` or `rollback_if(error_rate > x, slowdown > y)`"
                ),
            ));
        }
    }
    Ok(())
}

/// `each` before a stage (not a step named `each`, which a `,` or the end
/// follows): consumed, with its span.
fn parse_each(input: ParseStream<'_>) -> syn::Result<Option<Span>> {
    let fork = input.fork();
    match fork.parse::<syn::Ident>() {
        Ok(word) if word == "each" && !fork.is_empty() && !fork.peek(syn::Token![,]) => {
            input.parse::<syn::Ident>()?;
            Ok(Some(word.span()))
        }
        _ => Ok(None),
    }
}

fn parse_stage(
    input: ParseStream<'_>,
    errors: &mut darling::error::Accumulator,
) -> syn::Result<Stage> {
    let path = input.call(syn::Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a stage: the path of a `#[pattern]` step, or a nested workflow macro such as `sequential!(…)`",
        )
    })?;
    if !input.peek(syn::Token![!]) {
        if input.peek(syn::token::Paren) {
            return Err(
                input.error("a stage names a step; it is not called: remove the parentheses")
            );
        }
        return Ok(Stage::Step(StepRef {
            path,
            record: 0,
            tree: Vec::new(),
        }));
    }
    input.parse::<syn::Token![!]>()?;
    let content;
    syn::parenthesized!(content in input);
    let macro_ident = path
        .segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default();
    let Some(kind) = Kind::from_macro(&macro_ident) else {
        return Err(syn::Error::new(
            path.span(),
            format!(
                "`{macro_ident}!` cannot stand as a stage; nest `sequential!`, `parallel!`, `degrade!` or `orchestrate!`, or name a `#[pattern]` step"
            ),
        ));
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
        assert_eq!(w.name().map(syn::LitStr::value).as_deref(), Some("a.b"));
        assert_eq!(w.stages.len(), 3);
        assert!(matches!(&w.stages[2], Stage::Nested(n) if n.stages.len() == 2));
    }

    #[test]
    fn a_body_without_options_starts_with_a_stage() {
        let (w, errors) = parse_ok(quote!(x => y));
        assert_eq!((errors, w.stages.len()), (0, 2));
        assert!(w.name().is_none());
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
