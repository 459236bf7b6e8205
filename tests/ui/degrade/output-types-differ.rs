use ndf::prelude::*;

struct Report;

#[pattern]
async fn deep_analysis(data: String) -> Report {
    let _ = data;
    Report
}

#[pattern]
async fn basic_analysis(data: String) -> usize {
    data.len()
}

fn main() {
    let _analysis = degrade!(name = "analysis.complex"; deep_analysis | basic_analysis);
}
