//! Type rules checked by rustc in words of ours: a local trait implemented
//! only for `T: Trait<T>` converts a value to the type the next item expects.
//! When the types differ, the trait's `#[diagnostic::on_unimplemented]`
//! message names both items, and no other error follows, since the
//! conversion is the only use of the value.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};

/// A span that resolves names like the macro's own output (call-site
/// hygiene) but points at `user`'s tokens in messages.
///
/// Generated locals must never take a user token's span directly: when the
/// user's tokens come from a `macro_rules!` expansion, they carry its
/// hygiene, and a local declared with one span would not be found from the
/// other.
pub(crate) fn at(user: Span) -> Span {
    Span::call_site().located_at(user)
}

/// `tokens` pointing at `span` in messages (see [`at`]).
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    let span = at(span);
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(span);
            }
            tt
        })
        .collect()
}

/// Words of one type rule. `{Self}` is the type found, `{__T}` the type
/// expected.
pub(crate) struct Rule {
    pub(crate) message: String,
    pub(crate) label: String,
    pub(crate) note: String,
}

/// A rule instantiated at a span: the trait definition, and a way to call it.
pub(crate) struct Check {
    trait_ident: syn::Ident,
    span: Span,
    pub(crate) definition: TokenStream,
}

impl Check {
    /// `name` is the trait's name, which rustc shows in a `help:` line: make
    /// it read as what is checked, such as `ndf_input_of_store_results`.
    pub(crate) fn new(name: &str, span: Span, rule: &Rule) -> Self {
        let trait_ident = format_ident!("{}", name);
        let Rule {
            message,
            label,
            note,
        } = rule;
        let definition = quote! {
            #[diagnostic::on_unimplemented(message = #message, label = #label, note = #note)]
            #[allow(non_camel_case_types)]
            trait #trait_ident<__T> {
                fn __ndf_into(self) -> __T;
            }
            impl<__T> #trait_ident<__T> for __T {
                #[inline(always)]
                fn __ndf_into(self) -> __T {
                    self
                }
            }
        };
        Self {
            trait_ident,
            span,
            definition,
        }
    }

    /// `value` converted to `target`, erroring at the check's span when the
    /// types differ.
    pub(crate) fn convert(&self, value: &TokenStream, target: &TokenStream) -> TokenStream {
        let trait_ident = &self.trait_ident;
        // rustc reports the failed conversion at the argument: give it the
        // user's span too.
        let value = respan(value.clone(), self.span);
        quote_spanned! {at(self.span)=> #trait_ident::<#target>::__ndf_into(#value) }
    }
}

/// A local trait implemented for every `Clone` type, whose message says why
/// a copy is needed (`{Self}` is the type). Returns the trait's name, to call
/// `Trait::__ndf_copy(&value)`, and its definition.
pub(crate) fn clone_check(
    trait_name: &str,
    message: &str,
    note: &str,
) -> (syn::Ident, TokenStream) {
    let ident = syn::Ident::new(trait_name, Span::call_site());
    let label = "`{Self}` is not `Clone`";
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
