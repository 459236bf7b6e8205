use ndf::prelude::*;

fn main() {
    let _migration = orchestrate!(name = "deployment.enterprise_migration";);
}
