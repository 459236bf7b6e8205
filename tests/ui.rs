//! Compile-time checks: each file under `tests/ui/<macro>/` holds one mistake
//! and the `.stderr` the user sees; `tests/ui/pass/` holds what must compile.
//! Regenerate the `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`
//! and read every diff as a user would.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/pattern/*.rs");
    t.compile_fail("tests/ui/sequential/*.rs");
    t.compile_fail("tests/ui/parallel/*.rs");
    t.compile_fail("tests/ui/degrade/*.rs");
    t.compile_fail("tests/ui/orchestrate/*.rs");
    t.compile_fail("tests/ui/deadline/*.rs");
    t.compile_fail("tests/ui/fleet/*.rs");
}
