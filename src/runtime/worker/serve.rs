//! The worker process's side: load the plugin a host asks for, then answer
//! its calls until the host closes the socket.

use super::channel::{Channel, ChannelError};
use super::process::WORKER_SOCKET_FD;
use super::protocol::{self, reply, request, Listing, LoadRequest, WireError};
use crate::error::{Error, Result, Status};
use crate::host::{Host, HostBuilder, LoadOptions, LoadPolicy};
use crate::interface;
use crate::plugin::Plugin;
use crate::TrustedKey;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Largest request a worker reads: a frame's length field is 32 bits.
const REQUEST_LIMIT: usize = u32::MAX as usize;

/// Whether a call is running, for the watcher of the host's end.
static CALLING: AtomicBool = AtomicBool::new(false);

/// Serves one host over the socket on descriptor 3; returns the exit code.
pub fn serve() -> i32 {
    if !is_socket(WORKER_SOCKET_FD) {
        eprintln!("{} is started by libfidius_host; it is not run by hand", super::process::WORKER_NAME);
        return 2;
    }
    close_other_descriptors();
    // SAFETY: descriptor 3 is a socket this process owns from here on.
    let channel = Channel::new(unsafe { OwnedFd::from_raw_fd(WORKER_SOCKET_FD) });
    watch_host();
    let mut body = Vec::new();
    // Libraries are described (for discovery) until one plugin is loaded.
    let plugin = loop {
        let kind = match channel.receive(&mut body, REQUEST_LIMIT, None) {
            Ok(kind @ (request::LOAD | request::DESCRIBE)) => kind,
            Ok(_) | Err(ChannelError::Oversized(_)) => return 3,
            Err(_) => return 0,
        };
        let request = protocol::decode::<LoadRequest>(&body);
        if let Ok(request) = &request {
            apply_limits(request);
        }
        if kind == request::DESCRIBE {
            let sent = match request.and_then(|request| describe(&request)) {
                Ok(listing) => channel.send_frame(reply::DESCRIBED, &protocol::encode(&listing), None),
                Err(error) => channel.send_frame(reply::FAILED, &protocol::encode(&WireError::from_error(&error)), None),
            };
            if sent.is_err() {
                return 0;
            }
            continue;
        }
        let loaded = request.and_then(|request| load(&request));
        let sent = match &loaded {
            Ok(plugin) => channel.send_frame(reply::LOADED, &protocol::encode_description(plugin.description()), None),
            Err(error) => channel.send_frame(reply::FAILED, &protocol::encode(&WireError::from_error(error)), None),
        };
        if sent.is_err() {
            return 0;
        }
        if let Ok(loaded) = loaded {
            break loaded;
        }
    };
    loop {
        let kind = match channel.receive(&mut body, REQUEST_LIMIT, None) {
            Ok(kind) => kind,
            Err(ChannelError::Oversized(_)) => return 3,
            Err(_) => return 0,
        };
        CALLING.store(true, Ordering::SeqCst);
        let sent = answer(&channel, &plugin, kind, &body);
        CALLING.store(false, Ordering::SeqCst);
        if sent.is_err() {
            return 0;
        }
    }
}

/// Performs one call request and sends its reply.
fn answer(channel: &Channel, plugin: &Plugin, kind: u8, body: &[u8]) -> std::result::Result<(), ChannelError> {
    let failed = |error: &Error| channel.send_frame(reply::FAILED, &protocol::encode(&WireError::from_error(error)), None);
    let (method, payload) = match protocol::split_call(body) {
        Ok(parts) => parts,
        Err(error) => return failed(&error),
    };
    match kind {
        request::CALL_RAW => match plugin.call_raw(method, payload) {
            Ok(output) => channel.send_frame(reply::OUTPUT, output.as_slice(), None),
            Err(error) => failed(&error),
        },
        request::CALL_JSON => {
            let result = std::str::from_utf8(payload)
                .map_err(|_| Error::new(Status::InvalidUtf8, "the JSON arguments are not UTF-8"))
                .and_then(|args| plugin.call_json_index(method, args));
            match result {
                Ok(text) => channel.send_frame(reply::JSON, text.as_bytes(), None),
                Err(error) => failed(&error),
            }
        }
        other => failed(&Error::new(Status::PluginProtocol, format!("message kind {other} is not a call"))),
    }
}

/// Loads the plugin as the host would in-process, with its settings.
fn load(request: &LoadRequest) -> Result<Plugin> {
    let host = host_for(request)?;
    let mut options = LoadOptions::new();
    if let Some(text) = &request.interface {
        options.interface(Some(Arc::new(interface::file::parse(text, "the host's interface")?)));
    }
    options.config(request.config.clone());
    host.load_path_with(&request.path, request.name.as_deref(), &options)
}

/// The plugins of the library `request` names, as the host's discovery
/// would list them in-process.
fn describe(request: &LoadRequest) -> Result<Listing> {
    let (plugins, rejected) = host_for(request)?.library_listing(&request.path)?;
    Ok(Listing { plugins, rejected: rejected.iter().map(WireError::from_error).collect() })
}

/// A host with the settings of the host that sent `request`.
fn host_for(request: &LoadRequest) -> Result<Host> {
    let mut builder = HostBuilder::new();
    builder
        .require_signature(request.require_signature)
        .load_policy(if request.lenient { LoadPolicy::Lenient } else { LoadPolicy::Strict })
        .max_output_size(request.max_output as usize)?
        .max_library_size(request.max_library_size)?
        .max_package_size(request.max_package_size)?
        // The host kills a worker at its deadline; nothing runs out of
        // time in here first.
        .call_deadline(None)
        .python_deadline(None);
    for key in &request.trusted_keys {
        builder.trusted_key(TrustedKey::from_bytes(key)?);
    }
    builder.build()
}

/// The caps the host asked for, set before any plugin code is read.
fn apply_limits(request: &LoadRequest) {
    let set = |resource, soft: u64, hard: u64| {
        let limit = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: hard as libc::rlim_t };
        // SAFETY: a valid rlimit for this process.
        unsafe { libc::setrlimit(resource, &limit) };
    };
    if let Some(bytes) = request.memory_limit {
        set(libc::RLIMIT_AS, bytes, bytes);
    }
    if let Some(seconds) = request.cpu_limit_seconds {
        // SIGXCPU at the cap, SIGKILL a second later.
        set(libc::RLIMIT_CPU, seconds, seconds.saturating_add(1));
    }
}

fn is_socket(fd: i32) -> bool {
    // SAFETY: fstat writes into a zeroed stat; any fd number is allowed.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    unsafe { libc::fstat(fd, &mut stat) == 0 && stat.st_mode & libc::S_IFMT == libc::S_IFSOCK }
}

/// No descriptor of the host's reaches the plugin but the socket (and the
/// standard three).
fn close_other_descriptors() {
    // SAFETY: closes descriptors above the socket; none is in use yet.
    unsafe { libc::syscall(libc::SYS_close_range, WORKER_SOCKET_FD as u32 + 1, u32::MAX, 0) };
}

/// Ends this process when the host goes away during a call (a plugin that
/// never returns would otherwise outlive it). Between calls the main loop
/// sees the closed socket and ends cleanly, destroying the plugin; a
/// destructor that takes more than a second is cut short.
fn watch_host() {
    let spawned = std::thread::Builder::new().name("fidius-host-watch".into()).spawn(|| loop {
        let mut poll = libc::pollfd { fd: WORKER_SOCKET_FD, events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut poll, 1, -1) };
        if n > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            for _ in 0..50 {
                if CALLING.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: ends the process at once; the plugin is stuck.
            unsafe { libc::_exit(0) };
        }
    });
    let _ = spawned;
}
