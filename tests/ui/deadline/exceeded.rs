use ndf::prelude::*;

#[pattern(timeout = "500ms")]
async fn validate(order: u32) -> u32 {
    order
}

#[pattern(timeout = "1s", retry(max = 2, initial = "100ms", max_delay = "1s", jitter = false))]
async fn charge(order: u32) -> Result<u32, StepError> {
    Ok(order)
}

#[pattern(timeout = "300ms")]
async fn email(order: u32) -> u32 {
    order
}

#[pattern(timeout = "2s")]
async fn sms(order: u32) -> u32 {
    order
}

fn main() {
    // 0.5 s + (3 × 1 s + 0.1 s + 0.2 s) + max(0.3 s, 2 s) = 5.8 s.
    let _checkout = sequential!(name = "shop.checkout", deadline = "3s";
        validate => charge => parallel!(email, sms));
}
