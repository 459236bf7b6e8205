use ndf::prelude::*;

#[pattern]
async fn system_analysis(plan: String) -> String {
    plan
}

fn main() {
    let _migration = orchestrate!(rolback = phase_level;
        assessment: sequential!(system_analysis);
        validation: sequential!(system_analysis));
}
