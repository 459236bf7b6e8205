use ndf::prelude::*;

struct Reservation {
    id: u64,
}

#[pattern]
async fn release_seats(reservation: Reservation) {
    let _ = reservation.id;
}

#[pattern(compensate = release_seats)]
async fn reserve_seats(count: u32) -> Reservation {
    Reservation { id: u64::from(count) }
}

fn main() {}
