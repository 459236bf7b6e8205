use ndf::prelude::*;

struct Host(String);

#[pattern]
async fn check_database(host: Host) -> bool {
    !host.0.is_empty()
}

#[pattern]
async fn check_api(host: Host) -> bool {
    !host.0.is_empty()
}

fn main() {
    let _health = parallel!(name = "ops.service_health_checks"; check_database, check_api);
}
