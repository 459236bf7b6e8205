// A workflow registered for the queue stores each stage's output: a stage
// whose output serde cannot write is a compile error naming the stage.
use ndf::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

// Holds a connection: not something a checkpoint can store.
#[derive(Debug, Clone)]
struct Session {
    id: u64,
}

#[pattern]
async fn open_session(o: Order) -> Session {
    Session { id: o.id }
}

#[pattern]
async fn close(s: Session) -> u64 {
    s.id
}

fn main() {
    let ndf = Ndf::builder().build().unwrap();
    // `Ndf::run` and `register` accept it: nothing is stored.
    ndf.register(sequential!(name = "orders.session"; open_session => close))
        .unwrap();
    ndf.register_durable(sequential!(name = "orders.durable_session"; open_session => close))
        .unwrap();
}
