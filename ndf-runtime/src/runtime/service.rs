//! The `tower` feature: a workflow as a [`tower_service::Service`], to sit
//! behind tower layers (timeouts, concurrency limits, load shedding) or
//! wherever a service is expected.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::dynamic::DynWorkflow;
use super::ndf::Ndf;
use crate::context::PatternContext;
use crate::error::Error;
use crate::exec::Workflow;

/// A workflow on a runtime, as a [`tower_service::Service`] of
/// `(input, context)` requests: each call is one [`Ndf::run`]. Always
/// ready; cheap to clone (the runtime is an `Arc`, a workflow is `Copy` or
/// a [`DynWorkflow`]).
///
/// ```
/// use ndf::prelude::*;
/// use tower::{Service as _, ServiceExt as _};
///
/// #[pattern]
/// async fn double(n: u32) -> u32 { n * 2 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().build()?;
/// let mut service = tower::ServiceBuilder::new()
///     .concurrency_limit(64)
///     .service(ndf.service(sequential!(name = "math.double"; double)));
/// let out = service.ready().await?.call((21, PatternContext::new("math"))).await?;
/// assert_eq!(out, 42);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct WorkflowService<W> {
    ndf: Ndf,
    workflow: W,
}

type BoxedRun<O> = Pin<Box<dyn Future<Output = Result<O, Error>> + Send>>;

impl Ndf {
    /// `workflow` on this runtime as a `tower` service (see
    /// [`WorkflowService`]); `workflow` may be a [`DynWorkflow`].
    pub fn service<W>(&self, workflow: W) -> WorkflowService<W> {
        WorkflowService {
            ndf: self.clone(),
            workflow,
        }
    }
}

impl<W> tower_service::Service<(W::Input, PatternContext)> for WorkflowService<W>
where
    W: Workflow + Clone + 'static,
    W::Input: 'static,
    W::Output: 'static,
{
    type Response = W::Output;
    type Error = Error;
    type Future = BoxedRun<W::Output>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (input, ctx): (W::Input, PatternContext)) -> Self::Future {
        let (ndf, workflow) = (self.ndf.clone(), self.workflow.clone());
        Box::pin(async move { ndf.run(&workflow, input, &ctx).await })
    }
}

impl<I, O> tower_service::Service<(I, PatternContext)> for WorkflowService<DynWorkflow<I, O>>
where
    I: Send + 'static,
    O: Send + 'static,
{
    type Response = O;
    type Error = Error;
    type Future = BoxedRun<O>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, (input, ctx): (I, PatternContext)) -> Self::Future {
        let (ndf, workflow) = (self.ndf.clone(), self.workflow.clone());
        Box::pin(async move { workflow.run(&ndf, input, &ctx).await })
    }
}
