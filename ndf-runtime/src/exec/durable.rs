//! Checkpoints of a durable run: a top-level `sequential!` run from the
//! queue stores each completed stage's output, and a run taken over after
//! its worker died resumes after the last stored stage. Generated code
//! calls [`restored`] and [`stage_done`] in `Workflow::execute_as::<true>`
//! only: `Ndf::run` runs `execute_as::<false>`, where that code is
//! compiled out.
//!
//! A completed stage's output is encoded at once, in the workflow's own
//! code, and stored before anything of the next stage runs: the first step
//! of the next stage to be admitted stores it (its admission waits for
//! that, and a step held back stores it before its fallback runs), and
//! every other step of that stage waits for the same store. What is left
//! when the run ends is stored by the queue's worker. So the workflow's
//! state machine has no await of its own for checkpoints: none is
//! compiled into the code every `Ndf::run` runs.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

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

    /// Stores `output` as the output of `stage`, completed.
    fn save(
        &self,
        stage: usize,
        output: serde_json::Value,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + '_>>;
}

/// A durable run's checkpoints, and the completed stages it has not
/// stored yet.
pub(crate) struct Durable<'a> {
    checkpoints: &'a dyn Checkpoints,
    /// The stages completed and encoded, not stored yet, in order.
    unsaved: Mutex<Vec<(usize, serde_json::Value)>>,
    /// Held by the one task that stores them; the others wait for it. Holds
    /// why a store failed, for every step that waited for it.
    storing: tokio::sync::Mutex<Option<String>>,
}

#[cfg(any(feature = "fleet", test))]
impl<'a> Durable<'a> {
    /// A run resuming from and storing to `checkpoints`: made by the
    /// queue's worker only.
    pub(crate) fn new(checkpoints: &'a dyn Checkpoints) -> Self {
        Self {
            checkpoints,
            unsaved: Mutex::new(Vec::new()),
            storing: tokio::sync::Mutex::new(None),
        }
    }
}

impl Durable<'_> {
    /// Whether a completed stage waits to be stored. Asked by each step of
    /// a run from the queue only (`Run::checks`), so the lock costs a
    /// plain `Ndf::run` nothing.
    pub(crate) fn pending(&self) -> bool {
        !self.unsaved().is_empty()
    }

    /// The stages completed and not stored yet.
    fn unsaved(&self) -> std::sync::MutexGuard<'_, Vec<(usize, serde_json::Value)>> {
        self.unsaved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores every completed stage not stored yet, in order; the caller
    /// goes on once they are. One task stores them while the others wait;
    /// a store cancelled half-way (its task was) is made again by the next.
    ///
    /// # Errors
    ///
    /// [`Error::Queue`] when one cannot be stored; every later call says
    /// the same.
    pub(crate) async fn store(&self) -> Result<(), Error> {
        let mut failed = self.storing.lock().await;
        if let Some(why) = &*failed {
            return Err(Error::Queue(why.clone()));
        }
        loop {
            // Cloned, and removed only once stored: a store whose task is
            // dropped half-way leaves the stage for the next one.
            let next = self.unsaved().first().cloned();
            let Some((stage, output)) = next else {
                break;
            };
            if let Err(error) = self.checkpoints.save(stage, output).await {
                let why = match &error {
                    Error::Queue(why) => why.clone(),
                    other => other.to_string(),
                };
                *failed = Some(why);
                return Err(error);
            }
            self.unsaved().remove(0);
        }
        Ok(())
    }

    /// Queues `output`, stage `stage`'s, encoded, to be stored.
    fn queue(&self, stage: usize, output: serde_json::Value) {
        self.unsaved().push((stage, output));
    }
}

impl<'a> Cx<'a> {
    /// The first stage of the top-level `sequential!` to run (0 unless the
    /// run resumes from its checkpoints).
    #[doc(hidden)]
    #[inline]
    #[must_use]
    pub fn resume_stage(self) -> usize {
        self.0
            .workflow
            .durable
            .map_or(0, |d| d.checkpoints.resume_at())
    }

    /// The run's checkpoints, when a completed stage waits to be stored.
    #[inline]
    pub(crate) fn unsaved(self) -> Option<&'a Durable<'a>> {
        self.0.workflow.durable.filter(|d| d.pending())
    }

    /// Stores the completed stages not stored yet, if any: before a step
    /// of the next stage runs (see the module's docs).
    ///
    /// # Errors
    ///
    /// As [`Durable::store`].
    pub(crate) async fn store_checkpoints(self) -> Result<(), Error> {
        match self.unsaved() {
            Some(durable) => durable.store().await,
            None => Ok(()),
        }
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
    let Some(durable) = cx.0.workflow.durable else {
        return Err(unreadable("the run has no checkpoints".to_owned()));
    };
    let value = durable.checkpoints.restored(stage).map_err(unreadable)?;
    value
        .downcast::<T>()
        .map(|out| *out)
        .map_err(|_| unreadable(format!("it is not a {}", std::any::type_name::<T>())))
}

/// Stage `stage` completed with `output`: when the run is durable, its
/// output is encoded now and stored before anything of the next stage
/// runs (see the module's docs). Synchronous, so that the workflow's
/// state machine keeps no state for it.
///
/// # Errors
///
/// [`Error::Queue`] when the output cannot be encoded: the run stops
/// there, as a failure.
pub fn stage_done<T: Any>(cx: Cx<'_>, stage: usize, output: &T) -> Result<(), Error> {
    let Some(durable) = cx.0.workflow.durable else {
        return Ok(());
    };
    match durable.checkpoints.encode(stage, output) {
        Ok(value) => {
            durable.queue(stage, value);
            Ok(())
        }
        Err(why) => Err(Error::Queue(format!(
            "run of `{}`: the output of stage {stage} cannot be stored: {why}",
            cx.pattern()
        ))),
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use tokio::sync::Semaphore;

    use super::*;

    /// Checkpoints that record each save, and whose saves wait for a
    /// permit (`gate`) and fail for the stages in `refuse`.
    struct Recorder {
        saves: Mutex<Vec<usize>>,
        gate: Arc<Semaphore>,
        refuse: Vec<usize>,
    }

    impl Recorder {
        fn new(permits: usize, refuse: Vec<usize>) -> Self {
            Self {
                saves: Mutex::new(Vec::new()),
                gate: Arc::new(Semaphore::new(permits)),
                refuse,
            }
        }

        fn saves(&self) -> Vec<usize> {
            self.saves.lock().unwrap().clone()
        }
    }

    impl Checkpoints for Recorder {
        fn resume_at(&self) -> usize {
            0
        }

        fn restored(&self, _: usize) -> Result<Box<dyn Any + Send>, String> {
            Err("none".to_owned())
        }

        fn encode(&self, _: usize, _: &dyn Any) -> Result<serde_json::Value, String> {
            Ok(serde_json::Value::Null)
        }

        fn save(
            &self,
            stage: usize,
            _: serde_json::Value,
        ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + '_>> {
            Box::pin(async move {
                self.saves.lock().unwrap().push(stage);
                self.gate.acquire().await.unwrap().forget();
                if self.refuse.contains(&stage) {
                    return Err(Error::Queue(format!("stage {stage} refused")));
                }
                Ok(())
            })
        }
    }

    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn completed_stages_are_stored_in_order_once() {
        let recorder = Recorder::new(10, Vec::new());
        let durable = Durable::new(&recorder);
        assert!(!durable.pending());
        durable.queue(0, serde_json::Value::Null);
        durable.queue(1, serde_json::Value::Null);
        assert!(durable.pending());
        // Two tasks of one stage: one stores, the other waits for it.
        let (a, b) = tokio::join!(durable.store(), durable.store());
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(recorder.saves(), [0, 1]);
        assert!(!durable.pending());
    }

    #[tokio::test]
    async fn a_store_dropped_half_way_is_made_again_by_the_next() {
        let recorder = Recorder::new(0, Vec::new());
        let durable = Durable::new(&recorder);
        durable.queue(0, serde_json::Value::Null);
        {
            let mut first = std::pin::pin!(durable.store());
            assert!(poll_once(first.as_mut()).is_pending(), "the save waits");
        }
        assert!(durable.pending(), "dropped half-way: still to store");
        recorder.gate.add_permits(1);
        durable.store().await.unwrap();
        assert_eq!(recorder.saves(), [0, 0], "saved again, whole");
        assert!(!durable.pending());
    }

    #[tokio::test]
    async fn a_failed_store_fails_every_later_one_without_saving_again() {
        let recorder = Recorder::new(10, vec![1]);
        let durable = Durable::new(&recorder);
        durable.queue(0, serde_json::Value::Null);
        durable.queue(1, serde_json::Value::Null);
        durable.queue(2, serde_json::Value::Null);
        let first = durable.store().await.unwrap_err();
        assert_eq!(first.to_string(), "run queue: stage 1 refused");
        let again = durable.store().await.unwrap_err();
        assert_eq!(again.to_string(), first.to_string());
        assert_eq!(recorder.saves(), [0, 1], "nothing after the failed stage");
    }
}
