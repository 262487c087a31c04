//! Compile errors for handlers that cannot be handlers: each names the
//! offending parameter (or says what is wrong), not a wall of trait bounds.

#[test]
fn handler_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
