//! Workflows registered by name, for callers that know a workflow only by
//! its name at run time.

use std::any::{Any, TypeId, type_name};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use super::ndf::Ndf;
use crate::context::PatternContext;
use crate::error::Error;
use crate::exec::Workflow;

type BoxedRun<'a> = Pin<Box<dyn Future<Output = Result<Box<dyn Any + Send>, Error>> + Send + 'a>>;

/// A registered workflow with its types erased.
trait Erased: Send + Sync {
    fn input(&self) -> (TypeId, &'static str);
    fn output(&self) -> (TypeId, &'static str);
    fn run<'a>(
        &'a self,
        ndf: &'a Ndf,
        input: Box<dyn Any + Send>,
        ctx: &'a PatternContext,
    ) -> BoxedRun<'a>;
}

impl<W> Erased for W
where
    W: Workflow + 'static,
    W::Input: 'static,
    W::Output: 'static,
{
    fn input(&self) -> (TypeId, &'static str) {
        (TypeId::of::<W::Input>(), type_name::<W::Input>())
    }

    fn output(&self) -> (TypeId, &'static str) {
        (TypeId::of::<W::Output>(), type_name::<W::Output>())
    }

    fn run<'a>(
        &'a self,
        ndf: &'a Ndf,
        input: Box<dyn Any + Send>,
        ctx: &'a PatternContext,
    ) -> BoxedRun<'a> {
        Box::pin(async move {
            // `run_named` checked the type before calling.
            let input = input
                .downcast::<W::Input>()
                .map_err(|_| Error::TypeMismatch {
                    name: W::NAME.to_owned(),
                    expected: type_name::<W::Input>().to_owned(),
                    found: "another input type".to_owned(),
                })?;
            let output = ndf.run(self, *input, ctx).await?;
            Ok(Box::new(output) as Box<dyn Any + Send>)
        })
    }
}

/// The registered workflows, by name.
#[derive(Default)]
pub(crate) struct Registry {
    workflows: RwLock<BTreeMap<&'static str, Arc<dyn Erased>>>,
    /// The workflows that may be enqueued, run from and to JSON.
    #[cfg(feature = "fleet")]
    durable: RwLock<BTreeMap<&'static str, Arc<dyn super::queue::JsonRun>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.names();
        f.debug_struct("Registry")
            .field("workflows", &names)
            .finish()
    }
}

/// The domain of a pattern name: its first segment.
fn domain_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Registered names nearest to `name`, best first (at most three).
fn nearest<'a>(name: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = names
        .map(|n| (strsim::normalized_damerau_levenshtein(name, n), n))
        .filter(|(score, _)| *score >= 0.6)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_owned())
        .collect()
}

impl Registry {
    pub(crate) fn register<W>(&self, workflow: W) -> Result<(), Error>
    where
        W: Workflow + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        if !W::NAMED {
            return Err(Error::Config(crate::error::ConfigError {
                key: "name".to_owned(),
                value: W::NAME.to_owned(),
                reason: "only a workflow with a `name` can be registered; give it `name = \"domain.what_it_does\"`".to_owned(),
            }));
        }
        let mut workflows = self
            .workflows
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if workflows.contains_key(W::NAME) {
            return Err(Error::DuplicatePattern {
                name: W::NAME.to_owned(),
            });
        }
        workflows.insert(W::NAME, Arc::new(workflow));
        Ok(())
    }

    /// Registers `workflow` for `run_named` and for the queue.
    #[cfg(feature = "fleet")]
    pub(crate) fn register_durable<W>(&self, workflow: W) -> Result<(), Error>
    where
        W: Workflow + Clone + 'static,
        W::Input: serde::de::DeserializeOwned + 'static,
        W::Output: serde::Serialize + 'static,
        W::Checkpointed: crate::exec::AllCheckpointable,
    {
        self.register(workflow.clone())?;
        self.durable
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(W::NAME, Arc::new(workflow));
        Ok(())
    }

    /// The workflow `name` registered for the queue; else
    /// [`Error::PatternNotFound`] with the nearest such names.
    #[cfg(feature = "fleet")]
    pub(crate) fn durable(&self, name: &str) -> Result<Arc<dyn super::queue::JsonRun>, Error> {
        let durable = self.durable.read().unwrap_or_else(PoisonError::into_inner);
        durable
            .get(name)
            .cloned()
            .ok_or_else(|| Error::PatternNotFound {
                name: name.to_owned(),
                suggestions: nearest(name, durable.keys().copied()),
            })
    }

    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.workflows
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn by_domain(&self, domain: &str) -> Vec<&'static str> {
        self.names()
            .into_iter()
            .filter(|n| domain_of(n) == domain)
            .collect()
    }

    pub(crate) async fn run<I, O>(
        &self,
        ndf: &Ndf,
        name: &str,
        input: I,
        ctx: &PatternContext,
    ) -> Result<O, Error>
    where
        I: Send + 'static,
        O: Send + 'static,
    {
        let workflow = {
            let workflows = self
                .workflows
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            match workflows.get(name) {
                Some(w) => Arc::clone(w),
                None => {
                    return Err(Error::PatternNotFound {
                        name: name.to_owned(),
                        suggestions: nearest(name, workflows.keys().copied()),
                    });
                }
            }
        };
        let ((input_id, input_name), (output_id, output_name)) =
            (workflow.input(), workflow.output());
        if input_id != TypeId::of::<I>() || output_id != TypeId::of::<O>() {
            return Err(Error::TypeMismatch {
                name: name.to_owned(),
                expected: format!("{input_name} -> {output_name}"),
                found: format!("{} -> {}", type_name::<I>(), type_name::<O>()),
            });
        }
        let output = workflow.run(ndf, Box::new(input), ctx).await?;
        output
            .downcast::<O>()
            .map(|o| *o)
            .map_err(|_| Error::TypeMismatch {
                name: name.to_owned(),
                expected: output_name.to_owned(),
                found: type_name::<O>().to_owned(),
            })
    }
}

impl Ndf {
    /// Registers a named workflow, for [`Ndf::run_named`].
    ///
    /// # Errors
    ///
    /// [`Error::DuplicatePattern`] when a workflow of that name is already
    /// registered; [`Error::Config`] for a workflow without a `name`.
    pub fn register<W>(&self, workflow: W) -> Result<(), Error>
    where
        W: Workflow + 'static,
        W::Input: 'static,
        W::Output: 'static,
    {
        self.inner.registry.register(workflow)
    }

    /// Registers a named workflow for [`Ndf::run_named`] and for the run
    /// queue ([`RunQueue`](crate::RunQueue)): its input and output cross
    /// the queue as JSON, and a top-level `sequential!` stores each
    /// stage's output as a checkpoint: every one of these types must be
    /// `Serialize + DeserializeOwned`, checked at compile time (the error
    /// names the stage).
    ///
    /// # Errors
    ///
    /// As [`Ndf::register`].
    #[cfg(feature = "fleet")]
    pub fn register_durable<W>(&self, workflow: W) -> Result<(), Error>
    where
        W: Workflow + Clone + 'static,
        W::Input: serde::de::DeserializeOwned + 'static,
        W::Output: serde::Serialize + 'static,
        W::Checkpointed: crate::exec::AllCheckpointable,
    {
        self.inner.registry.register_durable(workflow)
    }

    /// Runs the registered workflow `name`, which must take `I` and return `O`.
    ///
    /// ```
    /// use ndf::prelude::*;
    ///
    /// #[pattern]
    /// async fn double(x: u32) -> u32 { x * 2 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ndf::Error> {
    /// let ndf = Ndf::builder().build()?;
    /// ndf.register(sequential!(name = "math.double"; double))?;
    /// let out: u32 = ndf.run_named("math.double", 21u32, &PatternContext::new("math")).await?;
    /// assert_eq!(out, 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::PatternNotFound`] with the nearest registered names,
    /// [`Error::TypeMismatch`] naming the workflow's real and the called
    /// signatures, or the run's own error.
    pub async fn run_named<I, O>(
        &self,
        name: &str,
        input: I,
        ctx: &PatternContext,
    ) -> Result<O, Error>
    where
        I: Send + 'static,
        O: Send + 'static,
    {
        self.inner.registry.run(self, name, input, ctx).await
    }

    /// The registered workflows of `domain` (the first segment of their
    /// names), sorted.
    #[must_use]
    pub fn by_domain(&self, domain: &str) -> Vec<&'static str> {
        self.inner.registry.by_domain(domain)
    }

    /// Every registered workflow, sorted.
    #[must_use]
    pub fn registered(&self) -> Vec<&'static str> {
        self.inner.registry.names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_come_best_first() {
        let names = [
            "data_processing.etl_pipeline",
            "data_processing.etl_backfill",
            "ops.health",
        ];
        let found = nearest("data_processing.etl_pipelin", names.into_iter());
        assert_eq!(
            found.first().map(String::as_str),
            Some("data_processing.etl_pipeline")
        );
        assert!(!found.iter().any(|n| n == "ops.health"));
        assert!(nearest("zzz", names.into_iter()).is_empty());
    }

    #[test]
    fn the_domain_is_the_first_segment() {
        assert_eq!(domain_of("data_processing.etl.v2"), "data_processing");
    }
}
