use ndf::prelude::*;

#[pattern(timeout = "500ms")]
async fn validate(order: u32) -> u32 {
    order
}

#[pattern(timeout = "1s", retry(max = 1, initial = "100ms", jitter = false))]
async fn charge(order: u32) -> Result<u32, StepError> {
    Ok(order)
}

fn main() {
    // 0.5 s + (2 × 1 s + 0.1 s) = 2.6 s: within 3 s.
    let _checkout = sequential!(name = "shop.checkout", deadline = "3s"; validate => charge);
}
