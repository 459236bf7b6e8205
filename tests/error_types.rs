//! A step returns the error type its author already uses: `anyhow`'s,
//! a boxed error (`Send` or not), a string, any `std::error::Error`, or
//! `StepError`. Each fails the run with its message kept, and is retried
//! as a transient error. A crate's own error type named `StepError`,
//! written by its path, is converted as any other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ndf::prelude::*;

/// Fails on its first `fail` calls, then succeeds.
#[derive(Clone, Default)]
struct Calls {
    made: Arc<AtomicU32>,
    fail: u32,
}

impl Calls {
    fn failing(&self) -> bool {
        self.made.fetch_add(1, Ordering::SeqCst) < self.fail
    }
}

#[pattern(retries = 1)]
async fn with_anyhow(calls: Calls) -> anyhow::Result<u32> {
    if calls.failing() {
        anyhow::bail!("anyhow says no");
    }
    Ok(1)
}

#[pattern(retries = 1)]
async fn with_box(calls: Calls) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if calls.failing() {
        return Err("boxed says no".into());
    }
    Ok(2)
}

#[pattern(retries = 1)]
async fn with_local_box(calls: Calls) -> Result<u32, Box<dyn std::error::Error>> {
    if calls.failing() {
        return Err(Box::new(std::fmt::Error));
    }
    Ok(3)
}

#[pattern(retries = 1)]
async fn with_string(calls: Calls) -> Result<u32, String> {
    if calls.failing() {
        return Err("string says no".to_owned());
    }
    Ok(4)
}

#[pattern(retries = 1)]
async fn with_io(calls: Calls) -> std::io::Result<u32> {
    if calls.failing() {
        return Err(std::io::Error::other("io says no"));
    }
    Ok(5)
}

#[pattern(retries = 1)]
async fn with_step_error(calls: Calls) -> Result<u32, StepError> {
    if calls.failing() {
        return Err(StepError::msg("ndf's own says no"));
    }
    Ok(6)
}

/// A crate's own error type that happens to be called `StepError`.
mod own {
    #[derive(Debug)]
    pub struct StepError;

    impl std::fmt::Display for StepError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the crate's own says no")
        }
    }

    impl std::error::Error for StepError {}
}

#[pattern(retries = 1)]
async fn with_own_step_error(calls: Calls) -> Result<u32, crate::own::StepError> {
    if calls.failing() {
        return Err(own::StepError);
    }
    Ok(7)
}

fn ndf() -> Ndf {
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap()
}

/// Runs `W` twice: failing once (retried, then served), and failing
/// always (the error's message is the step's source).
async fn check<W: Workflow<Input = Calls, Output = u32>>(flow: &W, out: u32, message: &str) {
    let ndf = ndf();
    let ctx = PatternContext::new("errors");
    let once = Calls {
        fail: 1,
        ..Calls::default()
    };
    assert_eq!(ndf.run(flow, once.clone(), &ctx).await.unwrap(), out);
    assert_eq!(once.made.load(Ordering::SeqCst), 2, "retried as transient");
    let always = Calls {
        fail: u32::MAX,
        ..Calls::default()
    };
    let err = ndf.run(flow, always, &ctx).await.unwrap_err();
    assert!(matches!(&err, ndf::Error::Execution { .. }), "{err:?}");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some(message), "{err}");
}

#[tokio::test]
async fn anyhow_errors_are_step_errors() {
    check(&sequential!(with_anyhow), 1, "anyhow says no").await;
}

#[tokio::test]
async fn boxed_errors_are_step_errors() {
    check(&sequential!(with_box), 2, "boxed says no").await;
}

#[tokio::test]
async fn boxed_errors_that_are_not_send_keep_their_message() {
    check(
        &sequential!(with_local_box),
        3,
        "an error occurred when formatting an argument",
    )
    .await;
}

#[tokio::test]
async fn string_errors_are_step_errors() {
    check(&sequential!(with_string), 4, "string says no").await;
}

#[tokio::test]
async fn io_errors_are_step_errors() {
    check(&sequential!(with_io), 5, "io says no").await;
}

#[tokio::test]
async fn step_errors_are_themselves() {
    check(&sequential!(with_step_error), 6, "ndf's own says no").await;
}

#[tokio::test]
async fn a_crates_own_step_error_written_by_its_path_is_converted() {
    check(
        &sequential!(with_own_step_error),
        7,
        "the crate's own says no",
    )
    .await;
}
