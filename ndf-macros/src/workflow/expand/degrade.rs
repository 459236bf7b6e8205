//! `degrade!`: alternatives in order of preference, with the input and
//! output types of the first. The first that is admitted runs (every level
//! but the last is skipped while resources are above the configured
//! limits); a failure moves to the next; the run records which level served.

use proc_macro2::TokenStream;
use quote::quote;

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::{Stage, Workflow};

impl Expander {
    /// The input of alternative `level` (`copied` is its copy of the shared
    /// input) and its output, both checked against the first alternative's
    /// types.
    fn alternative_io(
        &mut self,
        w: &Workflow,
        level: usize,
        copied: TokenStream,
    ) -> (TokenStream, TokenStream) {
        let stage = &w.stages[level];
        let this = stage.describe();
        let first = w.stages[0].describe();
        let output_ty = self.output_ty(&w.stages[0]);
        let stage_input = if level == 0 {
            copied
        } else {
            self.checked_input_of(
                stage,
                &stage.ident_hint(),
                &copied,
                &Rule {
                    message: format!(
                        "alternative {this} takes `{{__T}}`, but this `degrade!` takes `{{Self}}`, the input of {first}"
                    ),
                    label: format!("{this} takes `{{__T}}`"),
                    note: "the alternatives of a `degrade!` stand in for each other: they take the same input and return the same output".into(),
                },
            )
        };
        let out = if level == 0 {
            quote!(__out)
        } else {
            let check = self.check(
                &format!("ndf_output_of_{}", stage.ident_hint()),
                stage.span(),
                &Rule {
                    message: format!(
                        "alternative {this} returns `{{Self}}`, but this `degrade!` returns `{{__T}}`, the output of {first}"
                    ),
                    label: format!("{this} returns `{{Self}}`"),
                    note: "the alternatives of a `degrade!` stand in for each other: they take the same input and return the same output".into(),
                },
            );
            check.convert(&quote!(__out), &output_ty)
        };
        (stage_input, out)
    }

    pub(super) fn run_degrade(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let n = w.stages.len();
        let label = self.label("degrade");
        let record = w.record;
        let mut body = TokenStream::new();
        for (level, stage) in w.stages.iter().enumerate() {
            let last = level + 1 == n;
            let copied = if last {
                quote!(__shared)
            } else {
                self.copy(
                    "ndf_degrade_input",
                    w.stages[level + 1].span(),
                    "each alternative of this `degrade!` may need the input after another failed, so `{Self}` must implement `Clone`",
                    "derive `Clone` for the input, or share it through an `Arc`",
                    &quote!(__shared),
                )
            };
            let (stage_input, out) = self.alternative_io(w, level, copied);
            let undo: Vec<TokenStream> = (w.stages.iter().enumerate())
                .map(|(i, s)| {
                    if i == level {
                        self.slot_fill(s, &quote!(__undo))
                    } else {
                        self.slot_empty(s)
                    }
                })
                .collect();
            let own_input = self.ident("input");
            let run = self.run(stage, &quote!(#own_input));
            let gate_record = match stage {
                Stage::Step(step) => {
                    let record = step.record;
                    quote!(#p::Some(#record))
                }
                Stage::Nested(_) => quote!(#p::None),
            };
            let served = quote!((#out, (#(#undo,)*), #level));
            body.extend(if last {
                quote! {
                    let #own_input = #stage_input;
                    match #run {
                        #p::Ok((__out, __undo)) => #p::Ok(#served),
                        #p::Err(__error) => #p::Err(#p::StageError::into_error(__error)),
                    }
                }
            } else {
                quote! {
                    if #p::admit_level(__cx, #level, #gate_record) {
                        let #own_input = #stage_input;
                        match #run {
                            #p::Ok((__out, __undo)) => break #label #p::Ok(#served),
                            #p::Err(__error) => #p::alternative_failed(__cx, #level, #p::StageError::error(&__error)),
                        }
                    }
                }
            });
        }
        let last_level = n - 1;
        quote! {{
            let __shared = #input;
            let __served: #p::Result<_, #p::Error> = #label: { #body };
            match __served {
                #p::Ok((__out, __undo, __level)) => {
                    #p::record_level(__cx, #record, __level, true);
                    #p::Ok((__out, __undo))
                }
                #p::Err(__error) => {
                    #p::record_level(__cx, #record, #last_level, false);
                    #p::Err(__error)
                }
            }
        }}
    }
}
