// Every workflow macro nests in every other, and `after` sees through nesting.
use ndf::prelude::*;

#[pattern]
async fn plan(n: u32) -> u32 {
    n
}

#[pattern(after = [plan])]
async fn migrate_a(n: u32) -> u32 {
    n
}

#[pattern(after = [plan])]
async fn migrate_b(n: u32) -> u32 {
    n
}

#[pattern(after = [migrate_a, migrate_b])]
async fn merge(parts: (u32, u32)) -> u32 {
    parts.0 + parts.1
}

#[pattern]
async fn fast(n: u32) -> u32 {
    n
}

#[pattern]
async fn thorough(n: u32) -> u32 {
    n
}

fn main() {
    let flow = orchestrate!(name = "deployment.composed", rollback = phase_level;
        planning: sequential!(plan => degrade!(fast | thorough));
        migrating: sequential!(parallel!(max_concurrent = 2, resource_threshold = 0.7; migrate_a, migrate_b) => merge),
            success(min_success = 0.5), rollback_if(error_rate > 0.2, slowdown > 0.5);
        checking: parallel!(min_success = 1; fast, degrade!(sequential!(thorough => fast) | fast)));
    fn shape<W: Workflow>(_: &W) -> ndf::Shape {
        W::SHAPE
    }
    let s = shape(&flow);
    assert_eq!(s.phases, ["planning", "migrating", "checking"]);
    let _unnamed = parallel!(sequential!(plan => migrate_a), orchestrate!(a: sequential!(plan); b: sequential!(migrate_b)));
}
