use ndf::prelude::*;

#[pattern]
async fn parse(text: String) -> u32 {
    text.len() as u32
}

#[pattern]
async fn double(x: u32) -> u32 {
    x * 2
}

#[pattern]
async fn shout(s: String) -> String {
    s.to_uppercase()
}

fn main() {
    let _flow = sequential!(name = "math.nested"; sequential!(parse => double) => shout);
}
