use ndf::prelude::*;

#[pattern]
async fn system_analysis(plan: String) -> String {
    plan
}

#[pattern(after = [security_audit])]
async fn data_migration(plan: String) -> String {
    plan
}

#[pattern]
async fn security_audit(plan: String) -> String {
    plan
}

fn main() {
    let _migration = orchestrate!(name = "deployment.enterprise_migration";
        assessment: sequential!(system_analysis);
        migration: sequential!(data_migration);
        validation: sequential!(security_audit));
}
