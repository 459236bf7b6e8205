//! The traits that `#[pattern]` and the workflow macros implement.

use std::future::Future;

use super::Cx;
use crate::context::PatternContext;
use crate::error::{Error, StepError};
use crate::model::{RunLog, Shape, StepMeta};

/// A workflow step: what `#[pattern]` generates for an async fn.
///
/// The type has the fn's name and lives in the type namespace, so the fn
/// stays callable as written. Users do not implement this trait by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an ndf step",
    label = "not a `#[pattern]` step",
    note = "a stage is an `async fn` marked `#[pattern]`, or a nested workflow macro such as `sequential!(…)`"
)]
pub trait Step: Send + Sync + 'static {
    /// The value the step takes.
    type Input: Send + 'static;
    /// The value the step returns on success.
    type Output: Send + 'static;
    /// What is kept of a completed step so that it can be compensated: `()`
    /// for a step without `compensate`, a copy of the output otherwise.
    type Undo: Send + 'static;
    /// Where a workflow keeps [`Step::Undo`] once the step completed:
    /// [`NoUndo`](super::NoUndo), no byte, for a step without
    /// `compensate`; `Option<Self::Undo>` for one with it.
    #[doc(hidden)]
    type Slot: super::UndoSlot<Of = Self::Undo> + Send;
    /// The code of the step's policies after its admission, chosen by
    /// `#[pattern]` from its options.
    #[doc(hidden)]
    type Policies: super::first::Policies;
    /// What a `Plain` step's run in a task of a `parallel!` keeps of its
    /// place in the step's bulkhead: the place for a step with a
    /// `concurrency`, nothing for the others.
    #[doc(hidden)]
    type Held: crate::gating::Held;

    /// The step's pattern name (kept apart from [`Step::META`] so that
    /// steps can name each other in `after` without a const cycle).
    const NAME: &'static str;
    /// Compile-time options.
    const META: StepMeta;

    /// What the user's fn returns.
    #[doc(hidden)]
    type Returned;
    /// How what the user's fn returns becomes a step result: as it is
    /// ([`Made`]), `Ok` around it ([`Wrapped`]), or its error converted,
    /// by the step type itself, for which `#[pattern]` writes the
    /// conversion.
    #[doc(hidden)]
    type Finish: Finish<Self::Returned, Ok = Self::Output>;

    /// Runs the user's fn once: its own future, nothing around it.
    fn call(
        input: Self::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Self::Returned> + Send + '_;

    /// What the user's fn returned, as a step result ([`Step::Finish`]).
    #[doc(hidden)]
    #[inline]
    fn result(returned: Self::Returned) -> Result<Self::Output, StepError> {
        <Self::Finish as Finish<Self::Returned>>::finish(returned)
    }

    /// A copy of the input for another attempt or the fallback; `None` for
    /// steps that are neither retried nor have a fallback.
    ///
    /// `dup`, [`Step::compensate`] and [`Step::fallback`] have bodies
    /// here, used by every step that does not need its own: `#[pattern]`
    /// writes them only for the steps that do, so that most steps cost the
    /// compiler fewer items.
    #[inline]
    fn dup(input: &Self::Input) -> Option<Self::Input> {
        let _ = input;
        None
    }

    /// What to keep of the output for compensation.
    fn keep(output: &Self::Output) -> Self::Undo;

    /// The static that holds the step's `rate` and `concurrency` limits,
    /// for a step that has them.
    #[doc(hidden)]
    #[must_use]
    fn limits() -> Option<&'static crate::gating::LimitsCell> {
        None
    }

    /// Runs the `compensate` step, if any, on what [`Step::keep`] kept.
    fn compensate(
        undo: Self::Undo,
        ctx: &PatternContext,
    ) -> Option<impl Future<Output = Result<(), StepError>> + Send + '_> {
        let _ = (undo, ctx);
        None::<std::future::Ready<Result<(), StepError>>>
    }

    /// Runs the `fallback` step, if any, on the input.
    fn fallback(
        input: Self::Input,
        ctx: &PatternContext,
    ) -> Option<impl Future<Output = Result<Self::Output, StepError>> + Send + '_> {
        let _ = (input, ctx);
        None::<std::future::Ready<Result<Self::Output, StepError>>>
    }
}

/// A composed workflow, as `sequential!` and the other workflow macros
/// generate: a concrete state machine run by [`crate::Ndf::run`].
///
/// Each workflow macro makes a type of its own, zero-sized, `Copy` and
/// `'static`, which cannot be named. To name one:
/// - return it as `impl Workflow<Input = I, Output = O> + Copy` from a fn
///   (the usual way to build a workflow once and share it; `+ Copy` keeps
///   it copyable into spawned tasks);
/// - store it in a struct field or a collection as a
///   [`DynWorkflow<I, O>`](crate::DynWorkflow), which erases the type
///   (`Box<dyn Workflow>` cannot work: the trait has associated consts);
/// - or make the struct generic over `W: Workflow`.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn parse(raw: String) -> Result<u32, std::num::ParseIntError> { raw.trim().parse() }
///
/// #[pattern]
/// async fn double(n: u32) -> u32 { n * 2 }
///
/// fn checkout() -> impl Workflow<Input = String, Output = u32> + Copy {
///     sequential!(name = "shop.parse_and_double"; parse => double)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().build()?;
/// let flow = checkout();
/// let copy = flow; // `Copy`: hand it to as many tasks as you like
/// assert_eq!(ndf.run(&copy, " 21 ".into(), &PatternContext::new("shop")).await?, 42);
/// # Ok(()) }
/// ```
pub trait Workflow: Send + Sync {
    /// The workflow's input: the input of its first stage.
    type Input: Send;
    /// The workflow's output: the output of its last stage.
    type Output: Send;

    /// The workflow's pattern name: its `name` option, or one derived from
    /// its stages.
    const NAME: &'static str;
    /// Whether `name` was given; only named workflows can be registered.
    const NAMED: bool;
    /// The permissions of every step, checked before any step runs.
    const PERMISSIONS: &'static [&'static [&'static str]];
    /// The names of what a run records, by record index: step stages and
    /// `degrade!` nodes, in textual order (nested workflows flattened).
    const STEPS: &'static [&'static str];
    /// The options of each step stage, by record index (`None` for a
    /// `degrade!` node): what confidence gating reads.
    const METAS: &'static [Option<&'static StepMeta>];

    /// The workflow's static shape.
    const SHAPE: Shape;

    /// Its `deadline`, if it has one: the compiler checked that its worst
    /// case fits, and at run time no step attempt outlives it.
    const DEADLINE: Option<core::time::Duration> = None;

    /// What a run records of each step stage: `[StepRecord; STEPS.len()]`.
    type Log: RunLog;

    /// What a run from the queue stores after each stage: for a top-level
    /// `sequential!`, a tuple of `Checkpointed<stage, output>`, one per
    /// stage (`()` for other workflows). `register_durable` requires each
    /// output to be `Serialize + DeserializeOwned`.
    type Checkpointed;

    /// The workflow's pattern name, from a value.
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// The workflow's static shape, from a value.
    fn shape(&self) -> Shape {
        Self::SHAPE
    }

    /// Whether the workflow was given a `name` (and so can be registered).
    fn is_named(&self) -> bool {
        Self::NAMED
    }

    /// Runs the workflow. Call it through [`crate::Ndf::run`].
    fn execute<'a>(
        &'a self,
        cx: Cx<'a>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send + 'a {
        self.execute_as::<false>(cx, input)
    }

    /// Runs the workflow; with `DURABLE`, a top-level `sequential!` also
    /// resumes from and stores checkpoints (a run from the queue). A
    /// constant, so that `Ndf::run` carries none of that code.
    fn execute_as<'a, const DURABLE: bool>(
        &'a self,
        cx: Cx<'a>,
        input: Self::Input,
    ) -> impl Future<Output = Result<Self::Output, Error>> + Send + 'a;
}

/// How a step result is made of `T`, what a step's attempt returned
/// ([`Step::Finish`]). Generic over what the attempt returned, not over
/// the step: every step with the same output shares one copy of
/// [`Made`]'s and [`Wrapped`]'s code.
#[doc(hidden)]
pub trait Finish<T>: Send + 'static {
    /// The step's output.
    type Ok;
    /// `out` as a step result.
    fn finish(out: T) -> Result<Self::Ok, StepError>;
}

/// `T` is a step result already: a step fn that returns
/// `Result<_, StepError>`, or a placement's attempt.
#[doc(hidden)]
#[derive(Debug)]
pub struct Made;

impl<O> Finish<Result<O, StepError>> for Made {
    type Ok = O;

    #[inline]
    fn finish(out: Result<O, StepError>) -> Result<O, StepError> {
        out
    }
}

/// A step fn that cannot fail: its output, `Ok`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Wrapped;

impl<O> Finish<O> for Wrapped {
    type Ok = O;

    #[inline]
    fn finish(out: O) -> Result<O, StepError> {
        Ok(out)
    }
}
