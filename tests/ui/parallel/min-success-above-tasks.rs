use ndf::prelude::*;

#[pattern]
async fn check_database(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _health = parallel!(min_success = 3; check_database, check_database);
}
