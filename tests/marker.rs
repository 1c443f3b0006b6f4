//! Whether library code ran: the marker fixture's constructor appends
//! "loaded" and its destructor "unloaded" to $FIDIUS_TEST_MARKER. One test
//! function, because the environment variable is process-wide.

mod common;

use common::*;
use fidius_host::{HostBuilder, Status, TrustedKey};

fn marker_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

#[test]
fn library_code_runs_only_when_allowed_and_unloads_with_the_last_handle() {
    let dir = temp_dir("marker");
    let marker = dir.join("marker.txt");
    std::env::set_var("FIDIUS_TEST_MARKER", &marker);

    // Signed by a key the host does not trust: never mapped, constructor never runs.
    let trusted = TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    let host = HostBuilder::new().search_path(fixture("signed")).require_signature(true).trusted_key(trusted).build().unwrap();
    let err = host.load_path(&fixture("signed/libmarker.so"), None).unwrap_err();
    assert_eq!(err.status(), Status::SignatureInvalid);
    let found = host.discover();
    assert!(found.skipped.iter().any(|s| s.path.ends_with("libmarker.so") && s.error.status() == Status::SignatureInvalid));
    assert!(host.load("Crafted").is_err());
    assert_eq!(marker_lines(&marker), Vec::<String>::new(), "a rejected library must not run any code");

    // Unsigned loading runs it once; two handles share the mapping; the last one unloads it.
    let lib_dir = temp_dir("marker-lib");
    copy_into(&lib_dir, &fixture("crafted/libmarker.so"));
    let host = host_for(&lib_dir);
    let first = host.load("Crafted").unwrap();
    let second = host.load("Crafted").unwrap();
    assert_eq!(marker_lines(&marker), vec!["loaded"]);
    drop(host);
    drop(first);
    assert_eq!(marker_lines(&marker), vec!["loaded"], "still used by the second handle");
    let out = second.call_raw(0, &encode(&(5i64, 6i64))).unwrap();
    drop(second);
    assert_eq!(marker_lines(&marker), vec!["loaded"], "still used by an outstanding output");
    assert_eq!(decode::<i64>(out.as_slice()), 11);
    drop(out);
    assert_eq!(marker_lines(&marker), vec!["loaded", "unloaded"]);
}
