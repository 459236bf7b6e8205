//! The `prometheus` feature: the runtime's metrics in Prometheus' text
//! format on an HTTP endpoint.

use std::net::SocketAddr;

use crate::error::Error;

/// Installs a Prometheus recorder as the global `metrics` recorder and
/// serves `/metrics` on `addr`. Call it before building the runtime (the
/// runtime registers its metric handles when a workflow first runs in a
/// domain), once per process. Pick a loopback address unless the endpoint
/// is meant to be reached from other machines.
///
/// ```no_run
/// # fn main() -> Result<(), ndf::Error> {
/// ndf::serve_prometheus(([127, 0, 0, 1], 9898))?;
/// let ndf = ndf::Ndf::builder().build()?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Telemetry`] when the address cannot be bound or a global
/// recorder is already installed.
pub fn serve_prometheus(addr: impl Into<SocketAddr>) -> Result<(), Error> {
    let addr = addr.into();
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::Telemetry(format!("cannot serve Prometheus metrics on {addr}: {e}")))
}
