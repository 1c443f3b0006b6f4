//! Helpers with no handle: versions, status names, the interface hash.

use super::error::fidius_host_error_t;
use super::{arg_out, arg_out_cleared, arg_str_list, entry, entry_value, fidius_host_str_t};
use crate::error::Status;
use crate::plugin::RuntimeKind;
use std::ffi::c_char;

/// The optional runtimes a library may be built with: the bits of
/// `fidius_host_features()`.
#[repr(u32)]
pub enum fidius_host_feature {
    /// WebAssembly component plugins (Cargo feature `wasm`).
    Wasm = 1,
    /// Python plugins, with CPython embedded (Cargo feature `python`).
    Python = 2,
}

/// The runtimes this library was built with: `FIDIUS_HOST_FEATURE_WASM`
/// and `FIDIUS_HOST_FEATURE_PYTHON` bits. A build without one answers
/// UNSUPPORTED to loads for it. (`FIDIUS_HOST_BUILT_WITH_WASM` and
/// `_PYTHON` say the same of the build the header was generated for.)
/// Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_features() -> u32 {
    entry_value(0, || {
        let mut bits = 0;
        if crate::host::runtime_built_in(RuntimeKind::Wasm) {
            bits |= fidius_host_feature::Wasm as u32;
        }
        if crate::host::runtime_built_in(RuntimeKind::Python) {
            bits |= fidius_host_feature::Python as u32;
        }
        bits
    })
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. `"0.1.0"`. Static: never freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The library version as `MAJOR * 10000 + MINOR * 100 + PATCH`, to compare
/// with `FIDIUS_HOST_VERSION_NUMBER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The name of a status code without prefix (e.g. `"PLUGIN_NOT_FOUND"`),
/// or `"UNKNOWN"` for a number that is no status. Static: never freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_status_name(status: u32) -> *const c_char {
    entry_value(c"UNKNOWN".as_ptr(), || Status::from_code(status).map_or(c"UNKNOWN", Status::c_name).as_ptr())
}

/// Computes the fidius interface hash of the signature strings of an
/// interface's **required** methods, exactly as `#[plugin_interface]` does
/// (canonical spelling, sorted, joined with `\n`, FNV-1a 64). Signatures
/// may use any spacing (`reverse:Vec<u8>->Vec<u8>!raw` is read as the
/// macro's `reverse:Vec < u8 >->Vec < u8 >!raw`). `signatures` is an array
/// of `count` strings, borrowed for the call; it may be NULL when `count`
/// is 0. The hash goes to `*hash_out`. To hash a whole interface with
/// optional methods and flags, build a `fidius_host_interface_t`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_INTERFACE (a malformed
/// signature; the message names it).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_signatures_hash(
    signatures: *const fidius_host_str_t,
    count: usize,
    hash_out: *mut u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let hash_out = arg_out(hash_out, "hash_out")?;
        *hash_out = 0;
        let canonical = arg_str_list(signatures, count, "signatures")?
            .into_iter()
            .map(crate::interface::canonical_signature)
            .collect::<crate::Result<Vec<String>>>()?;
        *hash_out = crate::hash::interface_hash(&canonical);
        Ok(())
    })
}

/// Compiles a WebAssembly component ahead of time for this library (same
/// wasmtime version and settings): the `.cwasm` a package may carry next to
/// its component. `component` (`component_len` bytes) is borrowed for the
/// call; it may be NULL when `component_len` is 0 (no bytes are not a
/// component: INVALID_COMPONENT). On success `*cwasm_out` holds the compiled bytes, owned by the
/// caller (release with `fidius_host_bytes_free`). A `.cwasm` is native
/// code: hosts load one only when a verified package signature covers it,
/// or when allowed with `fidius_host_builder_set_allow_unsigned_precompiled`.
///
/// Errors: NULL_ARGUMENT, INVALID_COMPONENT, UNSUPPORTED (no WASM support).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_precompile_component(
    component: *const u8,
    component_len: usize,
    cwasm_out: *mut super::bytes::fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let cwasm_out = arg_out_cleared(cwasm_out, "cwasm_out")?;
        let component = super::arg_bytes(component, component_len, "component")?;
        *cwasm_out = super::bytes::fidius_host_bytes_t::from_output(crate::bytes::OutputBytes::from_vec(crate::host::precompile_component(component)?));
        Ok(())
    })
}

/// The body of the `fidius-host-worker` executable, which isolated loads
/// start (`fidius_host_builder_set_isolation`): it serves one plugin to
/// the host over the socket it finds on descriptor 3, and returns its exit
/// code. Programs do not call it; run elsewhere, it prints that it is not
/// run by hand and returns 2.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_worker_main() -> i32 {
    entry_value(4, crate::runtime::worker::serve)
}
