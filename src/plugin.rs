//! The plugin handle: one type for every runtime.
//!
//! A [`Plugin`] is a description (what the plugin says about itself) plus a
//! [`PluginBackend`] that performs calls. Each runtime provides one backend;
//! nothing outside a runtime's folder knows how its calls work.

use crate::bytes::OutputBytes;
use crate::cancel::CancelToken;
use crate::egress::DeniedRequest;
use crate::error::{Error, Result, Status};
use crate::interface::{json, Interface};
use crate::interface::CallShape;
use crate::plugin_config::{ConfigSource, PluginConfig};
use crate::stream::{CallResult, Encoding, Feed, ItemProducer, ItemSource, ItemStream, StreamArgs, StreamParts};
use std::path::PathBuf;
use std::sync::Arc;

/// How a plugin's outputs travel back to the host.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BufferStrategy {
    /// The plugin allocates each output and frees it through `free_buffer`.
    PluginAllocated = 1,
    /// The host lends the plugin an arena to write outputs into.
    Arena = 2,
}

impl BufferStrategy {
    /// The strategy with this ABI value (1 or 2).
    pub fn from_abi(value: u32) -> Option<BufferStrategy> {
        match value {
            1 => Some(BufferStrategy::PluginAllocated),
            2 => Some(BufferStrategy::Arena),
            _ => None,
        }
    }
}

impl TryFrom<u32> for BufferStrategy {
    type Error = crate::Error;

    /// A strategy from its fidius number (1 PluginAllocated, 2 Arena).
    fn try_from(value: u32) -> crate::Result<BufferStrategy> {
        BufferStrategy::from_abi(value).ok_or_else(|| {
            crate::Error::new(
                crate::Status::InvalidArgument,
                format!("buffer strategy {value} is unknown (expected 1 = PLUGIN_ALLOCATED or 2 = ARENA)"),
            )
        })
    }
}

/// Which runtime executes a plugin.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RuntimeKind {
    /// A native shared library built with the fidius Rust crates.
    Cdylib = 1,
    /// A Python package.
    Python = 2,
    /// A WebAssembly component.
    Wasm = 3,
}

/// What a plugin says about itself; also what discovery reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    /// The plugin's name (the `impl` type's identifier for cdylibs).
    pub name: String,
    /// The interface (trait) name.
    pub interface_name: String,
    /// The FNV-1a interface hash.
    pub interface_hash: u64,
    /// The interface's `version`.
    pub interface_version: u32,
    /// Bit k set: the k-th optional method is implemented.
    pub capabilities: u64,
    /// How outputs travel.
    pub buffer_strategy: BufferStrategy,
    /// The runtime.
    pub runtime: RuntimeKind,
    /// The file or package directory the plugin came from.
    pub path: PathBuf,
}

/// One metadata key/value pair, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetaEntry {
    /// The key; never empty.
    pub key: String,
    /// The value; may be empty.
    pub value: String,
}

/// A host interface a plugin calls (`#[host_interface]`), as its library
/// declares it in `fidius_get_host_imports`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostImport {
    /// The host interface (trait) name.
    pub interface_name: String,
    /// Its `version`.
    pub interface_version: u32,
    /// The FNV-1a hash of its methods, as the plugin was built against them.
    pub interface_hash: u64,
}

/// Everything about a plugin that is not calling it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PluginDescription {
    /// Identity and interface facts.
    pub info: PluginInfo,
    /// Number of methods (vtable slots for cdylibs).
    pub method_count: u32,
    /// Per method, in method order; empty for methods without metadata.
    pub method_metadata: Vec<Vec<MetaEntry>>,
    /// Trait-level metadata.
    pub trait_metadata: Vec<MetaEntry>,
    /// The host interfaces its library imports (cdylib plugins; a WASM
    /// component names the interfaces it calls only when it calls them, and
    /// Python plugins have no host calls in fidius 0.5.9).
    pub host_imports: Vec<HostImport>,
    /// Notes from loading that did not stop it (e.g. a precompiled file
    /// that was not used, and why).
    pub diagnostics: Vec<String>,
}

/// Performs calls for one loaded plugin. One implementation per runtime.
pub trait PluginBackend: Send + Sync {
    /// Calls method `method` with `input` (bincode of the argument tuple, or
    /// the raw bytes of a raw-wire method) and returns the output payload.
    /// With `cancel`, the call stops when the token is cancelled
    /// (CANCELLED); a runtime that cannot stop a running call answers
    /// UNSUPPORTED and calls nothing.
    fn call_raw(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes>;

    /// Calls method `method` of `interface` with a JSON array of arguments
    /// and returns the result as JSON text. The caller has checked that the
    /// plugin matches `interface` and implements the method. `cancel` as
    /// for [`PluginBackend::call_raw`].
    fn call_json(&self, interface: &Interface, method: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String>;

    /// Another instance of the same loaded plugin, constructed with
    /// `config`, with state of its own. CONFIG_REJECTED when the plugin
    /// refuses the configuration; nothing is left behind then.
    fn new_instance(&self, config: &PluginConfig) -> Result<Box<dyn PluginBackend>>;

    /// The capability bits of this instance, where they may differ from
    /// those of the instance the plugin was loaded with (a Python
    /// configuration returns an object of its choosing); `None`: the same.
    fn capabilities(&self) -> Option<u64> {
        None
    }

    /// Use figures of the worker process serving this plugin (isolated
    /// plugins only).
    fn worker_usage(&self) -> Option<crate::runtime::worker::WorkerUsage> {
        None
    }

    /// The largest linear memory an instance of the plugin reached, in
    /// bytes (WASM plugins only).
    fn memory_high_water(&self) -> Option<u64> {
        None
    }

    /// Directories or files the plugin's runtime may read while it serves
    /// calls, beyond the plugin's own path (a worker confined to its files
    /// keeps these readable): an interpreter's module directories, say.
    fn files_read_when_called(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }

    /// The most recent outbound requests the egress policy denied (only
    /// sandboxed runtimes send requests through one).
    fn denied_requests(&self) -> Vec<DeniedRequest> {
        Vec::new()
    }

    /// Starts a server-streaming or bidirectional call of `method` of
    /// `interface` (checked by the caller: the method streams out, and
    /// `input` feeds its `Stream<T>` argument exactly when it has one).
    fn call_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<Box<dyn ItemSource>> {
        let _ = (interface, args, input);
        Err(streams_unsupported(interface, method))
    }

    /// A client-streaming call of `method`: its `Stream<T>` argument reads
    /// `input`; one result.
    fn call_client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        let _ = (args, input);
        Err(streams_unsupported(interface, method))
    }
}

fn streams_unsupported(interface: &Interface, method: u32) -> Error {
    let name = interface.method(method).map_or("?", |m| m.name.as_str());
    Error::new(Status::Unsupported, format!("method '{name}' streams, and this runtime does not serve streaming calls"))
}

/// A raw method's JSON call, through its raw call: the JSON array of bytes
/// becomes the input bytes and the output bytes a JSON array (the same
/// shape for every runtime).
pub(crate) fn json_call_through_raw(
    backend: &dyn PluginBackend,
    interface: &Interface,
    method: u32,
    args_json: &str,
    cancel: Option<&CancelToken>,
) -> Result<String> {
    let spec = interface.method(method)?;
    let input = json::encode_args(interface, spec, args_json)?;
    let output = backend.call_raw(method, &input, cancel)?;
    json::decode_output(interface, spec, output.as_slice())
}

/// A typed method's raw call for runtimes that call typed methods with JSON
/// (WASM, Python): the same bincode in and out as a cdylib plugin of the
/// interface, transcoded through its JSON call.
#[cfg_attr(not(any(feature = "wasm", feature = "python")), allow(dead_code))]
pub(crate) fn raw_call_through_json(
    backend: &dyn PluginBackend,
    interface: &Interface,
    method: u32,
    input: &[u8],
    cancel: Option<&CancelToken>,
) -> Result<OutputBytes> {
    let spec = interface.method(method)?;
    let args = json::decode_args(interface, spec, input)?;
    let result = backend.call_json(interface, method, &args, cancel)?;
    Ok(OutputBytes::from_vec(json::encode_result(interface, spec, &result)?))
}

/// OUTPUT_TOO_LARGE when `len` bytes from method `method` of `plugin` are
/// over the host's limit.
#[cfg_attr(not(any(feature = "wasm", feature = "python")), allow(dead_code))]
pub(crate) fn check_output_size(plugin: &str, method: &str, len: usize, max_output: usize) -> Result<()> {
    if len > max_output {
        return Err(Error::new(
            Status::OutputTooLarge,
            format!("plugin '{plugin}': method '{method}' returned {len} bytes, over the limit of {max_output}"),
        ));
    }
    Ok(())
}

/// A loaded plugin, ready to call. Calls may come from several threads at once.
pub struct Plugin {
    description: PluginDescription,
    backend: Box<dyn PluginBackend>,
    /// The interface the plugin was validated against at load, if any.
    interface: Option<Arc<Interface>>,
    /// Per method of the interface: whether it streams (no unary call).
    streams: Arc<[bool]>,
}

impl Plugin {
    /// Joins a description and the backend that serves it.
    pub fn new(description: PluginDescription, backend: Box<dyn PluginBackend>) -> Plugin {
        Plugin { description, backend, interface: None, streams: Arc::new([]) }
    }

    /// Attaches the interface the plugin was validated against.
    pub(crate) fn with_interface(mut self, interface: Option<Arc<Interface>>) -> Plugin {
        self.streams = match &interface {
            Some(i) => i.methods().iter().map(|m| m.shape() != CallShape::Unary).collect(),
            None => Arc::new([]),
        };
        self.interface = interface;
        self
    }

    /// The interface given at load, if any.
    pub fn interface(&self) -> Option<&Arc<Interface>> {
        self.interface.as_ref()
    }

    /// Another instance of this plugin, constructed with `config` (checked
    /// against the interface's config type, when it declares one). It
    /// shares the loaded code (a mapped library, a compiled component, an
    /// imported module) and nothing else: its state, calls and lifetime are
    /// its own, and the code stays loaded while any instance lives.
    pub fn new_instance(&self, config: &ConfigSource) -> Result<Plugin> {
        let config = PluginConfig::new(config, self.interface.as_ref())?;
        let backend = self.backend.new_instance(&config)?;
        let mut description = self.description.clone();
        if let Some(bits) = backend.capabilities() {
            description.info.capabilities = bits;
        }
        Ok(Plugin { description, backend, interface: self.interface.clone(), streams: self.streams.clone() })
    }

    /// Identity and interface facts.
    pub fn info(&self) -> &PluginInfo {
        &self.description.info
    }

    /// The whole description, metadata included.
    pub fn description(&self) -> &PluginDescription {
        &self.description
    }

    /// Number of methods.
    pub fn method_count(&self) -> u32 {
        self.description.method_count
    }

    /// Whether capability bit `bit` (the bit-th optional method) is set.
    pub fn has_capability(&self, bit: u32) -> bool {
        bit < 64 && self.description.info.capabilities & (1u64 << bit) != 0
    }

    /// Metadata of method `method`, or `None` when the index is out of range.
    pub fn method_metadata(&self, method: u32) -> Option<&[MetaEntry]> {
        if method >= self.description.method_count {
            return None;
        }
        Some(self.description.method_metadata.get(method as usize).map_or(&[], Vec::as_slice))
    }

    /// Trait-level metadata.
    pub fn trait_metadata(&self) -> &[MetaEntry] {
        &self.description.trait_metadata
    }

    /// The host interfaces the plugin imports, in its library's order.
    pub fn host_imports(&self) -> &[HostImport] {
        &self.description.host_imports
    }

    /// Calls a method with raw input bytes; see [`PluginBackend::call_raw`].
    /// A streaming method (as the interface given at load says) is
    /// STREAM_MISMATCH: its slot does not return one result.
    pub fn call_raw(&self, method: u32, input: &[u8]) -> Result<OutputBytes> {
        self.call_raw_cancellable(method, input, None)
    }

    /// Like [`Plugin::call_raw`], stopped when `cancel` is cancelled
    /// (CANCELLED). In-process native plugins cannot be stopped: with a
    /// token their calls are UNSUPPORTED.
    pub fn call_raw_cancellable(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes> {
        if self.streams.get(method as usize) == Some(&true) {
            return Err(self.shape_mismatch(method, CallShape::Unary));
        }
        self.backend.call_raw(method, input, cancel)
    }

    /// Calls the method called `method` with a JSON array of arguments and
    /// returns the result as JSON. Needs an interface given at load.
    pub fn call_json(&self, method: &str, args_json: &str) -> Result<String> {
        self.call_json_cancellable(method, args_json, None)
    }

    /// Like [`Plugin::call_json`], stopped as [`Plugin::call_raw_cancellable`] is.
    pub fn call_json_cancellable(&self, method: &str, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        let index = self.require_interface()?.method_index(method)?;
        self.call_json_at(index, args_json, cancel)
    }

    /// Use figures of the worker process of an isolated plugin; `None` for
    /// a plugin loaded in-process.
    pub fn worker_usage(&self) -> Option<crate::runtime::worker::WorkerUsage> {
        self.backend.worker_usage()
    }

    /// What this plugin's runtime reads while it serves calls, beyond the
    /// plugin's own path.
    pub fn files_read_when_called(&self) -> Vec<std::path::PathBuf> {
        self.backend.files_read_when_called()
    }

    /// The largest linear memory an instance of this WASM plugin (and of
    /// the instances made from it) reached, in bytes; `None` for other
    /// runtimes.
    pub fn memory_high_water(&self) -> Option<u64> {
        self.backend.memory_high_water()
    }

    /// The most recent outbound requests of this plugin that its egress
    /// policy denied, oldest first (at most [`DenialLog::CAPACITY`]).
    ///
    /// [`DenialLog::CAPACITY`]: crate::egress::DenialLog::CAPACITY
    pub fn denied_requests(&self) -> Vec<DeniedRequest> {
        self.backend.denied_requests()
    }

    /// Like [`Plugin::call_json`], by method index.
    pub fn call_json_index(&self, index: u32, args_json: &str) -> Result<String> {
        self.call_json_at(index, args_json, None)
    }

    fn call_json_at(&self, index: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        let interface = self.require_interface()?;
        let method = interface.method(index)?;
        if args_json.len() > json::MAX_ARGS_TEXT {
            return Err(Error::new(
                Status::InputTooLarge,
                format!(
                    "the JSON arguments of '{}' are {} bytes, more than the limit of {} (send large data with a raw call)",
                    method.name,
                    args_json.len(),
                    json::MAX_ARGS_TEXT
                ),
            ));
        }
        if method.shape() != CallShape::Unary {
            return Err(self.shape_mismatch(index, CallShape::Unary));
        }
        self.check_implemented(method)?;
        self.backend.call_json(interface, index, args_json, cancel)
    }

    /// Starts a server-streaming or bidirectional call of method `index`
    /// with its arguments (all but the `Stream<T>` one); `input` feeds the
    /// `Stream<T>` argument of a bidirectional method (items in the given
    /// encoding), read as the plugin asks for them while the output is
    /// pulled. Needs an interface given at load.
    pub fn call_stream(
        &self,
        index: u32,
        args: StreamArgs<'_>,
        input: Option<(Box<dyn ItemProducer>, Encoding)>,
    ) -> Result<ItemStream> {
        let interface = self.interface_arc()?;
        let method = interface.method(index)?;
        let shape = method.shape();
        match (shape, &input) {
            (CallShape::ServerStream, None) | (CallShape::Bidirectional, Some(_)) => {}
            (CallShape::Bidirectional, None) => {
                return Err(Error::new(
                    Status::StreamMismatch,
                    format!("method '{}' is {}: give the items of its Stream<T> argument", method.name, shape.describe()),
                ))
            }
            _ => return Err(self.shape_mismatch(index, CallShape::ServerStream)),
        }
        self.check_stream_args(method, args)?;
        self.check_implemented(method)?;
        let feed = input.map(|(producer, encoding)| Feed::new(producer, encoding, interface.clone(), method)).transpose()?;
        let source = self.backend.call_stream(interface, index, args, feed.clone())?;
        ItemStream::new(StreamParts {
            source,
            feed,
            interface: interface.clone(),
            method: index,
            plugin: self.info().name.as_str().into(),
        })
    }

    /// A client-streaming call of method `index`: the arguments (all but the
    /// `Stream<T>` one) and the items of its `Stream<T>` argument from
    /// `producer` (in `encoding`), read as far as the plugin reads them;
    /// one result, as bincode or JSON text (`wanted`).
    pub fn call_client_stream(
        &self,
        index: u32,
        args: StreamArgs<'_>,
        producer: Box<dyn ItemProducer>,
        encoding: Encoding,
    ) -> Result<CallResult> {
        let interface = self.interface_arc()?;
        let method = interface.method(index)?;
        if method.shape() != CallShape::ClientStream {
            return Err(self.shape_mismatch(index, CallShape::ClientStream));
        }
        self.check_stream_args(method, args)?;
        self.check_implemented(method)?;
        let feed = Feed::new(producer, encoding, interface.clone(), method)?;
        let result = self.backend.call_client_stream(interface, index, args, &feed);
        feed.close();
        if let Some(failure) = feed.failure() {
            return Err(failure);
        }
        result
    }

    /// A client-streaming call's result as bincode.
    pub fn call_client_stream_raw(&self, index: u32, args: StreamArgs<'_>, producer: Box<dyn ItemProducer>, encoding: Encoding) -> Result<OutputBytes> {
        let interface = self.interface_arc()?;
        match self.call_client_stream(index, args, producer, encoding)? {
            CallResult::Bincode(bytes) => Ok(bytes),
            CallResult::Json(text) => Ok(OutputBytes::from_vec(json::encode_result(interface, interface.method(index)?, &text)?)),
        }
    }

    /// A client-streaming call's result as JSON text.
    pub fn call_client_stream_json(&self, index: u32, args: StreamArgs<'_>, producer: Box<dyn ItemProducer>, encoding: Encoding) -> Result<String> {
        let interface = self.interface_arc()?;
        match self.call_client_stream(index, args, producer, encoding)? {
            CallResult::Json(text) => Ok(text),
            CallResult::Bincode(bytes) => json::decode_output(interface, interface.method(index)?, bytes.as_slice()),
        }
    }

    /// NOT_IMPLEMENTED for an optional method this plugin lacks.
    fn check_implemented(&self, method: &crate::interface::Method) -> Result<()> {
        if let Some(bit) = method.capability_bit {
            if !self.has_capability(bit) {
                return Err(Error::new(
                    Status::NotImplemented,
                    format!("plugin '{}' does not implement optional method '{}'", self.info().name, method.name),
                ));
            }
        }
        Ok(())
    }

    /// The checks every streaming call makes of its method and arguments.
    fn check_stream_args(&self, method: &crate::interface::Method, args: StreamArgs<'_>) -> Result<()> {
        if method.client_streaming && method.stream_param.is_none() {
            return Err(crate::stream::unknown_stream_argument(method));
        }
        if method.flags.raw {
            return Err(Error::new(Status::Unsupported, format!("method '{}' is raw and streams, which no fidius runtime serves", method.name)));
        }
        if let StreamArgs::Json(text) = args {
            if text.len() > json::MAX_ARGS_TEXT {
                return Err(Error::new(
                    Status::InputTooLarge,
                    format!("the JSON arguments of '{}' are {} bytes, more than the limit of {}", method.name, text.len(), json::MAX_ARGS_TEXT),
                ));
            }
        }
        Ok(())
    }

    /// STREAM_MISMATCH: method `index` was called as `called`.
    fn shape_mismatch(&self, index: u32, called: CallShape) -> Error {
        let (name, shape) = match self.interface.as_ref().and_then(|i| i.method(index).ok()) {
            Some(m) => (m.name.as_str(), m.shape()),
            None => ("?", CallShape::Unary),
        };
        let how = match called {
            CallShape::Unary => "with a unary call (call_raw/call_json)",
            CallShape::ServerStream | CallShape::Bidirectional => "with a stream call (call_stream)",
            CallShape::ClientStream => "with a client-stream call (call_client_stream)",
        };
        Error::new(
            Status::StreamMismatch,
            format!("plugin '{}': method '{name}' is {}, and was called {how}", self.info().name, shape.describe()),
        )
    }

    fn interface_arc(&self) -> Result<&Arc<Interface>> {
        self.interface.as_ref().ok_or_else(|| {
            Error::new(
                Status::NoInterface,
                format!("plugin '{}' was loaded without an interface; streaming calls need one", self.info().name),
            )
        })
    }

    fn require_interface(&self) -> Result<&Interface> {
        self.interface.as_deref().ok_or_else(|| {
            Error::new(
                Status::NoInterface,
                format!("plugin '{}' was loaded without an interface; JSON calls need one", self.info().name),
            )
        })
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("info", &self.description.info).finish()
    }
}
