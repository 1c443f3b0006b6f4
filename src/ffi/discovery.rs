//! `fidius_host_discovery_t`: the result of a scan.

use super::info::{fidius_host_plugin_info_t, InfoData};
use super::{c_string, entry_value, new_handle, take_handle, Handle, Tagged};
use crate::discovery::Discovery;
use crate::error::Status;
use std::ffi::{c_char, CString};

/// What `fidius_host_discover` found: the plugins, and every search path,
/// file or descriptor that was skipped, with the reason. Owned by the
/// caller; free with `fidius_host_discovery_free`. Shareable: read-only.
pub struct fidius_host_discovery_t {
    _private: [u8; 0],
}

pub(crate) struct DiscoveryData {
    plugins: Vec<Tagged<InfoData>>,
    skipped: Vec<SkippedEntry>,
}

struct SkippedEntry {
    path: CString,
    status: Status,
    message: CString,
}

impl Handle for fidius_host_discovery_t {
    type Inner = DiscoveryData;
    const MAGIC: u64 = 0x4644_4449_5343_4f31;
    const NAME: &'static str = "fidius_host_discovery_t";
}

pub(crate) fn new(discovery: Discovery) -> *mut fidius_host_discovery_t {
    new_handle::<fidius_host_discovery_t>(DiscoveryData {
        plugins: discovery.plugins.into_iter().map(super::info::tagged).collect(),
        skipped: discovery
            .skipped
            .into_iter()
            .map(|s| SkippedEntry {
                path: c_string(&s.path.to_string_lossy()),
                status: s.error.status(),
                message: c_string(s.error.message()),
            })
            .collect(),
    })
}

fn with_skipped<T: Copy>(d: *const fidius_host_discovery_t, index: usize, fallback: T, f: impl FnOnce(&SkippedEntry) -> T) -> T {
    super::get(d, fallback, |d| d.skipped.get(index).map_or(fallback, f))
}

/// Number of plugins found, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_plugin_count(discovery: *const fidius_host_discovery_t) -> usize {
    super::get(discovery, 0, |d| d.plugins.len())
}

/// Plugin `index` (in scan order), or NULL when out of range or for NULL.
/// Borrowed: valid until `discovery` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_plugin(
    discovery: *const fidius_host_discovery_t,
    index: usize,
) -> *const fidius_host_plugin_info_t {
    super::get(discovery, std::ptr::null(), |d| d.plugins.get(index).map_or(std::ptr::null(), |p| p.as_handle()))
}

/// Number of skipped entries, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_skipped_count(discovery: *const fidius_host_discovery_t) -> usize {
    super::get(discovery, 0, |d| d.skipped.len())
}

/// The path of skipped entry `index` (a file, or a search path), or NULL
/// when out of range. Borrowed: valid until `discovery` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_skipped_path(discovery: *const fidius_host_discovery_t, index: usize) -> *const c_char {
    with_skipped(discovery, index, std::ptr::null(), |s| s.path.as_ptr())
}

/// Why entry `index` was skipped, as a status (`FIDIUS_HOST_STATUS_INVALID_ARGUMENT`
/// when out of range, NULL_ARGUMENT for NULL, MISUSE for a handle that is
/// not a live discovery).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_skipped_status(discovery: *const fidius_host_discovery_t, index: usize) -> Status {
    entry_value(Status::InternalPanic, || match super::arg_handle(discovery, "discovery") {
        Ok(d) => d.skipped.get(index).map_or(Status::InvalidArgument, |s| s.status),
        Err(error) => error.status(),
    })
}

/// Why entry `index` was skipped, as a message naming the file and the
/// problem, or NULL when out of range. Borrowed: valid until `discovery` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_skipped_message(discovery: *const fidius_host_discovery_t, index: usize) -> *const c_char {
    with_skipped(discovery, index, std::ptr::null(), |s| s.message.as_ptr())
}

/// Frees a discovery result and every info borrowed from it. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discovery_free(discovery: *mut fidius_host_discovery_t) {
    entry_value((), || drop(take_handle(discovery)))
}
