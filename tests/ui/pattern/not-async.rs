use ndf::prelude::*;

#[pattern]
fn validate_input(raw: String) -> Result<String, StepError> {
    Ok(raw)
}

fn main() {}
