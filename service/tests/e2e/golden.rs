//! The reference service's documents are golden files: the OpenAPI
//! document (`service/openapi.json`) and the AsyncAPI document of its
//! WebSocket route and bus events (`service/asyncapi.json`). Any change to
//! the API shows up as a diff in review.
//! `UPDATE_GOLDEN=1 cargo test -p ferrapi-service --test e2e golden`
//! rewrites them.

#[test]
fn openapi_document_matches_the_golden_file() {
    check_golden("openapi", "openapi.json", "OpenAPI");
}

#[test]
fn asyncapi_document_matches_the_golden_file() {
    check_golden("asyncapi", "asyncapi.json", "AsyncAPI");
}

/// The bus subjects are prefixed with `SHARED_NAMESPACE`: the document
/// names the subject on the wire.
#[test]
fn asyncapi_names_the_namespaced_subject() {
    let out = crate::print_document("asyncapi", &[("SHARED_NAMESPACE", "tenant-7")]);
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        doc["channels"]["tenant-7.users"]["address"],
        "tenant-7.users"
    );
    assert_eq!(
        doc["operations"]["send_tenant-7.users"]["channel"]["$ref"],
        "#/channels/tenant-7.users"
    );
    assert!(doc["channels"].get("ferrapi.users").is_none());
}

/// Runs `ferrapi-service <command>` and compares what it prints with
/// `service/<file>` (or rewrites the file with `UPDATE_GOLDEN`).
fn check_golden(command: &str, file: &str, what: &str) {
    let generated = String::from_utf8(crate::print_document(command, &[])).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
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
            "the {what} document drifted from service/{file} (first difference at line {}).\n\
             If the change is intended, run `UPDATE_GOLDEN=1 cargo test -p ferrapi-service --test e2e golden` \
             and commit service/{file} with it.",
            diff_line + 1
        );
    }
}
