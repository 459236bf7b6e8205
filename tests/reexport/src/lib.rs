//! A crate that wraps ndf and re-exports it as `engine`, as a framework
//! built on ndf would. There is no `ndf` crate in scope here: the steps
//! and workflows below compile only because `crate = "…"` points their
//! generated code at the re-export (as serde's `#[serde(crate = …)]`).

pub use engine_core as engine;

/// Doubles.
#[engine::pattern(crate = "crate::engine", retries = 1)]
pub async fn double(x: u32) -> u32 {
    x * 2
}

/// Adds one.
#[engine::pattern(crate = "crate::engine")]
pub async fn inc(x: u32) -> u32 {
    x + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::prelude::*;

    #[tokio::test]
    async fn steps_and_workflows_reach_ndf_through_the_given_path() {
        let ndf = engine::Ndf::builder()
            .resource_probe(engine::IdleProbe)
            .build()
            .unwrap();
        let flow = engine::sequential!(crate = "crate::engine", name = "math.double_inc"; double => parallel!(inc, double));
        let out = ndf
            .run(&flow, 3, &PatternContext::new("math"))
            .await
            .unwrap();
        assert_eq!(out, (7, 12));
        assert_eq!(ndf.stats("double", "math").unwrap().executions, 2);
    }
}
