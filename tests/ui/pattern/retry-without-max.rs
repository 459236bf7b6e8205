use ndf::prelude::*;

#[pattern(retry(initial = "50ms", multiplier = 0.5))]
async fn fetch(id: u32) -> u32 {
    id
}

fn main() {}
