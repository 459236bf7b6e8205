//! Generates the step type and its `Step` impl.

use proc_macro2::TokenStream;
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;

use std::time::Duration;

use super::args::{BreakerSpec, StepOptions, WindowSpec};
use super::signature::{Returns, StepSignature};
use crate::typecheck::{Check, Rule, clone_check};

fn path_name(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// What every part of the expansion needs to know about the step.
struct StepParts<'a> {
    opts: &'a StepOptions,
    /// The pattern name, for messages.
    name: String,
    input_ty: TokenStream,
    output_ty: TokenStream,
    p: TokenStream,
    /// Local trait definitions the parts rely on.
    helpers: TokenStream,
}

/// The step's input and output types.
fn step_types(sig: &StepSignature, p: &TokenStream) -> (TokenStream, TokenStream) {
    let input_ty = sig
        .input
        .as_ref()
        .map_or_else(|| quote!(()), quote::ToTokens::to_token_stream);
    let returned = &sig.returned;
    let output_ty: TokenStream = match &sig.returns {
        Returns::Result(ok, _) => ok.to_token_stream(),
        Returns::ResultAlias => quote!(<#returned as #p::Fallible>::Ok),
        Returns::Value => returned.to_token_stream(),
    };
    (input_ty, output_ty)
}

/// The step type of a fn whose signature is wrong (reported already): it
/// takes and gives what the fn seems to, and never runs, since the crate
/// does not compile.
pub(crate) fn stub(f: &syn::ItemFn, opts: &StepOptions, sig: &StepSignature) -> TokenStream {
    let ident = &f.sig.ident;
    let vis = &f.vis;
    let p = crate::keys::private_path(opts.krate.as_ref());
    let (input_ty, output_ty) = step_types(sig, &p);
    let name = opts
        .name
        .as_ref()
        .map_or_else(|| ident.to_string(), syn::LitStr::value);
    quote! {
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #[allow(non_local_definitions, clippy::all, clippy::pedantic)]
        const _: () = {
            #[automatically_derived]
            impl #p::Step for #ident {
                type Input = #input_ty;
                type Output = #output_ty;
                type Undo = ();
                type Slot = #p::NoUndo;
                type Policies = #p::Plain;
                type Held = #p::NoPlace;

                const NAME: &'static str = #name;
                const META: #p::StepMeta = #p::StepMeta::new(#name);

                type Returned = #p::Result<Self::Output, #p::StepError>;
                type Finish = #p::Made;

                fn call(
                    __input: Self::Input,
                    __ctx: &#p::PatternContext,
                ) -> impl #p::Future<Output = Self::Returned> + ::core::marker::Send + '_ {
                    let _ = (__input, __ctx);
                    #p::stub_step()
                }

                fn keep(__output: &Self::Output) -> Self::Undo {
                    let _ = __output;
                }
            }
        };
    }
}

pub(crate) fn expand(f: &syn::ItemFn, opts: &StepOptions, sig: &StepSignature) -> TokenStream {
    let ident = &f.sig.ident;
    let vis = &f.vis;
    let fn_name = ident.to_string();
    let p = crate::keys::private_path(opts.krate.as_ref());
    let (input_ty, output_ty) = step_types(sig, &p);
    let mut parts = StepParts {
        opts,
        name: opts
            .name
            .as_ref()
            .map_or(fn_name.clone(), syn::LitStr::value),
        input_ty: input_ty.clone(),
        output_ty: output_ty.clone(),
        p: p.clone(),
        helpers: TokenStream::new(),
    };
    let Call {
        returned_ty,
        finish,
        body: call,
        result,
    } = call(ident, sig, &p, &output_ty);
    let dup = parts.dup();
    let (undo_ty, keep, compensate) = parts.compensation();
    let fallback = parts.fallback();
    let meta = meta(opts, &p);
    let policies = policies(opts, &p);
    let limits = (opts.rate.is_some() || opts.bulkhead.is_some()).then(|| {
        quote! {
            #[inline]
            fn limits() -> #p::Option<&'static #p::LimitsCell> {
                static LIMITS: #p::LimitsCell = #p::LimitsCell::new();
                #p::Some(&LIMITS)
            }
        }
    });
    // A step without `compensate` keeps nothing in its workflow's run.
    let slot = if opts.compensate.is_some() {
        quote!(#p::Option<Self::Undo>)
    } else {
        quote!(#p::NoUndo)
    };
    let held = if opts.bulkhead.is_some() {
        quote!(#p::Place)
    } else {
        quote!(#p::NoPlace)
    };
    let name = &parts.name;
    let helpers = &parts.helpers;
    let doc =
        format!("The ndf step of [`{fn_name}()`](fn@{fn_name}): use it as a stage of a workflow.");

    quote! {
        // A step must be an `async fn` even when it does not wait.
        #[allow(clippy::unused_async)]
        #f

        #[doc = #doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #[allow(non_local_definitions, clippy::all, clippy::pedantic)]
        const _: () = {
            #helpers

            #[automatically_derived]
            impl #p::Step for #ident {
                type Input = #input_ty;
                type Output = #output_ty;
                type Undo = #undo_ty;
                type Slot = #slot;
                type Policies = #policies;
                type Held = #held;

                const NAME: &'static str = #name;
                const META: #p::StepMeta = #meta;

                type Returned = #returned_ty;
                type Finish = #finish;

                fn call(
                    __input: Self::Input,
                    __ctx: &#p::PatternContext,
                ) -> impl #p::Future<Output = Self::Returned> + ::core::marker::Send + '_ {
                    #call
                }

                #dup

                #[inline]
                fn keep(__output: &Self::Output) -> Self::Undo {
                    #keep
                }

                #limits

                #compensate

                #fallback
            }

            #result
        };
    }
}

/// How a step calls its fn and makes a step result of what it returns.
struct Call {
    /// `Step::Returned`: what the fn returns.
    returned_ty: TokenStream,
    /// `Step::Finish`: how a step result is made of it.
    finish: TokenStream,
    /// The body of `Step::call`: the fn's own future.
    body: TokenStream,
    /// For a step whose error is converted, the step type's `Finish` impl,
    /// which converts it.
    result: Option<TokenStream>,
}

fn call(ident: &syn::Ident, sig: &StepSignature, p: &TokenStream, output_ty: &TokenStream) -> Call {
    let mut args = Vec::new();
    if sig.input.is_some() {
        args.push(quote!(__input));
    }
    if sig.takes_ctx {
        args.push(quote!(__ctx));
    }
    let ignore_input = sig.input.is_none().then(|| quote!(let () = __input;));
    let fut = quote!(#ident(#(#args),*));
    let (fut, returned_ty, finish, result) = match &sig.returns {
        Returns::Value => (fut, output_ty.clone(), quote!(#p::Wrapped), None),
        // A fn whose error is a `StepError` already returns a step result.
        // Should it be a crate's own type of that name, the one error says
        // so, both types named, and points at the fn's signature
        // (`tests/ui/pattern/own-step-error.rs`).
        Returns::Result(_, Some(err)) => (
            quote_spanned!(*err=> #ident(#(#args),*)),
            quote!(#p::Result<#output_ty, #p::StepError>),
            quote!(#p::Made),
            None,
        ),
        // The error's conversion and class are picked by type, by probes on
        // its concrete type (autoref specialization, see `Probe`), here
        // where that type is known; the conversion itself is shared code.
        Returns::Result(..) | Returns::ResultAlias => {
            let returned_ty = sig.returned.to_token_stream();
            let result = quote! {
                #[automatically_derived]
                impl #p::Finish<#returned_ty> for #ident {
                    type Ok = #output_ty;

                    #[inline]
                    fn finish(
                        __returned: #returned_ty,
                    ) -> #p::Result<#output_ty, #p::StepError> {
                        #[allow(unused_imports)]
                        use #p::{
                            ClassifyViaDefault as _, ClassifyViaTrait as _, IntoViaBoxed as _,
                            IntoViaDisplay as _, IntoViaStepError as _,
                        };
                        let __probe = #p::Probe::of(&__returned);
                        #p::ErrorOf::new((&&&__probe).ndf_via(), (&&__probe).ndf_class())
                            .convert(__returned)
                    }
                }
            };
            (fut, returned_ty, quote!(Self), Some(result))
        }
    };
    Call {
        returned_ty,
        finish,
        body: quote! {
            #ignore_input
            let _ = __ctx;
            #fut
        },
        result,
    }
}

impl StepParts<'_> {
    /// `Step::dup`: retries and the fallback each need a fresh copy of the input.
    fn dup(&mut self) -> TokenStream {
        let p = &self.p;
        let retried = self.opts.retry.as_ref().filter(|r| r.max > 0);
        let hedged = self.opts.hedge.map(|(_, _, span)| span);
        let Some(span) = retried.map(|r| r.span).or(hedged).or(self
            .opts
            .fallback
            .as_ref()
            .map(syn::Path::span))
        else {
            return TokenStream::new();
        };
        let why = if retried.is_some() {
            "is retried"
        } else if hedged.is_some() {
            "is hedged"
        } else {
            "has a `fallback`"
        };
        let (check, def) = clone_check(
            "ndf_retried_input",
            &format!(
                "step `{}` {why}, so its input `{{Self}}` must implement `Clone`",
                self.name
            ),
            "each attempt, and the fallback, get their own copy of the input; derive `Clone` for it, or use an `Arc`",
        );
        self.helpers.extend(def);
        let input_ty = &self.input_ty;
        let copy =
            quote_spanned!(crate::typecheck::at(span)=> <#input_ty as #check>::__ndf_copy(__input));
        quote! {
            #[inline]
            fn dup(__input: &Self::Input) -> #p::Option<Self::Input> {
                #p::Some(#copy)
            }
        }
    }

    /// `Step::Undo`, `Step::keep` and `Step::compensate`.
    fn compensation(&mut self) -> (TokenStream, TokenStream, TokenStream) {
        let p = self.p.clone();
        let Some(c) = &self.opts.compensate else {
            return (quote!(()), quote!(let _ = __output;), TokenStream::new());
        };
        let (name, c_name, output_ty) = (&self.name, path_name(c), &self.output_ty);
        let (check, def) = clone_check(
            "ndf_compensated_output",
            &format!(
                "step `{name}` has `compensate = {c_name}`, so its output `{{Self}}` must implement `Clone`"
            ),
            "the output goes on to the next stage; a copy is kept to compensate the step if a later stage fails",
        );
        self.helpers.extend(def);
        let takes_output = Check::new(
            "ndf_compensation_input",
            c.span(),
            &Rule {
                message: format!(
                    "`{c_name}` cannot compensate `{name}`: it takes `{{__T}}`, but `{name}` returns `{{Self}}`"
                ),
                label: format!("`{c_name}` takes `{{__T}}`"),
                note: "a `compensate` step takes the output of the step it undoes".into(),
            },
        );
        let returns_unit = Check::new(
            "ndf_compensation_output",
            c.span(),
            &Rule {
                message: format!(
                    "`{c_name}` must return `()` to compensate `{name}`, but it returns `{{Self}}`"
                ),
                label: "compensating steps return nothing".into(),
                note: "a `compensate` step undoes work; it has no output to pass on".into(),
            },
        );
        self.helpers.extend(takes_output.definition.clone());
        self.helpers.extend(returns_unit.definition.clone());
        let arg = takes_output.convert(&quote!(__undo), &quote!(<#c as #p::Step>::Input));
        let unit = returns_unit.convert(&quote!(__out), &quote!(()));
        let keep = quote_spanned!(crate::typecheck::at(c.span())=> <#output_ty as #check>::__ndf_copy(__output));
        let compensate = quote! {
            fn compensate(
                __undo: Self::Undo,
                __ctx: &#p::PatternContext,
            ) -> #p::Option<impl #p::Future<Output = #p::Result<(), #p::StepError>> + ::core::marker::Send + '_> {
                #p::Some(async move {
                    let __out = <#c as #p::Step>::result(<#c as #p::Step>::call(#arg, __ctx).await)?;
                    let () = #unit;
                    #p::Ok(())
                })
            }
        };
        (output_ty.clone(), keep, compensate)
    }

    /// `Step::fallback`.
    fn fallback(&mut self) -> TokenStream {
        let p = self.p.clone();
        let Some(fb) = &self.opts.fallback else {
            return TokenStream::new();
        };
        let (name, fb_name) = (&self.name, path_name(fb));
        let note = "a fallback runs in place of the step, so its input and output types must be the step's";
        let same_input = Check::new(
            "ndf_fallback_input",
            fb.span(),
            &Rule {
                message: format!(
                    "fallback `{fb_name}` must take the input of `{name}`: it takes `{{__T}}`, `{name}` takes `{{Self}}`"
                ),
                label: format!("`{fb_name}` takes `{{__T}}`"),
                note: note.into(),
            },
        );
        let same_output = Check::new(
            "ndf_fallback_output",
            fb.span(),
            &Rule {
                message: format!(
                    "fallback `{fb_name}` must return the output of `{name}`: it returns `{{Self}}`, `{name}` returns `{{__T}}`"
                ),
                label: format!("`{fb_name}` returns `{{Self}}`"),
                note: note.into(),
            },
        );
        self.helpers.extend(same_input.definition.clone());
        self.helpers.extend(same_output.definition.clone());
        let arg = same_input.convert(&quote!(__input), &quote!(<#fb as #p::Step>::Input));
        let out = same_output.convert(&quote!(__out), &self.output_ty);
        quote! {
            fn fallback(
                __input: Self::Input,
                __ctx: &#p::PatternContext,
            ) -> #p::Option<impl #p::Future<Output = #p::Result<Self::Output, #p::StepError>> + ::core::marker::Send + '_> {
                #p::Some(async move {
                    let __out = <#fb as #p::Step>::result(<#fb as #p::Step>::call(#arg, __ctx).await)?;
                    #p::Ok(#out)
                })
            }
        }
    }
}

fn meta(opts: &StepOptions, p: &TokenStream) -> TokenStream {
    let mut sets = Vec::new();
    if let Some(domain) = &opts.domain {
        sets.push(quote!(__m.domain = #p::Some(#domain);));
    }
    if let Some(t) = opts.timeout {
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        sets.push(quote!(__m.timeout = #p::Some(#p::Duration::from_nanos(#nanos));));
    }
    if let Some(r) = &opts.retry {
        let max = r.max;
        let mut fields = Vec::new();
        if let Some(d) = r.initial {
            let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            fields.push(quote!(__r.initial = #p::Duration::from_nanos(#n);));
        }
        if let Some(d) = r.max_delay {
            let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            fields.push(quote!(__r.max_delay = #p::Duration::from_nanos(#n);));
        }
        if let Some(m) = r.multiplier {
            fields.push(quote!(__r.multiplier = #m;));
        }
        if let Some(j) = r.jitter {
            fields.push(quote!(__r.jitter = #j;));
        }
        sets.push(
            quote!(__m.retry = { let mut __r = #p::RetryPolicy::retries(#max); #(#fields)* __r };),
        );
    }
    if let Some(x) = opts.confidence_threshold {
        sets.push(quote!(__m.confidence_threshold = #p::Some(#x);));
    }
    if let Some(bytes) = opts.memory {
        sets.push(quote!(__m.memory = #p::Some(#bytes);));
    }
    if let Some((count, per)) = opts.rate {
        let nanos = u64::try_from(per.as_nanos()).unwrap_or(u64::MAX);
        sets.push(quote!(__m.rate = #p::Some(#p::Rate { count: #count, per: #p::Duration::from_nanos(#nanos) });));
    }
    if let Some((max, queue)) = opts.bulkhead {
        sets.push(quote!(__m.bulkhead = #p::Some(#p::Bulkhead { max: #max, queue: #queue });));
    }
    if opts.idempotent {
        sets.push(quote!(__m.idempotent = true;));
    }
    if let Some(t) = opts.slow_call {
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        sets.push(quote!(__m.slow_call = #p::Some(#p::Duration::from_nanos(#nanos));));
    }
    if let Some((after, max, _)) = opts.hedge {
        let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        sets.push(quote!(__m.hedge = #p::Some(#p::Hedge { after: #p::Duration::from_nanos(#nanos), max: #max });));
    }
    if let Some(b) = &opts.breaker {
        sets.push(breaker_meta(b, p));
    }
    if !opts.after.is_empty() {
        let names = opts
            .after
            .iter()
            .map(|a| quote_spanned!(crate::typecheck::at(a.span())=> <#a as #p::Step>::NAME));
        sets.push(quote!(__m.after = &[#(#names),*];));
    }
    if !opts.permissions.is_empty() {
        let perms = &opts.permissions;
        sets.push(quote!(__m.permissions = &[#(#perms),*];));
    }
    if let Some(fb) = &opts.fallback {
        sets.push(quote_spanned!(crate::typecheck::at(fb.span())=>
            __m.fallback = #p::Some(<#fb as #p::Step>::NAME);
            __m.fallback_timeout = <#fb as #p::Step>::META.timeout;
        ));
    }
    if let Some(c) = &opts.compensate {
        sets.push(quote_spanned!(crate::typecheck::at(c.span())=>
            __m.compensate = #p::Some(<#c as #p::Step>::NAME);
            __m.compensate_timeout = <#c as #p::Step>::META.timeout;
        ));
    }
    quote! {{
        #[allow(unused_mut)]
        let mut __m = #p::StepMeta::new(<Self as #p::Step>::NAME);
        #(#sets)*
        __m
    }}
}

/// `__m.breaker = Some(WindowBreaker { … })` for a `breaker(…)`.
fn breaker_meta(b: &BreakerSpec, p: &TokenStream) -> TokenStream {
    let duration = |d: Duration| {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        quote!(#p::Duration::from_nanos(#nanos))
    };
    let window = match b.window {
        WindowSpec::Calls(n) => quote!(#p::SlidingWindow::Calls(#n)),
        WindowSpec::Time(d) => {
            let d = duration(d);
            quote!(#p::SlidingWindow::Time(#d))
        }
    };
    let (ratio, min_calls) = (b.failure_ratio, b.min_calls);
    let break_for = b.break_for.map_or_else(
        || quote!(#p::None),
        |d| {
            let d = duration(d);
            quote!(#p::Some(#d))
        },
    );
    let probes = b
        .probes
        .map_or_else(|| quote!(#p::None), |n| quote!(#p::Some(#n)));
    quote!(__m.breaker = #p::Some(#p::WindowBreaker {
        window: #window,
        failure_ratio: #ratio,
        min_calls: #min_calls,
        break_for: #break_for,
        probes: #probes,
    });)
}

/// The code a step's policies need after its admission
/// ([`Step::Policies`](../../ndf_runtime/trait.Step.html)): only what its
/// options use is compiled for it.
fn policies(opts: &StepOptions, p: &TokenStream) -> TokenStream {
    let retried = opts.retry.as_ref().is_some_and(|r| r.max > 0);
    if opts.hedge.is_some() {
        quote!(#p::Hedged)
    } else if retried || opts.fallback.is_some() || opts.slow_call.is_some() {
        quote!(#p::Resilient)
    } else {
        quote!(#p::Plain)
    }
}
