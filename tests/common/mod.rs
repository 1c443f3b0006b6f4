//! Fixture locations for the integration tests. `make fixtures` builds them
//! and `make rust-test` points FIDIUS_TEST_FIXTURES at them.
#![allow(dead_code)]

use fidius_host::{Host, HostBuilder, Isolation, TrustedKey};
use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("FIDIUS_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures"));
    assert!(
        dir.join("plugins/libcalc_plugin.so").is_file(),
        "fixtures missing in {}: run `make fixtures` (or `make rust-test`)",
        dir.display()
    );
    dir
}

pub fn fixture(relative: &str) -> PathBuf {
    fixtures().join(relative)
}

/// The worker executable of isolated plugins (built by `make lib`).
pub fn worker() -> PathBuf {
    let path = fixtures().join("../release/fidius-host-worker");
    assert!(path.is_file(), "{} missing: run `make lib`", path.display());
    path
}

/// Where a plugin runs, for the suites that run in both modes.
pub const MODES: [Isolation; 2] = [Isolation::InProcess, Isolation::Isolated];

/// A builder whose plugins run as `isolation` says.
pub fn builder_in(isolation: Isolation) -> HostBuilder {
    let mut builder = HostBuilder::new();
    builder.isolation(isolation).worker_path(worker());
    builder
}

/// Fails unless `plugin` runs as `isolation` says (an isolated one has a worker).
pub fn assert_runs(plugin: &fidius_host::Plugin, isolation: Isolation) {
    assert_eq!(plugin.worker_usage().is_some(), isolation == Isolation::Isolated, "{isolation:?}");
}

/// A host searching `dir`, its plugins running as `isolation` says.
pub fn host_in(isolation: Isolation, dir: &Path) -> Host {
    builder_in(isolation).search_path(dir).build().unwrap()
}

pub fn host_for(dir: &Path) -> Host {
    HostBuilder::new().search_path(dir).build().unwrap()
}

pub fn signed_host_for(dir: &Path) -> Host {
    let key = TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    HostBuilder::new().search_path(dir).require_signature(true).trusted_key(key).build().unwrap()
}

/// A fresh empty directory under target/.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn copy_into(dir: &Path, file: &Path) -> PathBuf {
    let target = dir.join(file.file_name().unwrap());
    std::fs::copy(file, &target).unwrap();
    target
}

/// The Calculator fixture's method indices.
pub mod calc {
    pub const ADD: u32 = 0;
    pub const GREET: u32 = 1;
    pub const DIVIDE: u32 = 2;
    pub const DESCRIBE: u32 = 3;
    pub const BOOM: u32 = 4;
    pub const REVERSE: u32 = 5;
    pub const PING: u32 = 6;
    pub const MULTIPLY: u32 = 7;
}

/// The Echo (Arena) fixture's method indices.
pub mod echo {
    pub const REPEAT: u32 = 0;
    pub const UPPER: u32 = 1;
    pub const FAIL: u32 = 2;
    pub const BOOM: u32 = 3;
}

pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).unwrap()
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    bincode::deserialize(bytes).unwrap()
}
