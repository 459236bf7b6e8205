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
            Stage::Nested(w) => self.workflow_input_ty(w),
        }
    }

    fn output_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = &step.path;
                quote_spanned!(syn::spanned::Spanned::span(path)=> <#path as #p::Step>::Output)
            }
            Stage::Nested(w) => self.workflow_output_ty(w),
        }
    }

    fn workflow_input_ty(&self, w: &Workflow) -> TokenStream {
        match w.kind {
            Kind::Sequential => self.input_ty(&w.stages[0]),
        }
    }

    fn workflow_output_ty(&self, w: &Workflow) -> TokenStream {
        match w.kind {
            Kind::Sequential => self.output_ty(&w.stages[w.stages.len() - 1]),
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
            Stage::Nested(w) => self.run_workflow(w, input),
        }
    }

    fn run_workflow(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        match w.kind {
            Kind::Sequential => self.run_sequential(w, input),
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

    /// Parts whose concatenation is the derived name of `w`: stage names
    /// joined by `>`, a nested workflow's name where it has one.
    fn name_parts(&self, w: &Workflow) -> Vec<TokenStream> {
        let p = &self.p;
        let mut parts = Vec::new();
        for (i, stage) in w.stages.iter().enumerate() {
            if i > 0 {
                parts.push(quote!(">"));
            }
            match stage {
                Stage::Step(step) => {
                    let path = &step.path;
                    parts.push(quote_spanned!(syn::spanned::Spanned::span(path)=> <#path as #p::Step>::NAME));
                }
                Stage::Nested(nested) => match &nested.name {
                    Some(name) => parts.push(quote!(#name)),
                    None => parts.extend(self.name_parts(nested)),
                },
            }
        }
        parts
    }

    /// The workflow's `NAME`: its `name`, or one derived at compile time from
    /// its stages' names.
    fn name_const(&self, w: &Workflow) -> TokenStream {
        let p = &self.p;
        if let Some(name) = &w.name {
            return quote!(#name);
        }
        let parts = self.name_parts(w);
        quote! {{
            const __PARTS: &[&str] = &[#(#parts),*];
            const __BYTES: [u8; #p::name_len(__PARTS)] = #p::write_name(__PARTS);
            match ::core::str::from_utf8(&__BYTES) {
                #p::Ok(__name) => __name,
                #p::Err(_) => "workflow",
            }
        }}
    }
}

/// What the compile-time `after` rule and the runtime need of each step
/// stage: the stage's `OrderStage`, one const check per stage (each spanned on
/// its stage, so a violation is reported there), its name and permissions.
fn step_items(
    workflow: &Workflow,
    p: &TokenStream,
) -> (
    Vec<TokenStream>,
    Vec<TokenStream>,
    Vec<TokenStream>,
    Vec<TokenStream>,
) {
    let mut order = Vec::new();
    let mut checks = Vec::new();
    let mut names = Vec::new();
    let mut perms = Vec::new();
    for (i, step) in workflow.steps().into_iter().enumerate() {
        let path = &step.path;
        let span = syn::spanned::Spanned::span(path);
        // Each step of a sequence is its own ordering group.
        let group = u32::try_from(step.index).unwrap_or(u32::MAX);
        order.push(quote_spanned! {span=>
            #p::OrderStage { name: <#path as #p::Step>::NAME, after: <#path as #p::Step>::META.after, group: #group }
        });
        checks.push(quote_spanned! {span=>
            const _: () = if let #p::Some(__v) = #p::check_order(__NDF_ORDER, #i, <__NdfWorkflow as #p::Workflow>::NAME) {
                ::core::panic!("{}", __v.as_str())
            };
        });
        names.push(quote_spanned!(span=> <#path as #p::Step>::NAME));
        perms.push(quote_spanned!(span=> <#path as #p::Step>::META.permissions));
    }
    (order, checks, names, perms)
}

/// Expands a checked workflow.
pub(crate) fn expand(workflow: &Workflow) -> TokenStream {
    let mut ex = Expander::new();
    let p = ex.p.clone();
    let input_ty = ex.workflow_input_ty(workflow);
    let output_ty = ex.workflow_output_ty(workflow);
    let run = ex.run_workflow(workflow, &quote!(__input));
    let name = ex.name_const(workflow);
    let named = workflow.name.is_some();
    let (order_entries, order_checks, step_names, perms) = step_items(workflow, &p);
    let step_count = step_names.len();
    let checks = &ex.checks;

    // rustc checks these items where they stand: put them on the stages they
    // come from, so that a stage that is not a step is reported there.
    let input_item = quote_spanned!(first_span(workflow)=> type Input = #input_ty;);
    let output_item = quote_spanned!(last_span(workflow)=> type Output = #output_ty;);
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
