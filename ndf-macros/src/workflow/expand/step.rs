//! A step stage: the run of one `#[pattern]` step, awaited where it
//! stands or as a future a `parallel!` task polls; and the future of any
//! stage.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::Expander;
use crate::workflow::model::{Stage, StepRef};

impl Expander {
    /// A step stage awaited where it stands, outside any `parallel!`
    /// task: what its run keeps of the step's types is a local of the
    /// workflow's future, and the run it awaits is shared by every step
    /// (see the runtime's `exec::stage`). `None` inside a task.
    pub(super) fn step_in_place(&self, step: &StepRef, input: &TokenStream) -> Option<TokenStream> {
        if self.spawn || self.in_task || self.join.is_some() {
            return None;
        }
        let (path, record) = (&step.alias(), step.record);
        let p = &self.p;
        let at = crate::typecheck::at(syn::spanned::Spanned::span(path));
        let mut go =
            quote_spanned!(at=> #p::Stage::go(__ndf_cell.as_mut(), __cx, #record, __ndf_input));
        if self.outlined {
            go = quote_spanned!(at=> #p::Outlined::new(#go));
        }
        Some(quote_spanned! {at=> {
            let __ndf_input = #input;
            let mut __ndf_cell = #p::pin!(
                <<#path as #p::Step>::Policies as #p::Policies>::cell::<#path>(__cx)
            );
            match #go.await {
                #p::Ok(__ndf_done) => #p::Ok(#p::Stage::finish(__ndf_cell, __ndf_done)),
                #p::Err(__ndf_error) => #p::Err(__ndf_error),
            }
        }})
    }

    /// The future of a run of `stage` on `input`, to be awaited or polled
    /// where it is made: a step's run itself, not wrapped in an `async`
    /// block (one state machine and one poll fewer).
    pub(super) fn future(&mut self, stage: &Stage, input: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(step) => self.step_future(step, input),
            Stage::Nested(w) => {
                let run = self.run_workflow(w, input);
                quote!(async move { #run })
            }
        }
    }

    /// Step stage `step` on `input` as a task of a `parallel!` whose alarm
    /// is `deadlines`: the task drops its run when cancelled, so the run
    /// checks for that nowhere.
    pub(super) fn step_as_task(
        &self,
        step: &StepRef,
        input: &TokenStream,
        deadlines: &syn::Ident,
    ) -> TokenStream {
        let (path, record) = (&step.alias(), step.record);
        let p = &self.p;
        let at = crate::typecheck::at(syn::spanned::Spanned::span(path));
        quote_spanned!(at=> #p::step_task::<#path>(__cx, #record, #input, #deadlines))
    }

    /// The future of a run of step stage `step` on `input`.
    pub(super) fn step_future(&self, step: &StepRef, input: &TokenStream) -> TokenStream {
        let (path, record) = (&step.alias(), step.record);
        let p = &self.p;
        let at = crate::typecheck::at(syn::spanned::Spanned::span(path));
        if let (false, Some(deadlines)) = (self.spawn, &self.join) {
            return quote_spanned!(at=> #p::run_step_in_join::<#path>(__cx, #record, #input, #deadlines));
        }
        let runner = if self.spawn {
            quote!(run_step_spawned)
        } else if self.in_task {
            quote!(run_step_in_task)
        } else {
            quote!(run_step)
        };
        quote_spanned!(at=> #p::#runner::<#path>(__cx, #record, #input))
    }
}
