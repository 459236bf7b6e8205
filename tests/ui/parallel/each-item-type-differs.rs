use ndf::prelude::*;

#[pattern]
async fn list_hosts(region: String) -> Vec<u16> {
    vec![region.len() as u16]
}

#[pattern]
async fn check_service(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _flow = sequential!(name = "ops.region_checks";
        list_hosts => parallel!(max_concurrent = 8; each check_service));
}
