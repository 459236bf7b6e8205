use ndf::prelude::*;

#[pattern]
async fn system_analysis(plan: String) -> String {
    plan
}

fn main() {
    let _migration = orchestrate!(name = "deployment.enterprise_migration";
        assessment: sequential!(system_analysis));
}
