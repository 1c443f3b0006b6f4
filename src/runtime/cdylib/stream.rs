//! Streaming calls of native plugins, over fidius 0.5.9's
//! `FidiusStreamHandle`: a server-streaming or bidirectional method returns
//! a handle the host pulls with `next` into a buffer it owns; a `Stream<T>`
//! argument is a handle the host builds, whose `next` hands the plugin the
//! caller's items one at a time, when the plugin asks.
//!
//! Pulling happens on the caller's thread, one item per `next` (fidius's
//! own host pumps a thread into a queue): nothing is produced ahead of the
//! caller, and dropping a stream calls the plugin's `drop_fn` at once.

use super::library::Library;
use crate::abi::{status, FidiusStreamHandle, StreamDropFn, StreamNextFn};
use crate::error::{Error, PluginError, Result, Status};
use crate::stream::{Feed, Item, ItemSource};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

/// The first size of the buffer a stream's items are pulled into; it grows
/// to what an item needs, up to the output limit.
const FIRST_BUFFER: usize = 256;

/// A plugin's output stream.
pub struct PluginStream {
    handle: *mut FidiusStreamHandle,
    next: StreamNextFn,
    drop_fn: StreamDropFn,
    buffer: Vec<u8>,
    len: usize,
    /// The input handle of a bidirectional call: released after the output.
    input: Option<HostInput>,
    max_output: usize,
    /// `plugin 'name' method 'm'`, for messages.
    what: String,
    // Last: the code behind `next` and `drop_fn` stays mapped until both ran.
    _library: Arc<Library>,
}

// SAFETY: a fidius stream handle is driven from one thread at a time (the
// owner of this value); its producer is `Send`.
unsafe impl Send for PluginStream {}

impl PluginStream {
    /// Takes over the handle a streaming method returned in `out_ptr`,
    /// after checking it: aligned, with both functions in the library. A
    /// handle that fails the checks cannot be released safely and is left
    /// alone (an error says so).
    pub fn take(
        library: Arc<Library>,
        out_ptr: *mut u8,
        input: Option<HostInput>,
        max_output: usize,
        what: String,
    ) -> Result<PluginStream> {
        let handle = out_ptr.cast::<FidiusStreamHandle>();
        let protocol = |why: &str| Error::new(Status::PluginProtocol, format!("{what}: {why}; the stream handle is not used"));
        if handle.is_null() || !handle.is_aligned() {
            return Err(protocol("returned a NULL or misaligned stream handle"));
        }
        // SAFETY: non-NULL and aligned; the plugin says it points to a handle.
        let (next, drop_fn) = unsafe { ((*handle).next, (*handle).drop_fn) };
        let (Some(next), Some(drop_fn)) = (next, drop_fn) else {
            return Err(protocol("returned a stream handle without next or drop_fn"));
        };
        if !library.contains(next as *const c_void) || !library.contains(drop_fn as *const c_void) {
            return Err(protocol("returned a stream handle whose functions lie outside the library"));
        }
        Ok(PluginStream { handle, next, drop_fn, buffer: vec![0; FIRST_BUFFER], len: 0, input, max_output, what, _library: library })
    }

    fn error(&self, status: Status, why: impl std::fmt::Display) -> Error {
        Error::new(status, format!("{}: {why}", self.what))
    }

    /// One `next` into the buffer: its status and the length it reported.
    fn pull(&mut self) -> (i32, usize) {
        let mut out_len: u32 = 0;
        let cap = self.buffer.len().min(u32::MAX as usize) as u32;
        // SAFETY: the handle is live (dropped only in Drop); the buffer is
        // writable for `cap` bytes and never NULL (it has at least FIRST_BUFFER).
        let code = unsafe { (self.next)(self.handle, self.buffer.as_mut_ptr(), cap, &mut out_len) };
        (code, out_len as usize)
    }
}

impl ItemSource for PluginStream {
    fn advance(&mut self, _until: Option<Instant>) -> Result<bool> {
        let (mut code, mut len) = self.pull();
        if code == status::BUFFER_TOO_SMALL {
            if len > self.max_output {
                return Err(self.error(
                    Status::OutputTooLarge,
                    format!("a stream item of {len} bytes exceeds the host's limit of {} bytes", self.max_output),
                ));
            }
            if len <= self.buffer.len() {
                return Err(self.error(
                    Status::PluginProtocol,
                    format!("asked for a larger buffer but named {len} bytes, not more than the {} it had", self.buffer.len()),
                ));
            }
            crate::bytes::try_grow(&mut self.buffer, len)?;
            // fidius keeps the item across the retry: nothing is lost.
            (code, len) = self.pull();
        }
        let payload = |buffer: &[u8]| buffer.get(..len).map(<[u8]>::to_vec);
        match code {
            status::OK if len > self.buffer.len() => {
                Err(self.error(Status::PluginProtocol, format!("reported a {len}-byte item in a {}-byte buffer", self.buffer.len())))
            }
            status::OK => {
                self.len = len;
                Ok(true)
            }
            status::STREAM_END => Ok(false),
            status::PLUGIN_ERROR => match payload(&self.buffer).map(|p| PluginError::from_bincode(&p)) {
                Some(Ok(error)) => Err(self.error(Status::PluginError, format!("the stream failed: {}", error.message())).with_plugin_error(error)),
                _ => Err(self.error(Status::PluginProtocol, "the stream failed with an undecodable PluginError")),
            },
            status::PANIC => Err(self.error(Status::PluginPanic, "the stream's producer panicked")),
            status::SERIALIZATION_ERROR => Err(self.error(Status::PluginSerialization, "the plugin could not encode a stream item")),
            status::BUFFER_TOO_SMALL => Err(self.error(
                Status::PluginProtocol,
                format!("still reports the buffer too small after it grew to {} bytes", self.buffer.len()),
            )),
            other => Err(self.error(Status::PluginProtocol, format!("a stream's next returned unknown status {other}"))),
        }
    }

    fn item(&self) -> Item<'_> {
        Item::Bincode(&self.buffer[..self.len])
    }
}

impl Drop for PluginStream {
    fn drop(&mut self) {
        // SAFETY: the handle came from the plugin and is released once,
        // here; its producer (and a bidirectional plugin's hold on its
        // input) goes with it. fidius does not guard drop_fn against
        // panics, but a panic cannot unwind through `extern "C"`.
        unsafe { (self.drop_fn)(self.handle) };
        // The input after the output: the plugin released its hold above.
        self.input = None;
    }
}

/// A `Stream<T>` argument: the handle the host builds and hands the
/// plugin. fidius moves its ownership to the plugin, which calls `drop_fn`
/// once; here `drop_fn` only marks it released, and the host frees it
/// afterwards, so that a plugin that never took it (its arguments did not
/// decode) leaks nothing and one that keeps it frees nothing twice.
pub struct HostInput {
    handle: *mut FidiusStreamHandle,
    state: *mut InputState,
}

// SAFETY: the handle and state are only touched by the plugin during the
// call or stream that owns this value, and by this value after it.
unsafe impl Send for HostInput {}

struct InputState {
    feed: Feed,
    /// The item the plugin's buffer was too small for, kept for its retry.
    pending: Option<Vec<u8>>,
    released: bool,
}

impl HostInput {
    pub fn new(feed: Feed) -> HostInput {
        let state = Box::into_raw(Box::new(InputState { feed, pending: None, released: false }));
        let handle = Box::into_raw(Box::new(FidiusStreamHandle {
            next: Some(input_next),
            drop_fn: Some(input_drop),
            state: state.cast(),
        }));
        HostInput { handle, state }
    }

    /// The handle to pass to the plugin.
    pub fn handle(&self) -> *mut FidiusStreamHandle {
        self.handle
    }

    /// Frees the handle after a call that did not take it: the plugin
    /// reported that its other arguments did not decode, which it checks
    /// before it takes the stream.
    pub fn not_taken(mut self) {
        // SAFETY: the state lives until `release` frees it.
        unsafe { (*self.state).released = true };
        self.release();
    }

    fn release(&mut self) {
        if self.handle.is_null() {
            return;
        }
        // SAFETY: as above.
        let state = unsafe { &mut *self.state };
        state.feed.close();
        if state.released {
            // SAFETY: both were made by `new` and the plugin is done with them.
            unsafe {
                drop(Box::from_raw(self.handle));
                drop(Box::from_raw(self.state));
            }
        }
        // Otherwise the plugin still holds the handle, against fidius's
        // contract: it is left allocated (a few bytes) rather than freed
        // under the plugin; its `next` now answers the end.
        self.handle = std::ptr::null_mut();
    }
}

impl Drop for HostInput {
    fn drop(&mut self) {
        self.release();
    }
}

/// The input handle's `next`: the next item of the caller's producer.
unsafe extern "C" fn input_next(handle: *mut FidiusStreamHandle, buf: *mut u8, cap: u32, out_len: *mut u32) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes back the handle the host built.
        let state = unsafe { &mut *(*handle).state.cast::<InputState>() };
        if state.pending.is_none() {
            match state.feed.next_bincode() {
                Some(item) => state.pending = Some(item),
                None => return status::STREAM_END,
            }
        }
        let item = state.pending.as_ref().expect("set above");
        let Ok(len) = u32::try_from(item.len()) else {
            // Beyond what the ABI can name: the input ends here.
            state.pending = None;
            return status::STREAM_END;
        };
        // SAFETY: `out_len` is the plugin's writable out-parameter.
        unsafe { *out_len = len };
        if len > cap || buf.is_null() {
            return status::BUFFER_TOO_SMALL;
        }
        // SAFETY: the plugin's buffer holds `cap` >= `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(item.as_ptr(), buf, item.len()) };
        state.pending = None;
        status::OK
    }))
    .unwrap_or(status::PANIC)
}

/// The input handle's `drop_fn`: marks it released (the host frees it).
unsafe extern "C" fn input_drop(handle: *mut FidiusStreamHandle) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the plugin passes back the handle the host built.
    let state = unsafe { &mut *(*handle).state.cast::<InputState>() };
    state.released = true;
    state.pending = None;
}
