use ndf::prelude::*;

#[pattern]
async fn check_database(host: String) -> bool {
    !host.is_empty()
}

#[pattern(after = [check_database])]
async fn check_api(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _health = parallel!(name = "ops.service_health_checks"; check_database, check_api);
}
