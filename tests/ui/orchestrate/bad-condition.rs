use ndf::prelude::*;

#[pattern]
async fn system_analysis(plan: String) -> String {
    plan
}

fn main() {
    let _migration = orchestrate!(name = "deployment.enterprise_migration", rollback = everything;
        assessment: sequential!(system_analysis), rollback_if(error_rate > 1.5, latency > 2.0);
        validation: sequential!(system_analysis), success(min_success = 2));
}
