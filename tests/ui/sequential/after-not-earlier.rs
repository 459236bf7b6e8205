use ndf::prelude::*;

#[pattern]
async fn validate_input(raw: String) -> String {
    raw
}

#[pattern]
async fn audit_log(row: String) -> String {
    row
}

#[pattern(after = [audit_log])]
async fn store_results(row: String) -> String {
    row
}

fn main() {
    let _etl = sequential!(name = "data_processing.etl";
        validate_input => store_results => audit_log);
}
