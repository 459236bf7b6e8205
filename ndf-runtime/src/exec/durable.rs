//! Checkpoints of a durable run: a top-level `sequential!` run from the
//! queue stores each completed stage's output, and a run taken over after
//! its worker died resumes after the last stored stage. Generated code
//! calls [`restored`] and [`checkpoint`] in `Workflow::execute_as::<true>`
//! only: `Ndf::run` runs `execute_as::<false>`, where that code is
//! compiled out.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use super::{Cx, Step};
use crate::error::Error;

/// Where a durable run resumes and where it stores its stages' outputs.
pub(crate) trait Checkpoints: Send + Sync {
    /// The first stage to run: the stages before it are restored.
    fn resume_at(&self) -> usize;

    /// The stored output of `stage`, before [`Checkpoints::resume_at`],
    /// read back as the stage's output type.
    fn restored(&self, stage: usize) -> Result<Box<dyn Any + Send>, String>;

    /// `output`, the output of `stage`, as JSON.
    fn encode(&self, stage: usize, output: &dyn Any) -> Result<serde_json::Value, String>;

    /// Stores `output` as the output of `stage`, completed; the run goes
    /// on only once it is stored.
    fn save(
        &self,
        stage: usize,
        output: serde_json::Value,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + '_>>;
}

impl Cx<'_> {
    /// The first stage of the top-level `sequential!` to run (0 unless the
    /// run resumes from its checkpoints).
    #[doc(hidden)]
    #[inline]
    #[must_use]
    pub fn resume_stage(self) -> usize {
        self.0.durable.map_or(0, |d| d.resume_at())
    }
}

/// The stored output of `stage`, a `T`.
///
/// # Errors
///
/// [`Error::Queue`] when the stage has no stored output or it does not
/// read back as a `T`.
pub fn restored<T: Any>(cx: Cx<'_>, stage: usize) -> Result<T, Error> {
    let unreadable = |why: String| {
        Error::Queue(format!(
            "run of `{}`: the checkpoint of stage {stage} cannot be read back: {why}",
            cx.pattern()
        ))
    };
    let Some(durable) = cx.0.durable else {
        return Err(unreadable("the run has no checkpoints".to_owned()));
    };
    let value = durable.restored(stage).map_err(unreadable)?;
    value
        .downcast::<T>()
        .map(|out| *out)
        .map_err(|_| unreadable(format!("it is not a {}", std::any::type_name::<T>())))
}

/// Stores `output`, the output of `stage`, when the run is durable.
///
/// # Errors
///
/// [`Error::Queue`] when it cannot be stored: the run stops there, as a
/// failure.
pub fn checkpoint<'a, T: Any>(
    cx: Cx<'a>,
    stage: usize,
    output: &T,
) -> impl Future<Output = Result<(), Error>> + Send + 'a {
    let encoded = cx.0.durable.map(|d| (d, d.encode(stage, output)));
    async move {
        match encoded {
            None => Ok(()),
            Some((durable, Ok(value))) => durable.save(stage, value).await,
            Some((_, Err(why))) => Err(Error::Queue(format!(
                "run of `{}`: the output of stage {stage} cannot be stored: {why}",
                cx.pattern()
            ))),
        }
    }
}

/// A stage's output as JSON, or why not; `None` past the last stage.
pub type Encoded = Option<Result<serde_json::Value, String>>;

/// A stage's output read back from JSON, or why not; `None` past the last
/// stage.
pub type Decoded = Option<Result<Box<dyn Any + Send>, String>>;

/// The output `T` of the stage `S` (a type named after the stage) of a
/// workflow, as [`Workflow::Checkpointed`](crate::Workflow::Checkpointed)
/// lists it.
#[allow(missing_debug_implementations)]
pub struct Checkpointed<S, T>(std::marker::PhantomData<(S, T)>);

/// Every stage output of a workflow can be checkpointed: the stages'
/// codec, by stage index (nested tuples count their stages in order).
pub trait AllCheckpointable {
    /// How many stages.
    const STAGES: usize;

    /// The output of `stage` (`output`, its type erased) as JSON; `None`
    /// past the last stage.
    fn encode(stage: usize, output: &dyn Any) -> Encoded;

    /// The output of `stage` read back from JSON; `None` past the last
    /// stage.
    fn decode(stage: usize, value: serde_json::Value) -> Decoded;
}

impl AllCheckpointable for () {
    const STAGES: usize = 0;

    fn encode(_: usize, _: &dyn Any) -> Encoded {
        None
    }

    fn decode(_: usize, _: serde_json::Value) -> Decoded {
        None
    }
}

impl<S, T> AllCheckpointable for Checkpointed<S, T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Any + Send,
{
    const STAGES: usize = 1;

    fn encode(stage: usize, output: &dyn Any) -> Encoded {
        (stage == 0).then(|| match output.downcast_ref::<T>() {
            Some(out) => serde_json::to_value(out).map_err(|e| e.to_string()),
            None => Err(format!("it is not a {}", std::any::type_name::<T>())),
        })
    }

    fn decode(stage: usize, value: serde_json::Value) -> Decoded {
        (stage == 0).then(|| {
            serde_json::from_value::<T>(value)
                .map(|out| Box::new(out) as Box<dyn Any + Send>)
                .map_err(|e| e.to_string())
        })
    }
}

/// The output of the step `S`, stage `M` of a workflow, as
/// [`Workflow::Checkpointed`](crate::Workflow::Checkpointed) lists it: by
/// the step, so that a stage that is not a step is reported once, where
/// the workflow names it, not again here.
#[allow(missing_debug_implementations)]
pub struct CheckpointedStep<M, S>(std::marker::PhantomData<(M, S)>);

impl<M, S> AllCheckpointable for CheckpointedStep<M, S>
where
    S: Step,
    S::Output: serde::Serialize + serde::de::DeserializeOwned,
{
    const STAGES: usize = 1;

    fn encode(stage: usize, output: &dyn Any) -> Encoded {
        Checkpointed::<M, S::Output>::encode(stage, output)
    }

    fn decode(stage: usize, value: serde_json::Value) -> Decoded {
        Checkpointed::<M, S::Output>::decode(stage, value)
    }
}

macro_rules! all_checkpointable {
    ($($t:ident)+) => {
        impl<$($t: AllCheckpointable),+> AllCheckpointable for ($($t,)+) {
            const STAGES: usize = 0 $(+ $t::STAGES)+;

            fn encode(
                mut stage: usize,
                output: &dyn Any,
            ) -> Encoded {
                $(
                    if stage < $t::STAGES {
                        return $t::encode(stage, output);
                    }
                    stage -= $t::STAGES;
                )+
                let _ = stage;
                None
            }

            fn decode(
                mut stage: usize,
                value: serde_json::Value,
            ) -> Decoded {
                $(
                    if stage < $t::STAGES {
                        return $t::decode(stage, value);
                    }
                    stage -= $t::STAGES;
                )+
                let _ = stage;
                None
            }
        }
    };
}
all_checkpointable!(A);
all_checkpointable!(A B);
all_checkpointable!(A B C);
all_checkpointable!(A B C D);
all_checkpointable!(A B C D E);
all_checkpointable!(A B C D E F);
all_checkpointable!(A B C D E F G);
all_checkpointable!(A B C D E F G H);
all_checkpointable!(A B C D E F G H I);
all_checkpointable!(A B C D E F G H I J);
all_checkpointable!(A B C D E F G H I J K);
all_checkpointable!(A B C D E F G H I J K L);
