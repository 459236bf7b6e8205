//! Generates a workflow: one unit struct per macro invocation implementing
//! `Workflow`, whose `execute` is a single `async` block. Nested workflows are
//! expanded inline as nested `async` blocks, so the whole tree is one
//! concrete state machine with no boxing and no dynamic dispatch.
//!
//! Every node expands to a future of `Result<(Output, Undo), Error>` that has
//! already compensated its own completed steps when it fails; `Undo` holds
//! what its completed steps kept, so an enclosing node can compensate them
//! if a later stage fails.

mod sequential;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::model::{Kind, Stage, Workflow};
use crate::typecheck::Check;

pub(crate) struct Expander {
    p: TokenStream,
    next_id: usize,
    /// Local trait definitions of type checks.
    checks: TokenStream,
    /// Steps in execution order, with the parallel group of each.
    steps: Vec<(syn::Path, u32)>,
    next_group: u32,
}

impl Expander {
    fn new() -> Self {
        Self {
            p: quote!(::ndf::__private),
            next_id: 0,
            checks: TokenStream::new(),
            steps: Vec::new(),
            next_group: 0,
        }
    }

    fn ident(&mut self, prefix: &str) -> syn::Ident {
        self.next_id += 1;
        format_ident!("__ndf_{}{}", prefix, self.next_id)
    }

    fn check(&mut self, name: &str, span: Span, rule: &crate::typecheck::Rule) -> Check {
        self.next_id += 1;
        let check = Check::new(&format!("{name}_{}", self.next_id), span, rule);
        self.checks.extend(check.definition.clone());
        check
    }

    fn input_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(path) => {
                quote_spanned!(syn::spanned::Spanned::span(path)=> <#path as #p::Step>::Input)
            }
            Stage::Nested(w) => match w.kind {
                Kind::Sequential => self.input_ty(&w.stages[0]),
            },
        }
    }

    fn output_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(path) => {
                quote_spanned!(syn::spanned::Spanned::span(path)=> <#path as #p::Step>::Output)
            }
            Stage::Nested(w) => match w.kind {
                Kind::Sequential => self.output_ty(&w.stages[w.stages.len() - 1]),
            },
        }
    }

    /// An expression awaiting `stage` run on `input`: `Result<(Output, Undo), Error>`.
    fn run(&mut self, stage: &Stage, input: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(path) => {
                let group = self.next_group;
                self.next_group += 1;
                self.steps.push((path.clone(), group));
                let p = &self.p;
                quote_spanned!(syn::spanned::Spanned::span(path)=> #p::run_step::<#path>(__cx, #input).await)
            }
            Stage::Nested(w) => match w.kind {
                Kind::Sequential => self.run_sequential(w, input),
            },
        }
    }

    /// An expression awaiting the compensation of the completed steps of
    /// `stage`, whose kept values are `undo`, in reverse order.
    fn undo(&mut self, stage: &Stage, undo: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(path) => {
                let p = &self.p;
                quote_spanned!(syn::spanned::Spanned::span(path)=> #p::compensate_step::<#path>(__cx, #undo).await)
            }
            Stage::Nested(w) => match w.kind {
                Kind::Sequential => self.undo_sequential(w, undo),
            },
        }
    }

    /// Parts whose concatenation is the derived name of `stage`.
    fn name_parts(&self, stage: &Stage) -> Vec<TokenStream> {
        let p = &self.p;
        match stage {
            Stage::Step(path) => {
                vec![quote_spanned!(syn::spanned::Spanned::span(path)=> <#path as #p::Step>::NAME)]
            }
            Stage::Nested(w) => {
                if let Some(name) = &w.name {
                    return vec![quote!(#name)];
                }
                let mut parts = Vec::new();
                for (i, s) in w.stages.iter().enumerate() {
                    if i > 0 {
                        parts.push(quote!(">"));
                    }
                    parts.extend(self.name_parts(s));
                }
                parts
            }
        }
    }
}

/// Expands a checked workflow.
pub(crate) fn expand(workflow: &Workflow) -> TokenStream {
    let mut ex = Expander::new();
    let top = Stage::Nested(clone_shallow(workflow));
    let input_ty = ex.input_ty(&top);
    let output_ty = ex.output_ty(&top);
    let run = ex.run(&top, &quote!(__input));
    let p = ex.p.clone();

    let (name, named) = match &workflow.name {
        Some(name) => (quote!(#name), true),
        None => {
            let parts = ex.name_parts(&top);
            (
                quote! {{
                    const __PARTS: &[&str] = &[#(#parts),*];
                    const __BYTES: [u8; #p::name_len(__PARTS)] = #p::write_name(__PARTS);
                    match ::core::str::from_utf8(&__BYTES) {
                        #p::Ok(__name) => __name,
                        #p::Err(_) => "workflow",
                    }
                }},
                false,
            )
        }
    };

    let perms = ex
        .steps
        .iter()
        .map(|(path, _)| quote!(<#path as #p::Step>::META.permissions));
    let order_entries = ex.steps.iter().map(|(path, group)| {
        quote!(#p::OrderStage { name: <#path as #p::Step>::NAME, after: <#path as #p::Step>::META.after, group: #group })
    });
    let order_checks = ex.steps.iter().enumerate().map(|(i, (path, _))| {
        quote_spanned! {syn::spanned::Spanned::span(path)=>
            const _: () = if let #p::Some(__v) = #p::check_order(__NDF_ORDER, #i, <__NdfWorkflow as #p::Workflow>::NAME) {
                ::core::panic!("{}", __v.as_str())
            };
        }
    });
    let checks = &ex.checks;
    // rustc checks these items where they stand: put them on the stages
    // they come from, so that a stage that is not a step is reported there.
    let input_item = quote_spanned!(first_span(workflow)=> type Input = #input_ty;);
    let output_item = quote_spanned!(last_span(workflow)=> type Output = #output_ty;);

    // Spanned on the last stage: rustc checks the signature of `execute`
    // where it stands, and a stage that is not a step is best reported there.
    let workflow_impl = quote_spanned! {last_span(workflow)=>
            #[automatically_derived]
            impl #p::Workflow for __NdfWorkflow {
                #input_item
                #output_item

                const NAME: &'static str = #name;
                const NAMED: bool = #named;
                const PERMISSIONS: &'static [&'static [&'static str]] = &[#(#perms),*];

                fn execute<'__a>(
                    &'__a self,
                    __cx: #p::Cx<'__a>,
                    __input: Self::Input,
                ) -> impl #p::Future<Output = #p::Result<Self::Output, #p::Error>> + ::core::marker::Send + '__a {
                    async move {
                        let (__output, _) = #run?;
                        #p::Ok(__output)
                    }
                }
            }
    };

    quote! {{
        #[derive(Clone, Copy, Debug, Default)]
        #[allow(non_camel_case_types)]
        struct __NdfWorkflow;

        #[allow(non_camel_case_types, clippy::all, clippy::pedantic)]
        const _: () = {
            #checks

            const __NDF_ORDER: &[#p::OrderStage] = &[#(#order_entries),*];
            #(#order_checks)*

            #workflow_impl
        };

        __NdfWorkflow
    }}
}

fn first_span(w: &Workflow) -> Span {
    match w.stages.first() {
        Some(Stage::Nested(inner)) => first_span(inner),
        Some(stage) => stage.span(),
        None => w.span,
    }
}

fn last_span(w: &Workflow) -> Span {
    match w.stages.last() {
        Some(Stage::Nested(inner)) => last_span(inner),
        Some(stage) => stage.span(),
        None => w.span,
    }
}

/// The top-level workflow as a stage, so that it expands like a nested one.
fn clone_shallow(w: &Workflow) -> Workflow {
    Workflow {
        kind: w.kind,
        span: w.span,
        name: w.name.clone(),
        stages: w.stages.iter().map(clone_stage).collect(),
    }
}

fn clone_stage(s: &Stage) -> Stage {
    match s {
        Stage::Step(p) => Stage::Step(p.clone()),
        Stage::Nested(w) => Stage::Nested(clone_shallow(w)),
    }
}
