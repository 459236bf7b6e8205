use ndf::prelude::*;

fn main() {
    let _etl = sequential!(name = "data_processing.etl";);
}
