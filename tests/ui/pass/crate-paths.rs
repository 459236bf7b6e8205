use ndf::prelude::*;

mod steps {
    use ndf::prelude::*;

    pub mod validation {
        use ndf::prelude::*;

        #[derive(Clone)]
        pub struct Raw(pub String);

        #[pattern(domain = "data_processing", retry(max = 3, initial = "50ms", multiplier = 3.0, max_delay = "2s", jitter = false))]
        pub async fn validate_input(raw: Raw) -> Result<String, StepError> {
            Ok(raw.0)
        }
    }

    #[pattern(after = [validation::validate_input], permissions = ["write"], memory = "64MB", confidence_threshold = 0.9)]
    pub async fn store_results(row: String) -> usize {
        row.len()
    }

    #[pattern(fallback = store_results, compensate = crate::steps::undo_store)]
    pub async fn store_fast(row: String) -> Result<usize, std::io::Error> {
        Ok(row.len())
    }

    #[pattern]
    pub async fn undo_store(written: usize) {
        let _ = written;
    }
}

fn main() {
    let _ = sequential!(name = "data_processing.paths";
        crate::steps::validation::validate_input => steps::store_results);
    let _ = sequential!(name = "data_processing.fast_paths";
        self::steps::validation::validate_input => crate::steps::store_fast);
}
