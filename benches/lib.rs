//! Criterion benchmarks of ndf; see `sequential.rs` and `parallel.rs`.
