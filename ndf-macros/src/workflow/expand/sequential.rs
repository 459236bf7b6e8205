//! `sequential!`: each stage's output is the next stage's input; when a
//! stage fails, the completed stages are compensated in reverse order.
//!
//! A sequence expands to a plain block, not an `async` block: its awaits
//! belong to the enclosing state machine, so nesting adds no layer. What each
//! completed stage kept for compensation waits in an `Option` (one byte for
//! steps without `compensate`); the node's undo value is the tuple of them.

use proc_macro2::TokenStream;
use quote::quote;

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::Workflow;

impl Expander {
    pub(super) fn run_sequential(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let label = syn::Lifetime::new(
            &format!("'__ndf_stages{}", self.fresh()),
            proc_macro2::Span::call_site(),
        );
        let undos: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("undo")).collect();
        let mut body = TokenStream::new();
        let mut prev_out: Option<syn::Ident> = None;
        for (i, stage) in w.stages.iter().enumerate() {
            let stage_input = match &prev_out {
                None => input.clone(),
                Some(out) => {
                    let prev = w.stages[i - 1].describe();
                    let next = stage.describe();
                    let check = self.check(
                        &format!("ndf_input_of_{}", stage.ident_hint()),
                        stage.span(),
                        &Rule {
                            message: format!(
                                "{next} cannot follow {prev}: it takes `{{__T}}`, but {prev} returns `{{Self}}`"
                            ),
                            label: format!("{next} takes `{{__T}}`"),
                            note: "in `sequential!`, each stage's output is the next stage's input".into(),
                        },
                    );
                    let target = self.input_ty(stage);
                    check.convert(&quote!(#out), &target)
                }
            };
            let run = self.run(stage, &stage_input);
            let out = self.ident("out");
            let undo = &undos[i];
            body.extend(quote! {
                let #out = match #run {
                    #p::Ok((__out, __undo)) => {
                        #undo = #p::Some(__undo);
                        __out
                    }
                    #p::Err(__error) => break #label #p::Err(__error),
                };
            });
            prev_out = Some(out);
        }
        let compensate = self.compensate_reversed(w, &undos);
        quote! {{
            #(let mut #undos = #p::None;)*
            let __result: #p::Result<_, #p::Error> = #label: {
                #body
                #p::Ok(#prev_out)
            };
            match __result {
                #p::Ok(__out) => #p::Ok((__out, (#(#undos,)*))),
                #p::Err(__error) => {
                    #compensate
                    #p::Err(__error)
                }
            }
        }}
    }

    /// Compensates the stages of `w` whose kept values are `Some` in `undos`,
    /// last first.
    fn compensate_reversed(&mut self, w: &Workflow, undos: &[syn::Ident]) -> TokenStream {
        let p = self.p.clone();
        let mut out = TokenStream::new();
        for (stage, undo) in w.stages.iter().zip(undos).rev() {
            let kept = self.ident("kept");
            let fut = self.undo(stage, &quote!(#kept));
            out.extend(quote! {
                if let #p::Some(#kept) = #undo {
                    #fut;
                }
            });
        }
        out
    }

    pub(super) fn undo_sequential(&mut self, w: &Workflow, undo: &TokenStream) -> TokenStream {
        let names: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("u")).collect();
        let body = self.compensate_reversed(w, &names);
        quote! {{
            let (#(#names,)*) = #undo;
            #body
        }}
    }
}
