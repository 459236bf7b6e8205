//! The shapes of fn a step may have: `async fn f()`, `async fn f(input: I)`,
//! `async fn f(input: I, ctx: &PatternContext)` (or `f(ctx: &PatternContext)`),
//! returning `Result<O, E>`, `O`, or nothing.

use syn::spanned::Spanned as _;

/// What the step's fn returns.
pub(crate) enum Returns {
    /// `Result<O, E>` written out: `O` is known, and where `E` is if it is
    /// written as ndf's `StepError` (see [`names_step_error`]).
    Result(Box<syn::Type>, Option<proc_macro2::Span>),
    /// An alias such as `io::Result<O>`: `O` is read through a trait.
    ResultAlias,
    /// Anything else, `()` included: the step cannot fail.
    Value,
}

/// A step fn's signature, validated.
pub(crate) struct StepSignature {
    pub(crate) input: Option<syn::Type>,
    pub(crate) takes_ctx: bool,
    pub(crate) returns: Returns,
    /// The fn's return type as written (`()` when it has none), which
    /// [`Returns`] classifies.
    pub(crate) returned: syn::Type,
}

fn error(span: proc_macro2::Span, msg: impl std::fmt::Display) -> darling::Error {
    darling::Error::from(syn::Error::new(span, msg))
}

fn is_context(ty: &syn::Type) -> bool {
    let syn::Type::Reference(r) = ty else {
        return false;
    };
    matches!(&*r.elem, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "PatternContext"))
}

/// The signature of a step whose fn is wrong, as near as it can be read:
/// what a stub step type takes and gives, so that the workflows using the
/// step report nothing more. `None` where nothing can stand in (a generic
/// fn, a method).
pub(crate) fn stand_in(f: &syn::ItemFn) -> Option<StepSignature> {
    let sig = &f.sig;
    let method = sig
        .inputs
        .iter()
        .any(|arg| matches!(arg, syn::FnArg::Receiver(_)));
    // A method lives in an `impl` block, where no type can be declared.
    if method || !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return None;
    }
    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            syn::FnArg::Typed(t) if !is_context(&t.ty) => Some(t),
            _ => None,
        })
        .collect();
    let input = typed.first().map(|t| match &*t.ty {
        // A step owns its input: a borrowed `T` stands for an owned one.
        syn::Type::Reference(r) => {
            let elem = &r.elem;
            syn::parse_quote!(<#elem as ::std::borrow::ToOwned>::Owned)
        }
        other => other.clone(),
    });
    let (returns, returned) = returns(&sig.output);
    Some(StepSignature {
        input,
        takes_ctx: false,
        returns,
        returned,
    })
}

/// Checks the shape of `f`, reporting every problem.
pub(crate) fn analyse(f: &syn::ItemFn) -> darling::Result<StepSignature> {
    let sig = &f.sig;
    let name = &sig.ident;
    let mut errors = darling::Error::accumulator();
    if sig.asyncness.is_none() {
        errors.push(error(
            sig.fn_token.span,
            format!("`{name}` is not async; a `#[pattern]` step must be an `async fn`\nhelp: write `async fn {name}`"),
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(error(
            c.span,
            format!("`{name}` is a `const fn`; a `#[pattern]` step must be a plain `async fn`"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(error(
            abi.span(),
            "a `#[pattern]` step cannot have an `extern` ABI",
        ));
    }
    if !matches!(sig.safety, syn::Safety::Default) {
        errors.push(error(sig.span(), "a `#[pattern]` step cannot be `unsafe`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(error(
            sig.generics.span(),
            format!(
                "`{name}` is generic; a `#[pattern]` step must have concrete input and output types"
            ),
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(error(v.span(), "a `#[pattern]` step cannot be variadic"));
    }

    let mut typed = Vec::new();
    for arg in &sig.inputs {
        match arg {
            syn::FnArg::Receiver(r) => errors.push(error(
                r.span(),
                format!(
                    "`{name}` takes `self`; a `#[pattern]` step is a free `async fn`, not a method\nhelp: move `{name}` out of the `impl` block and pass what it needs as its input"
                ),
            )),
            syn::FnArg::Typed(t) => typed.push(t),
        }
    }
    if typed.len() > 2 {
        errors.push(error(
            typed[2].span(),
            format!(
                "`{name}` takes {} parameters; a step takes at most two: its input and `&PatternContext`\nhelp: gather the values into one struct or tuple and take that as the input",
                typed.len()
            ),
        ));
    }
    let (input, takes_ctx) = match typed.as_slice() {
        [] => (None, false),
        [only] if is_context(&only.ty) => (None, true),
        [input, rest @ ..] => {
            if let syn::Type::Reference(r) = &*input.ty {
                errors.push(error(
                    r.span(),
                    format!(
                        "the input of `{name}` is a reference; a step owns its input, since it may be retried or handed to another task\nhelp: take the value (or an `Arc`) instead"
                    ),
                ));
            }
            if let Some(ctx) = rest.first()
                && !is_context(&ctx.ty)
            {
                errors.push(error(
                    ctx.ty.span(),
                    format!("the second parameter of `{name}` must be `&PatternContext`"),
                ));
            }
            (Some((*input.ty).clone()), !rest.is_empty())
        }
    };

    let (returns, returned) = returns(&sig.output);
    errors.finish_with(StepSignature {
        input,
        takes_ctx,
        returns,
        returned,
    })
}

/// What a step fn returns, and its return type as written.
fn returns(output: &syn::ReturnType) -> (Returns, syn::Type) {
    let returned: syn::Type = match output {
        syn::ReturnType::Default => syn::parse_quote!(()),
        syn::ReturnType::Type(_, ty) => (**ty).clone(),
    };
    (classify_return(&returned), returned)
}

/// Whether a step fn's error type is written as ndf's `StepError`: bare,
/// or by a path from `ndf`. A crate's own type of that name is written by
/// its path (`crate::StepError`); written bare, it fails to compile with
/// both types named (`tests/ui/pattern/own-step-error.rs`).
fn names_step_error(ty: &syn::Type) -> bool {
    let syn::Type::Path(p) = ty else {
        return false;
    };
    let segments = &p.path.segments;
    p.qself.is_none()
        && segments.iter().all(|s| s.arguments.is_none())
        && segments
            .last()
            .is_some_and(|last| last.ident == "StepError")
        && (segments.len() == 1 && p.path.leading_colon.is_none()
            || segments.first().is_some_and(|first| first.ident == "ndf"))
}

/// `Result<O, E>` written out, a `Result` alias, or a plain value: told
/// apart by the last path segment, since the macro cannot resolve types.
fn classify_return(ty: &syn::Type) -> Returns {
    if let syn::Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
    {
        let types: Vec<&syn::Type> = args
            .args
            .iter()
            .filter_map(|a| match a {
                syn::GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect();
        return match types.as_slice() {
            [ok, err] => Returns::Result(
                Box::new((*ok).clone()),
                names_step_error(err).then(|| err.span()),
            ),
            _ => Returns::ResultAlias,
        };
    }
    Returns::Value
}
