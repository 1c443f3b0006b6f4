//! `fidius_host_binding_t`: a program's host functions for one host
//! interface, as C callbacks (raw bincode or JSON).

use super::egress::fidius_host_userdata_free_fn;
use super::error::fidius_host_error_t;
use super::interface::fidius_host_interface_t;
use super::{arg_handle, arg_handle_mut, arg_opt_str, arg_out, arg_str, entry, entry_value, new_handle, take_handle, Handle, Tagged};
use super::FIDIUS_HOST_NUL_TERMINATED;
use crate::error::{Error, PluginError, Quoted, Status};
use crate::host_functions::{HostBinding, HostCall, HostFailure, HostHandler, JsonHostHandler, MAX_HOST_RESULT};
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

/// Host functions for one host interface: a callback with its userdata,
/// bound to plugins through `fidius_host_load_options_add_binding`. Made by
/// `fidius_host_binding_new_raw` or `fidius_host_binding_new_json`, owned by
/// the caller, freed with `fidius_host_binding_free`. Load options, and
/// every library and plugin it was bound to, keep their own reference, so
/// the handle may be freed right after it is added. Shareable: any thread.
pub struct fidius_host_binding_t {
    _private: [u8; 0],
}

pub(crate) struct BindingData {
    pub(crate) binding: Arc<HostBinding>,
}

impl Handle for fidius_host_binding_t {
    type Inner = BindingData;
    const MAGIC: u64 = 0x4644_4249_4e44_4731;
    const NAME: &'static str = "fidius_host_binding_t";
}

/// Where a callback puts the error its host function returns
/// (`Err(PluginError)`), with `fidius_host_callback_error_set`. Borrowed
/// for the duration of the callback only.
pub struct fidius_host_callback_error_t {
    _private: [u8; 0],
}

impl Handle for fidius_host_callback_error_t {
    type Inner = Option<PluginError>;
    const MAGIC: u64 = 0x4644_4342_4552_5231;
    const NAME: &'static str = "fidius_host_callback_error_t";
}

/// A raw host function callback: serves method `method` (declaration
/// order) of the binding's host interface. `args` (`args_len` bytes, never
/// NULL) is the bincode of the argument tuple as the plugin sent it, borrowed
/// for the call; `call_context` is the context of the plugin call this
/// serves (see `fidius_host_plugin_call_with_context`), NULL when there is
/// none.
///
/// Return a `fidius_host_status`:
/// - `FIDIUS_HOST_STATUS_OK`: `*result` / `*result_len` hold the bincode of
///   the return value (for `Result<T, PluginError>`, of the `T`; NULL and 0
///   for `()`), at most 64 MiB. The library copies it and then calls the
///   binding's result-free function, if any, with it.
/// - `FIDIUS_HOST_STATUS_PLUGIN_ERROR`: the host function's error, set with
///   `fidius_host_callback_error_set`, reaches the plugin as its
///   `PluginError` (code, message, details).
/// - anything else: the host could not answer; the plugin's call fails
///   with a host failure whose message names the status (and the error's
///   message, if one was set).
///
/// Runs on the thread the plugin calls from — the thread that called the
/// plugin, or a thread the plugin started — and may run on several threads
/// at once: it must be thread-safe. It may call into other plugins, and into
/// the same one (a native plugin serves it like any call; a WASM plugin
/// with a persistent instance refuses it with MISUSE, as its instance is
/// busy). It must not unwind (C++ exceptions, longjmp) through the library.
pub type fidius_host_binding_raw_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        call_context: *mut c_void,
        method: u32,
        args: *const u8,
        args_len: usize,
        result: *mut *mut u8,
        result_len: *mut usize,
        error: *mut fidius_host_callback_error_t,
    ) -> u32,
>;

/// A JSON host function callback: like `fidius_host_binding_raw_fn`, with
/// the arguments as the JSON array of the method's arguments
/// (`args_json_len` bytes, NUL-terminated, borrowed for the call), and the
/// result as the JSON text of the return value in `*result_json`: UTF-8 of
/// `*result_json_len` bytes, or NUL-terminated when the length is left 0;
/// `null` (or NULL) for a method that returns nothing. The library checks
/// it against the method's return type; a result that does not fit is a
/// host failure for the plugin, naming what did not fit.
pub type fidius_host_binding_json_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        call_context: *mut c_void,
        method: u32,
        args_json: *const c_char,
        args_json_len: usize,
        result_json: *mut *mut c_char,
        result_json_len: *mut usize,
        error: *mut fidius_host_callback_error_t,
    ) -> u32,
>;

/// Releases a result a callback returned, once the library has copied it:
/// `result` and `result_len` as the callback set them.
pub type fidius_host_binding_result_free_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, result: *mut c_void, result_len: usize)>;

/// The C side of a binding: its userdata, released once.
struct Userdata {
    userdata: *mut c_void,
    free_result: fidius_host_binding_result_free_fn,
    free_userdata: fidius_host_userdata_free_fn,
}

// SAFETY: the callback's contract makes it (and its userdata) usable from
// any thread at once.
unsafe impl Send for Userdata {}
unsafe impl Sync for Userdata {}

impl Drop for Userdata {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the caller gave this function for this userdata; it runs once.
            unsafe { free(self.userdata) };
        }
    }
}

/// What one callback answered, before it is read.
struct Answer {
    status: u32,
    result: *mut c_void,
    result_len: usize,
    error: Option<PluginError>,
}

impl Userdata {
    /// Runs `callback` with a fresh result slot and error object, and
    /// releases the result after `read` has seen the answer.
    fn ask<T>(
        &self,
        callback: impl FnOnce(*mut c_void, &mut *mut c_void, &mut usize, *mut fidius_host_callback_error_t) -> u32,
        read: impl FnOnce(&Answer) -> std::result::Result<T, HostFailure>,
    ) -> std::result::Result<T, HostFailure> {
        let mut error = Tagged::new::<fidius_host_callback_error_t>(None);
        let mut result: *mut c_void = std::ptr::null_mut();
        let mut result_len = 0usize;
        let error_handle = (&mut error as *mut Tagged<Option<PluginError>>).cast::<fidius_host_callback_error_t>();
        let status = callback(self.userdata, &mut result, &mut result_len, error_handle);
        // A pointer kept past the callback is then MISUSE (best effort).
        error.magic = 0;
        let answer = Answer { status, result, result_len, error: error.value.take() };
        let outcome = read(&answer);
        if let (false, Some(free)) = (answer.result.is_null(), self.free_result) {
            // SAFETY: what the callback returned, released once as it asked.
            unsafe { free(self.userdata, answer.result, answer.result_len) };
        }
        outcome
    }
}

impl Answer {
    /// The outcome of a callback that did not return OK.
    fn failure(&self) -> HostFailure {
        let name = Status::from_code(self.status).map_or("an unknown status", Status::name);
        match (Status::from_code(self.status), &self.error) {
            (Some(Status::PluginError), Some(error)) => HostFailure::Error(error.clone()),
            (Some(Status::PluginError), None) => HostFailure::Error(PluginError::new(
                "HOST_ERROR",
                "the host function failed without setting an error",
                None,
            )),
            (_, Some(error)) => HostFailure::Failed(format!("the callback returned {name} ({}): {}", self.status, error.message())),
            (_, None) => HostFailure::Failed(format!("the callback returned {name} ({})", self.status)),
        }
    }

    /// The result bytes of an OK answer.
    fn bytes(&self) -> std::result::Result<&[u8], HostFailure> {
        if self.result_len > MAX_HOST_RESULT {
            return Err(HostFailure::Failed(format!(
                "the callback returned {} bytes, more than the {MAX_HOST_RESULT} a host function may return",
                self.result_len
            )));
        }
        if self.result.is_null() {
            return match self.result_len {
                0 => Ok(&[]),
                n => Err(HostFailure::Failed(format!("the callback returned a NULL result of {n} bytes"))),
            };
        }
        // SAFETY: the callback returned `result_len` readable bytes.
        Ok(unsafe { std::slice::from_raw_parts(self.result.cast::<u8>(), self.result_len) })
    }
}

struct RawCallback {
    function: unsafe extern "C" fn(*mut c_void, *mut c_void, u32, *const u8, usize, *mut *mut u8, *mut usize, *mut fidius_host_callback_error_t) -> u32,
    userdata: Userdata,
}

impl HostHandler for RawCallback {
    fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
        static EMPTY: u8 = 0;
        let args = if call.args.is_empty() { &EMPTY as *const u8 } else { call.args.as_ptr() };
        self.userdata.ask(
            |userdata, result, result_len, error| {
                // SAFETY: every pointer is valid for the call, as the callback's contract says.
                unsafe {
                    (self.function)(
                        userdata,
                        call.context as *mut c_void,
                        call.method,
                        args,
                        call.args.len(),
                        (result as *mut *mut c_void).cast(),
                        result_len,
                        error,
                    )
                }
            },
            |answer| match answer.status {
                0 => answer.bytes().map(<[u8]>::to_vec),
                _ => Err(answer.failure()),
            },
        )
    }
}

struct JsonCallback {
    function: unsafe extern "C" fn(*mut c_void, *mut c_void, u32, *const c_char, usize, *mut *mut c_char, *mut usize, *mut fidius_host_callback_error_t) -> u32,
    userdata: Userdata,
}

impl JsonHostHandler for JsonCallback {
    fn call(&self, call: &HostCall<'_>, args_json: &str) -> std::result::Result<String, HostFailure> {
        let args = super::c_string(args_json);
        self.userdata.ask(
            |userdata, result, result_len, error| {
                // SAFETY: every pointer is valid for the call, as the callback's contract says.
                unsafe {
                    (self.function)(
                        userdata,
                        call.context as *mut c_void,
                        call.method,
                        args.as_ptr(),
                        args_json.len(),
                        (result as *mut *mut c_void).cast(),
                        result_len,
                        error,
                    )
                }
            },
            |answer| {
                if answer.status != 0 {
                    return Err(answer.failure());
                }
                let bytes = match (answer.result.is_null(), answer.result_len) {
                    (true, _) => return Ok("null".to_string()),
                    // SAFETY: a result without a length is NUL-terminated.
                    (false, 0) => unsafe { CStr::from_ptr(answer.result.cast::<c_char>()) }.to_bytes(),
                    (false, _) => answer.bytes()?,
                };
                if bytes.len() > MAX_HOST_RESULT {
                    return Err(HostFailure::Failed(format!("the callback returned {} bytes of JSON, more than {MAX_HOST_RESULT}", bytes.len())));
                }
                std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
                    HostFailure::Failed(format!("the callback's JSON result is not UTF-8: {e}"))
                })
            },
        )
    }
}

/// A binding of `host_interface` (a host interface: described like a plugin
/// interface, e.g. by an interface file the generator wrote from a
/// `#[host_interface]` trait; its name, version and hash must be those the
/// plugin was built against) to `callback`, which gets the bincode
/// arguments and returns bincode. `free_result` (may be NULL: results are
/// not released) releases each result after it is copied. `userdata` is
/// passed to both unchanged; `free_userdata` (may be NULL) is called with
/// it once, when the binding and every load options, library and plugin
/// holding it are gone — also when this function fails. A native library
/// holds its binding until it is unmapped: after the last plugin handle of
/// it, in every host of the process, is freed.
///
/// On success `*binding_out` is a new handle owned by the caller.
///
/// Errors: NULL_ARGUMENT (host_interface, callback, binding_out), MISUSE,
/// INVALID_INTERFACE (a streaming or optional method, which host
/// interfaces cannot have).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_binding_new_raw(
    host_interface: *const fidius_host_interface_t,
    callback: fidius_host_binding_raw_fn,
    free_result: fidius_host_binding_result_free_fn,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
    binding_out: *mut *mut fidius_host_binding_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    let userdata = Userdata { userdata, free_result, free_userdata };
    new_binding(binding_out, err, userdata, |userdata| {
        let function = callback.ok_or_else(|| Error::null_argument("callback"))?;
        let interface = arg_handle(host_interface, "host_interface")?.interface.clone();
        HostBinding::new(interface, RawCallback { function, userdata })
    })
}

/// Like `fidius_host_binding_new_raw`, with a callback that speaks JSON:
/// the library decodes the plugin's arguments with the host interface's
/// types and encodes the callback's JSON result with them
/// (docs/interfaces.md gives each type's JSON form). `free_result` releases
/// each JSON result (with its length as the callback set it).
///
/// Errors: as `fidius_host_binding_new_raw`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_binding_new_json(
    host_interface: *const fidius_host_interface_t,
    callback: fidius_host_binding_json_fn,
    free_result: fidius_host_binding_result_free_fn,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
    binding_out: *mut *mut fidius_host_binding_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    let userdata = Userdata { userdata, free_result, free_userdata };
    new_binding(binding_out, err, userdata, |userdata| {
        let function = callback.ok_or_else(|| Error::null_argument("callback"))?;
        let interface = arg_handle(host_interface, "host_interface")?.interface.clone();
        HostBinding::new_json(interface, JsonCallback { function, userdata })
    })
}

/// The shared body of the two constructors. `userdata` is released when
/// it is dropped: by the binding, or here on any failure.
fn new_binding(
    binding_out: *mut *mut fidius_host_binding_t,
    err: *mut *mut fidius_host_error_t,
    userdata: Userdata,
    make: impl FnOnce(Userdata) -> crate::Result<HostBinding>,
) -> Status {
    entry(err, || {
        super::clear_out(binding_out);
        let out = arg_out(binding_out, "binding_out")?;
        let binding = make(userdata)?;
        *out = new_handle::<fidius_host_binding_t>(BindingData { binding: Arc::new(binding) });
        Ok(())
    })
}

/// Frees a binding handle. Load options, libraries and plugins that hold
/// the binding keep it (and its userdata) alive. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_binding_free(binding: *mut fidius_host_binding_t) {
    entry_value((), || drop(take_handle(binding)))
}

/// Sets the error a host function returns, from inside its callback (which
/// then returns `FIDIUS_HOST_STATUS_PLUGIN_ERROR`): `code` and `message`
/// are NUL-terminated UTF-8, `details_json` NUL-terminated JSON text or
/// NULL. The texts are copied; a second call replaces the first. The
/// plugin receives them as its `PluginError`.
///
/// Errors: NULL_ARGUMENT (error, code, message), MISUSE (not the error
/// object of a running callback), INVALID_UTF8, INVALID_JSON (details).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_callback_error_set(
    error: *mut fidius_host_callback_error_t,
    code: *const c_char,
    message: *const c_char,
    details_json: *const c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let slot = arg_handle_mut(error, "error")?;
        let code = arg_str(code, FIDIUS_HOST_NUL_TERMINATED, "code")?;
        let message = arg_str(message, FIDIUS_HOST_NUL_TERMINATED, "message")?;
        let details = arg_opt_str(details_json, FIDIUS_HOST_NUL_TERMINATED, "details_json")?;
        if let Some(details) = details {
            serde_json::from_str::<serde::de::IgnoredAny>(details).map_err(|e| {
                Error::new(Status::InvalidJson, format!("details_json {} is not JSON: {e}", Quoted(details)))
            })?;
        }
        *slot = Some(PluginError::new(code, message, details));
        Ok(())
    })
}
