//! `sequential!`: each stage's output is the next stage's input; when a
//! stage fails, the completed stages are compensated in reverse order.
//!
//! A sequence expands to a plain block, not an `async` block: its awaits
//! belong to the enclosing state machine, so nesting adds no layer. What each
//! completed stage kept for compensation waits in its slot (`Step::Slot`:
//! an `Option`, or nothing at all for a step without `compensate`).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::{Stage, Workflow};

/// `name` as a fragment of an identifier: "phase `migration`" becomes
/// `phase_migration`.
fn ident_fragment(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("_")
}

impl Expander {
    /// The input of stage `i` of a chain (`sequential!` stages or
    /// `orchestrate!` phases): the workflow's input for the first, the
    /// previous output, checked to be the type the stage takes, for the others.
    /// `names` are how messages name the stages.
    pub(super) fn chained_input(
        &mut self,
        stages: &[Stage],
        i: usize,
        input: &TokenStream,
        prev_out: Option<&syn::Ident>,
        (names, note): (&[String], &str),
    ) -> TokenStream {
        let Some(out) = prev_out else {
            return input.clone();
        };
        let (prev, next) = (&names[i - 1], &names[i]);
        self.checked_input_of(
            &stages[i],
            &ident_fragment(next),
            &quote!(#out),
            &Rule {
                message: format!(
                    "{next} cannot follow {prev}: it takes `{{__T}}`, but {prev} returns `{{Self}}`"
                ),
                label: format!("{next} takes `{{__T}}`"),
                note: note.into(),
            },
        )
    }

    pub(super) fn run_sequential(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let durable = std::mem::take(&mut self.durable_root);
        let p = self.p.clone();
        let label = self.label("stages");
        let undos: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("undo")).collect();
        let mut body = TokenStream::new();
        let mut prev_out: Option<syn::Ident> = None;
        let names: Vec<String> = w.stages.iter().map(Stage::describe).collect();
        for (i, stage) in w.stages.iter().enumerate() {
            let stage_input = self.chained_input(
                &w.stages,
                i,
                input,
                prev_out.as_ref(),
                (
                    &names,
                    "in `sequential!`, each stage's output is the next stage's input",
                ),
            );
            let run = self.run(stage, &stage_input);
            let out = self.ident("out");
            let undo = &undos[i];
            let fill = self.slot_fill(stage, &quote!(__undo));
            let ran = quote! {
                match #run {
                    #p::Ok((__out, __undo)) => {
                        #undo = #fill;
                        __out
                    }
                    #p::Err(__error) => break #label #p::StageError::into_failed(__error),
                }
            };
            if durable {
                let stage_run = self.checkpointed_stage(stage, i, undo, &ran, &label);
                body.extend(quote!(let #out = #stage_run;));
            } else {
                body.extend(quote!(let #out = #ran;));
            }
            prev_out = Some(out);
        }
        let empties: Vec<TokenStream> = w.stages.iter().map(|s| self.slot_empty(s)).collect();
        let compensate = self.compensate_reversed(&w.stages, &undos);
        let compensate = self.compensation(&compensate);
        // The error is the labeled block's value, and the outputs leave
        // by the outer label: no `Result` of the whole sequence is stored
        // beside every stage it awaits.
        let done = self.label("done");
        quote! {{
            #(let mut #undos = #empties;)*
            #done: {
                let __failed: #p::Failed = #label: {
                    #body
                    break #done #p::Ok((#prev_out, (#(#undos,)*)));
                };
                #compensate
                #p::Err(__failed.into_error())
            }
        }}
    }

    /// Stage `i` of a durable root: restored from its checkpoint when the
    /// run resumes past it (a step's compensation rebuilt from its
    /// output), else `ran` and, in a run from the queue, checkpointed.
    fn checkpointed_stage(
        &self,
        stage: &Stage,
        i: usize,
        undo: &syn::Ident,
        ran: &TokenStream,
        label: &syn::Lifetime,
    ) -> TokenStream {
        let p = &self.p;
        let ty = self.output_ty(stage);
        // On the stage: a stage that is not a step is reported there, once.
        let at = crate::typecheck::at(stage.span());
        let restore = quote_spanned!(at=> #p::restored::<#ty>(__cx, #i));
        let store = quote_spanned!(at=> #p::stage_done(__cx, #i, &__out));
        let rebuild = match stage {
            Stage::Step(step) => {
                let path = step.alias();
                let fill = self.slot_fill(stage, &quote!(<#path as #p::Step>::keep(&__out)));
                quote!(#undo = #fill;)
            }
            // A nested workflow's compensation is not rebuilt: it kept what
            // its own stages returned, which no checkpoint holds.
            Stage::Nested(_) => TokenStream::new(),
        };
        quote! {
            // Asked at each stage, not kept in a local: a local would be
            // a word of every run's future, durable or not.
            if __NDF_DURABLE && __cx.resume_stage() > #i {
                match #restore {
                    #p::Ok(__out) => {
                        #rebuild
                        __out
                    }
                    #p::Err(__error) => break #label #p::Failed::new(__error),
                }
            } else {
                let __out = #ran;
                // Encoded now, stored before the next stage's steps run:
                // no await here. No `let` chain: the user's crate may be
                // on an older edition.
                if __NDF_DURABLE {
                    if let #p::Err(__error) = #store {
                        break #label #p::Failed::new(__error);
                    }
                }
                __out
            }
        }
    }
}
