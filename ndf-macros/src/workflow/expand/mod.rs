//! Generates a workflow: one unit struct per macro invocation implementing
//! `Workflow`, whose `execute` is a single `async` block. Nested workflows are
//! expanded inline as plain blocks whose awaits belong to that one state
//! machine (`parallel!` tasks are pinned inside it), so the whole tree is one
//! concrete future with no dynamic dispatch; only a failed run boxes its
//! compensation (`compensate`).
//!
//! Every node expands to an expression of type `Result<(Output, Undo),
//! Error>` that has already compensated its own completed steps when it
//! fails. `Undo` is a tuple with one `Option` per child, `Some` for children
//! that completed, so that an enclosing node can compensate them if a later
//! stage fails: last child first.

mod compensate;
mod degrade;
mod fan;
mod orchestrate;
mod parallel;
mod sequential;
mod shape;
mod step;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use super::model::{Kind, Output, Record, Stage, Workflow};
use crate::typecheck::{Check, Rule, clone_check};

#[allow(
    clippy::struct_excessive_bools,
    reason = "independent switches of one expansion, each set where it applies"
)]
pub(crate) struct Expander {
    p: TokenStream,
    next_id: usize,
    /// Local trait definitions of type checks.
    checks: TokenStream,
    check_names: Vec<String>,
    /// Inside the tasks of a `parallel!(spawn = true; …)`: steps run their
    /// code on spawned tasks.
    spawn: bool,
    /// Inside the tasks of a `parallel!`: steps stop when their task is
    /// cancelled (only these can be).
    in_task: bool,
    /// Inside the tasks of a `parallel!`, with nothing between that polls
    /// with wakers of its own (a `parallel!(each …)`): the reference to
    /// that `parallel!`'s deadlines, whose one alarm bounds the first
    /// attempts of its steps.
    join: Option<syn::Ident>,
    /// The workflow is a `sequential!` at the top: its stages are the
    /// checkpoints of a run from the queue. Taken by the first
    /// `sequential!` expanded, the root.
    durable_root: bool,
    /// The workflow has more than [`OUTLINED_ABOVE`] steps: each step
    /// awaited in place is polled in a call of its own (the runtime's
    /// `Outlined`), not inlined into the workflow's poll.
    outlined: bool,
}

/// The number of steps above which a workflow's steps awaited in place
/// are polled in calls of their own. Measured with callgrind's model of
/// the processor (instructions, and 10 cycles for each miss of a 32 KiB
/// instruction cache) a run of a `sequential!` of plain steps, inlined
/// against called: 10 steps, 2 580 against 2 900 (inlined costs less);
/// 20 steps, 5 140 against 4 190; 100 steps, 27 900 against 21 080. In a
/// call, each step costs the same whatever the length of the sequence.
const OUTLINED_ABOVE: usize = 12;

impl Expander {
    /// An expander of a workflow whose generated code reaches ndf through
    /// `krate` (`crate = "…"`), or `::ndf`.
    fn new(krate: Option<&syn::Path>) -> Self {
        Self {
            p: crate::keys::private_path(krate),
            next_id: 0,
            checks: TokenStream::new(),
            check_names: Vec::new(),
            spawn: false,
            in_task: false,
            join: None,
            durable_root: false,
            outlined: false,
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

    fn label(&mut self, prefix: &str) -> syn::Lifetime {
        let id = self.fresh();
        syn::Lifetime::new(&format!("'__ndf_{prefix}{id}"), Span::call_site())
    }

    /// `name`, suffixed when a check of that name exists already. rustc may
    /// show the names of checks: they stay readable.
    fn unique_check_name(&mut self, name: &str) -> String {
        let mut unique = name.to_owned();
        let mut n = 1;
        while self.check_names.contains(&unique) {
            n += 1;
            unique = format!("{name}_{n}");
        }
        self.check_names.push(unique.clone());
        unique
    }

    /// A type check named after `name`.
    fn check(&mut self, name: &str, span: Span, rule: &Rule) -> Check {
        let check = Check::new(&self.unique_check_name(name), span, rule);
        self.checks.extend(check.definition.clone());
        check
    }

    /// `value`, checked to be the input type of `stage` by a check named
    /// `ndf_input_of_{hint}` and reported by `rule` at the stage.
    fn checked_input_of(
        &mut self,
        stage: &Stage,
        hint: &str,
        value: &TokenStream,
        rule: &Rule,
    ) -> TokenStream {
        // A fan-out takes any iterable: it checks its items itself.
        if let Stage::Nested(w) = stage
            && w.each.is_some()
        {
            return value.clone();
        }
        let check = self.check(&format!("ndf_input_of_{hint}"), stage.span(), rule);
        let target = self.input_ty(stage);
        check.convert(value, &target)
    }

    /// `value` of type `T: Clone`, copied; the message says why the copy is
    /// needed. `value` is a place expression.
    fn copy(
        &mut self,
        name: &str,
        span: Span,
        message: &str,
        note: &str,
        value: &TokenStream,
    ) -> TokenStream {
        let (ident, def) = clone_check(&self.unique_check_name(name), message, note);
        self.checks.extend(def);
        let value = crate::typecheck::respan(value.clone(), span);
        quote_spanned!(crate::typecheck::at(span)=> #ident::__ndf_copy(&#value))
    }

    fn input_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = &step.alias();
                quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=> <#path as #p::Step>::Input)
            }
            Stage::Nested(w) => self.workflow_input_ty(w),
        }
    }

    fn output_ty(&self, stage: &Stage) -> TokenStream {
        let p = &self.p;
        match stage {
            Stage::Step(step) => {
                let path = &step.alias();
                quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=> <#path as #p::Step>::Output)
            }
            Stage::Nested(w) => self.workflow_output_ty(w),
        }
    }

    /// The input type of `w` where one must be written: a fan-out takes
    /// any iterable when nested, but a `Vec` of its items at the top.
    fn workflow_input_ty(&self, w: &Workflow) -> TokenStream {
        let item = self.input_ty(&w.stages[0]);
        if w.each.is_some() {
            quote!(::std::vec::Vec<#item>)
        } else {
            item
        }
    }

    fn workflow_output_ty(&self, w: &Workflow) -> TokenStream {
        let outputs = self.stages_output_ty(w);
        if w.options.keep_input {
            let input = self.workflow_input_ty(w);
            quote!((#input, #outputs))
        } else {
            outputs
        }
    }

    /// What the stages of `w` output together, without a kept input.
    fn stages_output_ty(&self, w: &Workflow) -> TokenStream {
        if w.each.is_some() {
            let p = &self.p;
            let out = self.output_ty(&w.stages[0]);
            return if w.options.min_success.is_some() {
                quote!(::std::vec::Vec<#p::Result<#out, #p::StepError>>)
            } else {
                quote!(::std::vec::Vec<#out>)
            };
        }
        match w.kind.spec().output {
            Output::Last => self.output_ty(&w.stages[w.stages.len() - 1]),
            Output::First => self.output_ty(&w.stages[0]),
            Output::Tuple => {
                let p = &self.p;
                let outs = w.stages.iter().map(|s| self.output_ty(s));
                if w.options.min_success.is_some() {
                    quote!((#(#p::Result<#outs, #p::StepError>,)*))
                } else {
                    quote!((#(#outs,)*))
                }
            }
        }
    }

    /// An expression awaiting `stage` run on `input`: `Result<(Output,
    /// Undo), E>`, where `E` is a `StageError`: a step's run fails with
    /// its error boxed, a nested workflow with the error itself.
    fn run(&mut self, stage: &Stage, input: &TokenStream) -> TokenStream {
        match stage {
            Stage::Step(step) => {
                if let Some(awaited) = self.step_in_place(step, input) {
                    return awaited;
                }
                let run = self.step_future(step, input);
                quote!(#run.await)
            }
            Stage::Nested(w) => self.run_workflow(w, input),
        }
    }

    fn run_workflow(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        if w.options.keep_input {
            return self.run_keeping_input(w, input);
        }
        match w.kind {
            Kind::Sequential => self.run_sequential(w, input),
            Kind::Parallel if w.each.is_some() => self.run_fan_out(w, input),
            Kind::Parallel => self.run_parallel(w, input),
            Kind::Degrade => self.run_degrade(w, input),
            Kind::Orchestrate => self.run_orchestrate(w, input),
        }
    }

    /// `keep_input = true`: a copy of the input, then the workflow, whose
    /// output goes out beside the copy.
    fn run_keeping_input(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let kept = self.ident("kept");
        let shared = self.ident("kept_input");
        let copy = self.copy(
            "ndf_kept_input",
            w.stages.first().map_or(w.span, Stage::span),
            &format!(
                "`keep_input = true` keeps a copy of the input of this `{}`, so `{{Self}}` must implement `Clone`",
                w.kind.macro_name()
            ),
            "derive `Clone` for the input, or share it through an `Arc`",
            &quote!(#shared),
        );
        let run = match w.kind {
            Kind::Parallel if w.each.is_some() => self.run_fan_out(w, &quote!(#shared)),
            Kind::Parallel => self.run_parallel(w, &quote!(#shared)),
            Kind::Degrade => self.run_degrade(w, &quote!(#shared)),
            // The option is refused on the others when it is parsed.
            Kind::Sequential => self.run_sequential(w, &quote!(#shared)),
            Kind::Orchestrate => self.run_orchestrate(w, &quote!(#shared)),
        };
        quote! {{
            let #shared = #input;
            let #kept = #copy;
            match #run {
                #p::Ok((__out, __undo)) => #p::Ok(((#kept, __out), __undo)),
                #p::Err(__error) => #p::Err(__error),
            }
        }}
    }

    /// Parts whose concatenation is the derived name of `w`.
    fn name_parts(&self, w: &Workflow) -> Vec<TokenStream> {
        let p = &self.p;
        let (open, separator, close) = w.kind.spec().derived_name;
        let mut parts = if w.each.is_some() {
            vec![quote!("each"), quote!(#open)]
        } else {
            vec![quote!(#open)]
        };
        for (i, stage) in w.stages.iter().enumerate() {
            if i > 0 {
                parts.push(quote!(#separator));
            }
            if w.kind.spec().phases {
                let phase_name = w.phases[i].name.to_string();
                parts.push(quote!(#phase_name));
                continue;
            }
            match stage {
                Stage::Step(step) => {
                    let path = &step.alias();
                    parts.push(quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=> <#path as #p::Step>::NAME));
                }
                Stage::Nested(inner) => match inner.name() {
                    Some(name) => parts.push(quote!(#name)),
                    None => parts.extend(self.name_parts(inner)),
                },
            }
        }
        parts.push(quote!(#close));
        parts
    }

    /// A `&'static str` naming `w`: its `name`, or one derived at compile
    /// time from its stages' names.
    fn name_expr(&self, w: &Workflow) -> TokenStream {
        let p = &self.p;
        if let Some(name) = w.name() {
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

/// What the compile-time `after` rule and the runtime need of each record:
/// the steps' `OrderStage`s, one const check per step (each spanned on its
/// step, so a violation is reported there), the names of all records, and
/// the steps' permissions.
struct RecordItems {
    order: Vec<TokenStream>,
    checks: Vec<TokenStream>,
    names: Vec<TokenStream>,
    metas: Vec<TokenStream>,
    perms: Vec<TokenStream>,
}

fn record_items(ex: &Expander, workflow: &Workflow) -> RecordItems {
    let p = &ex.p;
    let mut items = RecordItems {
        order: Vec::new(),
        checks: Vec::new(),
        names: Vec::new(),
        metas: Vec::new(),
        perms: Vec::new(),
    };
    for record in workflow.records() {
        match record {
            Record::Step(step) => {
                let path = &step.alias();
                let span = syn::spanned::Spanned::span(path);
                let segs = step.tree.iter().map(|(kind, child)| {
                    let kind = format_ident!("{}", kind.spec().node_const);
                    quote!(#p::PathSeg { kind: #p::node::#kind, child: #child })
                });
                let i = items.order.len();
                items
                    .order
                    .push(quote_spanned! {crate::typecheck::at(span)=>
                        #p::OrderStage {
                            name: <#path as #p::Step>::NAME,
                            after: <#path as #p::Step>::META.after,
                            path: &[#(#segs),*],
                        }
                    });
                items.checks.push(quote_spanned!{crate::typecheck::at(span)=>
                    const _: () = if let #p::Some(__v) = #p::check_order(__NDF_ORDER, #i, <__NdfWorkflow as #p::Workflow>::NAME) {
                        ::core::panic!("{}", __v.as_str())
                    };
                });
                items
                    .names
                    .push(quote_spanned!(crate::typecheck::at(span)=> <#path as #p::Step>::NAME));
                items
                    .perms
                    .push(quote_spanned!(crate::typecheck::at(span)=> <#path as #p::Step>::META.permissions));
                items
                    .metas
                    .push(quote_spanned!(crate::typecheck::at(span)=> #p::Some(&<#path as #p::Step>::META)));
            }
            Record::Degrade(node) => {
                items.names.push(ex.name_expr(node));
                items.metas.push(quote!(#p::None));
            }
        }
    }
    items
}

/// Whether `w`'s stages are checkpoints of a run from the queue: a
/// `sequential!` at the top, neither a fan-out nor keeping its input, in
/// a build with the queue (`ndf/fleet`, which enables this crate's
/// `fleet`). Without the queue no run is durable: a workflow then carries
/// no checkpoint code, which was about 5 % of the compile time of a crate
/// of workflows (rustc's instructions, `benches/compile_time`).
fn durable_root(w: &Workflow) -> bool {
    cfg!(feature = "fleet")
        && w.kind == Kind::Sequential
        && w.each.is_none()
        && !w.options.keep_input
}

impl Expander {
    /// `Workflow::Checkpointed`: one `Checkpointed<stage, output>` per stage
    /// of a durable root, in tuples of at most 12 (nested beyond), with a
    /// type named after each stage so that a compile error names it.
    fn checkpointed_ty(&mut self, w: &Workflow) -> TokenStream {
        if !durable_root(w) {
            return quote!(());
        }
        let p = self.p.clone();
        let mut markers = TokenStream::new();
        let mut items = Vec::new();
        for (i, stage) in w.stages.iter().enumerate() {
            let describe = stage.describe();
            let fragment: String = describe
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("_");
            let marker = format_ident!("stage_{}_{}", i + 1, fragment);
            markers.extend(quote! {
                #[allow(non_camel_case_types, dead_code)]
                struct #marker;
            });
            // A step by its name, not its output type: a stage that is not
            // a step is reported where the workflow names it, once.
            items.push(match stage {
                Stage::Step(step) => {
                    let path = step.alias();
                    quote!(#p::CheckpointedStep<#marker, #path>)
                }
                Stage::Nested(_) => {
                    let out = self.output_ty(stage);
                    quote!(#p::Checkpointed<#marker, #out>)
                }
            });
        }
        let mut groups: Vec<TokenStream> = items
            .chunks(12)
            .map(|chunk| quote!((#(#chunk,)*)))
            .collect();
        while groups.len() > 1 {
            groups = groups
                .chunks(12)
                .map(|chunk| quote!((#(#chunk,)*)))
                .collect();
        }
        let ty = groups.pop().unwrap_or_else(|| quote!(()));
        self.checks.extend(markers);
        ty
    }
}

/// Expands a checked workflow.
pub(crate) fn expand(workflow: &Workflow) -> TokenStream {
    let mut ex = Expander::new(workflow.options.krate.as_ref());
    let p = ex.p.clone();
    let input_ty = ex.workflow_input_ty(workflow);
    let output_ty = ex.workflow_output_ty(workflow);
    ex.durable_root = durable_root(workflow);
    ex.outlined = workflow.records().len() > OUTLINED_ABOVE;
    let run = ex.run_workflow(workflow, &quote!(__input));
    let checkpointed = ex.checkpointed_ty(workflow);
    let name = ex.name_expr(workflow);
    let named = workflow.name().is_some();
    let shape = shape::shape(workflow, &p);
    let RecordItems {
        order,
        checks: order_checks,
        names,
        metas,
        perms,
    } = record_items(&ex, workflow);
    let record_count = names.len();
    let deadlines = deadline_checks(&ex, workflow);
    let deadline_const = workflow.options.deadline.map(|(deadline, _)| {
        let nanos = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        quote!(const DEADLINE: #p::Option<#p::Duration> = #p::Some(#p::Duration::from_nanos(#nanos));)
    });
    let checks = &ex.checks;
    let aliases = workflow.records().into_iter().filter_map(|record| match record {
        Record::Step(step) => {
            let (alias, path) = (step.alias(), &step.path);
            Some(quote_spanned!(crate::typecheck::at(syn::spanned::Spanned::span(path))=> type #alias = #path;))
        }
        Record::Degrade(_) => None,
    });

    // rustc checks these items where they stand: put them on the stages they
    // come from, so that a stage that is not a step is reported there.
    let input_item =
        quote_spanned!(crate::typecheck::at(first_span(workflow))=> type Input = #input_ty;);
    let output_item =
        quote_spanned!(crate::typecheck::at(last_span(workflow))=> type Output = #output_ty;);
    let workflow_impl = quote_spanned! {crate::typecheck::at(last_span(workflow))=>
        #[automatically_derived]
        impl #p::Workflow for __NdfWorkflow {
            #input_item
            #output_item

            const NAME: &'static str = #name;
            const NAMED: bool = #named;
            const PERMISSIONS: &'static [&'static [&'static str]] = &[#(#perms),*];
            // A static, not a promoted constant: one address in the whole
            // program, so that the runtime tells a workflow's steps by
            // pointer on every run instead of comparing names.
            const STEPS: &'static [&'static str] = {
                static __NDF_STEPS: [&'static str; #record_count] = [#(#names),*];
                &__NDF_STEPS
            };
            const METAS: &'static [#p::Option<&'static #p::StepMeta>] = &[#(#metas),*];
            const SHAPE: #p::Shape = #shape;
            #deadline_const
            type Log = [#p::StepRecord; #record_count];
            type Checkpointed = #checkpointed;

            fn execute_as<'__a, const __NDF_DURABLE: bool>(
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
            #(#aliases)*
            #checks

            const __NDF_ORDER: &[#p::OrderStage] = &[#(#order),*];
            #(#order_checks)*
            #deadlines

            #workflow_impl
        };

        __NdfWorkflow
    }}
}

/// The worst-case time of `w`, as a const expression of `Cost`s.
fn cost(ex: &Expander, w: &Workflow) -> TokenStream {
    let p = &ex.p;
    let parts = w.stages.iter().map(|stage| match stage {
        Stage::Step(step) => {
            let alias = step.alias();
            quote!(#p::Cost::step(&<#alias as #p::Step>::META))
        }
        Stage::Nested(inner) => cost(ex, inner),
    });
    if w.kind.spec().shape == super::model::ShapeRole::Group {
        quote!(#p::Cost::longest(&[#(#parts),*]))
    } else {
        quote!(#p::Cost::sum(&[#(#parts),*]))
    }
}

/// A const check of every `deadline` in `w` and its nested workflows: the
/// compiler refuses a workflow whose worst case exceeds its deadline.
fn deadline_checks(ex: &Expander, w: &Workflow) -> TokenStream {
    let p = &ex.p;
    let mut out = TokenStream::new();
    if let Some((deadline, span)) = w.options.deadline {
        let nanos = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        let name = ex.name_expr(w);
        let cost = cost(ex, w);
        out.extend(quote_spanned! {crate::typecheck::at(span)=>
            const _: () = if let #p::Some(__v) = #p::check_deadline(#name, &#cost, #p::Duration::from_nanos(#nanos)) {
                ::core::panic!("{}", __v.as_str())
            };
        });
    }
    for stage in &w.stages {
        if let Stage::Nested(inner) = stage {
            out.extend(deadline_checks(ex, inner));
        }
    }
    out
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
