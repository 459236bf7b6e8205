//! Procedural macros of [ndf](https://docs.rs/ndf). Use them through the
//! `ndf` crate: `use ndf::prelude::*;`.

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
/// `std::error::Error + Send + Sync + 'static`, or `StepError`.
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
