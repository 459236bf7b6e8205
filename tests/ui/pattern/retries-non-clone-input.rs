use ndf::prelude::*;

struct Upload {
    bytes: Vec<u8>,
}

#[pattern(retries = 3)]
async fn store_results(upload: Upload) -> Result<usize, StepError> {
    Ok(upload.bytes.len())
}

fn main() {}
