//! `fidius_host_plugin_info_t`: what a plugin says about itself.

use super::{c_string, Handle, Tagged};
use crate::plugin::PluginInfo;
use std::ffi::{c_char, CString};

/// Facts about one plugin, as discovery reports them and as a loaded plugin
/// has them. Always borrowed: from a `fidius_host_discovery_t` (valid until
/// it is freed) or a `fidius_host_plugin_t` (valid until it is freed).
/// Shareable: read-only.
pub struct fidius_host_plugin_info_t {
    _private: [u8; 0],
}

pub(crate) struct InfoData {
    info: PluginInfo,
    name: CString,
    interface_name: CString,
    path: CString,
}

impl Handle for fidius_host_plugin_info_t {
    type Inner = InfoData;
    const MAGIC: u64 = 0x4644_494e_464f_2031;
    const NAME: &'static str = "fidius_host_plugin_info_t";
}

/// Which runtime executes a plugin.
#[repr(u32)]
pub enum fidius_host_runtime {
    /// A native shared library built with the fidius Rust crates.
    Cdylib = 1,
    /// A Python package.
    Python = 2,
    /// A WebAssembly component.
    Wasm = 3,
}

/// The memory behind a `fidius_host_plugin_info_t`, owned by its parent.
pub(crate) fn tagged(info: PluginInfo) -> Tagged<InfoData> {
    Tagged::new::<fidius_host_plugin_info_t>(InfoData {
        name: c_string(&info.name),
        interface_name: c_string(&info.interface_name),
        path: c_string(&info.path.to_string_lossy()),
        info,
    })
}

/// The plugin's name (NUL-terminated UTF-8), or NULL for NULL. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_name(info: *const fidius_host_plugin_info_t) -> *const c_char {
    super::get(info, std::ptr::null(), |i| i.name.as_ptr())
}

/// The interface (trait) name, or NULL for NULL. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_interface_name(info: *const fidius_host_plugin_info_t) -> *const c_char {
    super::get(info, std::ptr::null(), |i| i.interface_name.as_ptr())
}

/// The file (or package directory) the plugin came from, or NULL for NULL.
/// Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_path(info: *const fidius_host_plugin_info_t) -> *const c_char {
    super::get(info, std::ptr::null(), |i| i.path.as_ptr())
}

/// The FNV-1a interface hash, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_interface_hash(info: *const fidius_host_plugin_info_t) -> u64 {
    super::get(info, 0, |i| i.info.interface_hash)
}

/// The interface version, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_interface_version(info: *const fidius_host_plugin_info_t) -> u32 {
    super::get(info, 0, |i| i.info.interface_version)
}

/// The capability bits (bit k: the k-th optional method is implemented), or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_capabilities(info: *const fidius_host_plugin_info_t) -> u64 {
    super::get(info, 0, |i| i.info.capabilities)
}

/// The buffer strategy, a `fidius_host_buffer_strategy` value, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_buffer_strategy(info: *const fidius_host_plugin_info_t) -> u32 {
    super::get(info, 0, |i| i.info.buffer_strategy as u32)
}

/// The runtime, a `fidius_host_runtime` value, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info_runtime(info: *const fidius_host_plugin_info_t) -> u32 {
    super::get(info, 0, |i| i.info.runtime as u32)
}
