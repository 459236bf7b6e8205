use ndf::prelude::*;

#[pattern(timeout = "30s", retries = 2, timeout = "1m")]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {}
