//! Procedural macros of [ndf](https://docs.rs/ndf). Use them through the
//! `ndf` crate: `use ndf::prelude::*;`.

#![warn(missing_docs)]

mod keys;
mod pattern;
mod typecheck;
mod values;
mod workflow;

use proc_macro::TokenStream;

/// Makes an `async fn` a workflow step.
///
/// The fn stays callable as written; a step type of the same name is added
/// in the type namespace, for use as a stage of `sequential!` and the other
/// workflow macros.
///
/// Accepted shapes: `async fn f(input: I) -> Result<O, E>`, the same with a
/// second parameter `&PatternContext`, `async fn f() -> …` (input `()`), and
/// `-> O` or no return type for steps that cannot fail. `E` is any
/// `std::error::Error + Send + Sync + 'static`, `StepError`,
/// `anyhow::Error`, a boxed error or a string. An error type written
/// `StepError` (bare, or by a path from `ndf`) is taken for ndf's own and
/// needs no conversion; a crate's own type of that name is written by its
/// path (`crate::StepError`).
///
/// Options, all optional and checked at compile time:
///
/// | option | meaning |
/// |---|---|
/// | `name = "…"` | pattern name (default: the fn name) |
/// | `domain = "…"` | domain whose presets apply when the step sets none |
/// | `timeout = "250ms"` | per-attempt timeout (`ms`, `s`, `m`, `h`) |
/// | `retries = N` | retries with the default backoff (100 ms, ×2, at most 10 s, jitter) |
/// | `retry(max = N, initial = "100ms", multiplier = 2.0, max_delay = "10s", jitter = true)` | retries with a chosen backoff |
/// | `confidence_threshold = 0.85` | confidence the step must keep (0..=1) |
/// | `memory = "512MB"` | declared memory budget (`B`, `KB`, `MB`, `GB`, `TB`; binary multiples) |
/// | `after = [step, …]` | steps that must have run earlier in the workflow |
/// | `permissions = ["deploy", …]` | permissions the context must grant |
/// | `fallback = step` | step run in its place when it fails (same input and output types) |
/// | `compensate = step` | step that undoes it when a later stage fails (takes its output) |
/// | `rate = "100/s"` | at most this many starts per period (`s`, `m`, `h`, `ms` or a duration such as `100ms`), for every run in the process; a run waits up to the step's timeout, then fails with `Error::RateLimited` |
/// | `concurrency = 8` | at most this many runs of the step at once, for every run in the process; others wait in a queue, beyond which they fail at once with `Error::Saturated` |
/// | `queue = 64` | the bound of that queue (default 16 × `concurrency`) |
/// | `slow_call = "2s"` | a success slower than this counts as a failure for the step's confidence and breaker |
/// | `breaker(window = 100, failure_ratio = 0.5, min_calls = 20, break_for = "30s", probes = 3)` | the step's breaker opens on a sliding window (the last N outcomes, or `window = "30s"`) once `min_calls` are in it and `failure_ratio` of them failed, instead of on its confidence; every field is optional |
/// | `idempotent` | running the step twice does no more than running it once |
/// | `hedge(after = "50ms", max = 2)` | while an attempt runs past `after`, another starts beside it (at most `max` at once); the first success wins, the others are cancelled. Only on an `idempotent` step: hedging one that is not is a compile error |
/// | `crate = "…"` | the path of ndf, for crates that re-export it |
///
/// ```
/// use ndf::prelude::*;
///
/// #[derive(Clone)]
/// struct Raw(String);
/// struct Valid(String);
///
/// #[pattern(domain = "data_processing", timeout = "30s", retries = 3)]
/// async fn validate_input(raw: Raw) -> Result<Valid, StepError> {
///     if raw.0.is_empty() {
///         return Err(StepError::msg("empty record"));
///     }
///     Ok(Valid(raw.0))
/// }
/// ```
#[proc_macro_attribute]
pub fn pattern(args: TokenStream, item: TokenStream) -> TokenStream {
    pattern::pattern(args.into(), item.into()).into()
}

/// Runs stages one after another, each output feeding the next input.
///
/// `sequential!([name = "domain.name";] a => b => c)`: a stage is the path of a
/// `#[pattern]` step or a nested workflow macro. The compiler checks that
/// each stage takes what the previous one returns, and that every step's
/// `after` list names earlier stages. When a stage fails, the `compensate`
/// steps of the completed stages run in reverse order, then the error is
/// returned.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn parse(text: String) -> Result<u32, StepError> { Ok(text.trim().parse()?) }
/// #[pattern]
/// async fn double(x: u32) -> u32 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let flow = sequential!(name = "math.parse_and_double"; parse => double);
/// let ndf = Ndf::builder().build()?;
/// assert_eq!(ndf.run(&flow, " 21 ".to_owned(), &PatternContext::new("math")).await?, 42);
/// # Ok(()) }
/// ```
#[proc_macro]
pub fn sequential(input: TokenStream) -> TokenStream {
    workflow::workflow(workflow::Kind::Sequential, input.into()).into()
}

/// Runs tasks side by side, each with a copy of the one input; the output is
/// the tuple of their outputs in declared order.
///
/// `parallel!([name = "…", max_concurrent = N, resource_threshold = x, min_success = k, spawn = true, keep_input = true, deadline = "2s";] a, b, c)`,
/// or `parallel!([options;] each stage)` over the items of an iterable.
///
/// Every workflow macro takes `deadline = "2s"`: the compiler refuses a
/// workflow whose worst case (timeouts, attempts, backoff caps, fallbacks,
/// waits; a `parallel!` counts its longest task) can exceed it, naming the
/// slowest path, and at run time no attempt outlives it.
/// The compiler checks that every task takes the same input, that the input
/// is `Clone`, and that no task is `after` another of the same group.
///
/// - `max_concurrent = N` bounds the tasks in flight; the others wait their turn.
/// - `resource_threshold = x` holds back new tasks while CPU or memory use
///   (from the runtime's `ResourceProbe`) is above `x`; past the config's
///   `resource_wait` the group fails with `ResourceExhausted`.
/// - `min_success = k` tolerates failures: each element of the output is a
///   `Result<O, StepError>`, and the group fails only if fewer than `k` tasks
///   succeed. [`TaskResults`](../ndf/trait.TaskResults.html) counts and
///   unpacks such a tuple (`succeeded()`, `errors()`, `oks()`).
/// - `keep_input = true` outputs `(input, outputs)`: a copy of the input
///   beside the tuple, for the next stage to have both.
///
/// - `spawn = true` runs the code of the tasks' steps on spawned tokio tasks,
///   which the multi-threaded runtime spreads over its worker threads; the
///   policies (timeouts, retries, learning) stay with the workflow. Each
///   step attempt then costs a task spawn, a copy of the context and a
///   cross-thread hand-off (about a microsecond): worth it for CPU-heavy
///   steps, a loss for steps that mostly wait, and no gain at all on a
///   current-thread runtime.
///
/// Without `min_success`, the first failure cancels the tasks still running
/// and compensates the completed ones. Dropping the workflow's future
/// cancels every task, spawned steps included: nothing keeps running.
/// Without `spawn`, the tasks share one state machine and the thread that
/// polls it: no spawn and no allocation per task.
///
/// **Dynamic fan-out**: `parallel!([options;] each stage)` runs one stage (a
/// step or a nested workflow) over every item of its input, and outputs a
/// `Vec` of the outputs in input order (`Vec<Result<O, StepError>>` with
/// `min_success = k`, which then counts items). Nested, the input is any
/// `IntoIterator` of what the stage takes; at the top, a `Vec`. The options
/// and rules above apply to the items, `keep_input` excepted; the items in
/// flight live in one bounded set, so nothing is allocated per item.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn check_service(host: String) -> bool { !host.is_empty() }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let checks = parallel!(name = "ops.services", max_concurrent = 8; each check_service);
/// let ndf = Ndf::builder().build()?;
/// let hosts = vec!["api-1".to_owned(), String::new()];
/// let up = ndf.run(&checks, hosts, &PatternContext::new("ops")).await?;
/// assert_eq!(up, [true, false]);
/// # Ok(()) }
/// ```
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn check_database(host: String) -> bool { !host.is_empty() }
/// #[pattern]
/// async fn check_cache(host: String) -> u32 { host.len() as u32 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let checks = parallel!(name = "ops.checks", max_concurrent = 2; check_database, check_cache);
/// let ndf = Ndf::builder().build()?;
/// let (db, cache) = ndf.run(&checks, "db-1".to_owned(), &PatternContext::new("ops")).await?;
/// assert_eq!((db, cache), (true, 4));
/// # Ok(()) }
/// ```
#[proc_macro]
pub fn parallel(input: TokenStream) -> TokenStream {
    workflow::workflow(workflow::Kind::Parallel, input.into()).into()
}

/// Tries alternatives in order of preference: the first that is admitted
/// runs, a failure moves to the next, and the run records which level served.
///
/// While the resource probe reads CPU or memory above the config's
/// `cpu_limit`/`memory_limit`, every level but the last is skipped: the
/// cheapest alternative serves.
///
/// `degrade!([name = "…", keep_input = true;] a | b | c)`: every alternative
/// takes the input and returns the output of the first (the compiler checks
/// it), and the input is `Clone` so that a later alternative can have it
/// after an earlier one failed. With `keep_input = true` the output is
/// `(input, output)`.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn deep_analysis(text: String) -> Result<usize, StepError> {
///     Err(StepError::msg("model unavailable"))
/// }
/// #[pattern]
/// async fn basic_analysis(text: String) -> Result<usize, StepError> { Ok(text.len()) }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let analysis = degrade!(name = "analysis.text"; deep_analysis | basic_analysis);
/// let ndf = Ndf::builder().build()?;
/// assert_eq!(ndf.run(&analysis, "hello".to_owned(), &PatternContext::new("analysis")).await?, 5);
/// assert_eq!(ndf.stats("analysis.text", "analysis").unwrap().degradations, 1);
/// # Ok(()) }
/// ```
#[proc_macro]
pub fn degrade(input: TokenStream) -> TokenStream {
    workflow::workflow(workflow::Kind::Degrade, input.into()).into()
}

/// Runs named phases in order, each phase's output feeding the next, with
/// conditions checked as each phase completes and a rollback policy.
///
/// ```text
/// orchestrate!([name = "…", rollback = phase_level | workflow_level;]
///     phase: workflow [, success(min_success = x)] [, rollback_if(error_rate > x, slowdown > y)];
///     …)
/// ```
///
/// - `success(min_success = x)`: at least this fraction of the phase's step
///   runs must have succeeded (meaningful with a tolerant `parallel!`).
/// - `rollback_if(error_rate > x)`: failed step attempts, retries included,
///   over all attempts; `slowdown > y`: the phase's duration over its learned
///   median (after five runs), minus one, for a phase at least 1 ms slower
///   than its median (less is the clock's and the scheduler's noise).
/// - `rollback = workflow_level` (the default) compensates every completed
///   phase, last first, when a phase fails; `phase_level` compensates the
///   failed phase's own work only.
///
/// An `orchestrate!` needs at least two phases, with distinct names.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn plan(n: u32) -> u32 { n }
/// #[pattern]
/// async fn apply(n: u32) -> u32 { n + 1 }
/// #[pattern]
/// async fn verify(n: u32) -> bool { n > 0 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let rollout = orchestrate!(name = "deployment.rollout", rollback = phase_level;
///     planning: sequential!(plan);
///     applying: sequential!(apply), rollback_if(error_rate > 0.1);
///     checking: sequential!(verify));
/// let ndf = Ndf::builder().build()?;
/// assert!(ndf.run(&rollout, 1, &PatternContext::new("deployment")).await?);
/// # Ok(()) }
/// ```
#[proc_macro]
pub fn orchestrate(input: TokenStream) -> TokenStream {
    workflow::workflow(workflow::Kind::Orchestrate, input.into()).into()
}
