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

use super::model::{Kind, Stage, StepRef, Workflow};
use crate::typecheck::Check;

pub(crate) struct Expander {
    p: TokenStream,
    next_id: usize,
    /// Local trait definitions of type checks.
    checks: TokenStream,
    check_names: Vec<String>,
}

impl Expander {
    fn new() -> Self {
        Self {
            p: quote!(::ndf::__private),
            next_id: 0,
            checks: TokenStream::new(),
            check_names: Vec::new(),
        }
    }

    fn fresh(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn ident(&mut self, prefix: &str) -> syn::Ident {
        let id = self.fresh();
        format_ident!("__ndf_{}{}", prefix, id)
    }

    /// A type check named `name` (rustc may show the name: keep it
    /// readable), suffixed only when the name is already taken.
    fn check(&mut self, name: &str, span: Span, rule: &crate::typecheck::Rule) -> Check {
        let mut unique = name.to_owned();
        let mut n = 1;
        while self.check_names.contains(&unique) {
            n += 1;
            unique = format!("{name}_{n}");
        }
        self.check_names.push(unique.clone());
        let check = Check::new(&unique, span, rule);
        self.checks.extend(check.definition.clone());
        check
    }

    fn input_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = &step.path;
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
            Stage::Step(step) => {
                let path = &step.path;
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
            Stage::Step(step) => {
                let (path, index) = (&step.path, step.index);
                let p = &self.p;
                quote_spanned!(syn::spanned::Spanned::span(path)=> #p::run_step::<#path>(__cx, #index, #input).await)
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
            Stage::Step(step) => {
                let (path, index) = (&step.path, step.index);
                let p = &self.p;
                quote_spanned!(syn::spanned::Spanned::span(path)=> #p::compensate_step::<#path>(__cx, #index, #undo).await)
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
            Stage::Step(step) => {
                let path = &step.path;
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

    // Each step of a sequence is its own ordering group; `parallel!` will
    // put its tasks in one.
    let steps: Vec<(&syn::Path, u32)> = workflow
        .steps()
        .into_iter()
        .map(|s| (&s.path, u32::try_from(s.index).unwrap_or(u32::MAX)))
        .collect();
    let step_count = steps.len();
    let step_names = steps.iter().map(
        |(path, _)| quote_spanned!(syn::spanned::Spanned::span(*path)=> <#path as #p::Step>::NAME),
    );
    let perms = steps.iter().map(|(path, _)| {
        quote_spanned!(syn::spanned::Spanned::span(*path)=> <#path as #p::Step>::META.permissions)
    });
    let order_entries = steps.iter().map(|(path, group)| {
        quote_spanned! {syn::spanned::Spanned::span(*path)=>
            #p::OrderStage { name: <#path as #p::Step>::NAME, after: <#path as #p::Step>::META.after, group: #group }
        }
    });
    let order_checks = steps.iter().enumerate().map(|(i, (path, _))| {
        quote_spanned! {syn::spanned::Spanned::span(*path)=>
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
                const STEPS: &'static [&'static str] = &[#(#step_names),*];
                type Log = [#p::StepRecord; #step_count];

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
        Stage::Step(step) => Stage::Step(StepRef {
            path: step.path.clone(),
            index: step.index,
        }),
        Stage::Nested(w) => Stage::Nested(clone_shallow(w)),
    }
}
