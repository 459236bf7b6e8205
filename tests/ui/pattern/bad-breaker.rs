use ndf::prelude::*;

#[pattern(breaker(window = 0, failure_ratio = 1.5, probes = 0))]
async fn charge_card(amount: u32) -> u32 {
    amount
}

#[pattern(breaker(window = "5ms", break_for = "0s"))]
async fn read_balance(account: u32) -> u32 {
    account
}

#[pattern(breaker(window = 50, min_calls = 200))]
async fn ship(order: u32) -> u32 {
    order
}

#[pattern(breaker(window = true))]
async fn notify(order: u32) -> u32 {
    order
}

#[pattern(breaker(min_call = 5))]
async fn restock(order: u32) -> u32 {
    order
}

#[pattern(breaker)]
async fn refund(order: u32) -> u32 {
    order
}

#[pattern(confidence_threshold = 0.9, breaker(window = "30s"))]
async fn audit(order: u32) -> u32 {
    order
}

fn main() {}
