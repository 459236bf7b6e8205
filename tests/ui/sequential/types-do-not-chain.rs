use ndf::prelude::*;

struct RawRecord;
struct ValidRecord;
struct Row;

#[pattern]
async fn validate_input(raw: RawRecord) -> ValidRecord {
    let _ = raw;
    ValidRecord
}

#[pattern]
async fn store_results(row: Row) {
    let _ = row;
}

fn main() {
    let _etl = sequential!(name = "data_processing.etl"; validate_input => store_results);
}
