//! The runtimes that execute plugins, one folder each, each behind
//! [`crate::plugin::PluginBackend`].

pub mod cdylib;
#[cfg(feature = "wasm")]
pub mod wasm;
#[cfg(feature = "python")]
pub mod python;
