use ndf::prelude::*;

#[pattern]
async fn basic_analysis(data: String) -> usize {
    data.len()
}

#[pattern(fallback = basic_analysis)]
async fn deep_analysis(data: String) -> Result<String, StepError> {
    Ok(data)
}

fn main() {}
