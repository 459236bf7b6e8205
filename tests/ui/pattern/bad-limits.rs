use ndf::prelude::*;

#[pattern(rate = "100 per second", concurrency = 0)]
async fn quote(symbol: String) -> String {
    symbol
}

#[pattern(rate = "0/s", queue = 10)]
async fn price(symbol: String) -> String {
    symbol
}

#[pattern(rat = "10/s")]
async fn fetch(symbol: String) -> String {
    symbol
}

fn main() {}
