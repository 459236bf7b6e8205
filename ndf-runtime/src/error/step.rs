//! [`StepError`], the error a step returns, and [`Classify`], how a typed
//! error says its [`ErrorClass`].

use std::borrow::Cow;
use std::fmt;

use super::ErrorClass;

/// An error type that knows its [`ErrorClass`].
///
/// A step returning `Result<T, E>` where `E: Classify` has each error
/// classed by [`Classify::class`]; other error types are transient. Inside
/// a step returning `StepError`, keep the class when converting with
/// [`StepError::classified`] (`?` alone gives a transient error).
///
/// ```
/// use ndf::prelude::*;
///
/// #[derive(Debug, thiserror::Error)]
/// enum PaymentError {
///     #[error("card declined")]
///     Declined,
///     #[error("gateway unreachable")]
///     Unreachable,
/// }
///
/// impl ndf::Classify for PaymentError {
///     fn class(&self) -> ndf::ErrorClass {
///         match self {
///             PaymentError::Declined => ndf::ErrorClass::Rejected,
///             PaymentError::Unreachable => ndf::ErrorClass::Transient,
///         }
///     }
/// }
///
/// #[pattern(retries = 3)]
/// async fn charge(cents: u32) -> Result<u32, PaymentError> {
///     if cents > 10_000 { Err(PaymentError::Declined) } else { Ok(cents) }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ndf = Ndf::builder().build().unwrap();
/// let err = ndf.run(&sequential!(charge), 50_000, &PatternContext::new("shop")).await.unwrap_err();
/// assert!(matches!(err, ndf::Error::Rejected { .. }), "{err}");
/// # }
/// ```
pub trait Classify {
    /// This error's class.
    fn class(&self) -> ErrorClass;

    /// How long the failing dependency asked to be left alone (see
    /// [`StepError::retry_after`]); none by default.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

impl Classify for StepError {
    fn class(&self) -> ErrorClass {
        self.class
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }
}

/// The error a step returns: any `std::error::Error + Send + Sync + 'static`,
/// boxed.
///
/// Like `anyhow::Error`, it converts from any error with `?`, so a step
/// declared `-> Result<T, StepError>` can use `?` on any fallible call.
/// [`StepError::msg`] builds one from a message.
pub struct StepError {
    error: Box<dyn std::error::Error + Send + Sync + 'static>,
    class: ErrorClass,
    /// How long the failing dependency asked to be left alone
    /// (`Retry-After`): the next retry waits at least this long.
    retry_after: Option<std::time::Duration>,
    /// The fallback's own error, when it failed too.
    fallback: Option<Box<StepError>>,
}

impl StepError {
    /// An error already boxed (`Box<dyn Error + Send + Sync>`, what
    /// `anyhow::Error` converts into), kept as the source (transient).
    #[must_use]
    pub fn from_boxed(error: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        Self::boxed(error)
    }

    fn boxed(error: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        Self {
            error,
            class: ErrorClass::Transient,
            retry_after: None,
            fallback: None,
        }
    }

    /// Wraps an error (transient).
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::boxed(Box::new(error))
    }

    /// An error that is only a message (transient).
    pub fn msg(message: impl Into<Cow<'static, str>>) -> Self {
        Self::boxed(Box::new(Message(message.into())))
    }

    /// Wraps an error of a type that knows its class.
    pub fn classified(error: impl std::error::Error + Classify + Send + Sync + 'static) -> Self {
        let (class, after) = (error.class(), Classify::retry_after(&error));
        Self::new(error).advised(Some(class), after)
    }

    /// A transient error: retried, then the fallback; learned as a failure.
    pub fn transient(error: impl Into<StepError>) -> Self {
        error.into().with_class(ErrorClass::Transient)
    }

    /// A permanent error: not retried; the fallback runs; learned as a
    /// failure.
    pub fn permanent(error: impl Into<StepError>) -> Self {
        error.into().with_class(ErrorClass::Permanent)
    }

    /// A rejected call (the caller's fault or an expected business
    /// outcome): returned as [`Error::Rejected`](super::Error::Rejected), never retried, no
    /// fallback, never learned as the pattern's failure.
    pub fn rejected(error: impl Into<StepError>) -> Self {
        error.into().with_class(ErrorClass::Rejected)
    }

    /// This error, with a retry-after hint (an HTTP `Retry-After`, a 429's
    /// advice): the next retry waits at least `after`, more than its
    /// backoff planned if need be. A hint longer than the step's
    /// `max_delay` ends the retries: waiting that long is not what the
    /// policy allows.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ndf::StepError;
    ///
    /// let busy = StepError::msg("429 Too Many Requests").retry_after(Duration::from_secs(2));
    /// assert_eq!(busy.retry_after_hint(), Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub fn retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// This error with the advice its source gave: its class and its
    /// retry-after hint, where it gave them (its own otherwise).
    #[must_use]
    pub(crate) fn advised(
        self,
        class: Option<ErrorClass>,
        after: Option<std::time::Duration>,
    ) -> Self {
        let error = match class {
            Some(class) => self.with_class(class),
            None => self,
        };
        match after {
            Some(after) => error.retry_after(after),
            None => error,
        }
    }

    /// The retry-after hint, if the error carries one.
    #[must_use]
    pub fn retry_after_hint(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// This error, classed `class`.
    #[must_use]
    pub fn with_class(mut self, class: ErrorClass) -> Self {
        self.class = class;
        self
    }

    /// How the error counts for retries, learning and the breaker.
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// When the step's fallback ran and failed too, the fallback's error
    /// (this error is the step's own).
    #[must_use]
    pub fn fallback_error(&self) -> Option<&StepError> {
        self.fallback.as_deref()
    }

    pub(crate) fn with_fallback_error(mut self, fallback: StepError) -> Self {
        self.fallback = Some(Box::new(fallback));
        self
    }

    /// Whether the step panicked (the runtime caught the panic).
    #[must_use]
    pub fn is_panic(&self) -> bool {
        self.error.is::<Panicked>()
    }

    /// The underlying error, if it is an `E`.
    #[must_use]
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }

    /// The boxed error.
    #[must_use]
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.error
    }

    pub(crate) fn panicked(payload: &(dyn std::any::Any + Send + 'static)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".to_owned());
        Self::boxed(Box::new(Panicked(message)))
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl From<StepError> for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn from(error: StepError) -> Self {
        error.error
    }
}

impl std::ops::Deref for StepError {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.error
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

#[derive(Debug)]
struct Message(Cow<'static, str>);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

#[derive(Debug)]
struct Panicked(String);

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the step panicked: {}", self.0)
    }
}

impl std::error::Error for Panicked {}
