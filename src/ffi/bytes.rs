//! `fidius_host_bytes_t` and library strings: outputs owned by the caller.

use super::entry_value;
use crate::bytes::{OutputBytes, RawOutput};
use std::ffi::{c_char, c_void, CString};

/// Bytes the library hands out.
///
/// Owned by the caller once a call succeeds; release with
/// `fidius_host_bytes_free`, never with `free()`. `data` is NULL when `len`
/// is 0. Outputs of a plugin may outlive the plugin handle and the host.
#[repr(C)]
pub struct fidius_host_bytes_t {
    /// The bytes.
    pub data: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Private: who releases `data`. Do not touch.
    pub owner: *const c_void,
}

impl fidius_host_bytes_t {
    /// Empty bytes: what out-params hold after a failure.
    pub(crate) const EMPTY: fidius_host_bytes_t =
        fidius_host_bytes_t { data: std::ptr::null_mut(), len: 0, owner: std::ptr::null() };

    pub(crate) fn from_output(output: OutputBytes) -> fidius_host_bytes_t {
        let raw = output.into_raw();
        fidius_host_bytes_t { data: raw.ptr, len: raw.len, owner: raw.owner.cast() }
    }
}

/// Releases the bytes in `*bytes` and resets it to empty (so freeing twice
/// is harmless). NULL, or empty bytes, are a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_bytes_free(bytes: *mut fidius_host_bytes_t) {
    entry_value((), || {
        // SAFETY: the caller passes a writable fidius_host_bytes_t or NULL.
        let Some(bytes) = (unsafe { bytes.as_mut() }) else { return };
        let raw = RawOutput { ptr: bytes.data, len: bytes.len, owner: bytes.owner.cast() };
        *bytes = fidius_host_bytes_t::EMPTY;
        // SAFETY: the fields came from `from_output` and are taken back once.
        drop(unsafe { OutputBytes::from_raw(raw) });
    })
}

/// Frees a string the library handed out (JSON results, interface-file
/// text). NULL is a no-op. Never pass a string borrowed from a handle, and
/// never free these strings with `free()`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_string_free(string: *mut c_char) {
    entry_value((), || {
        if !string.is_null() {
            // SAFETY: made by `CString::into_raw` in this library and freed once.
            drop(unsafe { CString::from_raw(string) });
        }
    })
}
