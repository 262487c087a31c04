//! The reference service's OpenAPI document is a golden file
//! (`service/openapi.json`): any change to the API shows up as a diff in
//! review. `UPDATE_GOLDEN=1 cargo test -p ferrapi-service --test e2e golden`
//! rewrites it.

use crate::BIN;
use std::process::Command;

#[test]
fn openapi_document_matches_the_golden_file() {
    let out = Command::new(BIN)
        .arg("openapi")
        .env("LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    if golden != generated {
        let diff_line = golden
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(golden.lines().count().min(generated.lines().count()));
        panic!(
            "the OpenAPI document drifted from service/openapi.json (first difference at line {}).\n\
             If the change is intended, run `UPDATE_GOLDEN=1 cargo test -p ferrapi-service --test e2e golden` \
             and commit service/openapi.json with it.",
            diff_line + 1
        );
    }
}
