use ndf::prelude::*;

struct Pipeline;

impl Pipeline {
    #[pattern]
    async fn validate_input(&self, raw: String) -> String {
        raw
    }
}

fn main() {}
