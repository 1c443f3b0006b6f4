//! Native fidius plugins: vtable calls on a validated descriptor.
//!
//! Each [`CdylibPlugin`] owns one instance (`construct` with its
//! configuration, or an empty one, at creation; `destroy` on drop) and shares its [`Library`] with every other
//! plugin handle from the same file. Calls take `&self`, so one handle serves
//! many threads at once, as fidius plugins expect.

mod arena;
mod host_table;
pub mod library;
mod stream;

use crate::abi::{self, status};
use crate::bytes::{ForeignAllocator, OutputBytes};
use crate::cancel::CancelToken;
use crate::error::{Error, PluginError, Result, Status};
use crate::host_functions::HostBindings;
use crate::interface::Interface;
use crate::plugin::{BufferStrategy, Plugin, PluginBackend};
use crate::plugin_config::PluginConfig;
use crate::stream::{CallResult, Feed, ItemSource, StreamArgs};
use library::{Library, ValidDescriptor};
use stream::{HostInput, PluginStream};
use std::ffi::c_void;
use std::sync::Arc;

/// Any valid address: fidius plugins must never see a NULL input pointer,
/// even for empty input (debug builds abort on it).
static EMPTY_INPUT: u8 = 0;

/// Creates a plugin handle for `library.plugins()[index]`, with its own
/// instance: constructed from `config`, or from an empty configuration
/// (what fidius's own host passes for a plugin without one). The host
/// functions the library imports are bound first, from `host_bindings`.
pub fn instantiate(
    library: Arc<Library>,
    index: usize,
    max_output: usize,
    config: Option<&PluginConfig>,
    host_bindings: &HostBindings,
) -> Result<Plugin> {
    host_table::bind(&library, host_bindings)?;
    let descriptor = &library.plugins()[index];
    let description = descriptor.description.clone();
    let backend = CdylibPlugin::construct(library, index, max_output, config)?;
    Ok(Plugin::new(description, Box::new(backend)))
}

struct CdylibPlugin {
    library: Arc<Library>,
    index: usize,
    instance: *mut c_void,
    /// Releases plugin-allocated outputs; `None` for Arena plugins.
    allocator: Option<ForeignAllocator>,
    max_output: usize,
    name: Arc<str>,
}

// SAFETY: fidius instances are `Send + Sync` (methods take `&self`); the
// pointer is only passed back to the plugin.
unsafe impl Send for CdylibPlugin {}
unsafe impl Sync for CdylibPlugin {}

impl CdylibPlugin {
    fn construct(library: Arc<Library>, index: usize, max_output: usize, config: Option<&PluginConfig>) -> Result<CdylibPlugin> {
        let descriptor = &library.plugins()[index];
        let name: Arc<str> = descriptor.description.info.name.as_str().into();
        let input = config.map(|c| c.bincode(&name)).transpose()?.unwrap_or_default();
        // SAFETY: `construct` was checked to lie in the library; it reads
        // `input.len()` bytes from a non-NULL pointer.
        let instance = unsafe { (descriptor.construct)(input_ptr(input), input.len() as u32) };
        if instance.is_null() {
            return Err(match config {
                None => Error::at(
                    Status::ConstructFailed,
                    library.path(),
                    format!(
                        "plugin '{name}': construct returned NULL for an empty configuration (a plugin declared \
                         with `config = ...` must be loaded with one)"
                    ),
                ),
                Some(_) => Error::at(
                    Status::ConfigRejected,
                    library.path(),
                    format!("plugin '{name}': construct returned NULL: the plugin could not decode its configuration ({} bytes)", input.len()),
                ),
            });
        }
        let allocator = descriptor.free_buffer.map(|free| {
            let keep_alive: Arc<dyn std::any::Any + Send + Sync> = library.clone();
            ForeignAllocator::new(free, keep_alive)
        });
        Ok(CdylibPlugin { library, index, instance, allocator, max_output, name })
    }

    fn descriptor(&self) -> &ValidDescriptor {
        &self.library.plugins()[self.index]
    }

    fn error(&self, method: u32, status: Status, what: impl std::fmt::Display) -> Error {
        Error::new(status, format!("plugin '{}' method {method}: {what}", self.name))
    }

    fn call_plugin_allocated(&self, method: u32, slot: *const c_void, input: &[u8]) -> Result<OutputBytes> {
        // SAFETY: slots of a PluginAllocated descriptor have this signature.
        let f: abi::PluginAllocatedMethod = unsafe { std::mem::transmute(slot) };
        let mut out_ptr: *mut u8 = std::ptr::null_mut();
        let mut out_len: u32 = 0;
        // SAFETY: valid instance, non-NULL input of the stated length, valid out-params.
        let code = unsafe { f(self.instance, input_ptr(input), input.len() as u32, &mut out_ptr, &mut out_len) };
        self.plugin_allocated_output(method, code, out_ptr, out_len)
    }

    /// The output a PluginAllocated method handed over with `code`: the
    /// result, or the error it carries. The buffer is released on every path.
    fn plugin_allocated_output(&self, method: u32, code: i32, out_ptr: *mut u8, out_len: u32) -> Result<OutputBytes> {
        let allocator = self.allocator.as_ref().expect("PluginAllocated plugins have free_buffer");
        let len = out_len as usize;
        if code == status::OK && !out_ptr.is_null() && len != 0 && len <= self.max_output {
            // The common case, built in place.
            // SAFETY: the plugin handed over a Box<[u8]> of out_len bytes.
            return Ok(unsafe { allocator.output(out_ptr, len) });
        }
        // Owning the buffer first means every path below releases it.
        let output = (!out_ptr.is_null())
            // SAFETY: the plugin handed over a Box<[u8]> of out_len bytes.
            .then(|| unsafe { allocator.output(out_ptr, out_len as usize) });
        match code {
            status::OK => match output {
                None if out_len == 0 => Ok(OutputBytes::from_vec(Vec::new())),
                None => Err(self.error(method, Status::PluginProtocol, "status 0 with a NULL output buffer")),
                Some(out) if out.as_slice().len() > self.max_output => Err(self.too_large(method, out_len as usize)),
                Some(out) if out.as_slice().is_empty() => Ok(OutputBytes::from_vec(Vec::new())),
                Some(out) => Ok(out),
            },
            _ => Err(self.failure(method, code, output.as_ref().map_or(&[], OutputBytes::as_slice))),
        }
    }

    /// The slot of `method`, checked: in range and filled.
    fn slot(&self, method: u32) -> Result<*const c_void> {
        let descriptor = self.descriptor();
        let slot = *descriptor.slots.get(method as usize).ok_or_else(|| {
            self.error(
                method,
                Status::MethodOutOfRange,
                format!("no such method: the plugin has {} methods", descriptor.slots.len()),
            )
            .method_out_of_range(method, descriptor.slots.len())
        })?;
        if slot.is_null() {
            return Err(self.error(method, Status::NotImplemented, "not implemented by this plugin (optional method)"));
        }
        Ok(slot)
    }

    /// Calls a slot with a `Stream<T>` argument: `input` as the stream, the
    /// bincode `args` as the other arguments. Returns the status and the
    /// output the plugin handed over; `input` is released when the plugin
    /// did not take it.
    fn call_with_input(&self, slot: *const c_void, args: &[u8], input: &HostInput) -> (i32, *mut u8, u32) {
        // SAFETY: the interface says this slot takes a stream argument.
        let f: abi::StreamArgumentMethod = unsafe { std::mem::transmute(slot) };
        let mut out_ptr: *mut u8 = std::ptr::null_mut();
        let mut out_len: u32 = 0;
        // SAFETY: valid instance and input handle, non-NULL arguments, valid out-params.
        let code = unsafe { f(self.instance, input.handle(), input_ptr(args), args.len() as u32, &mut out_ptr, &mut out_len) };
        (code, out_ptr, out_len)
    }

    fn check_streamable(&self, method: u32, args: &[u8]) -> Result<()> {
        if self.descriptor().description.info.buffer_strategy != BufferStrategy::PluginAllocated {
            return Err(self.error(method, Status::StreamMismatch, "an Arena plugin has no streaming methods"));
        }
        if u32::try_from(args.len()).is_err() {
            return Err(self.error(method, Status::InputTooLarge, format!("arguments of {} bytes exceed the ABI limit", args.len())));
        }
        Ok(())
    }

    fn stream_name(&self, interface: &Interface, method: u32) -> String {
        let name = interface.method(method).map_or("?", |m| m.name.as_str());
        format!("plugin '{}' method '{name}'", self.name)
    }

    fn call_arena(&self, method: u32, slot: *const c_void, input: &[u8]) -> Result<OutputBytes> {
        // SAFETY: slots of an Arena descriptor have this signature.
        let f: abi::ArenaMethod = unsafe { std::mem::transmute(slot) };
        arena::with_arena(|arena| {
            let attempt = |arena: &mut Vec<u8>| {
                let mut offset: u32 = 0;
                let mut len: u32 = 0;
                let cap = arena.len().min(u32::MAX as usize) as u32;
                // SAFETY: valid instance, input and a writable arena of `cap` bytes.
                let code = unsafe {
                    f(self.instance, input_ptr(input), input.len() as u32, arena.as_mut_ptr(), cap, &mut offset, &mut len)
                };
                (code, offset as usize, len as usize)
            };
            let (mut code, mut offset, mut len) = attempt(arena);
            if code == status::BUFFER_TOO_SMALL {
                if len > self.max_output {
                    return Err(self.too_large(method, len));
                }
                if len <= arena.len() {
                    return Err(self.error(
                        method,
                        Status::PluginProtocol,
                        format!("asked for a larger arena but named {len} bytes, not more than the {} it had", arena.len()),
                    ));
                }
                crate::bytes::try_grow(arena, len)?;
                // The retry re-runs the method: fidius Arena plugins keep no output between calls.
                (code, offset, len) = attempt(arena);
                if code == status::BUFFER_TOO_SMALL {
                    return Err(self.error(
                        method,
                        Status::PluginProtocol,
                        format!("still reports the arena too small after it grew to {} bytes (now wants {len})", arena.len()),
                    ));
                }
            }
            let payload = match code {
                // Arena panics carry no message (the plugin writes 0, 0).
                status::PANIC => &[][..],
                _ => self.arena_output(method, arena, offset, len)?,
            };
            match code {
                status::OK if len > self.max_output => Err(self.too_large(method, len)),
                status::OK => Ok(OutputBytes::from_vec(crate::bytes::try_copy(payload)?)),
                _ => Err(self.failure(method, code, payload)),
            }
        })
    }

    /// The `len` bytes at `offset` of the arena, which must lie inside it.
    fn arena_output<'a>(&self, method: u32, arena: &'a [u8], offset: usize, len: usize) -> Result<&'a [u8]> {
        offset.checked_add(len).and_then(|end| arena.get(offset..end)).ok_or_else(|| {
            self.error(
                method,
                Status::PluginProtocol,
                format!("output {offset}+{len} lies outside the {}-byte arena", arena.len()),
            )
        })
    }

    fn too_large(&self, method: u32, len: usize) -> Error {
        self.error(
            method,
            Status::OutputTooLarge,
            format!("output of {len} bytes exceeds the host's limit of {} bytes", self.max_output),
        )
    }

    /// The error for a non-OK status; `payload` is what came with it.
    fn failure(&self, method: u32, code: i32, payload: &[u8]) -> Error {
        match code {
            status::PLUGIN_ERROR => match PluginError::from_bincode(payload) {
                Ok(plugin_error) => Error::plugin(&self.name, method, plugin_error),
                Err(e) => self.error(method, Status::PluginProtocol, format!("returned an undecodable PluginError ({e})")),
            },
            status::PANIC => {
                let message = bincode::deserialize::<String>(payload)
                    .unwrap_or_else(|_| "no message (Arena plugins do not carry one)".to_string());
                self.error(method, Status::PluginPanic, format!("panicked: {message}"))
            }
            status::SERIALIZATION_ERROR => self.error(
                method,
                Status::PluginSerialization,
                "the plugin could not decode the input or encode its output (wrong argument encoding?)",
            ),
            status::BUFFER_TOO_SMALL => {
                self.error(method, Status::PluginProtocol, "returned BUFFER_TOO_SMALL, which a PluginAllocated plugin must not")
            }
            other => self.error(method, Status::PluginProtocol, format!("returned unknown status {other}")),
        }
    }
}

fn input_ptr(input: &[u8]) -> *const u8 {
    if input.is_empty() {
        &EMPTY_INPUT
    } else {
        input.as_ptr()
    }
}

/// Why a call with a cancel token is refused: native code running in the
/// host's own threads cannot be stopped without taking the process down.
const CANCEL_UNSUPPORTED: &str = "a native plugin loaded in-process cannot be cancelled once it runs (load it isolated to \
     cancel its calls); nothing was called";

impl PluginBackend for CdylibPlugin {
    fn call_raw(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes> {
        if cancel.is_some() {
            return Err(self.error(method, Status::Unsupported, CANCEL_UNSUPPORTED));
        }
        let slot = self.slot(method)?;
        let descriptor = self.descriptor();
        if u32::try_from(input.len()).is_err() {
            return Err(self.error(
                method,
                Status::InputTooLarge,
                format!("input of {} bytes exceeds the ABI limit of {} bytes", input.len(), u32::MAX),
            ));
        }
        match descriptor.description.info.buffer_strategy {
            BufferStrategy::PluginAllocated => self.call_plugin_allocated(method, slot, input),
            BufferStrategy::Arena => self.call_arena(method, slot, input),
        }
    }

    /// JSON arguments become the bincode the plugin decodes, and its bincode
    /// result becomes JSON, both guided by the interface's types.
    fn call_json(&self, interface: &Interface, method: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        crate::plugin::json_call_through_raw(self, interface, method, args_json, cancel)
    }

    fn new_instance(&self, config: &PluginConfig) -> Result<Box<dyn PluginBackend>> {
        Ok(Box::new(CdylibPlugin::construct(self.library.clone(), self.index, self.max_output, Some(config))?))
    }

    /// The method's init shim returns the plugin's stream handle in
    /// `out_ptr`; a bidirectional method takes the input handle first.
    fn call_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<Box<dyn ItemSource>> {
        let slot = self.slot(method)?;
        let args = args.bincode(interface, interface.method(method)?)?;
        self.check_streamable(method, &args)?;
        let what = self.stream_name(interface, method);
        let (code, out_ptr, out_len, input) = match input {
            None => {
                // SAFETY: a server-streaming slot has the unary signature.
                let f: abi::PluginAllocatedMethod = unsafe { std::mem::transmute(slot) };
                let mut out_ptr: *mut u8 = std::ptr::null_mut();
                let mut out_len: u32 = 0;
                // SAFETY: valid instance, non-NULL arguments, valid out-params.
                let code = unsafe { f(self.instance, input_ptr(&args), args.len() as u32, &mut out_ptr, &mut out_len) };
                (code, out_ptr, out_len, None)
            }
            Some(feed) => {
                let input = HostInput::new(feed);
                let (code, out_ptr, out_len) = self.call_with_input(slot, &args, &input);
                if code == status::SERIALIZATION_ERROR {
                    input.not_taken();
                    (code, out_ptr, out_len, None)
                } else {
                    (code, out_ptr, out_len, Some(input))
                }
            }
        };
        if code != status::OK {
            // A start that failed hands over an ordinary output (a
            // PluginError, a panic message): decoded and released.
            return Err(self.plugin_allocated_output(method, code, out_ptr, out_len).err().unwrap_or_else(|| {
                self.error(method, Status::PluginProtocol, "failed to start the stream")
            }));
        }
        let stream = PluginStream::take(self.library.clone(), out_ptr, input, self.max_output, what)?;
        Ok(Box::new(stream))
    }

    fn call_client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        let slot = self.slot(method)?;
        let args = args.bincode(interface, interface.method(method)?)?;
        self.check_streamable(method, &args)?;
        let input = HostInput::new(input.clone());
        let (code, out_ptr, out_len) = self.call_with_input(slot, &args, &input);
        if code == status::SERIALIZATION_ERROR {
            input.not_taken();
        } else {
            drop(input);
        }
        self.plugin_allocated_output(method, code, out_ptr, out_len).map(CallResult::Bincode)
    }
}

impl Drop for CdylibPlugin {
    fn drop(&mut self) {
        // SAFETY: the instance came from this descriptor's construct and is destroyed once.
        unsafe { (self.descriptor().destroy)(self.instance) }
    }
}
