use ndf::prelude::*;

#[pattern]
async fn merge(left: String, ctx: &PatternContext, right: String) -> String {
    let _ = ctx;
    left + &right
}

fn main() {}
