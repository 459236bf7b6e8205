use ndf::prelude::*;

#[pattern(timout = "30s")]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {}
