//! `fidius_host_plugin_t`: a loaded plugin; calls and metadata.

use super::bytes::fidius_host_bytes_t;
use super::cancel::{arg_cancel, fidius_host_cancel_token_t};
use super::error::fidius_host_error_t;
use super::info::{fidius_host_plugin_info_t, InfoData};
use super::interface::fidius_host_interface_t;
use super::{arg_bytes, arg_handle, arg_out, arg_out_cleared, arg_str, c_string, entry, entry_value, new_handle, take_handle, Handle, Tagged};
use crate::error::{Error, Status};
use crate::plugin::{MetaEntry, Plugin};
use crate::plugin_config::{check_config_size, ConfigSource};
use crate::host_functions::with_call_context;
use std::ffi::{c_char, c_void, CString};

/// A loaded plugin with its own instance. Made by `fidius_host_load` or
/// `fidius_host_load_path`, owned by the caller, freed with
/// `fidius_host_plugin_free` (which destroys the instance, and unmaps the
/// library when no other handle uses it).
///
/// Shareable: calls may come from any number of threads at once. For
/// cdylib plugins the calls run concurrently on the one instance, as fidius
/// plugins (whose methods take `&self`) expect.
pub struct fidius_host_plugin_t {
    _private: [u8; 0],
}

pub(crate) struct PluginData {
    pub(crate) plugin: Plugin,
    info: Tagged<InfoData>,
    method_metadata: Vec<Vec<(CString, CString)>>,
    trait_metadata: Vec<(CString, CString)>,
    diagnostics: Vec<CString>,
    /// The names of the host interfaces the plugin imports.
    host_import_names: Vec<CString>,
}

impl Handle for fidius_host_plugin_t {
    type Inner = PluginData;
    const MAGIC: u64 = 0x4644_504c_5547_4e31;
    const NAME: &'static str = "fidius_host_plugin_t";
}

fn c_pairs(entries: &[MetaEntry]) -> Vec<(CString, CString)> {
    entries.iter().map(|e| (c_string(&e.key), c_string(&e.value))).collect()
}

pub(crate) fn new(plugin: Plugin) -> *mut fidius_host_plugin_t {
    let description = plugin.description();
    new_handle::<fidius_host_plugin_t>(PluginData {
        info: super::info::tagged(description.info.clone()),
        method_metadata: (0..plugin.method_count())
            .map(|m| c_pairs(plugin.method_metadata(m).unwrap_or_default()))
            .collect(),
        trait_metadata: c_pairs(plugin.trait_metadata()),
        diagnostics: description.diagnostics.iter().map(|d| c_string(d)).collect(),
        host_import_names: description.host_imports.iter().map(|i| c_string(&i.interface_name)).collect(),
        plugin,
    })
}

/// Calls method `method` (its index in the interface's declaration order)
/// with `input`: the bincode-encoded argument tuple, or the raw bytes of a
/// `#[wire(raw)]` method. `input` is borrowed for the call and may be NULL
/// when `input_len` is 0.
///
/// Outcomes — what `*output`, `*err` and the plugin handle hold after each:
/// - OK: `*output` holds the result payload (bincode of the return value,
///   or raw bytes), owned by the caller: release it with
///   `fidius_host_bytes_free`; it stays valid after the plugin and host are
///   freed. `*err` is NULL.
/// - An argument error (NULL_ARGUMENT, MISUSE, METHOD_OUT_OF_RANGE,
///   NOT_IMPLEMENTED, INPUT_TOO_LARGE): nothing reached the plugin.
///   `*output` is empty ({NULL, 0}); `*err` (when `err` is not NULL) says
///   why — for METHOD_OUT_OF_RANGE, `fidius_host_error_method_out_of_range`
///   gives the index and the method count. The handle is unchanged.
/// - PLUGIN_ERROR (the method returned `Err(PluginError)`): `*output` is
///   empty; `*err` carries the plugin's code, message and details
///   (`fidius_host_error_plugin_code` and friends). The plugin is usable.
/// - PLUGIN_PANIC (a cdylib method panicked; the panic was caught inside
///   the plugin): `*output` is empty, `*err` has the panic message. The
///   plugin is usable.
/// - PLUGIN_TRAP, TIMEOUT, MEMORY_LIMIT (WASM: the guest trapped, ran past
///   its deadline, or grew its memory past the cap; Python: TIMEOUT when
///   the deadline ended the call): `*output` is empty, `*err` says which.
///   The handle stays usable: a WASM plugin's instance was discarded and
///   its next call runs on a fresh one (guest state is lost); a Python
///   plugin keeps its module state.
/// - INSTANCE_POOL_EXHAUSTED (WASM with a pool): no instance could be
///   made; nothing ran. Retry later.
/// - CONFIG_REJECTED (a configured WASM plugin whose call needed a new
///   instance — after a failure, or with a fresh instance per call — and
///   whose `fidius-configure` failed on it): nothing else ran; the next
///   call tries a new instance again.
/// - PLUGIN_SERIALIZATION, PLUGIN_PROTOCOL, OUTPUT_TOO_LARGE: the plugin
///   ran, but its input or output was not what the method declares, or
///   the output is over the limit; `*output` is empty and the output was
///   freed. The plugin is usable.
/// A native plugin that crashes (a segfault, `abort()`) takes the process
/// with it: in-process native code cannot be contained.
///
/// - STREAM_MISMATCH: the interface given at load says the method streams
///   (call it with `fidius_host_plugin_call_stream` or
///   `_call_client_stream`); nothing reached the plugin. Without an
///   interface the host cannot tell, and a streaming method must not be
///   called this way.
///
/// Errors: NULL_ARGUMENT, MISUSE, METHOD_OUT_OF_RANGE, NOT_IMPLEMENTED (an
/// optional method the plugin lacks), STREAM_MISMATCH, INPUT_TOO_LARGE,
/// PLUGIN_ERROR, PLUGIN_PANIC (the plugin stays usable),
/// PLUGIN_SERIALIZATION (input not what the method expects),
/// OUTPUT_TOO_LARGE, PLUGIN_PROTOCOL.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    input: *const u8,
    input_len: usize,
    output: *mut fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let output = arg_out_cleared(output, "output")?;
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        let input = arg_bytes(input, input_len, "input")?;
        *output = fidius_host_bytes_t::from_output(plugin.call_raw(method, input)?);
        Ok(())
    })
}

/// Like `fidius_host_plugin_call`, with a context for the host functions
/// the plugin calls during this call: a callback of a binding
/// (`fidius_host_binding_new_raw`, `_new_json`) that the plugin calls from
/// this thread while this call runs gets `call_context` — so it knows which
/// request it serves, even when several calls on several threads run at
/// once. A callback from a thread the plugin started gets NULL (no native
/// code can tell which call started a thread); WASM plugins call back only
/// on the calling thread. Calls nested inside a callback inherit the
/// context unless they set their own. `call_context` may be NULL (no
/// context); the pointer is never dereferenced.
///
/// Outcomes and errors: as `fidius_host_plugin_call`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_with_context(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    input: *const u8,
    input_len: usize,
    call_context: *mut c_void,
    output: *mut fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    // SAFETY: the arguments are passed on as the caller gave them.
    with_call_context(call_context as usize, || unsafe { fidius_host_plugin_call(plugin, method, input, input_len, output, err) })
}

/// Like `fidius_host_plugin_call_json`, with a context for the host
/// functions the plugin calls during this call, as
/// `fidius_host_plugin_call_with_context` describes (`call_context` may be
/// NULL).
///
/// Outcomes and errors: as `fidius_host_plugin_call_json`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_json_with_context(
    plugin: *const fidius_host_plugin_t,
    method: *const c_char,
    method_len: usize,
    args_json: *const c_char,
    args_len: usize,
    call_context: *mut c_void,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_call_context(call_context as usize, || {
        // SAFETY: the arguments are passed on as the caller gave them.
        unsafe { fidius_host_plugin_call_json(plugin, method, method_len, args_json, args_len, json_out, json_len_out, err) }
    })
}

/// Like `fidius_host_plugin_call_with_context`, stopped when `cancel` is
/// cancelled (`fidius_host_cancel_token_cancel`, from any thread). `cancel`
/// may be NULL: the call cannot be cancelled, exactly
/// `fidius_host_plugin_call_with_context`. `call_context` may be NULL.
/// Both are borrowed for the call.
///
/// Outcomes: as `fidius_host_plugin_call`, and
/// - CANCELLED: the token was cancelled before the call started (nothing
///   reached the plugin), or while it ran (the plugin was stopped as
///   `fidius_host_cancel_token_cancel` describes per runtime). `*output` is
///   empty: output in flight is never half-delivered.
/// - UNSUPPORTED: the plugin is a native library loaded in-process, whose
///   code cannot be stopped once it runs; nothing was called. Load it
///   isolated (`fidius_host_load_options_set_isolation`) to cancel its
///   calls, or call it with `cancel` NULL.
///
/// Thread-safety: as `fidius_host_plugin_call`.
///
/// Errors: as `fidius_host_plugin_call`, and CANCELLED, UNSUPPORTED.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_cancellable(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    input: *const u8,
    input_len: usize,
    call_context: *mut c_void,
    cancel: *const fidius_host_cancel_token_t,
    output: *mut fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_call_context(call_context as usize, || {
        entry(err, || {
            let output = arg_out_cleared(output, "output")?;
            let plugin = &arg_handle(plugin, "plugin")?.plugin;
            let input = arg_bytes(input, input_len, "input")?;
            let cancel = arg_cancel(cancel)?;
            *output = fidius_host_bytes_t::from_output(plugin.call_raw_cancellable(method, input, cancel)?);
            Ok(())
        })
    })
}

/// Like `fidius_host_plugin_call_json_with_context`, stopped when `cancel`
/// is cancelled, as `fidius_host_plugin_call_cancellable` describes.
/// `cancel` may be NULL (an ordinary call), and `call_context` may be NULL
/// (no context). On CANCELLED and UNSUPPORTED `*json_out` is NULL.
///
/// Thread-safety: as `fidius_host_plugin_call_json`.
///
/// Errors: as `fidius_host_plugin_call_json`, and CANCELLED, UNSUPPORTED.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_json_cancellable(
    plugin: *const fidius_host_plugin_t,
    method: *const c_char,
    method_len: usize,
    args_json: *const c_char,
    args_len: usize,
    call_context: *mut c_void,
    cancel: *const fidius_host_cancel_token_t,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_call_context(call_context as usize, || {
        call_json(plugin, json_out, json_len_out, err, |p| {
            let method = arg_str(method, method_len, "method")?;
            let args = arg_str(args_json, args_len, "args_json")?;
            p.call_json_cancellable(method, args, arg_cancel(cancel)?)
        })
    })
}

/// Calls the method called `method` (UTF-8 of `method_len` bytes, or
/// NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`) with JSON arguments:
/// `args_json` (`args_len` bytes or NUL-terminated) is a JSON array with
/// one element per argument, e.g. `[3, 7]` or `[{"x": 1.5, "y": 2}]`. The
/// plugin must have been loaded with an interface, whose types guide the
/// encoding (docs/interfaces.md gives each type's JSON form). Inputs are borrowed
/// for the call.
///
/// On success `*json_out` is the result as NUL-terminated JSON text owned
/// by the caller (free with `fidius_host_string_free`; `null` for methods
/// returning nothing), and `*json_len_out`, when not NULL, its length. On
/// failure `*json_out` is NULL, `*json_len_out` 0, and nothing was sent to
/// the plugin unless the failure came from the plugin itself; the plugin
/// handle is left as `fidius_host_plugin_call` describes for each outcome
/// (PLUGIN_ERROR with the plugin's code, message and details; PLUGIN_PANIC;
/// PLUGIN_TRAP, TIMEOUT, MEMORY_LIMIT; OUTPUT_TOO_LARGE; PLUGIN_PROTOCOL).
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, NO_INTERFACE,
/// UNKNOWN_METHOD, STREAM_MISMATCH (a streaming method: see
/// `fidius_host_plugin_call_stream`), NOT_IMPLEMENTED, INVALID_JSON,
/// ARGUMENT_MISMATCH (count, type or range; names the argument position
/// and expected type), INPUT_TOO_LARGE, PLUGIN_ERROR,
/// PLUGIN_PANIC, PLUGIN_SERIALIZATION, OUTPUT_TOO_LARGE, PLUGIN_PROTOCOL
/// (the result does not decode as the declared type).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_json(
    plugin: *const fidius_host_plugin_t,
    method: *const c_char,
    method_len: usize,
    args_json: *const c_char,
    args_len: usize,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    call_json(plugin, json_out, json_len_out, err, |p| {
        let method = arg_str(method, method_len, "method")?;
        p.call_json(method, arg_str(args_json, args_len, "args_json")?)
    })
}

/// Like `fidius_host_plugin_call_json`, by method index (declaration order).
///
/// Errors: as `fidius_host_plugin_call_json`, with METHOD_OUT_OF_RANGE
/// instead of UNKNOWN_METHOD.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_json_index(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    args_json: *const c_char,
    args_len: usize,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    call_json(plugin, json_out, json_len_out, err, |p| p.call_json_index(method, arg_str(args_json, args_len, "args_json")?))
}

/// The shared body of the JSON calls: out-params cleared first, the result
/// handed out as a C string.
pub(crate) fn call_json(
    plugin: *const fidius_host_plugin_t,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
    call: impl FnOnce(&Plugin) -> crate::Result<String>,
) -> Status {
    entry(err, || {
        let json_out = arg_out_cleared(json_out, "json_out")?;
        // SAFETY: the caller passes a writable size_t or NULL.
        let mut json_len_out = unsafe { json_len_out.as_mut() };
        if let Some(len) = json_len_out.as_deref_mut() {
            *len = 0;
        }
        let json = call(&arg_handle(plugin, "plugin")?.plugin)?;
        // JSON text escapes control characters, so it holds no NUL byte.
        let json = CString::new(json).unwrap_or_else(|e| c_string(&String::from_utf8_lossy(&e.into_vec())));
        if let Some(len) = json_len_out {
            *len = json.as_bytes().len();
        }
        *json_out = json.into_raw();
        Ok(())
    })
}

/// The interface the plugin was loaded with. On success `*interface_out`
/// is a new handle on it, owned by the caller (free with
/// `fidius_host_interface_free`).
///
/// Errors: NULL_ARGUMENT, MISUSE, NO_INTERFACE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_interface(
    plugin: *const fidius_host_plugin_t,
    interface_out: *mut *mut fidius_host_interface_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let interface_out = arg_out_cleared(interface_out, "interface_out")?;
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        let interface = plugin.interface().ok_or_else(|| {
            Error::new(Status::NoInterface, format!("plugin '{}' was loaded without an interface", plugin.info().name))
        })?;
        *interface_out = super::interface::new(interface.clone());
        Ok(())
    })
}

/// Use figures of an isolated plugin handle: counts since it was loaded.
#[repr(C)]
pub struct fidius_host_worker_usage_t {
    /// Calls sent to a worker.
    pub calls: u64,
    /// Calls that failed, whatever the reason (plugin errors included).
    pub errors: u64,
    /// Calls that passed the deadline (their worker was killed).
    pub timeouts: u64,
    /// Workers started after the first.
    pub restarts: u64,
    /// The process id of the running worker; 0 when none runs (lost, and
    /// not restarted yet).
    pub pid: i32,
    /// CPU time, user and system, of every worker the handle had, in
    /// microseconds: the ended ones' final figures (from `wait4`) plus the
    /// running one's so far (from `/proc`).
    pub cpu_time_us: u64,
    /// The largest peak resident memory of those workers, in bytes (the
    /// running one's so far: its `VmHWM`).
    pub peak_memory_bytes: u64,
}

/// Reads the use figures of an isolated plugin into `*usage_out`.
///
/// Errors: NULL_ARGUMENT, MISUSE, UNSUPPORTED (the plugin runs
/// in-process; `*usage_out` is zeroed).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_worker_usage(
    plugin: *const fidius_host_plugin_t,
    usage_out: *mut fidius_host_worker_usage_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let out = super::arg_out(usage_out, "usage_out")?;
        *out = fidius_host_worker_usage_t { calls: 0, errors: 0, timeouts: 0, restarts: 0, pid: 0, cpu_time_us: 0, peak_memory_bytes: 0 };
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        let usage = plugin.worker_usage().ok_or_else(|| {
            Error::new(Status::Unsupported, format!("plugin '{}' runs in-process: it has no worker", plugin.info().name))
        })?;
        *out = fidius_host_worker_usage_t {
            calls: usage.calls,
            errors: usage.errors,
            timeouts: usage.timeouts,
            restarts: usage.restarts,
            pid: usage.pid,
            cpu_time_us: u64::try_from(usage.cpu_time.as_micros()).unwrap_or(u64::MAX),
            peak_memory_bytes: usage.peak_memory,
        };
        Ok(())
    })
}

/// Reads into `*bytes_out` the largest linear memory an instance of a WASM
/// plugin reached, in bytes: its high-water mark since load, over every
/// instance the handle made (fresh instances per call, instances after a
/// trap) and the handles made from it by `fidius_host_plugin_new_instance`.
/// Compare it with the memory cap (`fidius_host_builder_set_wasm_memory_limit`)
/// to size the cap. Isolated plugins report their workers' peak memory in
/// `fidius_host_plugin_worker_usage` instead.
///
/// Thread-safety: any thread, while calls run.
///
/// Errors: NULL_ARGUMENT, MISUSE, UNSUPPORTED (not a WASM plugin;
/// `*bytes_out` is 0).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_memory_high_water(
    plugin: *const fidius_host_plugin_t,
    bytes_out: *mut u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let out = super::arg_out(bytes_out, "bytes_out")?;
        *out = 0;
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        *out = plugin.memory_high_water().ok_or_else(|| {
            Error::new(Status::Unsupported, format!("plugin '{}' is not a WASM plugin: it has no linear memory of its own", plugin.info().name))
        })?;
        Ok(())
    })
}

/// Number of load diagnostics: notes about a load that did not stop it
/// (e.g. a precompiled `.cwasm` that was not used, and why). 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_diagnostic_count(plugin: *const fidius_host_plugin_t) -> usize {
    super::get(plugin, 0, |p| p.diagnostics.len())
}

/// Load diagnostic `index`, or NULL when out of range. Borrowed: valid
/// until `plugin` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_diagnostic(plugin: *const fidius_host_plugin_t, index: usize) -> *const c_char {
    super::get(plugin, std::ptr::null(), |p| p.diagnostics.get(index).map_or(std::ptr::null(), |d| d.as_ptr()))
}

/// Number of recent outbound HTTP requests of this plugin that its egress
/// policy denied (the most recent 256 are kept). 0 for NULL and for
/// plugins that send no requests.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_denied_request_count(plugin: *const fidius_host_plugin_t) -> usize {
    super::get(plugin, 0, |p| p.plugin.denied_requests().len())
}

/// Denied request `index` (oldest first): its method and URL
/// (`scheme://authority/path?query`; for a socket `TCP` or `UDP` and
/// `tcp://ip:port` or `udp://ip:port`), owned by the caller (free each with
/// `fidius_host_string_free`). On failure both are NULL.
///
/// Errors: NULL_ARGUMENT, MISUSE, INVALID_ARGUMENT (index out of range).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_denied_request(
    plugin: *const fidius_host_plugin_t,
    index: usize,
    method_out: *mut *mut c_char,
    url_out: *mut *mut c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        super::clear_out(method_out);
        super::clear_out(url_out);
        let method_out = arg_out(method_out, "method_out")?;
        let url_out = arg_out(url_out, "url_out")?;
        let denied = arg_handle(plugin, "plugin")?.plugin.denied_requests();
        let request = denied_request(&denied, index)?;
        *method_out = c_string(&request.method).into_raw();
        *url_out = c_string(&request.url).into_raw();
        Ok(())
    })
}

/// Why denied request `index` (oldest first) was denied, e.g. "denied by
/// the egress policy", owned by the caller (free with
/// `fidius_host_string_free`). On failure `*reason_out` is NULL.
///
/// Errors: NULL_ARGUMENT, MISUSE, INVALID_ARGUMENT (index out of range).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_denied_request_reason(
    plugin: *const fidius_host_plugin_t,
    index: usize,
    reason_out: *mut *mut c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let reason_out = arg_out_cleared(reason_out, "reason_out")?;
        let denied = arg_handle(plugin, "plugin")?.plugin.denied_requests();
        *reason_out = c_string(&denied_request(&denied, index)?.reason).into_raw();
        Ok(())
    })
}

/// Entry `index` of a denial log, or INVALID_ARGUMENT.
fn denied_request(denied: &[crate::egress::DeniedRequest], index: usize) -> crate::Result<&crate::egress::DeniedRequest> {
    denied.get(index).ok_or_else(|| {
        Error::new(Status::InvalidArgument, format!("denied request {index} does not exist (the plugin has {})", denied.len()))
    })
}

/// The plugin's facts (name, interface, hash, …), or NULL for NULL.
/// Borrowed: valid until `plugin` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_info(plugin: *const fidius_host_plugin_t) -> *const fidius_host_plugin_info_t {
    super::get(plugin, std::ptr::null(), |p| p.info.as_handle())
}

/// Number of methods (valid indices are below it), or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_method_count(plugin: *const fidius_host_plugin_t) -> u32 {
    super::get(plugin, 0, |p| p.plugin.method_count())
}

/// Whether capability bit `bit` is set: the `bit`-th optional method of the
/// interface (counting optional methods only, from 0) is implemented.
/// False for NULL or `bit >= 64`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_has_capability(plugin: *const fidius_host_plugin_t, bit: u32) -> bool {
    super::get(plugin, false, |p| p.plugin.has_capability(bit))
}

/// Number of trait-level metadata pairs, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_trait_metadata_count(plugin: *const fidius_host_plugin_t) -> usize {
    super::get(plugin, 0, |p| p.trait_metadata.len())
}

/// Trait-level metadata pair `index` (declaration order). On success
/// `*key_out` and `*value_out` are borrowed NUL-terminated UTF-8 strings,
/// valid until `plugin` is freed; on failure they are NULL.
///
/// Errors: NULL_ARGUMENT, MISUSE, INVALID_ARGUMENT (index out of range).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_trait_metadata(
    plugin: *const fidius_host_plugin_t,
    index: usize,
    key_out: *mut *const c_char,
    value_out: *mut *const c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let outs = pair_outs(key_out, value_out)?;
        let pairs = &arg_handle(plugin, "plugin")?.trait_metadata;
        write_pair(outs, pairs, index, || "trait metadata".to_string())
    })
}

/// Number of host interfaces the plugin imports (`#[host_interface]`
/// traits its library calls), or 0 for NULL. Known for cdylib plugins
/// before anything is bound; 0 for WASM components (which name a host
/// interface only when they call it) and Python plugins (which have no
/// host calls in fidius 0.5.9).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_host_import_count(plugin: *const fidius_host_plugin_t) -> usize {
    super::get(plugin, 0, |p| p.host_import_names.len())
}

/// Imported host interface `index`, in the library's order: its name
/// (borrowed NUL-terminated UTF-8, valid until `plugin` is freed), version
/// and hash, as the plugin was built against them. Each out-parameter may
/// be NULL when not wanted. On failure `*name_out` is NULL and the numbers
/// are 0.
///
/// Errors: NULL_ARGUMENT (plugin), MISUSE, INVALID_ARGUMENT (index out of
/// range).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_host_import(
    plugin: *const fidius_host_plugin_t,
    index: usize,
    name_out: *mut *const c_char,
    version_out: *mut u32,
    hash_out: *mut u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        put(name_out, std::ptr::null());
        put(version_out, 0);
        put(hash_out, 0);
        let data = arg_handle(plugin, "plugin")?;
        let imports = data.plugin.host_imports();
        let import = imports.get(index).ok_or_else(|| {
            Error::new(
                Status::InvalidArgument,
                format!("host import {index} is out of range: plugin '{}' imports {}", data.plugin.info().name, imports.len()),
            )
        })?;
        put(name_out, data.host_import_names[index].as_ptr());
        put(version_out, import.interface_version);
        put(hash_out, import.interface_hash);
        Ok(())
    })
}

/// Writes `value` through an optional out-parameter.
fn put<T>(out: *mut T, value: T) {
    // SAFETY: NULL, or an out-parameter the caller lends for writing.
    if let Some(out) = unsafe { out.as_mut() } {
        *out = value;
    }
}

/// Number of metadata pairs of method `method` into `*count_out`.
///
/// Errors: NULL_ARGUMENT, MISUSE, METHOD_OUT_OF_RANGE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_method_metadata_count(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    count_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let count_out = arg_out(count_out, "count_out")?;
        *count_out = 0;
        *count_out = method_pairs(arg_handle(plugin, "plugin")?, method)?.len();
        Ok(())
    })
}

/// Metadata pair `index` of method `method`, as for
/// `fidius_host_plugin_trait_metadata`.
///
/// Errors: NULL_ARGUMENT, MISUSE, METHOD_OUT_OF_RANGE, INVALID_ARGUMENT
/// (index out of range).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_method_metadata(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    index: usize,
    key_out: *mut *const c_char,
    value_out: *mut *const c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let outs = pair_outs(key_out, value_out)?;
        let pairs = method_pairs(arg_handle(plugin, "plugin")?, method)?;
        write_pair(outs, pairs, index, || format!("metadata of method {method}"))
    })
}

fn pair_outs<'a>(
    key_out: *mut *const c_char,
    value_out: *mut *const c_char,
) -> crate::Result<(&'a mut *const c_char, &'a mut *const c_char)> {
    for out in [key_out, value_out] {
        if !out.is_null() {
            // SAFETY: non-NULL out-params are writable by contract.
            unsafe { *out = std::ptr::null() };
        }
    }
    Ok((arg_out(key_out, "key_out")?, arg_out(value_out, "value_out")?))
}

/// Stores pair `index` of `pairs` in the out-params, or fails naming `what`.
fn write_pair(
    (key_out, value_out): (&mut *const c_char, &mut *const c_char),
    pairs: &[(CString, CString)],
    index: usize,
    what: impl FnOnce() -> String,
) -> crate::Result<()> {
    let (key, value) = pairs.get(index).ok_or_else(|| {
        Error::new(
            Status::InvalidArgument,
            format!("{} index {index} is out of range (count {})", what(), pairs.len()),
        )
    })?;
    (*key_out, *value_out) = (key.as_ptr(), value.as_ptr());
    Ok(())
}

fn method_pairs(plugin: &PluginData, method: u32) -> crate::Result<&[(CString, CString)]> {
    plugin.method_metadata.get(method as usize).map(Vec::as_slice).ok_or_else(|| {
        Error::new(
            Status::MethodOutOfRange,
            format!("method {method} is out of range: plugin '{}' has {} methods", plugin.plugin.info().name, plugin.plugin.method_count()),
        )
        .method_out_of_range(method, plugin.plugin.method_count() as usize)
    })
}

/// Creates another instance of `plugin`, constructed with `config` (bincode
/// of the config type, `config_len` bytes, borrowed for the call; it may be
/// NULL when `config_len` is 0), as a new handle in `*instance_out`, owned by the
/// caller and freed with `fidius_host_plugin_free`. The instance shares the
/// plugin's loaded code — mapped library, compiled component or imported
/// module — and its load settings, and nothing else: its state is its own
/// (a cdylib `construct`, a WASM `fidius-configure` on instances of its
/// own, a Python `__fidius_configure__`), and it may outlive `plugin`:
/// the code stays loaded while any instance lives (instances of a WASM
/// plugin share its denial log, `fidius_host_plugin_denied_request`).
/// Configurations are checked as `fidius_host_load_options_set_config`
/// describes.
///
/// Outcomes:
/// - OK: `*instance_out` is the new handle; `*err` is NULL.
/// - CONFIG_INVALID, INPUT_TOO_LARGE (nothing reached the plugin),
///   CONFIG_REJECTED (the plugin refused the configuration: `construct`
///   returned NULL, `fidius-configure` trapped, `__fidius_configure__`
///   raised — its code, message and details are in `*err`'s plugin
///   fields), TIMEOUT, MEMORY_LIMIT: `*instance_out` is NULL, nothing was
///   created, and `plugin` is unchanged.
/// A cdylib plugin whose `configure` panics aborts the process: fidius's
/// `construct` does not catch panics, and in-process native code cannot be
/// contained.
///
/// Thread-safety: as a call on `plugin`; the new handle is independent.
///
/// Errors: NULL_ARGUMENT, MISUSE, CONFIG_INVALID, CONFIG_REJECTED,
/// INPUT_TOO_LARGE, TIMEOUT, MEMORY_LIMIT, INSTANCE_POOL_EXHAUSTED,
/// INVALID_COMPONENT (a WASM instance could not be made, or its
/// `fidius-configure` has the wrong type), INVALID_PYTHON_PLUGIN (reading
/// the methods of the object `__fidius_configure__` returned raised).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_new_instance(
    plugin: *const fidius_host_plugin_t,
    config: *const u8,
    config_len: usize,
    instance_out: *mut *mut fidius_host_plugin_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    new_instance(plugin, instance_out, err, || {
        let config = arg_bytes(config, config_len, "config")?;
        check_config_size(config.len())?;
        Ok(ConfigSource::Bincode(config.to_vec()))
    })
}

/// `fidius_host_plugin_new_instance` with the configuration as JSON text
/// (`json_len` bytes, or NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`),
/// checked against and encoded with the interface's config type, as
/// `fidius_host_load_options_set_config_json` describes.
///
/// Errors: as `fidius_host_plugin_new_instance`, and INVALID_UTF8,
/// INVALID_JSON.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_new_instance_json(
    plugin: *const fidius_host_plugin_t,
    json: *const c_char,
    json_len: usize,
    instance_out: *mut *mut fidius_host_plugin_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    new_instance(plugin, instance_out, err, || {
        let json = arg_str(json, json_len, "json")?;
        check_config_size(json.len())?;
        Ok(ConfigSource::Json(json.to_string()))
    })
}

/// The entry point of both `new_instance` functions: `config` reads the
/// configuration argument (checked before it is copied).
fn new_instance(
    plugin: *const fidius_host_plugin_t,
    instance_out: *mut *mut fidius_host_plugin_t,
    err: *mut *mut fidius_host_error_t,
    config: impl FnOnce() -> crate::Result<ConfigSource>,
) -> Status {
    entry(err, || {
        let instance_out = arg_out_cleared(instance_out, "instance_out")?;
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        *instance_out = new(plugin.new_instance(&config()?)?);
        Ok(())
    })
}

/// Frees a plugin handle: destroys its instance and, when no other handle
/// (or outstanding output) uses the library, unmaps it. NULL is a no-op.
/// No call on this handle may be running. An isolated plugin's worker is
/// asked to end (its plugin's destructor runs there) and waited for, at
/// most 500 ms before it is killed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_free(plugin: *mut fidius_host_plugin_t) {
    entry_value((), || drop(take_handle(plugin)))
}
