//! Type rules checked by rustc in words of ours: a local trait implemented
//! only for `T: Trait<T>` converts a value to the type the next item expects.
//! When the types differ, the trait's `#[diagnostic::on_unimplemented]`
//! message names both items, and no other error follows, since the
//! conversion is the only use of the value.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

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
    pub(crate) fn new(id: &str, span: Span, rule: &Rule) -> Self {
        let trait_ident = format_ident!("__NdfCheck{}", id);
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
        quote_spanned! {self.span=> #trait_ident::<#target>::__ndf_into(#value) }
    }
}
