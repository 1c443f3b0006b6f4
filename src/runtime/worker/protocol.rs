//! The messages between a host and its worker process, and their framing.
//!
//! Every message is one frame: a 4-byte little-endian length (of what
//! follows), a 1-byte kind, then the body. Calls, the hot path, have a
//! fixed layout (a method index, then the bytes); loads, descriptions and
//! errors, which are rare, are bincode. A reader checks the length against
//! its limit before it allocates anything.

use crate::error::{Error, ErrorDetail, PluginError, Result, Status};
use crate::host_functions::HostFailure;
use crate::plugin::PluginDescription;
use crate::plugin_config::ConfigSource;
use serde::{Deserialize, Serialize};
use std::io::IoSlice;
use std::path::PathBuf;

/// The frame header: length and kind.
pub const HEADER: usize = 5;

/// What a host asks of its worker.
pub mod request {
    /// Load a plugin: bincode of [`super::LoadRequest`].
    pub const LOAD: u8 = 1;
    /// A raw call: method index (u32 LE), then the input bytes.
    pub const CALL_RAW: u8 = 2;
    /// A JSON call: method index (u32 LE), then the arguments' JSON text.
    pub const CALL_JSON: u8 = 3;
    /// List the plugins of a library file (discovery), loading none:
    /// bincode of [`super::LoadRequest`] (its `name` unused).
    pub const DESCRIBE: u8 = 4;
    /// The answer to the worker's [`super::reply::HOST_CALL`]: bincode of
    /// [`super::HostAnswer`].
    pub const HOST_RESULT: u8 = 5;
    /// Start a streaming call: method index (u32 LE), its shape (one of
    /// [`super::stream_shape`]), then the bincode of its arguments but the
    /// `Stream<T>` one. A server or bidirectional stream is answered with
    /// [`super::reply::STREAM_OPENED`], a client stream with its result.
    pub const STREAM_OPEN: u8 = 6;
    /// The next item of an open stream: method index, then the stream's
    /// id (u32 LE). Answered with ITEM, END or FAILED.
    pub const STREAM_NEXT: u8 = 7;
    /// Drop an open stream (its producer is torn down): method index, then
    /// the stream's id. Not answered.
    pub const STREAM_CLOSE: u8 = 8;
    /// The answer to [`super::reply::FEED_PULL`]: 0 (the input ended), or
    /// 1 followed by the next input item's bincode.
    pub const FEED_ITEM: u8 = 9;
}

/// How a [`request::STREAM_OPEN`] streams.
pub mod stream_shape {
    /// Items out (`-> Stream<T>`).
    pub const SERVER: u8 = 0;
    /// Items in and out: the worker pulls input with `FEED_PULL`.
    pub const BIDIRECTIONAL: u8 = 1;
    /// Items in, one result out.
    pub const CLIENT: u8 = 2;
}

/// What a worker answers.
pub mod reply {
    /// The plugin is loaded: bincode of its `PluginDescription`.
    pub const LOADED: u8 = 1;
    /// A raw call's output bytes.
    pub const OUTPUT: u8 = 2;
    /// A JSON call's result text.
    pub const JSON: u8 = 3;
    /// The request failed: bincode of [`super::WireError`].
    pub const FAILED: u8 = 4;
    /// A library's plugins: bincode of [`super::Listing`].
    pub const DESCRIBED: u8 = 5;
    /// Not a reply: in the middle of a call, the plugin calls a host
    /// function. Binding index (u32 LE, in the order of the load request's
    /// `host_interfaces`), method index (u32 LE), whether the thread that
    /// serves the call makes it (1 byte), then the bincode arguments. The
    /// host answers with [`super::request::HOST_RESULT`]; meanwhile it may
    /// call the plugin again (a host function calling back into it).
    pub const HOST_CALL: u8 = 6;
    /// A stream is open: its id (u32 LE).
    pub const STREAM_OPENED: u8 = 7;
    /// A stream's next item, as bincode of the item type.
    pub const ITEM: u8 = 8;
    /// A stream ended.
    pub const END: u8 = 9;
    /// Not a reply: in the middle of a request, the plugin reads the next
    /// item of its `Stream<T>` argument; the host answers
    /// [`super::request::FEED_ITEM`].
    pub const FEED_PULL: u8 = 10;
}

/// Bytes of a host-function call's frame before its arguments.
pub const HOST_CALL_PREFIX: usize = 9;

/// A host-function call as the worker sends it.
pub struct HostCallFrame<'a> {
    pub binding: u32,
    pub method: u32,
    /// Made by the thread serving the host's call (which then has the
    /// call's context), not by a thread the plugin started.
    pub on_call_thread: bool,
    pub args: &'a [u8],
}

impl<'a> HostCallFrame<'a> {
    pub fn prefix(&self) -> [u8; HOST_CALL_PREFIX] {
        let mut prefix = [0u8; HOST_CALL_PREFIX];
        prefix[..4].copy_from_slice(&self.binding.to_le_bytes());
        prefix[4..8].copy_from_slice(&self.method.to_le_bytes());
        prefix[8] = u8::from(self.on_call_thread);
        prefix
    }

    pub fn parse(body: &'a [u8]) -> Result<HostCallFrame<'a>> {
        if body.len() < HOST_CALL_PREFIX {
            return Err(Error::new(Status::PluginProtocol, "a host-function call message is shorter than its header"));
        }
        let word = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4 bytes"));
        Ok(HostCallFrame { binding: word(0), method: word(4), on_call_thread: body[8] != 0, args: &body[HOST_CALL_PREFIX..] })
    }
}

/// A host function's answer as it crosses to the worker: a
/// [`HostFailure`] or the result's bincode.
#[derive(Debug, Serialize, Deserialize)]
pub enum HostAnswer {
    Value(Vec<u8>),
    Error { code: String, message: String, details: Option<String> },
    BadArguments(String),
    Failed(String),
}

impl From<std::result::Result<Vec<u8>, HostFailure>> for HostAnswer {
    fn from(answer: std::result::Result<Vec<u8>, HostFailure>) -> HostAnswer {
        match answer {
            Ok(value) => HostAnswer::Value(value),
            Err(HostFailure::Error(e)) => {
                HostAnswer::Error { code: e.code().to_string(), message: e.message().to_string(), details: e.details().map(str::to_string) }
            }
            Err(HostFailure::BadArguments(why)) => HostAnswer::BadArguments(why),
            Err(HostFailure::Failed(why)) => HostAnswer::Failed(why),
        }
    }
}

impl From<HostAnswer> for std::result::Result<Vec<u8>, HostFailure> {
    fn from(answer: HostAnswer) -> Self {
        match answer {
            HostAnswer::Value(value) => Ok(value),
            HostAnswer::Error { code, message, details } => Err(HostFailure::Error(PluginError::new(&code, &message, details.as_deref()))),
            HostAnswer::BadArguments(why) => Err(HostFailure::BadArguments(why)),
            HostAnswer::Failed(why) => Err(HostFailure::Failed(why)),
        }
    }
}

/// What a library holds, as discovery reports it: its valid plugins, and
/// why each invalid descriptor was passed over.
#[derive(Debug, Serialize, Deserialize)]
pub struct Listing {
    pub plugins: Vec<crate::plugin::PluginInfo>,
    pub rejected: Vec<WireError>,
}

/// Room a frame may take beyond its payload (the method index, an error's
/// texts): a reply larger than the output limit plus this is a broken worker.
pub const FRAME_OVERHEAD: usize = 1 << 20;

/// Everything the worker needs to load a plugin exactly as the host would.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRequest {
    /// The library file, package directory or `.fid` archive.
    pub path: PathBuf,
    /// The plugin to load from it; `None`: its only one.
    pub name: Option<String>,
    /// The interface to check it against, as an interface file.
    pub interface: Option<String>,
    /// The configuration to construct it with.
    pub config: Option<ConfigSource>,
    /// The host interfaces the host serves functions of, as interface
    /// files; the worker binds each to a forwarder of its calls.
    pub host_interfaces: Vec<String>,
    /// The host's trust and size settings.
    pub require_signature: bool,
    pub trusted_keys: Vec<[u8; 32]>,
    pub lenient: bool,
    pub max_library_size: u64,
    pub max_package_size: u64,
    pub max_output: u64,
    /// Limits the worker sets on itself before it reads the plugin.
    pub memory_limit: Option<u64>,
    pub cpu_limit_seconds: Option<u64>,
    /// The confinement the worker puts itself under.
    pub hardening: super::Hardening,
}

/// An [`Error`] as it crosses the process boundary.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireError {
    pub status: u32,
    pub message: String,
    pub plugin_error: Option<(String, String, Option<String>)>,
    pub mismatch: Option<(u64, u64)>,
    pub out_of_range: Option<(u32, u32)>,
}

impl WireError {
    pub fn from_error(error: &Error) -> WireError {
        WireError {
            status: error.status() as u32,
            message: error.message().to_string(),
            plugin_error: error.plugin_error().map(|e| (e.code().to_string(), e.message().to_string(), e.details().map(str::to_string))),
            mismatch: match error.detail() {
                Some(ErrorDetail::Mismatch { expected, found }) => Some((expected, found)),
                _ => None,
            },
            out_of_range: match error.detail() {
                Some(ErrorDetail::MethodOutOfRange { index, count }) => Some((index, count)),
                _ => None,
            },
        }
    }

    /// The error again. A plugin's own error is rebuilt the way the
    /// in-process runtimes build it, so its message reads the same.
    pub fn into_error(self, plugin: &std::sync::Arc<str>, method: Option<u32>) -> Error {
        let status = Status::from_code(self.status).unwrap_or(Status::PluginProtocol);
        let plugin_error = self.plugin_error.map(|(code, message, details)| PluginError::new(&code, &message, details.as_deref()));
        let mut error = match (status, plugin_error, method) {
            (Status::PluginError, Some(e), Some(method)) => return Error::plugin(plugin, method, e),
            (_, Some(e), _) => Error::new(status, self.message).with_plugin_error(e),
            (_, None, _) => Error::new(status, self.message),
        };
        if let Some((expected, found)) = self.mismatch {
            error = error.mismatch(expected, found);
        }
        if let Some((index, count)) = self.out_of_range {
            error = error.with_detail(ErrorDetail::MethodOutOfRange { index, count });
        }
        error
    }
}

/// bincode, bounded: a body read from the other process is never trusted
/// for an allocation size.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    use bincode::Options;
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(body.len() as u64)
        .deserialize(body)
        .map_err(|e| Error::new(Status::PluginProtocol, format!("the worker process sent a malformed message: {e}")))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    use bincode::Options;
    bincode::DefaultOptions::new().with_fixint_encoding().serialize(value).expect("wire types always encode")
}

/// The header of a frame of `kind` whose body is `body_len` bytes.
pub fn header(kind: u8, body_len: usize) -> [u8; HEADER] {
    let len = u32::try_from(body_len + 1).expect("frames are bounded by the output limit");
    let mut header = [0u8; HEADER];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4] = kind;
    header
}

/// A call frame: header, method index, payload (three slices, one send).
pub fn call_frame<'a>(kind: u8, method: &'a [u8; 4], payload: &'a [u8], header_out: &'a mut [u8; HEADER]) -> [IoSlice<'a>; 3] {
    *header_out = header(kind, 4 + payload.len());
    [IoSlice::new(header_out), IoSlice::new(method), IoSlice::new(payload)]
}

/// The method index and payload of a call frame's body.
pub fn split_call(body: &[u8]) -> Result<(u32, &[u8])> {
    if body.len() < 4 {
        return Err(Error::new(Status::PluginProtocol, "a call message is shorter than its method index"));
    }
    let (method, payload) = body.split_at(4);
    Ok((u32::from_le_bytes(method.try_into().expect("4 bytes")), payload))
}

/// Body length and kind from a frame header.
pub fn parse_header(header: &[u8; HEADER]) -> (usize, u8) {
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    (len.saturating_sub(1), header[4])
}

/// A description as the worker sends it.
pub fn encode_description(description: &PluginDescription) -> Vec<u8> {
    encode(description)
}
