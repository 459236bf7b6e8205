//! `parallel!(each stage)`: the stage runs over every item of the input,
//! at most `max_concurrent` at once, with the outputs in input order.
//!
//! The items run in the runtime's `fan_out`, each as the same future type
//! (a step's run with its index, or an `async` block around a nested
//! workflow), so one bounded set of slots holds them all. The first
//! failure cancels the items in flight and compensates those that
//! completed, last finished first, unless `min_success` tolerates failures:
//! then the output is `Vec<Result<O, StepError>>` and the fan-out fails
//! only when fewer than `min_success` items succeed.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::{Stage, Workflow};

impl Expander {
    pub(super) fn run_fan_out(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let stage = &w.stages[0];
        let this = stage.describe();
        let item = self.ident("item");
        let converted = self.checked_input_of(
            stage,
            &format!("each_{}", stage.ident_hint()),
            &quote!(#item),
            &Rule {
                message: format!(
                    "`parallel!(each …)` runs {this} on every item of its input: {this} takes `{{__T}}`, but the items are `{{Self}}`"
                ),
                label: format!("{this} takes `{{__T}}`"),
                note: "the input of `parallel!(each stage)` is any `IntoIterator` of what the stage takes".into(),
            },
        );
        let (outer_spawn, outer_task) = (self.spawn, self.in_task);
        // The set of items in flight wakes each item by its own waker: an
        // enclosing `parallel!`'s alarm would not reach them, and their
        // steps keep timers of their own.
        let outer_join = self.join.take();
        self.spawn |= w.options.spawn;
        self.in_task = true;
        // Each item is its stage's future (a step's run itself, a nested
        // workflow in an `async` block) with its index beside it.
        let item_future = self.future(stage, &converted);
        (self.spawn, self.in_task, self.join) = (outer_spawn, outer_task, outer_join);

        let max = w.options.max_concurrent.unwrap_or(usize::MAX);
        let threshold = w
            .options
            .resource_threshold
            .map_or_else(|| quote!(#p::None), |x| quote!(#p::Some(#x)));
        let keep = if w.options.min_success.is_some() {
            quote!(#p::Tolerant)
        } else {
            quote!(#p::Strict)
        };
        let items = Self::items(w, input);
        let fan = self.ident("fan");
        let undos = self.ident("undos");
        let compensate = self.compensate_items(stage, &undos);
        let compensate = self.compensation(&compensate);
        // rustc reports an input that is not iterable at the call: at `each`.
        let each = crate::typecheck::at(w.each.unwrap_or(w.span));
        let fan_out = quote_spanned!(each=> #p::fan_out::<#keep, _, _, _, _, _>);
        // A nested workflow cancelled in flight compensates what it
        // completed: it is driven to its end. A step is dropped.
        let drive = matches!(stage, Stage::Nested(_));
        let start = quote_spanned! {each=>
            let mut #fan = #fan_out(
                __cx,
                #items,
                #max,
                #threshold,
                #drive,
                move |__index, #item| #p::Indexed::new(__index, #item_future),
            )
            .await;
        };
        let Some(min) = w.options.min_success else {
            return quote! {{
                #start
                match #fan.take_error() {
                    #p::None => #p::Ok(#fan.into_parts()),
                    #p::Some(__error) => {
                        let mut #undos = #fan.into_undos();
                        #compensate
                        #p::Err(__error)
                    }
                }
            }};
        };
        let required = min.tasks;
        quote! {{
            #start
            let __stopped = #fan.take_error();
            let (__items, __succeeded) = #fan.counts();
            match __stopped {
                #p::None if __succeeded >= #required => #p::Ok(#fan.into_parts()),
                __stopped => {
                    let (__outs, mut #undos) = #fan.into_parts();
                    let __first = __stopped
                        .map(#p::StepError::new)
                        .or_else(|| __outs.into_iter().find_map(#p::Result::err));
                    #compensate
                    #p::Err(#p::insufficient(__cx, __succeeded, __items, #required, __first))
                }
            }
        }}
    }

    /// `input`, pointing at `each` in the message when it is not iterable.
    fn items(w: &Workflow, input: &TokenStream) -> TokenStream {
        crate::typecheck::respan(input.clone(), w.each.unwrap_or(w.span))
    }
}
