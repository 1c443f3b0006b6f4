//! WebAssembly component plugins (wasmtime, component model, WASI p2).
//!
//! One engine per host (`engine`), started at its first WASM load, with a
//! cache of compiled components (`cache`: a package loaded twice is
//! compiled once) and an epoch ticker that enforces per-call deadlines.
//! By default each plugin handle owns one live instance (`instance`);
//! calls on it are serialized by a mutex, and guest state persists between
//! calls (`backend`). A trap (or a deadline, or the memory cap) discards
//! the instance: the next call runs on a fresh one. A plugin loaded with a
//! fresh instance per call keeps no state and takes no lock.
//!
//! Without the `wasm` feature only the settings remain, and loads answer
//! UNSUPPORTED.

mod settings;
pub use settings::*;

#[cfg(feature = "wasm")]
mod backend;
#[cfg(feature = "wasm")]
mod cache;
#[cfg(feature = "wasm")]
mod compile_cache;
#[cfg(feature = "wasm")]
mod egress;
#[cfg(feature = "wasm")]
mod engine;
#[cfg(feature = "wasm")]
mod host_call;
#[cfg(feature = "wasm")]
mod instance;
#[cfg(feature = "wasm")]
mod name_lookup;
#[cfg(feature = "wasm")]
mod replay;
#[cfg(feature = "wasm")]
mod sandbox;
#[cfg(feature = "wasm")]
mod store;
#[cfg(feature = "wasm")]
mod stream;
#[cfg(feature = "wasm")]
mod values;
#[cfg(feature = "wasm")]
mod waits;

#[cfg(feature = "wasm")]
use sandbox::Sandbox;

/// Whether this build has the runtime (Cargo feature `wasm`).
pub const BUILT_IN: bool = cfg!(feature = "wasm");

use super::PackageLoad;
use crate::error::Result;
use crate::plugin::Plugin;

/// The WASM runtime of one host.
#[derive(Default)]
pub struct WasmLoader {
    /// The engine, started at the first WASM load.
    #[cfg(feature = "wasm")]
    engine: std::sync::OnceLock<Result<engine::WasmRuntime>>,
}

#[cfg(feature = "wasm")]
impl WasmLoader {
    /// Loads the WASM plugin of a package; it needs an interface (the
    /// export's name, the methods, the hash to check).
    pub fn load(&self, load: &PackageLoad, settings: &WasmSettings, overrides: &WasmOverrides) -> Result<Plugin> {
        let interface =
            load.require_interface("loading a WASM plugin needs an interface (its export name, hash and methods)")?;
        let runtime = self
            .engine
            .get_or_init(|| engine::WasmRuntime::new(settings.instance_pool, settings.compile_cache.as_ref()))
            .as_ref()
            .map_err(Clone::clone)?;
        let plugin_settings = WasmPluginSettings::resolve(settings, overrides, load.call_deadline);
        runtime.load(load, interface, settings, plugin_settings)
    }
}

#[cfg(not(feature = "wasm"))]
impl WasmLoader {
    /// This build has no WASM runtime.
    pub fn load(&self, load: &PackageLoad, _settings: &WasmSettings, _overrides: &WasmOverrides) -> Result<Plugin> {
        Err(unsupported(load.package.dir()))
    }
}

/// Checks (creating it when missing) a compile cache directory: it must
/// belong to this user and be writable by nobody else.
#[cfg(feature = "wasm")]
pub fn open_compile_cache(cache: &CompileCacheDir) -> Result<()> {
    compile_cache::CompileCache::open(&cache.dir, cache.max_bytes).map(drop)
}

/// Without the runtime there is nothing to cache: the setting is kept, unused.
#[cfg(not(feature = "wasm"))]
pub fn open_compile_cache(_cache: &CompileCacheDir) -> Result<()> {
    Ok(())
}

/// Compiles a component to a `.cwasm` for this library's engine settings.
#[cfg(feature = "wasm")]
pub fn precompile(component: &[u8]) -> Result<Vec<u8>> {
    cache::precompile(component)
}

/// This build has no WASM runtime.
#[cfg(not(feature = "wasm"))]
pub fn precompile(_component: &[u8]) -> Result<Vec<u8>> {
    Err(unsupported(std::path::Path::new("")))
}

#[cfg(not(feature = "wasm"))]
fn unsupported(path: &std::path::Path) -> crate::Error {
    let message = "this build has no WASM support (feature `wasm`)";
    if path.as_os_str().is_empty() {
        crate::Error::new(crate::Status::Unsupported, message)
    } else {
        crate::Error::at(crate::Status::Unsupported, path, message)
    }
}
