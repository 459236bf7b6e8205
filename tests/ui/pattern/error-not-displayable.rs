use ndf::prelude::*;

#[derive(Debug)]
struct Opaque;

#[pattern]
async fn charge(amount: u32) -> Result<u32, Opaque> {
    if amount == 0 { Err(Opaque) } else { Ok(amount) }
}

fn main() {}
