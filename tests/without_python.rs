//! A build without the `python` feature: Python packages are reported, not
//! loaded (`make feature-check` runs this with `--no-default-features`).
#![cfg(not(feature = "python"))]

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{LoadOptions, Status};
use std::path::Path;
use std::sync::Arc;

#[test]
fn python_loads_are_unsupported() {
    let interface = file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml")).unwrap();
    let options = LoadOptions::with_interface(Arc::new(interface));
    let host = host_for(&fixture("python"));
    let e = host.load_with("PyCalculator", &options).unwrap_err();
    assert_eq!(e.status(), Status::Unsupported, "{}", e.message());
    assert!(e.message().contains("feature `python`"), "{}", e.message());
    // Discovery still lists the package.
    assert!(host.discover().plugins.iter().any(|p| p.name == "PyCalculator"));
}

#[test]
fn the_build_reports_its_runtimes() {
    use fidius_host::ffi::misc::{fidius_host_feature, fidius_host_features};
    let wasm = if cfg!(feature = "wasm") { fidius_host_feature::Wasm as u32 } else { 0 };
    assert_eq!(unsafe { fidius_host_features() }, wasm);
    assert!(!fidius_host::host::runtime_built_in(fidius_host::RuntimeKind::Python));
}
