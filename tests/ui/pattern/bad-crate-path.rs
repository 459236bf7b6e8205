use ndf::prelude::*;

#[pattern(crate = "not a path")]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {}
