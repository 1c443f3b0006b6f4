//! The host interfaces a plugin imports (`#[host_interface]`), read from
//! its library before anything is bound: the `Bookkeeper` fixture imports
//! `Ledger`, and calls that need it fail cleanly while nothing is bound.

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::plugin::HostImport;
use fidius_host::{HostBuilder, LoadOptions, Status};
use std::path::Path;
use std::sync::Arc;

fn interface(name: &str) -> fidius_host::Interface {
    file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name)).unwrap()
}

#[test]
fn a_library_lists_the_host_interfaces_it_imports() {
    let host = HostBuilder::new().build().unwrap();
    let plugin = host.load_path(&fixture("hostcall/libhostcall_plugin.so"), None).unwrap();
    let ledger = interface("ledger.toml");
    assert_eq!(
        plugin.host_imports(),
        &[HostImport { interface_name: "Ledger".into(), interface_version: 3, interface_hash: ledger.hash() }]
    );
    // A library that imports host interfaces is discovered like any other.
    let found = host_for(&fixture("hostcall")).discover();
    assert_eq!(found.plugins.len(), 1, "{:?}", found.skipped);
}

#[test]
fn plugins_without_host_calls_import_nothing() {
    let calc = host_for(&fixture("plugins")).load("BasicCalculator").unwrap();
    assert!(calc.host_imports().is_empty());
}

#[test]
fn a_call_that_needs_an_unbound_host_interface_fails_and_the_plugin_stays_usable() {
    let options = LoadOptions::with_interface(Arc::new(interface("bookkeeper.toml")));
    let plugin = HostBuilder::new().build().unwrap().load_path_with(&fixture("hostcall/libhostcall_plugin.so"), None, &options).unwrap();
    for _ in 0..2 {
        let e = plugin.call_json("record", r#"["hello", 3]"#).unwrap_err();
        assert_eq!(e.status(), Status::PluginError, "{e}");
        let error = e.plugin_error().unwrap();
        assert_eq!(error.code(), "NOT_BOUND", "{e}");
        assert!(error.message().contains("Ledger"), "{e}");
    }
}
