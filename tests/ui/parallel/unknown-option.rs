use ndf::prelude::*;

#[pattern]
async fn check_database(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _health = parallel!(max_concurency = 4; check_database, check_database);
}
