//! `parallel!`: every task gets a copy of the one input; the output is the
//! tuple of the outputs in declared order.
//!
//! The tasks (a step's run itself, a nested workflow in an `async` block)
//! are pinned in place, polled by one `poll_fn` through a gate that bounds
//! how many are in flight. On the first failure the others are cancelled
//! (the steps in flight stop at once and the workflows inside them
//! compensate what they completed) and the completed ones compensated,
//! unless `min_success` makes failures tolerable: then every element of the
//! tuple is a `Result`, and the group fails only when too few succeed.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::Expander;
use crate::typecheck::Rule;
use crate::workflow::model::{Stage, Workflow};

impl Expander {
    pub(super) fn run_parallel(&mut self, w: &Workflow, input: &TokenStream) -> TokenStream {
        let p = self.p.clone();
        let n = w.stages.len();
        // The one alarm of the tasks' first attempts (see
        // `ndf_runtime::exec::alarm`), armed only when one of them waits.
        let deadlines = self.ident("deadlines");
        let alarm = self.ident("alarm");
        let outer_join = self.join.replace(deadlines.clone());
        let (tasks, indexes, task_defs) = self.parallel_tasks(w, &deadlines);
        self.join = outer_join;

        let max = w.options.max_concurrent.unwrap_or(usize::MAX);
        let threshold = w
            .options
            .resource_threshold
            .map_or_else(|| quote!(#p::None), |x| quote!(#p::Some(#x)));
        let required = w.options.min_success.map(|min| min.tasks);
        let allowed_failures = required.map_or(0, |k| n - k.min(n));
        let results: Vec<syn::Ident> = tasks.iter().map(|_| self.ident("r")).collect();
        // Each task's pinned reference, split from the one the `poll_fn`
        // keeps to all of them.
        let split = quote! {
            let __each = __tasks.as_mut().project();
            #(let mut #tasks = __each.#tasks;)*
        };
        // One `poll_fn` that owns the tasks' pinned reference (two closures
        // borrowing it kept two words across their awaits): it joins the
        // tasks, cancels what still runs and drives it to its end (its
        // steps stop at once; the workflows inside compensate what they
        // completed) before anything else is compensated, and gives every
        // task's result.
        let join = quote! {
            let mut __gate = #p::Gate::new(#max, #threshold);
            let mut __joined: #p::Option<#p::Result<(), #p::Failed>> = #p::None;
            let (__joined, #(#results,)*) = #p::poll_fn(move |__w| {
                #split
                if __joined.is_none() {
                    __joined = #p::Some(loop {
                        let (mut __running, mut __waiting, mut __failed) = (false, false, 0usize);
                        #(
                            match #p::JoinTask::poll_task(#tasks.as_mut(), __w, &mut __gate, __cx, #deadlines, #indexes) {
                                #p::TaskPoll::Waiting => __waiting = true,
                                #p::TaskPoll::Running => __running = true,
                                #p::TaskPoll::Succeeded => {}
                                #p::TaskPoll::Failed => __failed += 1,
                            }
                        )*
                        if __failed > #allowed_failures || (!__running && !__waiting) {
                            break #p::Ok(());
                        }
                        if #alarm.as_mut().poll_rang(__w, #deadlines) {
                            // Attempts' deadlines came: they time out in one more pass.
                            continue;
                        }
                        match __gate.end_pass(__w, __cx, __waiting) {
                            #p::Err(__error) => break #p::Err(#p::Failed::new(__error)),
                            #p::Ok(true) => continue,
                            #p::Ok(false) => return #p::Poll::Pending,
                        }
                    });
                    #(#p::JoinTask::cancel(#tasks.as_mut());)*
                }
                let mut __ending = false;
                #(__ending |= #p::JoinTask::poll_cancelled(#tasks.as_mut(), __w, __cx);)*
                if __ending {
                    return #p::Poll::Pending;
                }
                #p::Poll::Ready((
                    __joined.take().unwrap_or(#p::Ok(())),
                    #(#p::JoinTask::take(#tasks.as_mut()),)*
                ))
            })
            .await;
        };

        let done = self.label("done");
        let (settle, compensate, failed) = match required {
            None => self.parallel_all(w, &results, &done),
            Some(k) => self.parallel_tolerant(w, &results, &done, k),
        };
        // The tasks live in an inner block that ends before the
        // compensation's await, and what leaves it is small (what each
        // task kept, and the error boxed): the workflow's future is as
        // large as its largest state, so neither the tasks nor their
        // results are stored beside the compensation.
        quote! {#done: {
            let #failed = {
                let __shared = #input;
                let #deadlines = &#p::Deadlines::new(__cx);
                let mut #alarm = #p::pin!(#p::Alarm::default());
                #task_defs
                #join
                #settle
            };
            #compensate
        }}
    }

    /// One task per stage, each with its own copy of `__shared` (checked
    /// to be the type the stage takes), pinned together in `__tasks`:
    /// their names, the stage index each is polled with (a step's record;
    /// 0, unread, for a workflow) and their definitions.
    fn parallel_tasks(
        &mut self,
        w: &Workflow,
        deadlines: &syn::Ident,
    ) -> (Vec<syn::Ident>, Vec<usize>, TokenStream) {
        let p = self.p.clone();
        let n = w.stages.len();
        let tasks: Vec<syn::Ident> = (0..n).map(|_| self.ident("task")).collect();
        let mut task_defs = TokenStream::new();
        let mut indexes = Vec::with_capacity(n);
        let mut made_tasks = Vec::with_capacity(n);
        for (i, stage) in w.stages.iter().enumerate() {
            let task_input = if i == 0 && n == 1 {
                quote!(__shared)
            } else {
                let copied = if i + 1 == n {
                    quote!(__shared)
                } else {
                    self.copy(
                        "ndf_shared_input",
                        w.stages[(i + 1).min(n - 1)].span(),
                        "the tasks of this `parallel!` each get a copy of its input, so `{Self}` must implement `Clone`",
                        "derive `Clone` for the input, or share it through an `Arc`",
                        &quote!(__shared),
                    )
                };
                if i == 0 {
                    copied
                } else {
                    let first = w.stages[0].describe();
                    let this = stage.describe();
                    self.checked_input_of(
                        stage,
                        &stage.ident_hint(),
                        &copied,
                        &Rule {
                            message: format!(
                                "parallel task {this} takes `{{__T}}`, but the tasks of this `parallel!` share the input `{{Self}}` of {first}"
                            ),
                            label: format!("{this} takes `{{__T}}`"),
                            note: "in `parallel!`, every task gets a copy of the same input".into(),
                        },
                    )
                }
            };
            // The copy is made here, not in the task: the task's `async move`
            // block must capture only its own input.
            let own_input = self.ident("input");
            let (outer_spawn, outer_task) = (self.spawn, self.in_task);
            self.spawn |= w.options.spawn;
            self.in_task = true;
            let made = match stage {
                // A step's run, dropped if the task is cancelled.
                Stage::Step(step) if !self.spawn => {
                    indexes.push(step.record);
                    self.step_as_task(step, &quote!(#own_input), deadlines)
                }
                _ => {
                    indexes.push(0);
                    let run = self.future(stage, &quote!(#own_input));
                    quote!(#p::Task::new(#run))
                }
            };
            (self.spawn, self.in_task) = (outer_spawn, outer_task);
            task_defs.extend(quote!(let #own_input = #task_input;));
            made_tasks.push(made);
        }
        // The tasks pinned together, in a struct of this `parallel!`'s own
        // (its fields' types are the tasks', inferred): made as one struct
        // literal, each task moved into place once.
        let types: Vec<syn::Ident> = (0..n).map(|i| format_ident!("__T{i}")).collect();
        task_defs.extend(quote! {
            #p::pin_project! {
                struct __NdfTasks<#(#types,)*> {
                    #(#[pin] #tasks: #types,)*
                }
            }
            let mut __tasks = #p::pin!(__NdfTasks { #(#tasks: #made_tasks,)* });
        });
        (tasks, indexes, task_defs)
    }

    /// Every task must succeed. Returns what settles the tasks' results
    /// (the outputs leave by `done`; the block's value is what a failure
    /// keeps), the compensation, and the pattern that binds what a failure
    /// keeps.
    fn parallel_all(
        &mut self,
        w: &Workflow,
        results: &[syn::Ident],
        done: &syn::Lifetime,
    ) -> (TokenStream, TokenStream, TokenStream) {
        let p = self.p.clone();
        let outs: Vec<syn::Ident> = results.iter().map(|_| self.ident("o")).collect();
        let undos: Vec<syn::Ident> = results.iter().map(|_| self.ident("u")).collect();
        let compensate = self.compensate_reversed(&w.stages, &undos);
        let compensate = self.compensation(&compensate);
        let filled: Vec<TokenStream> = (w.stages.iter().zip(&undos))
            .map(|(s, u)| self.slot_fill(s, &quote!(#u)))
            .collect();
        let kept: Vec<TokenStream> = w
            .stages
            .iter()
            .map(|s| self.slot_fill(s, &quote!(__undo)))
            .collect();
        let empty: Vec<TokenStream> = w.stages.iter().map(|s| self.slot_empty(s)).collect();
        let settle = quote! {
            match (__joined, #(#results,)*) {
                (#p::Ok(()), #(#p::Some(#p::Ok((#outs, #undos))),)*) => {
                    break #done #p::Ok(((#(#outs,)*), (#(#filled,)*)));
                }
                (__joined, #(#results,)*) => {
                    let mut __error = __joined.err();
                    #(
                        let #undos = match #results {
                            #p::Some(#p::Ok((_, __undo))) => #kept,
                            #p::Some(#p::Err(__e)) => {
                                if __error.is_none() {
                                    __error = #p::Some(#p::StageError::into_failed(__e));
                                }
                                #empty
                            }
                            #p::None => #empty,
                        };
                    )*
                    (__error, #(#undos,)*)
                }
            }
        };
        let compensate = quote! {
            #compensate
            #p::Err(__failed.map_or_else(|| #p::lost_result(__cx), #p::Failed::into_error))
        };
        (settle, compensate, quote!((__failed, #(mut #undos,)*)))
    }

    /// `min_success = required`: failures are tolerated down to `required`
    /// successes, and each element of the output is a `Result`. Returns as
    /// [`Self::parallel_all`] does.
    fn parallel_tolerant(
        &mut self,
        w: &Workflow,
        results: &[syn::Ident],
        done: &syn::Lifetime,
        required: usize,
    ) -> (TokenStream, TokenStream, TokenStream) {
        let p = self.p.clone();
        let n = results.len();
        let outs: Vec<syn::Ident> = results.iter().map(|_| self.ident("o")).collect();
        let undos: Vec<syn::Ident> = results.iter().map(|_| self.ident("u")).collect();
        let compensate = self.compensate_reversed(&w.stages, &undos);
        let compensate = self.compensation(&compensate);
        let settle = quote! {
            #(let (#outs, #undos) = #p::tolerate(#results);)*
            let __succeeded = 0usize #(+ usize::from(#outs.is_ok()))*;
            match __joined {
                #p::Ok(()) if __succeeded >= #required => {
                    break #done #p::Ok(((#(#outs,)*), (#(#undos,)*)));
                }
                __joined => {
                    let __first = __joined
                        .err()
                        .map(|__failed| #p::StepError::new(__failed.into_error()))
                        #(.or(#outs.err()))*;
                    (#p::Failed::new(#p::insufficient(__cx, __succeeded, #n, #required, __first)), #(#undos,)*)
                }
            }
        };
        let compensate = quote! {
            #compensate
            #p::Err(__failed.into_error())
        };
        (settle, compensate, quote!((__failed, #(mut #undos,)*)))
    }
}
