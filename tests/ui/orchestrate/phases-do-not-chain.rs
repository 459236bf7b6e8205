use ndf::prelude::*;

struct Plan;

#[pattern]
async fn system_analysis(plan: String) -> Plan {
    let _ = plan;
    Plan
}

#[pattern]
async fn data_migration(plan: String) -> String {
    plan
}

fn main() {
    let _migration = orchestrate!(name = "deployment.enterprise_migration";
        assessment: sequential!(system_analysis);
        migration: sequential!(data_migration));
}
