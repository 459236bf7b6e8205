//! One classification of errors for retries, learning and the gate:
//! transient errors are retried and learned, permanent ones learned but not
//! retried, rejected ones (the caller's fault, an expected business
//! outcome) returned as `Error::Rejected`, never retried, never learned.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ndf::prelude::*;

#[derive(Debug, thiserror::Error)]
enum PaymentError {
    #[error("card declined")]
    Declined,
    #[error("payment gateway unreachable")]
    Unreachable,
}

impl ndf::Classify for PaymentError {
    fn class(&self) -> ndf::ErrorClass {
        match self {
            PaymentError::Declined => ndf::ErrorClass::Rejected,
            PaymentError::Unreachable => ndf::ErrorClass::Transient,
        }
    }
}

/// What an order asks of the steps.
#[derive(Clone, Debug, Default)]
struct Order {
    valid: bool,
    card_ok: bool,
    gateway_up: bool,
    charges: Arc<AtomicU32>,
}

#[pattern]
async fn validate(order: Order) -> Result<Order, StepError> {
    if order.valid {
        Ok(order)
    } else {
        Err(StepError::rejected(StepError::msg("the order is empty")))
    }
}

#[pattern(retries = 2, fallback = charge_later)]
async fn charge(order: Order) -> Result<Order, PaymentError> {
    order.charges.fetch_add(1, Ordering::SeqCst);
    if !order.gateway_up {
        Err(PaymentError::Unreachable)
    } else if !order.card_ok {
        Err(PaymentError::Declined)
    } else {
        Ok(order)
    }
}

#[pattern]
async fn charge_later(_order: Order) -> Result<Order, StepError> {
    Err(StepError::msg("the retry queue is full"))
}

#[pattern(retries = 3)]
async fn lookup(n: u32) -> Result<u32, StepError> {
    Err(StepError::permanent(StepError::msg(format!(
        "no record {n}"
    ))))
}

fn ndf() -> Ndf {
    let mut config = Config::for_environment(Environment::Production);
    config.min_samples = 5;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

fn ctx() -> PatternContext {
    PatternContext::new("shop")
}

#[tokio::test(start_paused = true)]
async fn a_rejected_error_is_returned_as_is_never_retried_nor_learned() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.checkout"; validate => charge);
    let order = Order {
        valid: true,
        card_ok: false,
        gateway_up: true,
        ..Order::default()
    };
    let err = ndf.run(&flow, order.clone(), &ctx()).await.unwrap_err();
    match &err {
        ndf::Error::Rejected { step, source, .. } => {
            assert_eq!(step, "charge");
            assert_eq!(source.to_string(), "card declined");
            assert_eq!(source.class(), ndf::ErrorClass::Rejected);
            assert!(source.downcast_ref::<PaymentError>().is_some());
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(err.class(), ndf::ErrorClass::Rejected);
    assert_eq!(order.charges.load(Ordering::SeqCst), 1, "not retried");
    let charge = ndf.stats("charge", "shop").unwrap();
    assert_eq!(
        (
            charge.executions,
            charge.failures,
            charge.rejected,
            charge.fallbacks
        ),
        (0, 0, 1, 0),
        "counted as rejected, no fallback"
    );
    let run = ndf.stats("shop.checkout", "shop").unwrap();
    assert_eq!((run.executions, run.failures, run.rejected), (0, 0, 1));
    assert!(
        ndf.confidence("charge", "shop").is_none(),
        "nothing learned"
    );
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_is_retried_and_its_fallback_error_is_kept() {
    let ndf = ndf();
    let order = Order {
        valid: true,
        card_ok: true,
        gateway_up: false,
        ..Order::default()
    };
    let err = ndf
        .run(&sequential!(charge), order.clone(), &ctx())
        .await
        .unwrap_err();
    assert_eq!(order.charges.load(Ordering::SeqCst), 3, "retried twice");
    let ndf::Error::Execution { source, .. } = &err else {
        panic!("expected Execution, got {err:?}");
    };
    assert_eq!(source.to_string(), "payment gateway unreachable");
    assert_eq!(
        source.fallback_error().map(ToString::to_string).as_deref(),
        Some("the retry queue is full")
    );
    assert!(
        err.to_string()
            .ends_with("its fallback failed too: the retry queue is full"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_learned_but_not_retried() {
    let ndf = ndf();
    let err = ndf
        .run(&sequential!(name = "shop.lookup"; lookup), 7, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, ndf::Error::Execution { .. }), "{err}");
    assert_eq!(err.class(), ndf::ErrorClass::Permanent);
    let stats = ndf.stats("lookup", "shop").unwrap();
    assert_eq!((stats.failures, stats.retries), (1, 0));
    assert_eq!(ndf.confidence("lookup", "shop").unwrap().samples, 1);
}

/// The new user's checkout: client-side validation errors and declined
/// cards mixed with gateway failures. Only the gateway failures count
/// against the gate, so 4 failures in 300 calls never hold checkout back.
#[tokio::test(start_paused = true)]
async fn only_real_failures_count_against_the_gate() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.checkout"; validate => charge);
    let mut refused = 0;
    for call in 0..300u32 {
        let order = Order {
            valid: !call.is_multiple_of(7),
            card_ok: !call.is_multiple_of(11),
            // Two outages of two calls each.
            gateway_up: !matches!(call, 9 | 10 | 150 | 151),
            ..Order::default()
        };
        match ndf.run(&flow, order, &ctx()).await {
            Err(ndf::Error::ConfidenceThreshold { .. }) => refused += 1,
            Ok(_) | Err(ndf::Error::Rejected { .. } | ndf::Error::Execution { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refused, 0);
    assert_eq!(
        ndf.breaker("shop.checkout", "shop"),
        Some(ndf::BreakerState::Closed)
    );
    let run = ndf.stats("shop.checkout", "shop").unwrap();
    assert!(run.rejected > 50, "{run:?}");
}
