//! Compensation: what a failed workflow awaits to undo its completed
//! stages, last first, in one boxed future.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::Expander;
use crate::workflow::model::Stage;

impl Expander {
    /// An expression awaiting the compensation of the completed steps of
    /// `stage`, whose kept values are `undo`, last first.
    pub(super) fn undo(&mut self, stage: &Stage, undo: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(step) => {
                let (path, record) = (&step.alias(), step.record);
                let p = &self.p;
                quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=> if const { <#path as #p::Step>::META.compensate.is_some() } {
                    #p::compensate_step::<#path>(__cx, #record, #undo).await
                })
            }
            Stage::Nested(w) if w.each.is_some() => {
                let undos = self.ident("undos");
                let body = self.compensate_items(&w.stages[0], &undos);
                quote! {{
                    let mut #undos = #undo;
                    #body
                }}
            }
            Stage::Nested(w) => {
                let names: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("u")).collect();
                let body = self.compensate_reversed(&w.stages, &names);
                quote! {{
                    let (#(mut #names,)*) = #undo;
                    #body
                }}
            }
        }
    }

    /// A workflow's compensation `body` as one boxed future, awaited once:
    /// what it keeps is stored in the box, not beside every state of the
    /// workflow's future (see `compensation` in the runtime). Only the
    /// workflow's own compensation is boxed; a nested workflow's runs
    /// inside it.
    pub(super) fn boxed_compensation(&self, body: &TokenStream) -> TokenStream {
        let p = &self.p;
        quote!(#p::compensation(async move { #body }).await;)
    }

    /// Compensates the `stages` whose kept values (`Option`s, in `undos`)
    /// are `Some`, last first, taking them.
    pub(super) fn compensate_reversed(
        &mut self,
        stages: &[Stage],
        undos: &[syn::Ident],
    ) -> TokenStream {
        let p = self.p.clone();
        let mut out = TokenStream::new();
        for (stage, undo) in stages.iter().zip(undos).rev() {
            let kept = self.ident("kept");
            let fut = self.undo(stage, &quote!(#kept));
            out.extend(quote! {
                if let #p::Some(#kept) = #undo.take() {
                    #fut;
                }
            });
        }
        out
    }

    /// Compensates the items whose kept values are in the `Vec` `undos`,
    /// last finished first.
    pub(super) fn compensate_items(&mut self, stage: &Stage, undos: &syn::Ident) -> TokenStream {
        let kept = self.ident("kept");
        let undo = self.undo(stage, &quote!(#kept));
        quote! {
            while let ::core::option::Option::Some(#kept) = #undos.pop() {
                #undo;
            }
        }
    }
}
