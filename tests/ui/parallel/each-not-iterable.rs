use ndf::prelude::*;

#[pattern]
async fn count_hosts(region: String) -> usize {
    region.len()
}

#[pattern]
async fn check_service(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _flow = sequential!(name = "ops.region_checks";
        count_hosts => parallel!(each check_service));
}
