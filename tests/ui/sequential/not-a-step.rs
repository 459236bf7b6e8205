use ndf::prelude::*;

struct Loader;

#[pattern]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {
    let _etl = sequential!(name = "data_processing.etl"; validate_input => Loader);
}
