use ndf::prelude::*;

#[pattern]
async fn parse(text: String) -> Result<u32, StepError> {
    Ok(text.trim().parse()?)
}

#[pattern]
async fn double(x: u32) -> u32 {
    x * 2
}

#[pattern]
async fn describe(x: u32) -> String {
    format!("{x}")
}

fn main() {
    let flow = sequential!(name = "math.nested";
        parse => sequential!(double => sequential!(double)) => describe);
    let _: &dyn Fn() -> &'static str = &|| flow.name();
    let unnamed = sequential!(parse => sequential!(double => double) => describe);
    assert_eq!(unnamed.name(), "parse>double>double>describe");
    fn assert_workflow<W: Workflow<Input = String, Output = String>>(_: &W) {}
    assert_workflow(&flow);
    assert_workflow(&unnamed);
}
