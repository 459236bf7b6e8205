use ndf::prelude::*;

#[pattern]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {
    let _etl = sequential!(name = "DataProcessing"; validate_input);
}
