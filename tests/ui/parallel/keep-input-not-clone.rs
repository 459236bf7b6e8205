use ndf::prelude::*;

struct Order(u32);

#[pattern]
async fn email(order: Order) -> u32 {
    order.0
}

fn main() {
    // One task takes the input itself: only the kept copy needs `Clone`.
    let _notify = parallel!(keep_input = true; email);
}
