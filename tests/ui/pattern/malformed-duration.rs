use ndf::prelude::*;

#[pattern(timeout = "30 seconds")]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {}
