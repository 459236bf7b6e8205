use ndf::prelude::*;

#[pattern]
async fn deep_analysis(data: String) -> usize {
    data.len()
}

fn main() {
    let _analysis = degrade!(deep_analysis);
}
