//! What the benchmarks run on: a current-thread tokio runtime (the kind
//! the figures in the notes are measured on), and an ndf runtime with the
//! idle probe (no resource readings on the measured path) with a context.

/// A current-thread tokio runtime with its timer and I/O.
pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A tokio runtime, an ndf runtime with the default config and the idle
/// probe, and a context in the domain `bench`.
#[allow(dead_code, reason = "not every benchmark runs workflows")]
pub fn rig() -> (tokio::runtime::Runtime, ndf::Ndf, ndf::PatternContext) {
    let ndf = ndf::Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    (current_thread(), ndf, ndf::PatternContext::new("bench"))
}
