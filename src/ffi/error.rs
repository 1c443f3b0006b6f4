//! `fidius_host_error_t`: what failed, in detail.

use super::{c_string, entry_value, take_handle, Handle};
use crate::error::{Error, ErrorDetail, PluginError, Status};
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// A failure: its status, a message naming what failed (file, plugin,
/// expected vs found), and — for `FIDIUS_HOST_STATUS_PLUGIN_ERROR` — the
/// error the plugin returned.
///
/// Made by the library on failure and owned by the caller; free with
/// `fidius_host_error_free`. Movable: use from one thread at a time.
pub struct fidius_host_error_t {
    _private: [u8; 0],
}

pub(crate) struct ErrorData {
    error: Error,
    /// The texts as C strings, each made when first asked for: a caller
    /// that only looks at the status pays for none of them.
    message: OnceLock<CString>,
    plugin_code: OnceLock<Option<CString>>,
    plugin_message: OnceLock<Option<CString>>,
    plugin_details: OnceLock<Option<CString>>,
}

impl ErrorData {
    fn message(&self) -> *const c_char {
        self.message.get_or_init(|| c_string(self.error.message())).as_ptr()
    }

    /// A text of the plugin's own error, or NULL when there is none.
    fn plugin_text(&self, cell: &OnceLock<Option<CString>>, text: impl FnOnce(&PluginError) -> Option<&str>) -> *const c_char {
        let text = cell.get_or_init(|| self.error.plugin_error().and_then(text).map(c_string));
        text.as_ref().map_or(std::ptr::null(), |t| t.as_ptr())
    }
}

impl Handle for fidius_host_error_t {
    type Inner = ErrorData;
    const MAGIC: u64 = 0x4644_4552_524f_5231;
    const NAME: &'static str = "fidius_host_error_t";
}

/// Moves an error to the heap for the caller.
pub(crate) fn into_raw(error: Error) -> *mut fidius_host_error_t {
    super::new_handle::<fidius_host_error_t>(ErrorData {
        error,
        message: OnceLock::new(),
        plugin_code: OnceLock::new(),
        plugin_message: OnceLock::new(),
        plugin_details: OnceLock::new(),
    })
}

/// The status of `error`; `FIDIUS_HOST_STATUS_NULL_ARGUMENT` for NULL.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_status(error: *const fidius_host_error_t) -> Status {
    super::get(error, Status::NullArgument, |e| e.error.status())
}

/// The message of `error` (UTF-8, NUL-terminated), or NULL for NULL.
/// Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_message(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.message())
}

/// The `code` of the plugin's own error (e.g. `"DIV_ZERO"`), or NULL when
/// the failure is not `FIDIUS_HOST_STATUS_PLUGIN_ERROR`. Borrowed: valid
/// until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_code(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.plugin_text(&e.plugin_code, |p| Some(&p.code)))
}

/// The `message` of the plugin's own error, or NULL when there is none.
/// Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_message(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.plugin_text(&e.plugin_message, |p| Some(&p.message)))
}

/// The `details` of the plugin's own error (a JSON text), or NULL when the
/// plugin gave none. Borrowed: valid until `error` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_plugin_details(error: *const fidius_host_error_t) -> *const c_char {
    super::get(error, std::ptr::null(), |e| e.plugin_text(&e.plugin_details, |p| p.details.as_deref()))
}

/// For `FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH`,
/// `_INTERFACE_VERSION_MISMATCH`, `_METHOD_COUNT_MISMATCH` and
/// `_BUFFER_STRATEGY_MISMATCH`: stores the expected value in `*expected`
/// and the value found in `*found` (either may be NULL when not wanted) and
/// returns true. Returns false, writing nothing, for any other error and
/// for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_mismatch(
    error: *const fidius_host_error_t,
    expected: *mut u64,
    found: *mut u64,
) -> bool {
    super::get(error, false, |e| match e.error.detail() {
        Some(ErrorDetail::Mismatch { expected: wanted, found: seen }) => {
            write_opt(expected, wanted);
            write_opt(found, seen);
            true
        }
        _ => false,
    })
}

/// For `FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE`: stores the method index
/// asked for in `*index` and the number of methods in `*count` (either may
/// be NULL) and returns true. Returns false, writing nothing, for any other
/// error and for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_method_out_of_range(
    error: *const fidius_host_error_t,
    index: *mut u32,
    count: *mut u32,
) -> bool {
    super::get(error, false, |e| match e.error.detail() {
        Some(ErrorDetail::MethodOutOfRange { index: asked, count: methods }) => {
            write_opt(index, asked);
            write_opt(count, methods);
            true
        }
        _ => false,
    })
}

/// Writes `value` to an optional out-parameter.
fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: a non-NULL out-parameter points to writable memory.
        unsafe { out.write(value) }
    }
}

/// Frees `error`. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_error_free(error: *mut fidius_host_error_t) {
    entry_value((), || drop(take_handle(error)))
}
