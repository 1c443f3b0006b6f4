//! The `extern "C"` surface: one file per handle type over the host core.
//!
//! Every entry point follows one pattern: [`entry`] (or [`entry_value`] for
//! infallible getters) catches panics and converts errors; inside it the raw
//! arguments become references through the `arg_*` helpers, the core is
//! called, and results are written to out-params. Nothing here decides
//! anything the core could.
#![allow(non_camel_case_types)]
#![deny(missing_docs)]

pub mod binding;
pub mod builder;
pub mod bytes;
pub mod cancel;
pub mod discovery;
pub mod egress;
pub mod error;
pub mod host;
pub mod info;
pub mod interface;
pub mod load_options;
pub mod misc;
pub mod plugin;
pub mod stream;

use crate::error::{Error, Result, Status};
use error::fidius_host_error_t;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// A borrowed UTF-8 string: `data` of `len` bytes, no terminator needed.
#[repr(C)]
pub struct fidius_host_str_t {
    /// The bytes; may be NULL when `len` is 0.
    pub data: *const c_char,
    /// Number of bytes.
    pub len: usize,
}

/// Passed as a length, says "the string is NUL-terminated" (the header's
/// `FIDIUS_HOST_NUL_TERMINATED`, `SIZE_MAX`). Spelled `!0` (all bits set,
/// `usize::MAX`) because cbindgen cannot read `usize::MAX`.
pub const FIDIUS_HOST_NUL_TERMINATED: usize = !0;

/// Runs the body of a status-returning entry point: `*err` is cleared, a
/// panic becomes [`Status::InternalPanic`], and an error is stored in `*err`
/// (when `err` is not NULL) and returned as a status.
pub(crate) fn entry(err: *mut *mut fidius_host_error_t, body: impl FnOnce() -> Result<()>) -> Status {
    if !err.is_null() {
        // SAFETY: the caller passes a writable pointer or NULL.
        unsafe { *err = std::ptr::null_mut() };
    }
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| Err(panic_error(payload)));
    match result {
        Ok(()) => Status::Ok,
        Err(error) => {
            let status = error.status();
            if !err.is_null() {
                // SAFETY: as above.
                unsafe { *err = error::into_raw(error) };
            }
            status
        }
    }
}

/// The shape of every getter: reads a live handle of type `H`; NULL, a
/// handle of another type and a panic all yield `fallback`.
pub(crate) fn get<H: Handle, T: Copy>(handle: *const H, fallback: T, read: impl FnOnce(&H::Inner) -> T) -> T {
    entry_value(fallback, || arg_handle(handle, H::NAME).map_or(fallback, read))
}

/// The shape of every setter: applies `change` to a live handle of type
/// `H` (`name` is the argument's name in errors), as a status.
pub(crate) fn update<H: Handle>(
    handle: *mut H,
    name: &str,
    err: *mut *mut fidius_host_error_t,
    change: impl FnOnce(&mut H::Inner) -> Result<()>,
) -> Status {
    entry(err, || change(arg_handle_mut(handle, name)?))
}

/// Runs the body of an entry point that cannot fail: a panic yields `fallback`.
pub(crate) fn entry_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    Error::new(Status::InternalPanic, format!("internal error in libfidius_host: {what}"))
}

/// An opaque handle type. The C type is a zero-sized marker; the pointer
/// really points to a [`Tagged`] value, whose magic word makes a handle of
/// the wrong type (or an obviously freed one) a [`Status::Misuse`] error
/// instead of memory corruption.
pub(crate) trait Handle: Sized {
    /// What the handle holds.
    type Inner;
    /// Unique per handle type.
    const MAGIC: u64;
    /// The type's C name, for messages.
    const NAME: &'static str;
}

/// The memory behind every handle: a magic word at offset 0, then the value.
#[repr(C)]
pub(crate) struct Tagged<T> {
    magic: u64,
    value: T,
}

impl<T> Tagged<T> {
    /// Tags `value` as a `H`.
    pub(crate) fn new<H: Handle<Inner = T>>(value: T) -> Tagged<T> {
        Tagged { magic: H::MAGIC, value }
    }

    /// A borrowed handle pointing at this value.
    pub(crate) fn as_handle<H: Handle<Inner = T>>(&self) -> *const H {
        (self as *const Tagged<T>).cast()
    }
}

/// Moves a handle to the heap for the caller.
pub(crate) fn new_handle<H: Handle>(value: H::Inner) -> *mut H {
    Box::into_raw(Box::new(Tagged::new::<H>(value))).cast()
}

/// Borrows a handle argument.
pub(crate) fn arg_handle<'a, H: Handle>(ptr: *const H, name: &str) -> Result<&'a H::Inner> {
    if ptr.is_null() {
        return Err(Error::null_argument(name));
    }
    let tagged = ptr.cast::<Tagged<H::Inner>>();
    // SAFETY: non-NULL; handles are only made by this module. A stale pointer
    // is undefined behaviour the magic check only catches on a best-effort basis.
    if unsafe { std::ptr::read(tagged.cast::<u64>()) } != H::MAGIC {
        return Err(Error::new(Status::Misuse, format!("argument '{name}' is not a live {}", H::NAME)));
    }
    // SAFETY: the tag says this is a `Tagged<H::Inner>`.
    Ok(unsafe { &(*tagged).value })
}

/// Borrows a handle argument mutably (for handles that are not shareable).
pub(crate) fn arg_handle_mut<'a, H: Handle>(ptr: *mut H, name: &str) -> Result<&'a mut H::Inner> {
    arg_handle(ptr, name)?;
    // SAFETY: checked above; the caller owns the handle exclusively.
    Ok(unsafe { &mut (*ptr.cast::<Tagged<H::Inner>>()).value })
}

/// Takes ownership of a handle back from the caller; `None` for NULL or a
/// handle of the wrong type.
pub(crate) fn take_handle<H: Handle>(ptr: *mut H) -> Option<H::Inner> {
    arg_handle(ptr, "handle").ok()?;
    let tagged = ptr.cast::<Tagged<H::Inner>>();
    // SAFETY: made by `new_handle`; the tag is cleared so it is taken once.
    unsafe {
        (*tagged).magic = 0;
        Some(Box::from_raw(tagged).value)
    }
}

/// Borrows an out-param.
pub(crate) fn arg_out<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: non-NULL pointers to out-params are writable by contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| Error::null_argument(name))
}

/// What an out-param holds after a failure: NULL, or empty bytes.
pub(crate) trait Nothing {
    fn nothing() -> Self;
}

impl<T> Nothing for *mut T {
    fn nothing() -> Self {
        std::ptr::null_mut()
    }
}

impl Nothing for bytes::fidius_host_bytes_t {
    fn nothing() -> Self {
        bytes::fidius_host_bytes_t::EMPTY
    }
}

/// A required out-param, set to nothing before anything can fail.
pub(crate) fn arg_out_cleared<'a, T: Nothing>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    let out = arg_out(ptr, name)?;
    *out = T::nothing();
    Ok(out)
}

/// Sets a pointer out-param to NULL, if the caller passed one, before
/// anything can fail: every failure then leaves NULL behind, as the header
/// promises, whichever argument was bad.
pub(crate) fn clear_out<T>(ptr: *mut *mut T) {
    if !ptr.is_null() {
        // SAFETY: non-NULL pointers to out-params are writable by contract.
        unsafe { *ptr = std::ptr::null_mut() };
    }
}

/// Borrows `(ptr, len)` bytes; NULL is allowed when `len` is 0.
pub(crate) fn arg_bytes<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Error::null_argument(name));
    }
    // SAFETY: the caller passes `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `(ptr, len)` UTF-8 text; `len == FIDIUS_HOST_NUL_TERMINATED`
/// means NUL-terminated.
pub(crate) fn arg_str<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<&'a str> {
    let bytes = if len == FIDIUS_HOST_NUL_TERMINATED {
        if ptr.is_null() {
            return Err(Error::null_argument(name));
        }
        // SAFETY: the caller promised a NUL-terminated string.
        unsafe { CStr::from_ptr(ptr) }.to_bytes()
    } else {
        arg_bytes(ptr.cast(), len, name)?
    };
    std::str::from_utf8(bytes).map_err(|e| {
        Error::new(Status::InvalidUtf8, format!("argument '{name}' is not valid UTF-8: {e}"))
    })
}

/// Like [`arg_str`], but `NULL` means "not given".
pub(crate) fn arg_opt_str<'a>(ptr: *const c_char, len: usize, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        arg_str(ptr, len, name).map(Some)
    }
}

/// Longest path argument: Linux's PATH_MAX; no longer path can be opened.
const MAX_PATH: usize = 4096;

/// A path argument: non-empty UTF-8 text without NUL bytes, at most
/// [`MAX_PATH`] bytes.
pub(crate) fn arg_path(ptr: *const c_char, len: usize, name: &str) -> Result<PathBuf> {
    let text = arg_str(ptr, len, name)?;
    if text.len() > MAX_PATH {
        return Err(Error::new(
            Status::InvalidArgument,
            format!("argument '{name}' is a path of {} bytes, longer than the limit of {MAX_PATH}", text.len()),
        ));
    }
    if text.is_empty() || text.contains('\0') {
        return Err(Error::new(
            Status::InvalidArgument,
            format!("argument '{name}' must be a non-empty path without NUL bytes"),
        ));
    }
    Ok(PathBuf::from(text))
}

/// Text the library hands out: NUL-terminated, never containing NUL.
pub(crate) fn c_string(text: &str) -> std::ffi::CString {
    if text.as_bytes().contains(&0) {
        return std::ffi::CString::new(text.replace('\0', "\u{fffd}")).expect("NUL bytes were replaced");
    }
    // One allocation, with room for the terminator.
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    // SAFETY: checked above: no NUL inside.
    unsafe { std::ffi::CString::from_vec_unchecked(bytes) }
}

/// A restart policy from its C arguments.
pub(crate) fn restart_policy(max_restarts: u32, window_ms: u64) -> Result<crate::runtime::worker::RestartPolicy> {
    if max_restarts > 0 && window_ms == 0 {
        return Err(Error::new(Status::InvalidArgument, "a restart policy that allows restarts needs a window of at least 1 ms"));
    }
    Ok(crate::runtime::worker::RestartPolicy { max_restarts, window: std::time::Duration::from_millis(window_ms) })
}

/// A deadline in milliseconds, 0 meaning none.
pub(crate) fn deadline_of(milliseconds: u64) -> Option<std::time::Duration> {
    (milliseconds > 0).then(|| std::time::Duration::from_millis(milliseconds))
}

/// A list argument of `count` strings (`items` may be NULL when `count` is
/// 0), each checked as UTF-8 and named `name[i]` in errors.
pub(crate) fn arg_str_list<'a>(items: *const fidius_host_str_t, count: usize, name: &str) -> Result<Vec<&'a str>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if items.is_null() {
        return Err(Error::null_argument(name));
    }
    // SAFETY: the caller passes `count` readable items.
    let items = unsafe { std::slice::from_raw_parts(items, count) };
    items.iter().enumerate().map(|(i, item)| arg_str(item.data, item.len, &format!("{name}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn handed_out_text_never_contains_nul() {
        assert_eq!(super::c_string("plain").as_bytes_with_nul(), b"plain\0");
        assert_eq!(super::c_string("").as_bytes_with_nul(), b"\0");
        assert_eq!(super::c_string("a\0b").to_str().unwrap(), "a\u{fffd}b");
    }
}
