//! `fidius_host_stream_t`: streaming calls. A server-streaming or
//! bidirectional call gives a stream handle pulled item by item; the items
//! of a `Stream<T>` argument come from a producer callback.

use super::bytes::fidius_host_bytes_t;
use super::egress::fidius_host_userdata_free_fn;
use super::error::fidius_host_error_t;
use super::plugin::fidius_host_plugin_t;
use super::{arg_bytes, arg_handle, arg_out, arg_out_cleared, arg_str, entry, entry_value, get, new_handle, take_handle, Handle};
use super::FIDIUS_HOST_NUL_TERMINATED;
use crate::error::{Error, Result, Status};
use crate::plugin::Plugin;
use crate::stream::{Encoding, ItemProducer, ItemStream, StreamArgs};
use std::ffi::{c_char, c_void};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The output of a server-streaming or bidirectional call, pulled with
/// `fidius_host_stream_next` (bincode items) or `fidius_host_stream_next_json`.
/// Made by `fidius_host_plugin_call_stream` or `_call_stream_json`, owned
/// by the caller, freed with `fidius_host_stream_free` — before its end,
/// that cancels the stream: the plugin's producer is torn down then. One
/// thread at a time: a call while another thread is inside one on the same
/// stream is MISUSE. A stream may outlive its plugin handle and host; it
/// keeps the plugin's code loaded.
pub struct fidius_host_stream_t {
    _private: [u8; 0],
}

pub(crate) struct StreamData {
    inner: Mutex<StreamInner>,
}

struct StreamInner {
    stream: ItemStream,
    /// The last JSON item, NUL-terminated.
    json: Vec<u8>,
}

impl Handle for fidius_host_stream_t {
    type Inner = StreamData;
    const MAGIC: u64 = 0x4644_5354_5245_414d;
    const NAME: &'static str = "fidius_host_stream_t";
}

/// A producer callback: the next item of a `Stream<T>` argument. Set
/// `*item` and `*item_len` (bincode of the item type for the raw calls,
/// JSON text for the `_json` calls; `FIDIUS_HOST_NUL_TERMINATED` as the
/// length of NUL-terminated text) and return `FIDIUS_HOST_STATUS_OK`; the
/// bytes are copied before the producer is called again. Return
/// `FIDIUS_HOST_STATUS_STREAM_END` at the end. Any other status fails the
/// call with STREAM_INPUT_FAILED (the message names that status): the
/// plugin is told the input ended and its result is discarded.
///
/// Called when the plugin reads its next item, on the thread that called
/// the plugin (or that pulls the output of a bidirectional stream), never
/// after the call or stream ends. Must not unwind through the library.
pub type fidius_host_item_producer_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, item: *mut *const u8, item_len: *mut usize) -> u32>;

/// The items of a `Stream<T>` argument: a producer and its userdata.
/// `free_userdata` (may be NULL) is called with `userdata` once the input
/// is no longer used: when the call returns, when a bidirectional stream
/// ends or is freed, and also when the call fails before it starts.
#[repr(C)]
pub struct fidius_host_stream_input_t {
    /// Gives the next item; see `fidius_host_item_producer_fn`.
    pub produce: fidius_host_item_producer_fn,
    /// Passed to `produce` and `free_userdata` unchanged.
    pub userdata: *mut c_void,
    /// Releases `userdata`; may be NULL.
    pub free_userdata: fidius_host_userdata_free_fn,
}

/// The C producer as the core sees it.
struct CProducer {
    produce: unsafe extern "C" fn(*mut c_void, *mut *const u8, *mut usize) -> u32,
    userdata: *mut c_void,
    free_userdata: fidius_host_userdata_free_fn,
}

// SAFETY: the producer is called from one thread at a time (the one
// driving the call or stream), as documented.
unsafe impl Send for CProducer {}

impl Drop for CProducer {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the caller gave this function for this userdata; once.
            unsafe { free(self.userdata) };
        }
    }
}

impl ItemProducer for CProducer {
    fn produce(&mut self) -> Result<Option<&[u8]>> {
        let mut item: *const u8 = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: the caller's function, with its userdata and two out-params.
        let code = unsafe { (self.produce)(self.userdata, &mut item, &mut len) };
        match Status::from_code(code) {
            Some(Status::Ok) => {}
            Some(Status::StreamEnd) => return Ok(None),
            status => {
                let name = status.map_or_else(|| format!("unknown status {code}"), |s| s.name().to_string());
                return Err(Error::new(Status::StreamInputFailed, format!("the producer returned {name}")));
            }
        }
        if len == FIDIUS_HOST_NUL_TERMINATED && !item.is_null() {
            // SAFETY: NUL-terminated text, as the length says.
            len = unsafe { std::ffi::CStr::from_ptr(item.cast()) }.to_bytes().len();
        }
        let bytes = arg_bytes(item, len, "item")?;
        Ok(Some(bytes))
    }
}

/// The caller's input, owned from here on (so that every path releases it).
fn take_input(input: *const fidius_host_stream_input_t) -> Result<Option<CProducer>> {
    // SAFETY: NULL or a readable struct, as documented.
    let Some(input) = (unsafe { input.as_ref() }) else { return Ok(None) };
    let Some(produce) = input.produce else {
        if let Some(free) = input.free_userdata {
            // SAFETY: released on failure too, as documented.
            unsafe { free(input.userdata) };
        }
        return Err(Error::null_argument("input->produce"));
    };
    Ok(Some(CProducer { produce, userdata: input.userdata, free_userdata: input.free_userdata }))
}

/// Starts a server-streaming or bidirectional call of method `method`
/// (declaration order) with `args` (`args_len` bytes, may be NULL when 0):
/// the bincode tuple of every argument but the `Stream<T>` one. `input`
/// gives the items of a bidirectional method's `Stream<T>` argument
/// (bincode of its item type), read lazily as the plugin asks while the
/// output is pulled; it may be NULL, as it must be for a server-streaming
/// method. The struct is read during the call. The plugin must
/// have been loaded with an interface (it says which methods stream).
///
/// Outcomes:
/// - OK: `*stream_out` is the stream, owned by the caller
///   (`fidius_host_stream_free`). The plugin has started it; its items are
///   made as they are pulled.
/// - Any error: `*stream_out` is NULL, `input`'s userdata was released,
///   and nothing of the stream is left. STREAM_MISMATCH: the method does
///   not stream out, or `input` is missing (bidirectional) or given
///   (server-streaming); nothing ran. PLUGIN_ERROR and the other call
///   errors of `fidius_host_plugin_call`: the plugin failed to start it
///   (a PluginError from the start is decoded and its buffer freed).
///
/// Errors: NULL_ARGUMENT (plugin, stream_out, input->produce), MISUSE,
/// NO_INTERFACE, METHOD_OUT_OF_RANGE, NOT_IMPLEMENTED, STREAM_MISMATCH,
/// UNSUPPORTED (a runtime without streams), INPUT_TOO_LARGE,
/// PLUGIN_SERIALIZATION, PLUGIN_ERROR, PLUGIN_PANIC, PLUGIN_TRAP, TIMEOUT,
/// MEMORY_LIMIT, PLUGIN_PROTOCOL.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_stream(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    args: *const u8,
    args_len: usize,
    input: *const fidius_host_stream_input_t,
    stream_out: *mut *mut fidius_host_stream_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    start_stream(plugin, input, stream_out, err, Encoding::Bincode, |p| {
        Ok((method, StreamArgs::Bincode(arg_bytes(args, args_len, "args")?), p))
    })
}

/// Like `fidius_host_plugin_call_stream`, by method name (`method_len`
/// bytes or NUL-terminated), with JSON: `args_json` is a JSON array of
/// every argument but the `Stream<T>` one, `input` gives JSON items, and
/// the stream is pulled with `fidius_host_stream_next_json` (or
/// `fidius_host_stream_next`, which gives bincode).
///
/// Outcomes and errors: as `fidius_host_plugin_call_stream`, plus
/// INVALID_UTF8, UNKNOWN_METHOD, INVALID_JSON and ARGUMENT_MISMATCH.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_stream_json(
    plugin: *const fidius_host_plugin_t,
    method: *const c_char,
    method_len: usize,
    args_json: *const c_char,
    args_len: usize,
    input: *const fidius_host_stream_input_t,
    stream_out: *mut *mut fidius_host_stream_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    start_stream(plugin, input, stream_out, err, Encoding::Json, |p| {
        let index = method_index(p, method, method_len)?;
        Ok((index, StreamArgs::Json(arg_str(args_json, args_len, "args_json")?), p))
    })
}

fn method_index(plugin: &Plugin, method: *const c_char, method_len: usize) -> Result<u32> {
    let name = arg_str(method, method_len, "method")?;
    let interface = plugin.interface().ok_or_else(|| {
        Error::new(Status::NoInterface, format!("plugin '{}' was loaded without an interface; streaming calls need one", plugin.info().name))
    })?;
    interface.method_index(name)
}

type Target<'a> = (u32, StreamArgs<'a>, &'a Plugin);

fn start_stream<'a>(
    plugin: *const fidius_host_plugin_t,
    input: *const fidius_host_stream_input_t,
    stream_out: *mut *mut fidius_host_stream_t,
    err: *mut *mut fidius_host_error_t,
    encoding: Encoding,
    target: impl FnOnce(&'a Plugin) -> Result<Target<'a>>,
) -> Status {
    // Owned first, so that every failure below releases the userdata.
    let producer = take_input(input);
    entry(err, || {
        super::clear_out(stream_out);
        let producer = producer?;
        let stream_out = arg_out(stream_out, "stream_out")?;
        let (index, args, plugin) = target(&arg_handle(plugin, "plugin")?.plugin)?;
        let input = producer.map(|p| (Box::new(p) as Box<dyn ItemProducer>, encoding));
        let stream = plugin.call_stream(index, args, input)?;
        *stream_out = new_handle::<fidius_host_stream_t>(StreamData { inner: Mutex::new(StreamInner { stream, json: Vec::new() }) });
        Ok(())
    })
}

/// A client-streaming call of method `method`: `args` is the bincode tuple
/// of every argument but the `Stream<T>` one, `input` gives the items of
/// the `Stream<T>` argument (bincode of its item type) — read as far as
/// the plugin reads them, during the call, on this thread. One result.
///
/// Outcomes: as `fidius_host_plugin_call` (OK: `*output` holds the result,
/// owned by the caller; errors: `*output` empty). Besides: STREAM_MISMATCH
/// when the method has no `Stream<T>` argument or returns a stream (nothing
/// ran); STREAM_INPUT_FAILED when the producer failed or gave an item that
/// is not a valid value of the item type (the plugin was told the input
/// ended; its result was discarded and freed). `input`'s userdata is
/// released before this function returns, whatever the outcome.
///
/// Errors: NULL_ARGUMENT (plugin, input, input->produce, output), MISUSE,
/// NO_INTERFACE, METHOD_OUT_OF_RANGE, NOT_IMPLEMENTED, STREAM_MISMATCH,
/// STREAM_INPUT_FAILED, UNSUPPORTED, INPUT_TOO_LARGE, PLUGIN_ERROR,
/// PLUGIN_PANIC, PLUGIN_SERIALIZATION, PLUGIN_TRAP, TIMEOUT, MEMORY_LIMIT,
/// OUTPUT_TOO_LARGE, PLUGIN_PROTOCOL.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_client_stream(
    plugin: *const fidius_host_plugin_t,
    method: u32,
    args: *const u8,
    args_len: usize,
    input: *const fidius_host_stream_input_t,
    output: *mut fidius_host_bytes_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    let producer = take_input(input);
    entry(err, || {
        let producer = producer?.ok_or_else(|| Error::null_argument("input"))?;
        let output = arg_out_cleared(output, "output")?;
        let plugin = &arg_handle(plugin, "plugin")?.plugin;
        let args = StreamArgs::Bincode(arg_bytes(args, args_len, "args")?);
        let result = plugin.call_client_stream_raw(method, args, Box::new(producer), Encoding::Bincode)?;
        *output = fidius_host_bytes_t::from_output(result);
        Ok(())
    })
}

/// Like `fidius_host_plugin_call_client_stream`, by method name, with JSON:
/// `args_json` is a JSON array of every argument but the `Stream<T>` one,
/// `input` gives JSON items, and the result is JSON text as
/// `fidius_host_plugin_call_json` hands it out (`*json_out`, freed with
/// `fidius_host_string_free`; `*json_len_out`, when not NULL, its length).
///
/// Outcomes and errors: as `fidius_host_plugin_call_client_stream`, plus
/// INVALID_UTF8, UNKNOWN_METHOD, INVALID_JSON and ARGUMENT_MISMATCH.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_plugin_call_client_stream_json(
    plugin: *const fidius_host_plugin_t,
    method: *const c_char,
    method_len: usize,
    args_json: *const c_char,
    args_len: usize,
    input: *const fidius_host_stream_input_t,
    json_out: *mut *mut c_char,
    json_len_out: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    let producer = take_input(input);
    super::plugin::call_json(plugin, json_out, json_len_out, err, |p| {
        let producer = producer?.ok_or_else(|| Error::null_argument("input"))?;
        let index = method_index(p, method, method_len)?;
        let args = StreamArgs::Json(arg_str(args_json, args_len, "args_json")?);
        p.call_client_stream_json(index, args, Box::new(producer), Encoding::Json)
    })
}

/// The stream, locked for one call: MISUSE when another thread is inside one.
fn locked<'a>(stream: *mut fidius_host_stream_t) -> Result<std::sync::MutexGuard<'a, StreamInner>> {
    let data = arg_handle(stream, "stream")?;
    data.inner.try_lock().map_err(|e| match e {
        std::sync::TryLockError::WouldBlock => Error::new(
            Status::Misuse,
            "the stream is in use by another thread (a stream is used by one thread at a time)",
        ),
        std::sync::TryLockError::Poisoned(_) => Error::new(Status::Misuse, "the stream failed inside an earlier call"),
    })
}

/// Pulls the next item as bincode of the item type: OK with `*item` and
/// `*item_len` set (borrowed from the stream until its next call or its
/// free; `*item` is non-NULL even for an empty item), STREAM_END when the
/// stream has ended (`*item` NULL, `*item_len` 0), or the error that ended
/// it. The plugin makes the item now, on this thread (a bidirectional
/// plugin reads its input, through the producer, as it needs).
///
/// Outcomes: after STREAM_END or an error the stream is over — its
/// producer is torn down and every later call answers the same status —
/// and is still freed with `fidius_host_stream_free`. The errors are the
/// plugin's, as each runtime reports them: PLUGIN_ERROR (code, message
/// and details; a Python generator's `PluginError`), PLUGIN_PANIC (a
/// native producer panicked), PLUGIN_TRAP (a WASM guest trapped), TIMEOUT
/// (the call deadline of one item, or the stream's deadline), MEMORY_LIMIT,
/// OUTPUT_TOO_LARGE (an item over the output limit), PLUGIN_SERIALIZATION,
/// PLUGIN_PROTOCOL, STREAM_INPUT_FAILED (a bidirectional stream's producer
/// failed).
///
/// Errors: NULL_ARGUMENT (stream, item, item_len), MISUSE (another thread
/// is using the stream), STREAM_END, and the errors above.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_stream_next(
    stream: *mut fidius_host_stream_t,
    item: *mut *const u8,
    item_len: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    pull(item, item_len, err, |item, item_len| {
        let mut inner = locked(stream)?;
        match inner.stream.next_raw()? {
            Some(bytes) => {
                // A valid pointer even for an empty item.
                *item = if bytes.is_empty() { [].as_ptr() } else { bytes.as_ptr() };
                *item_len = bytes.len();
                Ok(Status::Ok)
            }
            None => Ok(Status::StreamEnd),
        }
    })
}

/// Like `fidius_host_stream_next`, the item as NUL-terminated JSON text
/// (`*json_len`, its length without the NUL), borrowed from the stream
/// until its next call or its free.
///
/// Outcomes and errors: as `fidius_host_stream_next`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_stream_next_json(
    stream: *mut fidius_host_stream_t,
    json: *mut *const c_char,
    json_len: *mut usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    pull(json, json_len, err, |json, json_len| {
        let mut inner = locked(stream)?;
        let inner = &mut *inner;
        match inner.stream.next_json()? {
            Some(text) => {
                inner.json.clear();
                inner.json.extend_from_slice(text.as_bytes());
                inner.json.push(0);
                *json = inner.json.as_ptr().cast();
                *json_len = inner.json.len() - 1;
                Ok(Status::Ok)
            }
            None => Ok(Status::StreamEnd),
        }
    })
}

/// The shape of both `next`s: out-params cleared, STREAM_END as a status.
fn pull<T>(
    item: *mut *const T,
    item_len: *mut usize,
    err: *mut *mut fidius_host_error_t,
    next: impl FnOnce(&mut *const T, &mut usize) -> Result<Status>,
) -> Status {
    let mut outcome = Status::Ok;
    let status = entry(err, || {
        let item = arg_out(item, "item")?;
        *item = std::ptr::null();
        let item_len = arg_out(item_len, "item_len")?;
        *item_len = 0;
        outcome = next(item, item_len)?;
        if outcome == Status::StreamEnd {
            *item = std::ptr::null();
            *item_len = 0;
        }
        Ok(())
    });
    if status == Status::Ok {
        outcome
    } else {
        status
    }
}

/// Ends the stream with TIMEOUT once `timeout_ms` milliseconds from now
/// have passed (0 removes the deadline). A WASM or Python plugin busy
/// making an item then is stopped; a native plugin is checked between
/// items. The call deadline of each item still applies.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_stream_set_deadline(
    stream: *mut fidius_host_stream_t,
    timeout_ms: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let deadline = (timeout_ms != 0).then(|| Instant::now() + Duration::from_millis(timeout_ms));
        locked(stream)?.stream.set_deadline(deadline);
        Ok(())
    })
}

/// How many items of its input a bidirectional stream's plugin has read
/// so far; 0 for a server stream, NULL or a stream in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_stream_items_read(stream: *const fidius_host_stream_t) -> u64 {
    get(stream, 0, |data| data.inner.try_lock().map_or(0, |inner| inner.stream.items_read()))
}

/// Frees a stream; before its end, cancels it: the plugin's producer is
/// torn down now (its `drop`, a generator's `close()`, the WASM resource
/// dropped), not drained, and a bidirectional stream's input released.
/// NULL is a no-op. Must not be called while another thread is using the
/// stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_stream_free(stream: *mut fidius_host_stream_t) {
    entry_value((), || drop(take_handle(stream)))
}
