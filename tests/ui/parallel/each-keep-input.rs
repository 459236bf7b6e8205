use ndf::prelude::*;

#[pattern]
async fn check_service(host: String) -> bool {
    !host.is_empty()
}

fn main() {
    let _flow = parallel!(keep_input = true; each check_service);
}
