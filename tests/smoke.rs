use ndf::prelude::*;

#[derive(Clone, Debug)]
struct Raw(String);
#[derive(Debug)]
struct Valid(String);

#[pattern(domain = "data_processing", timeout = "30s", retries = 3)]
async fn validate_input(raw: Raw) -> Result<Valid, StepError> {
    if raw.0.is_empty() {
        return Err(StepError::msg("empty"));
    }
    Ok(Valid(raw.0))
}

#[pattern]
async fn count(v: Valid, ctx: &PatternContext) -> usize {
    let _ = ctx;
    v.0.len()
}

#[tokio::test]
async fn smoke() {
    let ndf = Ndf::builder().build().unwrap();
    let flow = sequential!(name = "data_processing.smoke"; validate_input => count);
    let n = ndf
        .run(&flow, Raw("abc".into()), &PatternContext::new("d"))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let unnamed = sequential!(validate_input => sequential!(count));
    assert_eq!(unnamed.name(), "validate_input>count");
    assert_eq!(flow.name(), "data_processing.smoke");
}
