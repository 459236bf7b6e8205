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

/// A tokio runtime with two worker threads, its timer and I/O.
#[allow(dead_code, reason = "not every benchmark runs on two threads")]
pub fn two_threads() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The Postgres server of `DATABASE_URL`, or else the throwaway cluster
/// that `.ci/postgres start` starts (or finds running).
#[allow(dead_code, reason = "only the Postgres benchmarks need a server")]
pub fn database_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return url;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/postgres");
    let out = std::process::Command::new(script)
        .arg("start")
        .output()
        .expect("set DATABASE_URL, or let .ci/postgres start a server");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .strip_prefix("export DATABASE_URL=")
        .expect("set DATABASE_URL, or let .ci/postgres start a server")
        .to_owned()
}

/// A tokio runtime, an ndf runtime with the default config and the idle
/// probe, and a context in the domain `bench`. The ndf runtime is built
/// inside tokio, as a service builds it, so that its background tasks
/// (the learner among them) run beside the measured runs.
#[allow(dead_code, reason = "not every benchmark runs workflows")]
pub fn rig() -> (tokio::runtime::Runtime, ndf::Ndf, ndf::PatternContext) {
    let rt = current_thread();
    let ndf = {
        let _inside = rt.enter();
        ndf::Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .build()
            .unwrap()
    };
    (rt, ndf, ndf::PatternContext::new("bench"))
}
