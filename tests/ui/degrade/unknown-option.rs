use ndf::prelude::*;

#[pattern]
async fn deep_analysis(data: String) -> usize {
    data.len()
}

#[pattern]
async fn basic_analysis(data: String) -> usize {
    data.len()
}

fn main() {
    let _analysis = degrade!(max_concurrent = 2; deep_analysis | basic_analysis);
}
