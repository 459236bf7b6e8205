use ndf::prelude::*;

#[pattern(timeout = "500ms")]
async fn validate(order: u32) -> u32 {
    order
}

#[pattern]
async fn charge(order: u32) -> u32 {
    order
}

fn main() {
    let _checkout = sequential!(name = "shop.checkout", deadline = "3s"; validate => charge);
}
