use ndf::prelude::*;

// Every mistake is reported at once, each on its own token.
#[pattern(timeout = "soon", memory = "lots", confidence_threshold = -0.5, domian = "ops", name = 7)]
async fn check_database(host: String) -> String {
    host
}

fn main() {}
