//! Workflows registered for the queue: their input and output cross the
//! queue as JSON, so each is kept with its types erased behind JSON.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::PatternContext;
use crate::error::Error;
use crate::exec::{
    AllCheckpointable, Checkpoints, Decoded, Durable, Encoded, Workflow, WorkflowConsts,
};
use crate::runtime::Ndf;

/// What running a queued run gives: its output as JSON, or why not.
pub(crate) type JsonResult = Result<serde_json::Value, Refusal>;

type BoxedJsonRun<'a> = Pin<Box<dyn Future<Output = JsonResult> + Send + 'a>>;

/// Why a queued run has no output.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Its input is not the workflow's input type.
    Input(String),
    /// Its output could not be written as JSON.
    Output(String),
    /// The run failed.
    Run(Error),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Input(why) => write!(f, "its input does not fit the workflow: {why}"),
            Refusal::Output(why) => write!(f, "its output could not be stored as JSON: {why}"),
            Refusal::Run(error) => error.fmt(f),
        }
    }
}

/// How a workflow's stage outputs are written to and read from JSON, by
/// stage index ([`AllCheckpointable`] of its `Checkpointed` stages).
#[derive(Clone, Copy)]
pub(crate) struct StageCodec {
    pub(crate) encode: fn(usize, &dyn Any) -> Encoded,
    pub(crate) decode: fn(usize, serde_json::Value) -> Decoded,
}

/// A workflow run from JSON to JSON.
pub(crate) trait JsonRun: Send + Sync {
    /// The codec of its stages' checkpoints.
    fn codec(&self) -> StageCodec;

    fn run_json<'a>(
        &'a self,
        ndf: &'a Ndf,
        input: serde_json::Value,
        ctx: &'a PatternContext,
        checkpoints: &'a dyn Checkpoints,
    ) -> BoxedJsonRun<'a>;
}

impl<W> JsonRun for W
where
    W: Workflow + 'static,
    W::Input: DeserializeOwned + 'static,
    W::Output: Serialize + 'static,
    W::Checkpointed: AllCheckpointable,
{
    fn codec(&self) -> StageCodec {
        StageCodec {
            encode: <W::Checkpointed as AllCheckpointable>::encode,
            decode: <W::Checkpointed as AllCheckpointable>::decode,
        }
    }

    fn run_json<'a>(
        &'a self,
        ndf: &'a Ndf,
        input: serde_json::Value,
        ctx: &'a PatternContext,
        checkpoints: &'a dyn Checkpoints,
    ) -> BoxedJsonRun<'a> {
        Box::pin(async move {
            let input: W::Input = serde_json::from_value(input).map_err(|e| {
                Refusal::Input(format!(
                    "expected {}: {e}",
                    std::any::type_name::<W::Input>()
                ))
            })?;
            let durable = Durable::new(checkpoints);
            let ran = ndf
                .run_from::<W, _, true>(self, input, ctx, WorkflowConsts::of::<W>(Some(&durable)))
                .await;
            // The stages completed since the last step was admitted (the
            // last stage's, or those before a failed step held back).
            let stored = durable.store().await;
            let output = ran.map_err(Refusal::Run)?;
            stored.map_err(Refusal::Run)?;
            serde_json::to_value(&output).map_err(|e| Refusal::Output(e.to_string()))
        })
    }
}
