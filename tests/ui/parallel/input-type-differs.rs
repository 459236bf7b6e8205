use ndf::prelude::*;

struct Endpoint;

#[pattern]
async fn check_database(host: String) -> bool {
    !host.is_empty()
}

#[pattern]
async fn check_api(endpoint: Endpoint) -> bool {
    let _ = endpoint;
    true
}

fn main() {
    let _health = parallel!(name = "ops.service_health_checks"; check_database, check_api);
}
