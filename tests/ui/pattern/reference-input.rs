use ndf::prelude::*;

#[pattern]
async fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

fn main() {}
