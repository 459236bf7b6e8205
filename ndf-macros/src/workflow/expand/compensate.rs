//! Compensation: what a failed workflow gathers to undo its completed
//! stages, last first, and awaits once (`Undos` in the runtime).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::Expander;
use crate::workflow::model::Stage;

impl Expander {
    /// Statements gathering the compensation of the completed steps of
    /// `stage`, whose kept values are `undo`, last first, into
    /// `__ndf_undos` (see [`Self::compensation`]): calls, no `await`.
    pub(super) fn undo(&mut self, stage: &Stage, undo: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(step) => {
                let (path, record) = (&step.alias(), step.record);
                quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=>
                    __ndf_undos.step::<#path>(__cx, #record, #undo)
                )
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

    /// Where the run keeps what `stage` kept for its compensation, empty:
    /// for a step, its `Step::Slot` (no byte for a step without
    /// `compensate`); for a nested workflow, an `Option` of its own slots.
    pub(super) fn slot_empty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = step.alias();
                quote!(<<#path as #p::Step>::Slot as #p::UndoSlot>::empty())
            }
            Stage::Nested(_) => quote!(#p::None),
        }
    }

    /// The slot of [`Self::slot_empty`] holding `kept`, what `stage` kept
    /// when it completed.
    pub(super) fn slot_fill(&self, stage: &Stage, kept: &TokenStream) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = step.alias();
                quote!(<<#path as #p::Step>::Slot as #p::UndoSlot>::fill(#kept))
            }
            Stage::Nested(_) => quote!(#p::Some(#kept)),
        }
    }

    /// A workflow's compensation: `body` gathers what its completed
    /// stages compensate (see [`Self::undo`]), then one future the runtime
    /// compiled runs it all. The workflow's future keeps the gathered list
    /// (boxed compensations, allocated only when a run fails) and no
    /// state machine of its own for them: rustc checks and compiles none
    /// per workflow.
    pub(super) fn compensation(&self, body: &TokenStream) -> TokenStream {
        let p = &self.p;
        quote! {{
            #[allow(unused_mut)]
            let mut __ndf_undos = #p::Undos::new();
            #body
            __ndf_undos.await;
        }}
    }

    /// Compensates the `stages` whose kept values (slots, in `undos`) are
    /// filled, last first, taking them.
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
                if let #p::Some(#kept) = #p::UndoSlot::take(&mut #undo) {
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
