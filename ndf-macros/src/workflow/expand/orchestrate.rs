//! `orchestrate!`: named phases in order, each phase's output feeding the
//! next. A phase with conditions is timed and checked when it completes;
//! when a phase fails, `rollback` decides what is compensated: the failed
//! phase's own work (`phase_level`) or every completed phase, last first
//! (`workflow_level`, the default, as in `sequential!`).

use proc_macro2::TokenStream;
use quote::quote;

use super::Expander;
use crate::workflow::model::{Phase, Record, Rollback, Stage, Workflow};

/// The record indices a stage's steps use.
fn record_range(stage: &Stage) -> (usize, usize) {
    match stage {
        Stage::Step(step) => (step.record, step.record + 1),
        Stage::Nested(w) => {
            let indices: Vec<usize> = w
                .records()
                .iter()
                .map(|r| match r {
                    Record::Step(s) => s.record,
                    Record::Degrade(d) => d.record,
                })
                .collect();
            let lo = indices.iter().copied().min().unwrap_or(0);
            let hi = indices.iter().copied().max().map_or(lo, |m| m + 1);
            (lo, hi)
        }
    }
}

impl Expander {
    /// For a phase with conditions: the statement that starts its clock, and
    /// the check run once it completed, breaking out of `label` with the
    /// phase's index when a condition fails. Nothing for a phase without.
    fn phase_rule(
        &self,
        phase: &Phase,
        stage: &Stage,
        i: usize,
        label: &syn::Lifetime,
    ) -> (TokenStream, TokenStream) {
        let p = &self.p;
        if phase.min_success.is_none()
            && phase.max_error_rate.is_none()
            && phase.max_slowdown.is_none()
        {
            return (TokenStream::new(), TokenStream::new());
        }
        let name = phase.name.to_string();
        let opt = |x: Option<f64>| x.map_or_else(|| quote!(#p::None), |x| quote!(#p::Some(#x)));
        let (min_success, max_error_rate, max_slowdown) = (
            opt(phase.min_success),
            opt(phase.max_error_rate),
            opt(phase.max_slowdown),
        );
        let (lo, hi) = record_range(stage);
        (
            quote!(let __started = #p::Instant::now();),
            quote! {
                const __RULE: #p::PhaseRule = #p::PhaseRule {
                    name: #name,
                    min_success: #min_success,
                    max_error_rate: #max_error_rate,
                    max_slowdown: #max_slowdown,
                };
                if let #p::Err(__error) = #p::check_phase(__cx, &__RULE, #lo..#hi, __started) {
                    break #label (#i, #p::Failed::new(__error));
                }
            },
        )
    }

    pub(super) fn run_orchestrate(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let label = self.label("phases");
        let undos: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("undo")).collect();
        let mut body = TokenStream::new();
        let mut prev_out: Option<syn::Ident> = None;
        let names: Vec<String> = w
            .phases
            .iter()
            .map(|ph| format!("phase `{}`", ph.name))
            .collect();
        for (i, (stage, phase)) in w.stages.iter().zip(&w.phases).enumerate() {
            let stage_input = self.chained_input(
                &w.stages,
                i,
                input,
                prev_out.as_ref(),
                (
                    &names,
                    "in `orchestrate!`, each phase's output is the next phase's input",
                ),
            );
            let run = self.run(stage, &stage_input);
            let out = self.ident("out");
            let undo = &undos[i];
            let (start, check) = self.phase_rule(phase, stage, i, &label);
            let fill = self.slot_fill(stage, &quote!(__undo));
            body.extend(quote! {
                #start
                let #out = match #run {
                    #p::Ok((__out, __undo)) => {
                        #undo = #fill;
                        #check
                        __out
                    }
                    #p::Err(__error) => break #label (#i, #p::StageError::into_failed(__error)),
                };
            });
            prev_out = Some(out);
        }
        let rollback = match w.options.rollback.unwrap_or(Rollback::WorkflowLevel) {
            Rollback::WorkflowLevel => self.compensate_reversed(&w.stages, &undos),
            Rollback::PhaseLevel => {
                // A phase that failed inside has compensated itself; one that
                // completed and broke a condition is compensated here.
                let mut arms = TokenStream::new();
                for (i, stage) in w.stages.iter().enumerate() {
                    let undo = &undos[i];
                    let kept = self.ident("kept");
                    let fut = self.undo(stage, &quote!(#kept));
                    arms.extend(quote! {
                        #i => if let #p::Some(#kept) = #p::UndoSlot::take(&mut #undo) {
                            #fut;
                        },
                    });
                }
                quote! {
                    match __phase {
                        #arms
                        _ => {}
                    }
                }
            }
        };
        let rollback = self.compensation(&rollback);
        let empties: Vec<TokenStream> = w.stages.iter().map(|s| self.slot_empty(s)).collect();
        // As in `sequential!`: the outputs leave by the outer label, and
        // the failed phase's error waits boxed while the others compensate.
        let done = self.label("done");
        quote! {{
            #(let mut #undos = #empties;)*
            #done: {
                let (__phase, __failed): (usize, #p::Failed) = #label: {
                    #body
                    break #done #p::Ok((#prev_out, (#(#undos,)*)));
                };
                let _ = __phase;
                #rollback
                #p::Err(__failed.into_error())
            }
        }}
    }
}
