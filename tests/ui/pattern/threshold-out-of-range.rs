use ndf::prelude::*;

#[pattern(confidence_threshold = 1.5)]
async fn risk_assessment(plan: String) -> String {
    plan
}

fn main() {}
