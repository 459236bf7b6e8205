// A step fn whose error is written `StepError` returns ndf's `StepError`:
// a crate's own type of that name is written by its path
// (`crate::StepError`), and is then converted as any other error type.
use ndf::pattern;

#[derive(Debug)]
pub struct StepError;

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("lookup failed")
    }
}

#[pattern]
async fn lookup(id: u64) -> Result<u64, StepError> {
    Ok(id)
}

#[pattern]
async fn by_path(id: u64) -> Result<u64, crate::StepError> {
    Ok(id)
}

fn main() {}
