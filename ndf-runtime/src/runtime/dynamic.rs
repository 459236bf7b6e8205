//! [`DynWorkflow`]: a workflow with its type erased, to store beside others
//! of the same input and output.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::ndf::Ndf;
use crate::context::PatternContext;
use crate::error::Error;
use crate::exec::Workflow;

type BoxedRun<'a, O> = Pin<Box<dyn Future<Output = Result<O, Error>> + Send + 'a>>;

/// What a workflow of input `I` and output `O` can do once its type is
/// erased.
trait Erased<I, O>: Send + Sync {
    fn name(&self) -> &'static str;
    fn run<'a>(&'a self, ndf: &'a Ndf, input: I, ctx: &'a PatternContext) -> BoxedRun<'a, O>;
}

impl<W> Erased<W::Input, W::Output> for W
where
    W: Workflow + 'static,
    W::Input: 'static,
    W::Output: 'static,
{
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn run<'a>(
        &'a self,
        ndf: &'a Ndf,
        input: W::Input,
        ctx: &'a PatternContext,
    ) -> BoxedRun<'a, W::Output> {
        Box::pin(ndf.run(self, input, ctx))
    }
}

/// A workflow of input `I` and output `O` whose type is erased: the type to
/// name in a struct field, an axum state or a `Vec` of workflows that take
/// and give the same types. Cheap to clone (an `Arc`); a run boxes the
/// future of [`Ndf::run`] of the workflow itself.
///
/// ```
/// use ndf::prelude::*;
/// use ndf::DynWorkflow;
///
/// #[pattern]
/// async fn double(n: u32) -> u32 { n * 2 }
///
/// #[pattern]
/// async fn square(n: u32) -> u32 { n * n }
///
/// struct AppState {
///     ndf: Ndf,
///     pricing: Vec<DynWorkflow<u32, u32>>,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let state = AppState {
///     ndf: Ndf::builder().build()?,
///     pricing: vec![
///         DynWorkflow::new(sequential!(name = "pricing.double"; double)),
///         DynWorkflow::new(sequential!(name = "pricing.square"; square)),
///     ],
/// };
/// let ctx = PatternContext::new("pricing");
/// let mut out = Vec::new();
/// for flow in &state.pricing {
///     out.push(flow.run(&state.ndf, 3, &ctx).await?);
/// }
/// assert_eq!(out, [6, 9]);
/// assert_eq!(state.pricing[1].name(), "pricing.square");
/// # Ok(()) }
/// ```
pub struct DynWorkflow<I, O> {
    inner: Arc<dyn Erased<I, O>>,
}

impl<I, O> Clone for DynWorkflow<I, O> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<I, O> std::fmt::Debug for DynWorkflow<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynWorkflow")
            .field("name", &self.inner.name())
            .finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> DynWorkflow<I, O> {
    /// `workflow`, its type erased.
    pub fn new<W>(workflow: W) -> Self
    where
        W: Workflow<Input = I, Output = O> + 'static,
    {
        Self {
            inner: Arc::new(workflow),
        }
    }

    /// The workflow's pattern name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Runs the workflow on `input` in `ctx`, as [`Ndf::run`] does.
    ///
    /// # Errors
    ///
    /// As [`Ndf::run`].
    pub async fn run(&self, ndf: &Ndf, input: I, ctx: &PatternContext) -> Result<O, Error> {
        self.inner.run(ndf, input, ctx).await
    }
}
