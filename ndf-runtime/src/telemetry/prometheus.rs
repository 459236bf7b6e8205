//! The `prometheus` feature: the runtime's metrics in Prometheus' text
//! format on an HTTP endpoint, `ndf_run_duration_seconds` as a histogram
//! (which, unlike a summary, adds up across instances).

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::error::Error;

/// The default bucket bounds of `ndf_run_duration_seconds`, in seconds:
/// from half a millisecond to a minute, about three a decade.
pub const RUN_DURATION_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs a Prometheus recorder as the global `metrics` recorder and
/// serves `/metrics` on `addr`, with `ndf_run_duration_seconds` in the
/// buckets of [`RUN_DURATION_BUCKETS`] and a `# HELP` line for every
/// metric. Call it before building the runtime (the runtime registers its
/// metric handles when a workflow first runs in a domain), once per
/// process. Pick a loopback address unless the endpoint is meant to be
/// reached from other machines.
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
    serve_prometheus_with_buckets(addr, RUN_DURATION_BUCKETS)
}

/// [`serve_prometheus`], with `buckets` (upper bounds in seconds,
/// ascending) for `ndf_run_duration_seconds`.
///
/// # Errors
///
/// [`Error::Telemetry`] when `buckets` is empty or not ascending, the
/// address cannot be bound, or a global recorder is already installed.
pub fn serve_prometheus_with_buckets(
    addr: impl Into<SocketAddr>,
    buckets: &[f64],
) -> Result<(), Error> {
    let addr = addr.into();
    if buckets.is_empty()
        || buckets.iter().any(|b| !b.is_finite() || *b <= 0.0)
        || buckets.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(Error::Telemetry(format!(
            "the buckets of ndf_run_duration_seconds must be positive seconds in ascending order, got {buckets:?}"
        )));
    }
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("ndf_run_duration_seconds".to_owned()),
            buckets,
        )
        .map_err(|e| Error::Telemetry(format!("bad buckets {buckets:?}: {e}")))?
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::Telemetry(format!("cannot serve Prometheus metrics on {addr}: {e}")))?;
    super::describe_metrics();
    Ok(())
}
