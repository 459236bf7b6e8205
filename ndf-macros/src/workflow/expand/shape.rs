//! The static shape of a workflow, computed while it is expanded.

use proc_macro2::TokenStream;
use quote::quote;

use crate::workflow::model::{ShapeRole, Stage, Workflow};

#[derive(Default)]
struct Counts {
    steps: usize,
    parallel_groups: usize,
    max_parallelism: usize,
    degradation_chains: usize,
    depth: usize,
    complexity: usize,
}

fn count(w: &Workflow, level: usize, c: &mut Counts) {
    c.depth = c.depth.max(level);
    let extra = w.stages.len().saturating_sub(1);
    match w.kind.spec().shape {
        ShapeRole::Group => {
            c.parallel_groups += 1;
            c.max_parallelism = c.max_parallelism.max(w.stages.len());
            c.complexity += extra;
        }
        ShapeRole::Alternatives => {
            c.degradation_chains += 1;
            c.complexity += 2 * extra;
        }
        ShapeRole::Chain => {}
    }
    if level > 1 {
        c.complexity += 1;
    }
    for stage in &w.stages {
        match stage {
            Stage::Step(_) => {
                c.steps += 1;
                c.complexity += 1;
            }
            Stage::Nested(nested) => count(nested, level + 1, c),
        }
    }
}

/// `Shape::new(…)` for `w`.
pub(super) fn shape(w: &Workflow, p: &TokenStream) -> TokenStream {
    let mut c = Counts::default();
    count(w, 1, &mut c);
    let phases = w.phases.iter().map(|ph| ph.name.to_string());
    let Counts {
        steps,
        parallel_groups,
        max_parallelism,
        degradation_chains,
        depth,
        complexity,
    } = c;
    quote! {
        #p::Shape::new(&[#(#phases),*], #steps, #parallel_groups, #max_parallelism, #degradation_chains, #depth, #complexity)
    }
}
