//! How WASM plugins run: the host's settings, a load's overrides, and what
//! one plugin ends up with. Built without the `wasm` feature too, so that
//! the host's builder has one shape in every build.

use crate::egress::EgressPolicy;
use crate::error::{Error, Result, Status};
use std::time::Duration;

/// Size bound of a compile cache set without one: 256 MiB.
pub const DEFAULT_COMPILE_CACHE_BYTES: u64 = 256 << 20;

/// Default cap on a guest's linear memory: 256 MiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

/// Host-wide WASM settings.
#[derive(Debug, Clone)]
pub struct WasmSettings {
    /// Deadline of each call (`Some(None)`: none); `None`: the host's call
    /// deadline.
    pub deadline: Option<Option<Duration>>,
    /// Largest linear memory a guest may grow to, in bytes.
    pub memory_limit: usize,
    /// Capabilities (or prefixes such as `fs`, `env`) no package may have.
    pub denied_capabilities: Vec<String>,
    /// Load `.cwasm` files of packages that no verified signature covers.
    /// They are native code, outside the sandbox.
    pub allow_unsigned_precompiled: bool,
    /// Which outbound HTTP requests guests with the `http` capability may
    /// send; without one, such guests are not loaded.
    pub egress: Option<EgressPolicy>,
    /// Run every call on a fresh instance (no state carried between calls)
    /// instead of one persistent instance per plugin.
    pub fresh_instance_per_call: bool,
    /// Instances come from a pool of this many preallocated slots (0: no
    /// pool, each instance allocates its own memory).
    pub instance_pool: u32,
    /// Where compiled components are kept across processes (none: each
    /// process compiles them).
    pub compile_cache: Option<CompileCacheDir>,
}

/// A persistent compile cache: its directory and its size bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCacheDir {
    pub dir: std::path::PathBuf,
    pub max_bytes: u64,
}

impl Default for WasmSettings {
    fn default() -> Self {
        WasmSettings {
            deadline: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            denied_capabilities: Vec::new(),
            allow_unsigned_precompiled: false,
            egress: None,
            fresh_instance_per_call: false,
            instance_pool: 0,
            compile_cache: None,
        }
    }
}

/// One load's overrides of the host's WASM settings (`None`: the host's).
#[derive(Debug, Clone, Default)]
pub struct WasmOverrides {
    pub deadline: Option<Option<Duration>>,
    pub memory_limit: Option<usize>,
    pub egress: Option<EgressPolicy>,
    pub fresh_instance_per_call: Option<bool>,
}

/// The limits of one plugin's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmLimits {
    /// Longest a call may run; `None` for no limit.
    pub deadline: Option<Duration>,
    /// Largest linear memory a guest may grow to, in bytes.
    pub memory: usize,
}

/// How one WASM plugin runs: the host's settings with a load's overrides.
#[derive(Debug, Clone)]
pub struct WasmPluginSettings {
    pub limits: WasmLimits,
    pub egress: Option<EgressPolicy>,
    pub fresh_instance_per_call: bool,
}

impl WasmPluginSettings {
    /// The host's settings with `overrides` applied; `call_deadline` is the
    /// host's deadline for every runtime.
    pub fn resolve(host: &WasmSettings, overrides: &WasmOverrides, call_deadline: Option<Duration>) -> WasmPluginSettings {
        WasmPluginSettings {
            limits: WasmLimits {
                deadline: overrides.deadline.or(host.deadline).unwrap_or(call_deadline),
                memory: overrides.memory_limit.unwrap_or(host.memory_limit),
            },
            egress: overrides.egress.clone().or_else(|| host.egress.clone()),
            fresh_instance_per_call: overrides.fresh_instance_per_call.unwrap_or(host.fresh_instance_per_call),
        }
    }
}

/// A memory cap must leave room for something.
pub fn check_memory_limit(bytes: usize) -> Result<usize> {
    if bytes == 0 {
        return Err(Error::new(Status::InvalidArgument, "the WASM memory limit must be at least 1 byte"));
    }
    Ok(bytes)
}

/// A denied capability names something.
pub fn check_capability(capability: &str) -> Result<()> {
    if capability.is_empty() {
        return Err(Error::new(Status::InvalidArgument, "argument 'capability' is empty"));
    }
    Ok(())
}
