use ndf::prelude::*;

#[pattern]
fn validate_input(raw: String) -> Result<String, StepError> {
    Ok(raw)
}

#[pattern]
async fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[pattern]
async fn store(n: usize) -> usize {
    n
}

fn main() {
    let _flow = sequential!(name = "text.count"; validate_input => count_words => store);
}
