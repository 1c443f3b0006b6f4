//! libfidius_host: a host for fidius plugins, with a C ABI.
//!
//! The host core (everything but [`ffi`]) is plain Rust and knows nothing of
//! C. [`ffi`] is a thin `extern "C"` layer over it; `include/fidius_host.h`
//! is generated from that layer by cbindgen.

pub mod abi;
pub mod artifact;
pub mod bytes;
pub mod cancel;
pub mod discovery;
pub mod disk;
pub mod egress;
pub mod error;
pub mod hash;
pub mod host;
pub mod host_functions;
pub mod interface;
pub mod plugin;
pub mod plugin_config;
pub mod runtime;
pub mod stream;

pub mod ffi;

pub use artifact::signature::TrustedKey;
pub use bytes::OutputBytes;
pub use cancel::CancelToken;
pub use discovery::{Discovery, Skipped};
pub use error::{Error, PluginError, Result, Status};
pub use host::{Host, HostBuilder, LoadOptions, LoadPolicy};
pub use host_functions::{HostBinding, HostCall, HostFailure, HostHandler, JsonHostHandler};
pub use interface::{Interface, InterfaceBuilder, MethodFlags};
pub use plugin::{BufferStrategy, MetaEntry, Plugin, PluginInfo, RuntimeKind};
pub use plugin_config::{ConfigSource, PluginConfig};
pub use runtime::worker::{Hardening, Isolation, RestartPolicy, WorkerUsage};
