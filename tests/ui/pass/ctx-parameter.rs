use ndf::prelude::*;

#[pattern]
async fn tag(record: String, ctx: &PatternContext) -> String {
    format!("{}:{record}", ctx.domain())
}

#[pattern]
async fn region(ctx: &PatternContext) -> String {
    ctx.attribute_value("region").unwrap_or("none").to_owned()
}

fn main() {
    let _ = sequential!(name = "ops.tagging"; region => tag);
}
