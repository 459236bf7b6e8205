use ndf::prelude::*;

#[pattern]
async fn deep_analysis(data: String) -> usize {
    data.len()
}

#[pattern]
async fn basic_analysis(data: Vec<u8>) -> usize {
    data.len()
}

fn main() {
    let _analysis = degrade!(name = "analysis.complex"; deep_analysis | basic_analysis);
}
