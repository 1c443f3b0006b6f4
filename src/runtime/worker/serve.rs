//! The worker process's side: load the plugin a host asks for, then answer
//! its calls until the host closes the socket. During a call the plugin's
//! host-function calls go to the host over the same socket.

use super::channel::{Channel, ChannelError};
use super::hardening;
use super::process::WORKER_SOCKET_FD;
use super::protocol::{self, reply, request, stream_shape, HostAnswer, HostCallFrame, Listing, LoadRequest, WireError};
use crate::error::{Error, Result, Status};
use crate::host::{Host, HostBuilder, LoadOptions, LoadPolicy};
use crate::host_functions::{HostBinding, HostCall, HostFailure, HostHandler};
use crate::interface;
use crate::plugin::Plugin;
use crate::TrustedKey;
use parking_lot::ReentrantMutex;
use std::cell::Cell;
use std::io::IoSlice;
use std::os::fd::{FromRawFd, OwnedFd};
use crate::stream::{Encoding, ItemProducer, ItemStream, StreamArgs};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Largest request a worker reads: a frame's length field is 32 bits.
const REQUEST_LIMIT: usize = u32::MAX as usize;

/// Whether a request of the host's is under way: the host listens then
/// (host functions and input reads may speak; reset under the turn, as the
/// reply is sent), and a hang-up then means the host died mid-call (the
/// watcher ends the process at once). One host per worker process.
static CALLING: AtomicBool = AtomicBool::new(false);

/// Serves one host over the socket on descriptor 3; returns the exit code.
pub fn serve() -> i32 {
    if !is_socket(WORKER_SOCKET_FD) {
        eprintln!("{} is started by libfidius_host; it is not run by hand", super::process::WORKER_NAME);
        return 2;
    }
    close_other_descriptors();
    // SAFETY: descriptor 3 is a socket this process owns from here on.
    let conversation = Arc::new(Conversation {
        channel: Channel::new(unsafe { OwnedFd::from_raw_fd(WORKER_SOCKET_FD) }),
        turn: ReentrantMutex::new(()),
        plugin: AtomicPtr::new(std::ptr::null_mut()),
        streams: Mutex::new(HashMap::new()),
        next_stream: AtomicU32::new(0),
    });
    let channel = &conversation.channel;
    let mut prepared = false;
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
        // The first request says how this worker is confined; a worker
        // that cannot be confined as asked reports why and ends.
        if !prepared {
            if let Err(error) = request.as_ref().map_err(Error::clone).and_then(|request| prepare(&request.hardening)) {
                let _ = channel.send_frame(reply::FAILED, &protocol::encode(&WireError::from_error(&error)), None);
                return 4;
            }
            prepared = true;
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
        let loaded = request.and_then(|request| {
            let plugin = load(&request, &conversation)?;
            if request.hardening.confine_filesystem {
                confine_to_plugin_files(&request, &plugin)?;
            }
            Ok(plugin)
        });
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
    let _served = conversation.serve(&plugin);
    loop {
        let kind = match channel.receive(&mut body, REQUEST_LIMIT, None) {
            Ok(kind) => kind,
            Err(ChannelError::Oversized(_)) => return 3,
            Err(_) => return 0,
        };
        if kind == request::STREAM_CLOSE {
            // Not answered: the host does not listen meanwhile.
            respond(&plugin, &conversation, kind, &body);
            continue;
        }
        CALLING.store(true, Ordering::SeqCst);
        let outcome = respond(&plugin, &conversation, kind, &body);
        let sent = {
            let _turn = conversation.turn.lock();
            // The host stops listening at the reply: from here no host
            // function may speak.
            CALLING.store(false, Ordering::SeqCst);
            outcome.map_or(Ok(()), |outcome| outcome.send(channel))
        };
        if sent.is_err() {
            return 0;
        }
    }
}

/// The worker's end of the socket, shared by the thread serving the host's
/// calls and the plugin's host-function calls from any of its threads.
struct Conversation {
    channel: Channel,
    /// Held to speak in the middle of a call (a reply; a host-function call
    /// and the wait for its answer), so that frames never interleave and
    /// answers reach who asked: host-function calls are sent one at a
    /// time. Reentrant: while a host-function call waits, the host may
    /// call the plugin again (from that host function), and the plugin
    /// may call the host again from inside that call.
    turn: ReentrantMutex<()>,
    /// The loaded plugin, for the calls the host makes from inside a host
    /// function; null before the load and after the serving loop.
    plugin: AtomicPtr<Plugin>,
    /// The plugin's open server and bidirectional streams, by id. A
    /// stream being advanced is taken out meanwhile.
    streams: Mutex<HashMap<u32, OpenStream>>,
    next_stream: AtomicU32,
}

/// A stream the host opened.
struct OpenStream {
    stream: ItemStream,
    /// Set when the host drops it: its input ends at once.
    closed: Arc<AtomicBool>,
}

/// Clears [`Conversation::plugin`] before the plugin it points at drops.
struct Served<'a>(&'a Conversation);

impl Drop for Served<'_> {
    fn drop(&mut self) {
        self.0.plugin.store(std::ptr::null_mut(), Ordering::SeqCst);
        // Streams before the plugin they came from.
        let streams = std::mem::take(&mut *self.0.lock_streams());
        drop(streams);
    }
}

impl Conversation {
    /// Publishes `plugin` for the calls made from host functions, until
    /// the returned guard drops.
    fn serve<'a>(&'a self, plugin: &Plugin) -> Served<'a> {
        self.plugin.store(plugin as *const Plugin as *mut Plugin, Ordering::SeqCst);
        Served(self)
    }

    fn lock_streams(&self) -> MutexGuard<'_, HashMap<u32, OpenStream>> {
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a frame of `kind` made of `parts` to the host, in the middle
    /// of one of its requests, and waits for its answer of `answer_kind`,
    /// serving the requests the host makes meanwhile (from a host
    /// function, or while it reads its input for the plugin).
    fn ask_host(self: &Arc<Self>, kind: u8, parts: &[&[u8]], answer_kind: u8) -> std::result::Result<Vec<u8>, Unanswered> {
        let _turn = self.turn.lock();
        if !CALLING.load(Ordering::SeqCst) {
            return Err(Unanswered::NotListening);
        }
        let header = protocol::header(kind, parts.iter().map(|p| p.len()).sum());
        let frame: Vec<IoSlice<'_>> = std::iter::once(&header[..]).chain(parts.iter().copied()).map(IoSlice::new).collect();
        let lost = |_| Unanswered::Failed("the host process went away".to_string());
        self.channel.send(&frame, None).map_err(lost)?;
        let mut body = Vec::new();
        loop {
            match self.channel.receive(&mut body, REQUEST_LIMIT, None).map_err(lost)? {
                kind if kind == answer_kind => return Ok(body),
                kind @ (request::CALL_RAW | request::CALL_JSON | request::STREAM_OPEN | request::STREAM_NEXT | request::STREAM_CLOSE) => {
                    // SAFETY: non-null only while `serve` holds the plugin
                    // (see `Served`), and the host only calls during a call.
                    let outcome = match unsafe { self.plugin.load(Ordering::SeqCst).as_ref() } {
                        Some(plugin) => respond(plugin, self, kind, &body),
                        None => Some(Outcome::Failed(Error::new(Status::PluginProtocol, "no plugin is loaded to call"))),
                    };
                    if let Some(outcome) = outcome {
                        outcome.send(&self.channel).map_err(lost)?;
                    }
                }
                other => return Err(Unanswered::Failed(format!("the host answered with message kind {other}"))),
            }
        }
    }

    /// Calls host function `method` of the `binding`th host interface and
    /// waits for its answer.
    fn call_host(self: &Arc<Self>, binding: u32, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
        let frame = HostCallFrame { binding, method: call.method, on_call_thread: SERVES_CALL.get(), args: call.args };
        match self.ask_host(reply::HOST_CALL, &[&frame.prefix(), call.args], request::HOST_RESULT) {
            Ok(body) => {
                let answer: HostAnswer = protocol::decode(&body).map_err(|e| HostFailure::Failed(e.message().to_string()))?;
                answer.into()
            }
            Err(Unanswered::NotListening) => Err(HostFailure::Failed(
                "an isolated plugin's host functions answer only while the host waits for one of its calls".to_string(),
            )),
            Err(Unanswered::Failed(why)) => Err(HostFailure::Failed(why)),
        }
    }

    /// Opens a stream of `method` (a STREAM_OPEN's payload: the shape, then
    /// the arguments' bincode); a client stream runs to its result.
    fn open_stream(self: &Arc<Self>, plugin: &Plugin, method: u32, payload: &[u8]) -> Outcome {
        let Some((&shape, args)) = payload.split_first() else {
            return Outcome::Failed(Error::new(Status::PluginProtocol, "a stream request lacks its shape"));
        };
        let args = StreamArgs::Bincode(args);
        let closed = Arc::new(AtomicBool::new(false));
        let feed = || -> Box<dyn ItemProducer> { Box::new(ForwardedFeed { conversation: self.clone(), closed: closed.clone(), item: Vec::new() }) };
        let opened = match shape {
            stream_shape::SERVER => plugin.call_stream(method, args, None),
            stream_shape::BIDIRECTIONAL => plugin.call_stream(method, args, Some((feed(), Encoding::Bincode))),
            stream_shape::CLIENT => {
                return plugin.call_client_stream_raw(method, args, feed(), Encoding::Bincode).map_or_else(Outcome::Failed, Outcome::Output)
            }
            other => return Outcome::Failed(Error::new(Status::PluginProtocol, format!("stream shape {other} is unknown"))),
        };
        match opened {
            Ok(stream) => {
                let id = self.next_stream.fetch_add(1, Ordering::SeqCst);
                self.lock_streams().insert(id, OpenStream { stream, closed });
                Outcome::Opened(id)
            }
            Err(error) => Outcome::Failed(error),
        }
    }

    /// The next item of the stream a STREAM_NEXT's payload names.
    fn next_item(&self, payload: &[u8]) -> Outcome {
        let Some(mut open) = stream_id(payload).and_then(|id| Some((id, self.lock_streams().remove(&id)?))) else {
            return Outcome::Failed(Error::new(Status::PluginProtocol, "the host asked for an item of a stream that is not open"));
        };
        let outcome = match open.1.stream.next_raw() {
            Ok(Some(item)) => Outcome::Item(item.to_vec()),
            Ok(None) => Outcome::End,
            Err(error) => Outcome::Failed(error),
        };
        self.lock_streams().insert(open.0, open.1);
        outcome
    }

    /// Drops the stream a STREAM_CLOSE's payload names; its input ends.
    fn close_stream(&self, payload: &[u8]) {
        let open = stream_id(payload).and_then(|id| self.lock_streams().remove(&id));
        if let Some(open) = open {
            open.closed.store(true, Ordering::SeqCst);
            drop(open);
        }
    }
}

fn stream_id(payload: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(payload.try_into().ok()?))
}

/// Why the host did not answer the worker.
enum Unanswered {
    /// No request of the host's is under way.
    NotListening,
    Failed(String),
}

/// The input of a streaming call, read from the host item by item.
struct ForwardedFeed {
    conversation: Arc<Conversation>,
    closed: Arc<AtomicBool>,
    item: Vec<u8>,
}

impl ItemProducer for ForwardedFeed {
    fn produce(&mut self) -> Result<Option<&[u8]>> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match self.conversation.ask_host(reply::FEED_PULL, &[], request::FEED_ITEM) {
            Ok(body) => match body.split_first() {
                Some((1, item)) => {
                    self.item.clear();
                    self.item.extend_from_slice(item);
                    Ok(Some(&self.item))
                }
                _ => Ok(None),
            },
            // Read outside a request (the plugin's own thread, or its
            // teardown): the input has ended for it.
            Err(Unanswered::NotListening) => Ok(None),
            Err(Unanswered::Failed(why)) => Err(Error::new(Status::StreamInputFailed, why)),
        }
    }
}

thread_local! {
    /// This thread runs a call of the host's (and so has its context).
    static SERVES_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Forwards one host interface's calls to the host.
struct Forwarder {
    conversation: Arc<Conversation>,
    binding: u32,
}

impl HostHandler for Forwarder {
    fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
        self.conversation.call_host(self.binding, call)
    }
}

/// What a request came to, ready to send.
enum Outcome {
    Output(crate::bytes::OutputBytes),
    Json(String),
    Opened(u32),
    Item(Vec<u8>),
    End,
    Failed(Error),
}

impl Outcome {
    fn send(&self, channel: &Channel) -> std::result::Result<(), ChannelError> {
        match self {
            Outcome::Output(output) => channel.send_frame(reply::OUTPUT, output.as_slice(), None),
            Outcome::Json(text) => channel.send_frame(reply::JSON, text.as_bytes(), None),
            Outcome::Opened(id) => channel.send_frame(reply::STREAM_OPENED, &id.to_le_bytes(), None),
            Outcome::Item(item) => channel.send_frame(reply::ITEM, item, None),
            Outcome::End => channel.send_frame(reply::END, &[], None),
            Outcome::Failed(error) => channel.send_frame(reply::FAILED, &protocol::encode(&WireError::from_error(error)), None),
        }
    }
}

/// Performs one request of the host's on this thread; `None` for one that
/// is not answered (STREAM_CLOSE).
fn respond(plugin: &Plugin, conversation: &Arc<Conversation>, kind: u8, body: &[u8]) -> Option<Outcome> {
    let (method, payload) = match protocol::split_call(body) {
        Ok(parts) => parts,
        Err(error) => return Some(Outcome::Failed(error)),
    };
    if kind == request::STREAM_CLOSE {
        conversation.close_stream(payload);
        return None;
    }
    let serves = SERVES_CALL.replace(true);
    let outcome = match kind {
        request::CALL_RAW => plugin.call_raw(method, payload).map(Outcome::Output),
        request::CALL_JSON => std::str::from_utf8(payload)
            .map_err(|_| Error::new(Status::InvalidUtf8, "the JSON arguments are not UTF-8"))
            .and_then(|args| plugin.call_json_index(method, args))
            .map(Outcome::Json),
        request::STREAM_OPEN => Ok(conversation.open_stream(plugin, method, payload)),
        request::STREAM_NEXT => Ok(conversation.next_item(payload)),
        other => Err(Error::new(Status::PluginProtocol, format!("message kind {other} is not a request"))),
    };
    SERVES_CALL.set(serves);
    Some(outcome.unwrap_or_else(Outcome::Failed))
}

/// Loads the plugin as the host would in-process, with its settings; the
/// host interfaces it serves are bound to forwarders over `conversation`.
fn load(request: &LoadRequest, conversation: &Arc<Conversation>) -> Result<Plugin> {
    let host = host_for(request)?;
    let mut options = LoadOptions::new();
    if let Some(text) = &request.interface {
        options.interface(Some(Arc::new(interface::file::parse(text, "the host's interface")?)));
    }
    options.config(request.config.clone());
    for (index, text) in request.host_interfaces.iter().enumerate() {
        let host_interface = Arc::new(interface::file::parse(text, "a host interface of the host's")?);
        let forwarder = Forwarder { conversation: conversation.clone(), binding: index as u32 };
        options.bind_host_functions(Arc::new(HostBinding::new(host_interface, forwarder)?));
    }
    host.load_path_with(&request.path, request.name.as_deref(), &options)
}

/// The plugins of the library `request` names, as the host's discovery
/// would list them in-process.
fn describe(request: &LoadRequest) -> Result<Listing> {
    let (plugins, rejected) = host_for(request)?.library_listing(&request.path)?;
    Ok(Listing { plugins, rejected: rejected.iter().map(WireError::from_error).collect() })
}

/// Applies what confines the whole worker, then starts the watcher of the
/// host's end (confined to no file at all when the filesystem is to be).
fn prepare(hardening: &hardening::Hardening) -> Result<()> {
    hardening::apply_before_load(hardening)?;
    watch_host(hardening.confine_filesystem)
}

/// Confines this thread, and so the threads the plugin starts from it, to
/// reading the plugin's own files and what its runtime reads during calls.
/// Landlock confines the threads that ask for it: a plugin that started a
/// thread while it loaded could not be confined, and is refused.
fn confine_to_plugin_files(request: &LoadRequest, plugin: &Plugin) -> Result<()> {
    let threads = hardening::thread_count()?;
    if threads > 2 {
        return Err(Error::at(
            Status::Unsupported,
            &request.path,
            format!(
                "the plugin started {} thread(s) while it loaded; filesystem confinement applies to the threads that ask \
                 for it, so it cannot confine them",
                threads - 2
            ),
        ));
    }
    let mut readable = vec![request.path.clone()];
    readable.extend(plugin.files_read_when_called());
    hardening::confine_filesystem(&readable).map_err(|e| e.context(request.path.display()))
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
fn watch_host(confined: bool) -> Result<()> {
    let (started, outcome) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("fidius-host-watch".into()).spawn(move || {
        let confinement = if confined { hardening::deny_all_files() } else { Ok(()) };
        let ready = confinement.is_ok();
        let _ = started.send(confinement);
        if ready {
            watch_loop();
        }
    });
    spawned.map_err(|e| Error::new(Status::Io, format!("the worker could not start its watcher thread: {e}")))?;
    outcome.recv().unwrap_or_else(|_| Err(Error::new(Status::Io, "the worker's watcher thread ended before it started")))
}

/// The watcher's loop: poll the host's end until it hangs up.
fn watch_loop() {
    loop {
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
    }
}
