use ndf::prelude::*;

#[pattern]
async fn validate_input(raw: String) -> String {
    raw
}

fn main() {
    let _etl = sequential!(nme = "data_processing.etl"; validate_input);
}
