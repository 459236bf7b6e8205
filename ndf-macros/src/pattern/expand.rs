//! Generates the step type and its `Step` impl.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;

use super::args::StepOptions;
use super::signature::{Returns, StepSignature};
use crate::typecheck::{Check, Rule};

fn path_name(path: &syn::Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// A local trait implemented for every `Clone` type, whose message says why
/// the step needs `Clone`.
fn clone_check(
    trait_name: &str,
    message: &str,
    label: &str,
    note: &str,
) -> (syn::Ident, TokenStream) {
    let ident = syn::Ident::new(trait_name, Span::call_site());
    let def = quote! {
        #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
        #[allow(non_camel_case_types)]
        trait #ident: ::core::marker::Sized {
            fn __ndf_copy(&self) -> Self;
        }
        impl<__T: ::core::clone::Clone> #ident for __T {
            #[inline(always)]
            fn __ndf_copy(&self) -> Self {
                ::core::clone::Clone::clone(self)
            }
        }
    };
    (ident, def)
}

pub(crate) fn expand(f: &syn::ItemFn, opts: &StepOptions, sig: &StepSignature) -> TokenStream {
    let ident = &f.sig.ident;
    let vis = &f.vis;
    let fn_name = ident.to_string();
    let name = opts
        .name
        .as_ref()
        .map_or(fn_name.clone(), syn::LitStr::value);
    let p = quote!(::ndf::__private);

    let input_ty = sig.input.clone().unwrap_or_else(|| syn::parse_quote!(()));
    let output_ty: TokenStream = match &sig.returns {
        Returns::Result(ok) => ok.to_token_stream(),
        Returns::ResultAlias(ty) => quote!(<#ty as #p::Fallible>::Ok),
        Returns::Value(ty) => ty.to_token_stream(),
    };
    let mut args = Vec::new();
    if sig.input.is_some() {
        args.push(quote!(__input));
    }
    if sig.takes_ctx {
        args.push(quote!(__ctx));
    }
    let ignore_input = sig.input.is_none().then(|| quote!(let () = __input;));
    let call = match &sig.returns {
        Returns::Value(_) => quote!(#p::infallible(#ident(#(#args),*).await)),
        _ => quote!(#p::IntoStepResult::into_step_result(#ident(#(#args),*).await)),
    };

    let mut helpers = TokenStream::new();

    // Retries and the fallback each need a fresh copy of the input.
    let retried = opts.retry.as_ref().filter(|r| r.max > 0);
    let dup = if let Some(span) = retried
        .map(|r| r.span)
        .or(opts.fallback.as_ref().map(syn::Path::span))
    {
        let why = if retried.is_some() {
            "is retried"
        } else {
            "has a `fallback`"
        };
        let (check, def) = clone_check(
            "ndf_retried_input",
            &format!("step `{name}` {why}, so its input `{{Self}}` must implement `Clone`"),
            "`{Self}` is not `Clone`",
            "each attempt, and the fallback, get their own copy of the input; derive `Clone` for it, or use an `Arc`",
        );
        helpers.extend(def);
        let copy = quote_spanned!(span=> <#input_ty as #check>::__ndf_copy(__input));
        quote!(#p::Some(#copy))
    } else {
        quote!(#p::None)
    };

    let (undo_ty, keep, compensate) = match &opts.compensate {
        Some(c) => {
            let c_name = path_name(c);
            let (check, def) = clone_check(
                "ndf_compensated_output",
                &format!(
                    "step `{name}` has `compensate = {c_name}`, so its output `{{Self}}` must implement `Clone`"
                ),
                "`{Self}` is not `Clone`",
                "the output goes on to the next stage; a copy is kept to compensate the step if a later stage fails",
            );
            helpers.extend(def);
            let input_check = Check::new(
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
            let unit_check = Check::new(
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
            helpers.extend(input_check.definition.clone());
            helpers.extend(unit_check.definition.clone());
            let c_input = quote!(<#c as #p::Step>::Input);
            let arg = input_check.convert(&quote!(__undo), &c_input);
            let unit = unit_check.convert(&quote!(__out), &quote!(()));
            let keep_span = c.span();
            (
                quote!(#output_ty),
                quote_spanned!(keep_span=> <#output_ty as #check>::__ndf_copy(__output)),
                quote! {
                    #p::Some(async move {
                        let __out = <#c as #p::Step>::call(#arg, __ctx).await?;
                        let () = #unit;
                        #p::Ok(())
                    })
                },
            )
        }
        None => (
            quote!(()),
            quote!(let _ = __output;),
            quote!(#p::None::<::core::future::Ready<#p::Result<(), #p::StepError>>>),
        ),
    };

    let fallback = match &opts.fallback {
        Some(fb) => {
            let fb_name = path_name(fb);
            let in_check = Check::new(
                "ndf_fallback_input",
                fb.span(),
                &Rule {
                    message: format!(
                        "fallback `{fb_name}` must take the input of `{name}`: it takes `{{__T}}`, `{name}` takes `{{Self}}`"
                    ),
                    label: format!("`{fb_name}` takes `{{__T}}`"),
                    note: "a fallback runs in place of the step, so its input and output types must be the step's".into(),
                },
            );
            let out_check = Check::new(
                "ndf_fallback_output",
                fb.span(),
                &Rule {
                    message: format!(
                        "fallback `{fb_name}` must return the output of `{name}`: it returns `{{Self}}`, `{name}` returns `{{__T}}`"
                    ),
                    label: format!("`{fb_name}` returns `{{Self}}`"),
                    note: "a fallback runs in place of the step, so its input and output types must be the step's".into(),
                },
            );
            helpers.extend(in_check.definition.clone());
            helpers.extend(out_check.definition.clone());
            let arg = in_check.convert(&quote!(__input), &quote!(<#fb as #p::Step>::Input));
            let out = out_check.convert(&quote!(__out), &output_ty);
            quote! {
                #p::Some(async move {
                    let __out = <#fb as #p::Step>::call(#arg, __ctx).await?;
                    #p::Ok(#out)
                })
            }
        }
        None => quote!(#p::None::<::core::future::Ready<#p::Result<Self::Output, #p::StepError>>>),
    };

    let meta = meta(opts, &p);
    let doc =
        format!("The ndf step of [`{fn_name}()`](fn@{fn_name}): use it as a stage of a workflow.");

    quote! {
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

                const NAME: &'static str = #name;
                const META: #p::StepMeta = #meta;

                fn call(
                    __input: Self::Input,
                    __ctx: &#p::PatternContext,
                ) -> impl #p::Future<Output = #p::Result<Self::Output, #p::StepError>> + ::core::marker::Send + '_ {
                    #ignore_input
                    let _ = __ctx;
                    async move { #call }
                }

                #[inline]
                fn dup(__input: &Self::Input) -> #p::Option<Self::Input> {
                    let _ = __input;
                    #dup
                }

                #[inline]
                fn keep(__output: &Self::Output) -> Self::Undo {
                    #keep
                }

                fn compensate(
                    __undo: Self::Undo,
                    __ctx: &#p::PatternContext,
                ) -> #p::Option<impl #p::Future<Output = #p::Result<(), #p::StepError>> + ::core::marker::Send + '_> {
                    let _ = (&__undo, __ctx);
                    #compensate
                }

                fn fallback(
                    __input: Self::Input,
                    __ctx: &#p::PatternContext,
                ) -> #p::Option<impl #p::Future<Output = #p::Result<Self::Output, #p::StepError>> + ::core::marker::Send + '_> {
                    let _ = (&__input, __ctx);
                    #fallback
                }
            }
        };
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
    if !opts.after.is_empty() {
        let names = opts
            .after
            .iter()
            .map(|a| quote_spanned!(a.span()=> <#a as #p::Step>::NAME));
        sets.push(quote!(__m.after = &[#(#names),*];));
    }
    if !opts.permissions.is_empty() {
        let perms = &opts.permissions;
        sets.push(quote!(__m.permissions = &[#(#perms),*];));
    }
    if let Some(fb) = &opts.fallback {
        sets.push(quote_spanned!(fb.span()=>
            __m.fallback = #p::Some(<#fb as #p::Step>::NAME);
            __m.fallback_timeout = <#fb as #p::Step>::META.timeout;
        ));
    }
    if let Some(c) = &opts.compensate {
        sets.push(quote_spanned!(c.span()=> __m.compensate = #p::Some(<#c as #p::Step>::NAME);));
    }
    quote! {{
        #[allow(unused_mut)]
        let mut __m = #p::StepMeta::new(<Self as #p::Step>::NAME);
        #(#sets)*
        __m
    }}
}
