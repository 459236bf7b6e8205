use ndf::prelude::*;

#[pattern]
async fn send_notifications(count: usize) {
    let _ = count;
}

#[pattern]
async fn heartbeat() {}

fn main() {
    let flow = sequential!(name = "ops.notify"; heartbeat => sequential!(send_count) => send_notifications);
    fn unit_in_out<W: Workflow<Input = (), Output = ()>>(_: &W) {}
    unit_in_out(&flow);
}

#[pattern]
async fn send_count() -> usize {
    3
}
