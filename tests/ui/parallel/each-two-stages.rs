use ndf::prelude::*;

#[pattern]
async fn check_service(host: String) -> bool {
    !host.is_empty()
}

#[pattern]
async fn check_disk(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _flow = parallel!(max_concurrent = 8; each check_service, check_disk);
}
