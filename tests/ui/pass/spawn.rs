use ndf::prelude::*;

#[pattern]
async fn crunch(x: u64) -> u64 {
    (0..x).sum()
}

fn main() {
    let _ = parallel!(name = "math.crunch", spawn = true, max_concurrent = 2; crunch, sequential!(crunch => crunch));
}
