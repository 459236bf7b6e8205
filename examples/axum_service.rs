//! ndf inside an axum 0.8 service: a checkout workflow behind a route, kept
//! in the app's state as a `DynWorkflow`; the same workflow as a `tower`
//! service behind a concurrency limit; and ndf's dashboard nested under
//! `/ops`, behind the app's own authentication middleware.
//!
//! Run it with `cargo run --example axum_service`, then
//! `curl http://127.0.0.1:3000/checkout/42` and
//! `curl -H 'x-ops-key: let-me-in' http://127.0.0.1:3000/ops`.
//! `tests/axum_example.rs` calls it over loopback HTTP.

use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use ndf::prelude::*;
use ndf::{DynWorkflow, WorkflowService};
use tower::{Service as _, ServiceExt as _};

/// What a checkout returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    /// The amount charged, in cents.
    pub charged: u32,
    /// Whether the receipt was emailed.
    pub emailed: bool,
}

#[pattern(timeout = "2s")]
async fn validate(amount: u32) -> Result<u32, StepError> {
    if amount == 0 {
        return Err(StepError::rejected(StepError::msg(
            "nothing to charge: the amount is 0",
        )));
    }
    Ok(amount)
}

#[pattern(retries = 2, timeout = "2s")]
async fn charge(amount: u32) -> Result<u32, StepError> {
    Ok(amount)
}

#[pattern]
async fn email(charged: u32) -> Receipt {
    Receipt {
        charged,
        emailed: true,
    }
}

/// The checkout: its type erased, to sit in the app's state.
#[must_use]
pub fn checkout() -> DynWorkflow<u32, Receipt> {
    DynWorkflow::new(sequential!(name = "shop.checkout"; validate => charge => email))
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    ndf: Ndf,
    checkout: DynWorkflow<u32, Receipt>,
    /// The same workflow as a `tower` service behind a concurrency limit.
    limited: tower::limit::ConcurrencyLimit<WorkflowService<DynWorkflow<u32, Receipt>>>,
}

async fn checkout_handler(
    State(state): State<AppState>,
    Path(amount): Path<u32>,
) -> Result<Json<Receipt>, Response> {
    let ctx = PatternContext::new("shop");
    match state.checkout.run(&state.ndf, amount, &ctx).await {
        Ok(receipt) => Ok(Json(receipt)),
        Err(error) => Err(error_response(&error)),
    }
}

async fn limited_handler(
    State(state): State<AppState>,
    Path(amount): Path<u32>,
) -> Result<Json<Receipt>, Response> {
    let mut service = state.limited;
    let ready = service
        .ready()
        .await
        .map_err(|error| error_response(&error))?;
    match ready.call((amount, PatternContext::new("shop"))).await {
        Ok(receipt) => Ok(Json(receipt)),
        Err(error) => Err(error_response(&error)),
    }
}

/// A rejected request is the caller's (422); a runtime that drains before
/// it stops sends the caller elsewhere (503); anything else is ours (502).
fn error_response(error: &ndf::Error) -> Response {
    let status = match error {
        ndf::Error::Draining { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ if error.class() == ndf::ErrorClass::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_GATEWAY,
    };
    (status, error.to_string()).into_response()
}

/// The app's own authentication, in front of the dashboard.
async fn ops_only(request: Request, next: Next) -> Response {
    let allowed = request
        .headers()
        .get("x-ops-key")
        .is_some_and(|key| key == "let-me-in");
    if allowed {
        next.run(request).await
    } else {
        StatusCode::FORBIDDEN.into_response()
    }
}

/// The app: `/checkout/{amount}`, `/limited/{amount}` and the dashboard
/// under `/ops`.
pub fn app(ndf: Ndf) -> Router {
    let checkout = checkout();
    let limited = tower::limit::ConcurrencyLimit::new(ndf.service(checkout.clone()), 32);
    let ops = ndf
        .dashboard_router(Duration::from_secs(5))
        .layer(middleware::from_fn(ops_only));
    Router::new()
        .route("/checkout/{amount}", get(checkout_handler))
        .route("/limited/{amount}", get(limited_handler))
        .with_state(AppState {
            ndf,
            checkout,
            limited,
        })
        .nest("/ops", ops)
}

/// Resolves on SIGTERM (what an orchestrator sends) or Ctrl-C.
///
/// # Panics
///
/// When the SIGTERM handler cannot be installed.
pub async fn terminated() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ndf = Ndf::builder().build()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("serving on http://{}", listener.local_addr()?);
    // On SIGTERM: stop taking connections and let the requests in flight
    // answer, while ndf starts no new run and gives the runs in flight 10 s;
    // then what it learned is saved.
    let draining = ndf.clone();
    axum::serve(listener, app(ndf))
        .with_graceful_shutdown(async move {
            terminated().await;
            match draining.drain(Duration::from_secs(10)).await {
                Ok(0) => println!("drained: every run finished and was saved"),
                Ok(n) => println!("drained: {n} runs did not finish in 10 s"),
                Err(error) => eprintln!("drained, but saving failed: {error}"),
            }
        })
        .await?;
    Ok(())
}
