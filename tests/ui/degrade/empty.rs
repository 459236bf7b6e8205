use ndf::prelude::*;

fn main() {
    let _analysis = degrade!(name = "analysis.complex";);
}
