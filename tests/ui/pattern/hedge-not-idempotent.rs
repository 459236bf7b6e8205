use ndf::prelude::*;

#[pattern(hedge(after = "50ms"))]
async fn charge_card(amount: u32) -> Result<u32, StepError> {
    Ok(amount)
}

#[pattern(idempotent, hedge(after = "soon", max = 1))]
async fn read_balance(account: u32) -> u32 {
    account
}

fn main() {}
