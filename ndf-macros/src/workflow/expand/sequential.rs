//! `sequential!`: each stage's output is the next stage's input; when a
//! stage fails, the completed stages are compensated in reverse order.

use proc_macro2::TokenStream;
use quote::quote;

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::Workflow;

impl Expander {
    pub(super) fn run_sequential(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let mut body = TokenStream::new();
        let mut undos: Vec<syn::Ident> = Vec::new();
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
            let undo = self.ident("undo");
            if undos.is_empty() {
                body.extend(quote!(let (#out, #undo) = #run?;));
            } else {
                let compensate = self.compensate_reversed(w, &undos);
                body.extend(quote! {
                    let (#out, #undo) = match #run {
                        #p::Ok(__done) => __done,
                        #p::Err(__error) => {
                            #compensate
                            return #p::Err(__error);
                        }
                    };
                });
            }
            undos.push(undo);
            prev_out = Some(out);
        }
        quote! {
            async move {
                #body
                #p::Ok::<_, #p::Error>((#prev_out, (#(#undos,)*)))
            }.await
        }
    }

    /// Compensates the first `undos.len()` stages of `w`, last first.
    fn compensate_reversed(&mut self, w: &Workflow, undos: &[syn::Ident]) -> TokenStream {
        let mut out = TokenStream::new();
        for (stage, undo) in w.stages.iter().zip(undos).rev() {
            let fut = self.undo(stage, &quote!(#undo));
            out.extend(quote!(#fut;));
        }
        out
    }

    pub(super) fn undo_sequential(&mut self, w: &Workflow, undo: &TokenStream) -> TokenStream {
        let names: Vec<syn::Ident> = w.stages.iter().map(|_| self.ident("u")).collect();
        let body = self.compensate_reversed(w, &names);
        quote! {
            async move {
                let (#(#names,)*) = #undo;
                #body
            }.await
        }
    }
}
