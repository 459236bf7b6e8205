use ndf::prelude::*;

#[pattern]
async fn validate(order: u32) -> u32 {
    order
}

async fn charge(order: u32) -> Result<u32, StepError> {
    Ok(order)
}

fn main() {
    let _checkout = sequential!(name = "shop.checkout"; validate => charge);
}
