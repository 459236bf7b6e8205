use ndf::prelude::*;

#[pattern(memory = "512 megs")]
async fn transform_data(raw: String) -> String {
    raw
}

fn main() {}
