//! The runtimes that execute plugins, one folder each, each behind
//! [`crate::plugin::PluginBackend`]. Native libraries are mapped by the host
//! and handed to `cdylib`; package directories reach their runtime only
//! through [`Runtimes::load_package`], the one place that knows which
//! runtimes exist.

pub mod cdylib;
pub mod python;
pub mod wasm;
pub mod worker;

use crate::artifact::package::{Manifest, Package};
use crate::error::{Error, Result, Status};
use crate::host_functions::HostBindings;
use crate::interface::Interface;
use crate::plugin_config::PluginConfig;
use crate::plugin::{BufferStrategy, Plugin, PluginDescription, PluginInfo, RuntimeKind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Host-wide settings of the package runtimes.
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    pub wasm: wasm::WasmSettings,
    pub python: python::PythonSettings,
}

/// One load's overrides of those settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOverrides {
    pub wasm: wasm::WasmOverrides,
    pub python: python::PythonOverrides,
}

/// What every package load gets, whatever its runtime.
pub struct PackageLoad<'a> {
    /// The package, read (and verified, when signatures are required).
    pub package: &'a Package,
    /// The configuration to construct the plugin with, checked against the
    /// interface's config type.
    pub config: Option<&'a PluginConfig>,
    /// The interface the load asked for.
    pub interface: Option<&'a Arc<Interface>>,
    /// The host functions the plugin may call.
    pub host_bindings: &'a HostBindings,
    /// Largest output a call may return.
    pub max_output: usize,
    /// The host's deadline for calls in every runtime.
    pub call_deadline: Option<Duration>,
}

impl PackageLoad<'_> {
    /// The interface, which this runtime cannot load a package without.
    pub fn require_interface(&self, why: &str) -> Result<&Arc<Interface>> {
        self.interface.ok_or_else(|| Error::at(Status::NoInterface, self.package.dir(), why))
    }
}

/// What a package plugin says of itself: the manifest's name and interface
/// version, the interface's name and method count, and what its runtime
/// found in it (the hash the plugin reports, the capability bits of the
/// optional methods it has, diagnostics).
pub fn package_description(
    package: &Package,
    interface: &Interface,
    runtime: RuntimeKind,
    interface_hash: u64,
    capabilities: u64,
    diagnostics: Vec<String>,
) -> PluginDescription {
    let manifest = package.manifest();
    PluginDescription {
        info: PluginInfo {
            name: manifest.package.name.clone(),
            interface_name: interface.name().to_string(),
            interface_hash,
            interface_version: manifest.package.interface_version,
            capabilities,
            buffer_strategy: BufferStrategy::PluginAllocated,
            runtime,
            path: package.dir().to_path_buf(),
        },
        method_count: interface.methods().len() as u32,
        method_metadata: Vec::new(),
        trait_metadata: Vec::new(),
        host_imports: Vec::new(),
        diagnostics,
    }
}

/// The package runtimes of one host.
#[derive(Default)]
pub struct Runtimes {
    wasm: wasm::WasmLoader,
    python: python::PythonLoader,
}

impl Runtimes {
    /// Hands a package to the runtime its manifest names.
    pub fn load_package(&self, load: &PackageLoad, settings: &RuntimeSettings, overrides: &RuntimeOverrides) -> Result<Plugin> {
        match package_kind(load.package.dir(), load.package.manifest())? {
            RuntimeKind::Wasm => self.wasm.load(load, &settings.wasm, &overrides.wasm),
            RuntimeKind::Python => self.python.load(load, &settings.python, &overrides.python),
            RuntimeKind::Cdylib => Err(native_package(load.package.dir())),
        }
    }
}

/// The runtime of a package directory, from its manifest. A `"rust"`
/// package is not loadable as a directory: its plugin is its library file.
pub fn package_kind(dir: &Path, manifest: &Manifest) -> Result<RuntimeKind> {
    match manifest.runtime().map_err(|e| Error::at(Status::InvalidManifest, dir, e))? {
        RuntimeKind::Cdylib => Err(native_package(dir)),
        kind => Ok(kind),
    }
}

fn native_package(dir: &Path) -> Error {
    Error::at(Status::InvalidManifest, dir, "a \"rust\" package holds no loadable plugin: load its library file")
}

/// Compiles a WebAssembly component ahead of time for this library's
/// engine (UNSUPPORTED without WASM).
pub fn precompile_component(component: &[u8]) -> Result<Vec<u8>> {
    wasm::precompile(component)
}

/// Whether this build has the runtime of `kind`.
pub fn built_in(kind: RuntimeKind) -> bool {
    match kind {
        RuntimeKind::Cdylib => true,
        RuntimeKind::Wasm => wasm::BUILT_IN,
        RuntimeKind::Python => python::BUILT_IN,
    }
}
