use ndf::prelude::*;

#[derive(Clone)]
struct Reservation {
    id: u64,
}

#[pattern]
async fn release_seats(order_id: String) {
    let _ = order_id;
}

#[pattern(compensate = release_seats)]
async fn reserve_seats(count: u32) -> Reservation {
    Reservation { id: u64::from(count) }
}

fn main() {}
