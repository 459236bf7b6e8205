use ndf::prelude::*;

#[pattern(timeout = "250ms", retries = 2)]
async fn square(x: u64) -> u64 {
    x * x
}

type IoResult<T> = std::io::Result<T>;

#[pattern]
async fn read_len(x: u64) -> IoResult<usize> {
    Ok(x as usize)
}

fn main() {
    // The fn stays callable as written.
    let _future = square(3);
    let _ = sequential!(name = "math.squares"; square => read_len);
}
