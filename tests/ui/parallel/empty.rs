use ndf::prelude::*;

fn main() {
    let _health = parallel!(name = "ops.service_health_checks", max_concurrent = 4;);
}
