//! Compiled components: a package's component is compiled (or its
//! `.cwasm` deserialized) at most once per file version per host.

use super::compile_cache;
use super::engine::WasmRuntime;
use super::store::GuestState;
use super::WasmSettings;
use crate::artifact::package::Package;
use crate::disk::FileIdentity;
use crate::error::{Error, Result, Status};
use std::path::{Path, PathBuf};
use wasmtime::component::{Component, InstancePre};

/// Identifies a component's bytes: bytes held in memory (verified, or from
/// an archive), by their digest; otherwise the version of the file they
/// were read from.
/// The canonical path says which entry a newer version replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    path: PathBuf,
    content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Content {
    Verified { digest: [u8; 32] },
    File(FileIdentity),
}

impl CacheKey {
    fn of(package: &Package, path: &Path, bytes: &[u8]) -> Result<CacheKey> {
        let content = if package.is_in_memory() {
            use sha2::Digest;
            Content::Verified { digest: sha2::Sha256::digest(bytes).into() }
        } else {
            Content::File(FileIdentity::of(path)?)
        };
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(CacheKey { path, content })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl WasmRuntime {
    /// The pre-linked component of a package, compiled at most once per
    /// file version (or verified content) per host.
    pub(super) fn instance_pre(&self, package: &Package, settings: &WasmSettings, diagnostics: &mut Vec<String>) -> Result<InstancePre<GuestState>> {
        let wasm = package.manifest().wasm.as_ref().expect("a WASM package has a [wasm] table");
        let component_path = package.dir().join(&wasm.component);
        let bytes = package.file(&wasm.component)?;
        let key = CacheKey::of(package, &component_path, &bytes)?;
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pre) = compiled.get(&key) {
            return Ok(pre.clone());
        }
        let component = match self.precompiled(package, settings, diagnostics)? {
            Some(component) => component,
            None => self.compile(&component_path, &bytes, diagnostics)?,
        };
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            Error::at(
                Status::InvalidComponent,
                &component_path,
                format!("the component needs imports this sandbox does not grant: {e:#}"),
            )
        })?;
        compiled.retain(|cached, _| cached.path() != key.path());
        compiled.insert(key, pre.clone());
        Ok(pre)
    }

    /// The component compiled: read from the compile cache when it holds
    /// it, otherwise compiled now (and kept there).
    fn compile(&self, path: &Path, bytes: &[u8], diagnostics: &mut Vec<String>) -> Result<Component> {
        let cache = match &self.compile_cache {
            Some(Ok(cache)) => Some(cache),
            Some(Err(problem)) => {
                diagnostics.push(problem.clone());
                None
            }
            None => None,
        };
        let entry = cache.map(|cache| (cache, compile_cache::entry_name(&self.engine, bytes)));
        if let Some(component) = entry.as_ref().and_then(|(cache, name)| cache.load(&self.engine, name, diagnostics)) {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            Error::at(Status::InvalidComponent, path, format!("not a valid WebAssembly component: {e:#}"))
        })?;
        if let Some((cache, name)) = &entry {
            cache.store(name, &component, diagnostics);
        }
        Ok(component)
    }

    /// The package's `.cwasm`, when there is one, it may be trusted, and it
    /// deserializes; otherwise `None` (with a diagnostic saying why, if a
    /// file was there).
    fn precompiled(&self, package: &Package, settings: &WasmSettings, diagnostics: &mut Vec<String>) -> Result<Option<Component>> {
        let wasm = package.manifest().wasm.as_ref().expect("a WASM package has a [wasm] table");
        let name = match &wasm.precompiled {
            Some(name) => name.clone(),
            None => {
                let stem = Path::new(&wasm.component).with_extension("cwasm");
                let stem = stem.to_string_lossy().into_owned();
                if !package.has_file(&stem) {
                    return Ok(None);
                }
                stem
            }
        };
        if !package.is_verified() && !settings.allow_unsigned_precompiled {
            diagnostics.push(format!(
                "{name}: not loaded: precompiled code runs outside the sandbox, and the package is not signed \
                 (allow unsigned precompiled code on the builder to use it); compiled the component instead"
            ));
            return Ok(None);
        }
        let bytes = match package.file(&name) {
            Ok(bytes) => bytes,
            Err(e) => {
                diagnostics.push(format!("{name}: {}; compiled the component instead", e.message()));
                return Ok(None);
            }
        };
        // SAFETY: the bytes are trusted native code by the check above (a
        // verified signature covers them, or the host opted in); wasmtime
        // checks that they were made by this engine version and settings.
        match unsafe { Component::deserialize(&self.engine, &bytes) } {
            Ok(component) => Ok(Some(component)),
            Err(e) => {
                diagnostics.push(format!("{name}: stale or corrupted ({e:#}); compiled the component instead"));
                Ok(None)
            }
        }
    }
}

/// Compiles a component to a `.cwasm` for this library's engine settings.
pub fn precompile(component: &[u8]) -> Result<Vec<u8>> {
    super::engine::new_engine()?
        .precompile_component(component)
        .map_err(|e| Error::new(Status::InvalidComponent, format!("cannot precompile the component: {e:#}")))
}
