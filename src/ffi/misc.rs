//! Helpers with no handle: versions, status names, the interface hash.

use super::fidius_host_status_t;
use super::error::fidius_host_error_t;
use super::{arg_out, arg_str, entry, entry_value};
use crate::error::{Error, Status};
use std::ffi::c_char;

/// A borrowed UTF-8 string: `data` of `len` bytes, no terminator needed.
#[repr(C)]
pub struct fidius_host_str_t {
    /// The bytes; may be NULL when `len` is 0.
    pub data: *const c_char,
    /// Number of bytes.
    pub len: usize,
}

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. `"0.1.0"`. Static: never freed.
#[unsafe(no_mangle)]
pub extern "C" fn fidius_host_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The library version as `MAJOR * 10000 + MINOR * 100 + PATCH`, to compare
/// with `FIDIUS_HOST_VERSION_NUMBER`.
#[unsafe(no_mangle)]
pub extern "C" fn fidius_host_version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 100
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The name of a status code without prefix (e.g. `"PLUGIN_NOT_FOUND"`),
/// or `"UNKNOWN"` for a number that is no status. Static: never freed.
#[unsafe(no_mangle)]
pub extern "C" fn fidius_host_status_name(status: u32) -> *const c_char {
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
#[unsafe(no_mangle)]
pub extern "C" fn fidius_host_signatures_hash(
    signatures: *const fidius_host_str_t,
    count: usize,
    hash_out: *mut u64,
    err: *mut *mut fidius_host_error_t,
) -> fidius_host_status_t {
    entry(err, || {
        let hash_out = arg_out(hash_out, "hash_out")?;
        *hash_out = 0;
        if signatures.is_null() && count > 0 {
            return Err(Error::null_argument("signatures"));
        }
        let items: &[fidius_host_str_t] =
            if count == 0 { &[] } else { unsafe { std::slice::from_raw_parts(signatures, count) } };
        let canonical = items
            .iter()
            .enumerate()
            .map(|(i, s)| crate::interface::canonical_signature(arg_str(s.data, s.len, &format!("signatures[{i}]"))?))
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
#[unsafe(no_mangle)]
pub extern "C" fn fidius_host_precompile_component(
    component: *const u8,
    component_len: usize,
    cwasm_out: *mut super::bytes::fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> fidius_host_status_t {
    entry(err, || {
        let cwasm_out = arg_out(cwasm_out, "cwasm_out")?;
        *cwasm_out = super::bytes::fidius_host_bytes_t::EMPTY;
        let component = super::arg_bytes(component, component_len, "component")?;
        *cwasm_out = super::bytes::fidius_host_bytes_t::from_output(crate::bytes::OutputBytes::from_vec(precompile(component)?));
        Ok(())
    })
}

#[cfg(feature = "wasm")]
fn precompile(component: &[u8]) -> crate::Result<Vec<u8>> {
    crate::runtime::wasm::precompile(component)
}

#[cfg(not(feature = "wasm"))]
fn precompile(_component: &[u8]) -> crate::Result<Vec<u8>> {
    Err(Error::new(Status::Unsupported, "this build has no WASM support (feature `wasm`)"))
}
