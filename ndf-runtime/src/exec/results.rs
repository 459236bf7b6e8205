//! [`TaskResults`]: what a `parallel!` with `min_success` gives, a tuple of
//! one `Result` per task, read without unpacking it by hand.

use crate::error::StepError;

/// The output of a `parallel!` with `min_success`: a tuple with one
/// `Result<O, StepError>` per task, in declared order.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn email(to: String) -> Result<&'static str, StepError> { Ok("emailed") }
///
/// #[pattern]
/// async fn sms(to: String) -> Result<&'static str, StepError> {
///     Err(StepError::msg("no phone number"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().build()?;
/// let notify = parallel!(min_success = 1; email, sms);
/// let sent = ndf.run(&notify, "ada".to_owned(), &PatternContext::new("shop")).await?;
/// assert_eq!(sent.succeeded(), 1);
/// assert!(sent.errors()[0].to_string().ends_with("in step `sms`: no phone number"));
/// let (email, sms) = sent.oks();
/// assert_eq!((email, sms), (Some("emailed"), None));
/// # Ok(()) }
/// ```
pub trait TaskResults {
    /// One `Option` per task: its output, or `None` where it failed.
    type Oks;

    /// How many tasks succeeded.
    fn succeeded(&self) -> usize;

    /// The errors of the tasks that failed, in declared order.
    fn errors(&self) -> Vec<&StepError>;

    /// Each task's output, `None` where it failed.
    fn oks(self) -> Self::Oks;
}

macro_rules! task_results {
    ($($name:ident: $ty:ident),+) => {
        impl<$($ty),+> TaskResults for ($(Result<$ty, StepError>,)+) {
            type Oks = ($(Option<$ty>,)+);

            fn succeeded(&self) -> usize {
                let ($($name,)+) = self;
                0 $(+ usize::from($name.is_ok()))+
            }

            fn errors(&self) -> Vec<&StepError> {
                let ($($name,)+) = self;
                let mut out = Vec::new();
                $(if let Err(e) = $name { out.push(e); })+
                out
            }

            fn oks(self) -> Self::Oks {
                let ($($name,)+) = self;
                ($($name.ok(),)+)
            }
        }
    };
}

task_results!(a: A);
task_results!(a: A, b: B);
task_results!(a: A, b: B, c: C);
task_results!(a: A, b: B, c: C, d: D);
task_results!(a: A, b: B, c: C, d: D, e: E);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J, k: K);
task_results!(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J, k: K, l: L);
