//! Serving the dashboard of a runtime (the `dashboard` feature): the
//! server lives in telemetry and reads the runtime as a data source.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::ndf::Ndf;
use crate::error::Error;
use crate::telemetry::{
    self, Dashboard, DashboardHandle, DashboardOptions, DashboardQuery, DashboardSource,
};

impl DashboardSource for Ndf {
    fn dashboard(&self, query: &DashboardQuery) -> Dashboard {
        Ndf::dashboard_with(self, query)
    }
}

impl Ndf {
    /// Serves the dashboard on `addr`, which must be a loopback address
    /// (use [`Ndf::serve_dashboard_with`] and
    /// [`DashboardOptions::allow_remote`] for others): the page at `/`, its
    /// data as JSON at `/api/dashboard` ([`Ndf::dashboard`]), built on
    /// tokio's blocking pool. Must be called inside a tokio runtime; the
    /// server runs on it.
    ///
    /// # Errors
    ///
    /// As [`Ndf::serve_dashboard_with`].
    pub async fn serve_dashboard(
        &self,
        addr: impl Into<SocketAddr>,
    ) -> Result<DashboardHandle, Error> {
        self.serve_dashboard_with(DashboardOptions::new(addr)).await
    }

    /// The dashboard's routes, to nest in an axum app behind its own
    /// middleware (authentication, TLS, rate limits): `/` is the page (it
    /// fetches its data relative to itself, so any prefix works) and
    /// `/api/dashboard` its JSON, built on tokio's blocking pool.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use ndf::Ndf;
    ///
    /// # fn main() -> Result<(), ndf::Error> {
    /// let ndf = Ndf::builder().build()?;
    /// let app: axum::Router = axum::Router::new()
    ///     .nest("/ops", ndf.dashboard_router(Duration::from_secs(10)));
    /// # Ok(()) }
    /// ```
    pub fn dashboard_router(&self, refresh: Duration) -> axum::Router {
        telemetry::router(Arc::new(self.clone()), refresh, None)
    }

    /// Serves the dashboard as `options` say.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an address that is not loopback without
    /// [`DashboardOptions::allow_remote`] and a
    /// [`bearer_token`](DashboardOptions::bearer_token); [`Error::Telemetry`]
    /// when the address cannot be bound.
    pub async fn serve_dashboard_with(
        &self,
        options: DashboardOptions,
    ) -> Result<DashboardHandle, Error> {
        telemetry::serve(Arc::new(self.clone()), options).await
    }
}
