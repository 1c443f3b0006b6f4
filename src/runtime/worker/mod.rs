//! Isolated plugins: a native library or Python package loaded and called
//! in a worker process (`fidius-host-worker`), so that a crash, an abort,
//! an exit, an endless loop or a leak in plugin code ends that process,
//! never the host.
//!
//! The worker runs this same library: it loads the plugin with the host's
//! own settings (the signature check included: it maps exactly the bytes it
//! verified) and serves calls over a socket ([`protocol`]). The host side,
//! [`IsolatedPlugin`], is one more [`PluginBackend`]: the plugin handle, its
//! calls and errors are the same as in-process. What only a process
//! boundary gives is here too: a deadline that kills (TIMEOUT), memory and
//! CPU caps, WORKER_LOST when the process dies, and a restart policy.

mod channel;
pub mod hardening;
pub mod process;
pub mod protocol;
mod serve;

pub use hardening::Hardening;
pub use serve::serve;

use crate::bytes::OutputBytes;
use crate::cancel::CancelToken;
use crate::error::{Error, Result, Status};
use crate::host_functions::{call_context, with_call_context, HostBinding};
use crate::interface::Interface;
use crate::plugin::{PluginBackend, PluginDescription, PluginInfo};
use crate::stream::{CallResult, Feed, Item, ItemSource, StreamArgs};
use crate::plugin_config::PluginConfig;
use channel::{Channel, ChannelError};
use process::{Child, Ending, Resources};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use protocol::{reply, request, stream_shape, HostAnswer, HostCallFrame, LoadRequest, WireError};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a plugin's code runs.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// In the host process (the default): the fastest calls; a fault in the
    /// plugin is a fault of the host.
    #[default]
    InProcess = 0,
    /// In a worker process of its own (native and Python plugins; WASM
    /// plugins are sandboxed in-process and ignore it).
    Isolated = 1,
}

impl TryFrom<u32> for Isolation {
    type Error = Error;

    fn try_from(value: u32) -> Result<Isolation> {
        match value {
            0 => Ok(Isolation::InProcess),
            1 => Ok(Isolation::Isolated),
            _ => Err(Error::new(Status::InvalidArgument, format!("isolation {value} is unknown (expected 0 = IN_PROCESS or 1 = ISOLATED)"))),
        }
    }
}

/// What the next call sees after an isolated plugin's worker died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed within `window`; 0: never restart (every later
    /// call is WORKER_LOST).
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub window: Duration,
}

impl Default for RestartPolicy {
    /// Restart on the next call, at most 5 times a minute.
    fn default() -> Self {
        RestartPolicy { max_restarts: 5, window: Duration::from_secs(60) }
    }
}

/// Host-wide settings of worker processes.
#[derive(Debug, Clone, Default)]
pub struct WorkerSettings {
    /// The worker executable; `None`: [`process::default_worker_path`].
    pub executable: Option<PathBuf>,
    /// RLIMIT_AS of each worker, in bytes.
    pub memory_limit: Option<u64>,
    /// RLIMIT_CPU of each worker, in whole seconds.
    pub cpu_limit_seconds: Option<u64>,
    /// The restart policy of isolated plugins.
    pub restarts: RestartPolicy,
    /// The confinement each worker puts itself under.
    pub hardening: Hardening,
}

/// Everything needed to start (and restart) one isolated plugin.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub executable: PathBuf,
    pub request: LoadRequest,
    /// The host functions the plugin may call, in the order of
    /// `request.host_interfaces`.
    pub host_bindings: Vec<Arc<HostBinding>>,
    /// The interface the load checked the plugin against (method names
    /// for messages).
    pub interface: Option<Arc<Interface>>,
    /// The deadline of each call and of the load; past it the worker is killed.
    pub deadline: Option<Duration>,
    pub restarts: RestartPolicy,
    pub max_output: usize,
}

impl WorkerSpec {
    /// The executable named in `settings`, or the one next to this library.
    pub fn executable(settings: &WorkerSettings) -> Result<PathBuf> {
        settings.executable.clone().or_else(process::default_worker_path).ok_or_else(|| {
            Error::new(
                Status::WorkerUnavailable,
                format!(
                    "no {} executable next to this library or in ../libexec from it; set its path on the builder",
                    process::WORKER_NAME
                ),
            )
        })
    }

    fn reply_limit(&self) -> usize {
        self.max_output.saturating_add(protocol::FRAME_OVERHEAD)
    }
}

/// A worker process with a plugin loaded.
struct Worker {
    child: Child,
    channel: Channel,
}

/// Use figures of one isolated plugin handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerUsage {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub restarts: u64,
    /// The running worker's process id; 0 when none runs.
    pub pid: i32,
    /// CPU time (user and system) of every worker of the handle: the ended
    /// ones' final figures and the running one's so far.
    pub cpu_time: Duration,
    /// The largest peak resident memory of those workers, in bytes.
    pub peak_memory: u64,
}

struct State {
    worker: Option<Worker>,
    /// Why the last worker was lost, while no new one runs.
    lost: Option<String>,
    /// The last worker was killed to cancel a call: the host's doing, not
    /// the plugin's, so its restart does not count against the policy.
    lost_to_cancel: bool,
    /// When the recent restarts happened, oldest first.
    restart_times: VecDeque<Instant>,
    usage: WorkerUsage,
    /// What the handle's ended workers used.
    ended: Resources,
    /// Counts the workers started after the first: a stream belongs to
    /// the worker that opened it.
    generation: u64,
}

/// Starts a worker and loads `spec`'s plugin in it.
pub fn start(spec: WorkerSpec) -> Result<(PluginDescription, IsolatedPlugin)> {
    let (worker, description) = launch(&spec)?;
    let plugin = IsolatedPlugin::new(spec, &description, worker);
    Ok((description, plugin))
}

/// A new worker with the plugin of `spec` loaded, and its description.
fn launch(spec: &WorkerSpec) -> Result<(Worker, PluginDescription)> {
    let (child, socket) = process::spawn(&spec.executable)?;
    let mut worker = Worker { child, channel: Channel::new(socket) };
    let description = load(&mut worker, spec, &spec.request)?;
    Ok((worker, description))
}

/// Asks `worker` to load `request`'s plugin.
fn load(worker: &mut Worker, spec: &WorkerSpec, request: &LoadRequest) -> Result<PluginDescription> {
    let body = ask(worker, spec, request, (request::LOAD, reply::LOADED), "load the plugin")?;
    protocol::decode(&body).map_err(|e| e.context(request.path.display()))
}

/// Asks `worker` what plugins the library of `request` holds.
fn describe(worker: &mut Worker, spec: &WorkerSpec, request: &LoadRequest) -> Result<(Vec<PluginInfo>, Vec<Error>)> {
    let body = ask(worker, spec, request, (request::DESCRIBE, reply::DESCRIBED), "open the library and list its plugins")?;
    let listing: protocol::Listing = protocol::decode(&body).map_err(|e| e.context(request.path.display()))?;
    let rejected = listing.rejected.into_iter().map(|error| error.into_error(&"".into(), None)).collect();
    Ok((listing.plugins, rejected))
}

/// Sends `request` as a message of the first kind of `kinds` and returns
/// the body of the reply of the second kind. A refusal is the worker's
/// error; a worker that dies, answers out of turn or does not answer in
/// time (doing `what`) is killed, and the failure says how it ended.
fn ask(worker: &mut Worker, spec: &WorkerSpec, request: &LoadRequest, kinds: (u8, u8), what: &str) -> Result<Vec<u8>> {
    let deadline = spec.deadline.map(|d| Instant::now() + d);
    let path = request.path.display();
    let mut body = Vec::new();
    let sent = worker.channel.send_frame(kinds.0, &protocol::encode(request), deadline);
    let received = sent.and_then(|()| worker.channel.receive(&mut body, protocol::FRAME_OVERHEAD.max(spec.reply_limit()), deadline));
    match received {
        Ok(kind) if kind == kinds.1 => Ok(body),
        Ok(reply::FAILED) => {
            let error: WireError = protocol::decode(&body)?;
            Err(error.into_error(&"".into(), None))
        }
        Ok(kind) => {
            let ending = worker.child.kill();
            Err(Error::new(Status::PluginProtocol, format!("{path}: asked to {what}, the worker process answered with message kind {kind}; it {ending}")))
        }
        Err(ChannelError::TimedOut) => {
            worker.child.kill();
            Err(Error::new(Status::Timeout, format!("{path}: the worker process did not {what} within {:?}; it was killed", spec.deadline.unwrap_or_default())))
        }
        Err(e) => {
            let ending = worker.child.kill();
            Err(Error::new(Status::WorkerLost, format!("{path}: the worker process {ending} when asked to {what}{}", channel_detail(&e))))
        }
    }
}

fn channel_detail(error: &ChannelError) -> String {
    match error {
        ChannelError::Closed | ChannelError::TimedOut => String::new(),
        ChannelError::Oversized(len) => format!(" (it sent a {len}-byte message, over the limit)"),
        ChannelError::Io(e) => format!(" (socket error: {e})"),
    }
}

/// The host side of an isolated plugin: calls go to its worker, one at a
/// time. Its open streams share it: the worker ends with the last of them.
pub struct IsolatedPlugin(Arc<Shared>);

impl IsolatedPlugin {
    fn new(spec: WorkerSpec, description: &PluginDescription, worker: Worker) -> IsolatedPlugin {
        IsolatedPlugin(Arc::new(Shared::new(spec, description, worker)))
    }

    /// This handle's use figures.
    pub fn usage(&self) -> WorkerUsage {
        self.0.usage()
    }
}

/// What an isolated plugin's handle and its streams share.
struct Shared {
    spec: Arc<WorkerSpec>,
    name: Arc<str>,
    /// What the plugin said of itself at load; a restarted worker must say
    /// the same (the file may have changed on disk since).
    expected: PluginDescription,
    /// Held for a whole call. Reentrant: a host function the plugin calls
    /// runs on the calling thread and may call the plugin again, which the
    /// worker serves inside the first call. The state itself is borrowed
    /// only between socket exchanges, never while a host function runs.
    state: ReentrantMutex<RefCell<State>>,
}

impl Shared {
    /// The handle of the plugin `worker` loaded as `description` says.
    fn new(spec: WorkerSpec, description: &PluginDescription, worker: Worker) -> Shared {
        Shared {
            spec: Arc::new(spec),
            name: description.info.name.as_str().into(),
            expected: description.clone(),
            state: ReentrantMutex::new(RefCell::new(State {
                worker: Some(worker),
                lost: None,
                lost_to_cancel: false,
                restart_times: VecDeque::new(),
                usage: WorkerUsage::default(),
                ended: Resources::default(),
                generation: 0,
            })),
        }
    }

    /// The handle's lock, for a call of `method`: a call waits for the
    /// calls before it within its deadline (TIMEOUT past it).
    fn lock(&self, method: u32) -> Result<ReentrantMutexGuard<'_, RefCell<State>>> {
        let Some(deadline) = self.spec.deadline else {
            return Ok(self.state.lock());
        };
        self.state.try_lock_for(deadline).ok_or_else(|| {
            Error::new(
                Status::Timeout,
                format!(
                    "{} could not start within {deadline:?}: its worker serves one call at a time, \
                     and the calls before it ran that long",
                    self.called(method)
                ),
            )
        })
    }

    /// The plugin and the method `index` names, for messages: the method's
    /// name when the load had an interface, its index otherwise.
    fn called(&self, index: u32) -> Called<'_> {
        let method = self.spec.interface.as_ref().and_then(|i| i.methods().get(index as usize)).map(|m| m.name.as_str());
        Called { plugin: &self.name, method, index }
    }

    /// This handle's use figures.
    pub fn usage(&self) -> WorkerUsage {
        let lock = self.state.lock();
        let state = lock.borrow();
        let running = state.worker.as_ref().map(|w| w.child.resources()).unwrap_or_default();
        let used = state.ended.then(running);
        WorkerUsage {
            pid: state.worker.as_ref().map_or(0, |w| w.child.pid()),
            cpu_time: used.cpu_time,
            peak_memory: used.peak_memory,
            ..state.usage
        }
    }

    /// The running worker, restarted first when it was lost and the policy
    /// allows.
    fn ready<'a>(&self, state: &'a mut State) -> Result<&'a mut Worker> {
        if state.worker.is_none() {
            let reason = state.lost.clone().unwrap_or_else(|| "it ended".to_string());
            let policy = self.spec.restarts;
            let now = Instant::now();
            while state.restart_times.front().is_some_and(|t| now.duration_since(*t) > policy.window) {
                state.restart_times.pop_front();
            }
            if !state.lost_to_cancel && state.restart_times.len() >= policy.max_restarts as usize {
                return Err(Error::new(
                    Status::WorkerLost,
                    format!(
                        "plugin '{}': its worker process was lost ({reason}) and the restart policy allows no restart now \
                         ({} within {:?})",
                        self.name, policy.max_restarts, policy.window
                    ),
                ));
            }
            if !state.lost_to_cancel {
                state.restart_times.push_back(now);
            }
            state.usage.restarts += 1;
            let (worker, description) = launch(&self.spec).map_err(|e| e.context(format!("plugin '{}': restarting its worker process", self.name)))?;
            let same = description.info.name == self.expected.info.name
                && description.info.interface_hash == self.expected.info.interface_hash
                && description.method_count == self.expected.method_count;
            if !same {
                state.lost = Some("the restarted worker found a different plugin in the file".to_string());
                return Err(Error::new(
                    Status::WorkerLost,
                    format!("plugin '{}': the restarted worker process loaded a different plugin from {}", self.name, self.spec.request.path.display()),
                ));
            }
            state.worker = Some(worker);
            state.generation += 1;
            state.lost = None;
            state.lost_to_cancel = false;
        }
        Ok(state.worker.as_mut().expect("just set"))
    }

    /// One request: the reply's kind and body. Cancelling its token kills
    /// the worker; the call is CANCELLED unless its whole reply had arrived
    /// (the worker is replaced either way).
    fn call(&self, state: &RefCell<State>, request: Request<'_>) -> Result<(u8, Vec<u8>)> {
        let Request { kind: _, method, payload, cancel, feed: _, until } = request;
        if payload.len() > u32::MAX as usize - 16 {
            return Err(Error::new(Status::InputTooLarge, format!("plugin '{}': an input of {} bytes does not fit a worker message", self.name, payload.len())));
        }
        // A token cancelled already: refused before it counts as a call.
        if let Some(token) = cancel {
            token.check(self.called(method))?;
        }
        let started = Instant::now();
        let deadline = [self.spec.deadline.map(|d| started + d), until].into_iter().flatten().min();
        let pid = {
            let mut state = state.borrow_mut();
            state.usage.calls += 1;
            self.ready(&mut state)?.child.pid()
        };
        let killer = match cancel {
            Some(token) => Some(self.killer(token, pid, method)?),
            None => None,
        };
        let outcome = self.exchange(state, &request, deadline);
        // Deregistered before the worker can be reaped: the kill never
        // reaches a process id that was handed on.
        let killed = killer.is_some_and(Killer::finish);
        let mut state = state.borrow_mut();
        if killed {
            self.bury(&mut state, |_| "it was killed to cancel a call".to_string());
            state.lost_to_cancel = true;
        }
        let result = match outcome {
            Ok(reply) => Ok(reply),
            Err(_) if killed => Err(crate::cancel::cancelled(
                self.called(method),
                "its worker process was killed (the next call starts a new one)",
            )),
            Err(ChannelError::TimedOut) => {
                state.usage.timeouts += 1;
                self.bury(&mut state, |_| "it was killed at the call deadline".to_string());
                Err(Error::new(
                    Status::Timeout,
                    format!(
                        "{} did not return within {:?}; its worker process was killed",
                        self.called(method),
                        deadline.map(|d| d.saturating_duration_since(started)).unwrap_or_default()
                    ),
                ))
            }
            // A call the host made from one of its host functions lost the
            // worker while this call waited for it.
            Err(_) if state.worker.is_none() => Err(Error::new(
                Status::WorkerLost,
                format!(
                    "{}: its worker process was lost during a call made from a host function ({})",
                    self.called(method),
                    state.lost.as_deref().unwrap_or("it ended")
                ),
            )),
            Err(e) => {
                let detail = channel_detail(&e);
                let ending = self.bury(&mut state, |ending| format!("it {ending}"));
                Err(Error::new(
                    Status::WorkerLost,
                    format!("{}: its worker process {ending}{detail}{}", self.called(method), self.limits_note()),
                ))
            }
        };
        if result.is_err() {
            state.usage.errors += 1;
        }
        result
    }

    /// Sends a request and receives frames until its reply, answering the
    /// host-function calls and input reads the plugin makes meanwhile.
    /// `state` is not borrowed while a host function runs: it may call
    /// this plugin again.
    fn exchange(&self, state: &RefCell<State>, request: &Request<'_>, deadline: Option<Instant>) -> std::result::Result<(u8, Vec<u8>), ChannelError> {
        let index = request.method.to_le_bytes();
        let mut header = [0u8; protocol::HEADER];
        let frame = protocol::call_frame(request.kind, &index, request.payload, &mut header);
        on_channel(state, |channel| channel.send(&frame, deadline))?;
        let limit = self.spec.reply_limit();
        loop {
            let mut body = Vec::new();
            let kind = on_channel(state, |channel| channel.receive(&mut body, limit, deadline))?;
            let (answer_kind, answer) = match kind {
                reply::HOST_CALL => (request::HOST_RESULT, protocol::encode(&answer_host_call(&self.spec.host_bindings, &body))),
                reply::FEED_PULL => (request::FEED_ITEM, feed_item(request.feed)),
                _ => return Ok((kind, body)),
            };
            on_channel(state, |channel| channel.send_frame(answer_kind, &answer, deadline))?;
        }
    }

    /// Registers the kill of worker `pid` as the way to cancel a call of
    /// `method` with `token`.
    fn killer(&self, token: &CancelToken, pid: libc::pid_t, method: u32) -> Result<Killer> {
        let killed = Arc::new(AtomicBool::new(false));
        let flag = killed.clone();
        let registration = token.register(self.called(method), move || {
            flag.store(true, Ordering::SeqCst);
            // SAFETY: plain syscall; `pid` is the call's worker, not yet
            // reaped while this canceller can run (see `call`).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })?;
        Ok(Killer { registration, killed })
    }

    /// Kills the current worker, records why it is gone, and says how it ended.
    fn bury(&self, state: &mut State, reason: impl FnOnce(Ending) -> String) -> Ending {
        let ending = match state.worker.take() {
            Some(mut worker) => {
                let ending = worker.child.kill();
                state.ended = state.ended.then(worker.child.resources());
                ending
            }
            // A worker killed to cancel the call is already buried.
            None => Ending::Signaled(libc::SIGKILL),
        };
        state.lost = Some(reason(ending));
        ending
    }

    /// The caps a lost worker may have hit, for its message.
    fn limits_note(&self) -> String {
        let request = &self.spec.request;
        let mut notes = Vec::new();
        if let Some(bytes) = request.memory_limit {
            notes.push(format!("memory cap {bytes} bytes"));
        }
        if let Some(seconds) = request.cpu_limit_seconds {
            notes.push(format!("CPU-time cap {seconds} s"));
        }
        if notes.is_empty() {
            String::new()
        } else {
            format!(" (limits: {})", notes.join(", "))
        }
    }

    /// A reply that is not the one expected: the plugin's error, or a
    /// broken worker (killed; the next call restarts it).
    fn unexpected(&self, state: &mut State, kind: u8, body: &[u8], method: u32) -> Error {
        if kind == reply::FAILED {
            state.usage.errors += 1;
            return match protocol::decode::<WireError>(body) {
                Ok(error) => error.into_error(&self.name, Some(method)),
                Err(e) => e,
            };
        }
        state.usage.errors += 1;
        let ending = self.bury(state, |ending| format!("it sent message kind {kind} and was killed ({ending})"));
        Error::new(Status::PluginProtocol, format!("{}: the worker process answered with message kind {kind}; it {ending}", self.called(method)))
    }
}

/// Runs the host function a `HOST_CALL` frame asks for, on this thread,
/// with this call's context when the plugin called from the thread serving
/// the call, as in-process (none from threads it started). A malformed
/// frame or an unknown binding is a failure for the plugin to hear.
fn answer_host_call(bindings: &[Arc<HostBinding>], body: &[u8]) -> HostAnswer {
    let frame = match HostCallFrame::parse(body) {
        Ok(frame) => frame,
        Err(e) => return HostAnswer::Failed(e.message().to_string()),
    };
    let Some(binding) = bindings.get(frame.binding as usize) else {
        return HostAnswer::Failed(format!("the worker named host interface {}, which was not bound", frame.binding));
    };
    let context = if frame.on_call_thread { call_context() } else { 0 };
    with_call_context(context, || binding.answer(frame.method, frame.args)).into()
}

/// The answer to a FEED_PULL: the input's next item, or its end (also
/// when it failed: the host reports that failure itself).
fn feed_item(feed: Option<&Feed>) -> Vec<u8> {
    match feed.and_then(Feed::next_bincode) {
        Some(item) => [&[1u8][..], &item].concat(),
        None => vec![0],
    }
}

/// One request to the worker.
#[derive(Clone, Copy)]
struct Request<'a> {
    kind: u8,
    /// The method it is about (a stream request's method, too).
    method: u32,
    payload: &'a [u8],
    cancel: Option<&'a CancelToken>,
    /// The input the plugin reads while the request runs.
    feed: Option<&'a Feed>,
    /// The caller's deadline, when earlier than the call deadline.
    until: Option<Instant>,
}

impl<'a> Request<'a> {
    fn new(kind: u8, method: u32, payload: &'a [u8]) -> Request<'a> {
        Request { kind, method, payload, cancel: None, feed: None, until: None }
    }
}

/// `exchange` on the channel of the running worker, `state` borrowed for
/// that long. No worker: a call made from a host function lost it.
fn on_channel<T>(state: &RefCell<State>, exchange: impl FnOnce(&Channel) -> std::result::Result<T, ChannelError>) -> std::result::Result<T, ChannelError> {
    match state.borrow().worker.as_ref() {
        Some(worker) => exchange(&worker.channel),
        None => Err(ChannelError::Closed),
    }
}

/// "plugin 'name' method 'add'" (or "method 2" without an interface).
struct Called<'a> {
    plugin: &'a str,
    method: Option<&'a str>,
    index: u32,
}

impl std::fmt::Display for Called<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.method {
            Some(name) => write!(f, "plugin '{}' method '{name}'", self.plugin),
            None => write!(f, "plugin '{}' method {}", self.plugin, self.index),
        }
    }
}

/// The cancel registration of one isolated call.
struct Killer {
    registration: crate::cancel::Registration,
    killed: Arc<AtomicBool>,
}

impl Killer {
    /// Deregisters; whether the worker was killed.
    fn finish(self) -> bool {
        drop(self.registration);
        self.killed.load(Ordering::SeqCst)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(worker) = self.state.get_mut().get_mut().worker.take() {
            let Worker { mut child, channel } = worker;
            // Closing the socket asks the worker to end: its plugin is
            // destroyed, then it exits.
            drop(channel);
            child.finish();
        }
    }
}

impl PluginBackend for IsolatedPlugin {
    fn call_raw(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes> {
        let shared = &self.0;
        let lock = shared.lock(method)?;
        match shared.call(&lock, Request { cancel, ..Request::new(request::CALL_RAW, method, input) })? {
            (reply::OUTPUT, body) => Ok(OutputBytes::from_vec(body)),
            (kind, body) => Err(shared.unexpected(&mut lock.borrow_mut(), kind, &body, method)),
        }
    }

    fn call_json(&self, _interface: &Interface, method: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        let shared = &self.0;
        let lock = shared.lock(method)?;
        match shared.call(&lock, Request { cancel, ..Request::new(request::CALL_JSON, method, args_json.as_bytes()) })? {
            (reply::JSON, body) => String::from_utf8(body)
                .map_err(|_| Error::new(Status::PluginProtocol, format!("plugin '{}': the worker sent a JSON result that is not UTF-8", shared.name))),
            (kind, body) => Err(shared.unexpected(&mut lock.borrow_mut(), kind, &body, method)),
        }
    }

    fn new_instance(&self, config: &PluginConfig) -> Result<Box<dyn PluginBackend>> {
        let mut spec = (*self.0.spec).clone();
        spec.request.config = Some(config.source());
        let (_, plugin) = start(spec)?;
        Ok(Box::new(plugin))
    }

    fn worker_usage(&self) -> Option<WorkerUsage> {
        Some(self.0.usage())
    }

    fn call_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<Box<dyn ItemSource>> {
        let shape = if input.is_some() { stream_shape::BIDIRECTIONAL } else { stream_shape::SERVER };
        let payload = [&[shape][..], &args.bincode(interface, interface.method(method)?)?].concat();
        let shared = &self.0;
        let lock = shared.lock(method)?;
        let opened = shared.call(&lock, Request { feed: input.as_ref(), ..Request::new(request::STREAM_OPEN, method, &payload) })?;
        let id = match opened {
            (reply::STREAM_OPENED, body) if body.len() == 4 => u32::from_le_bytes(body[..].try_into().expect("4 bytes")),
            (kind, body) => return Err(shared.unexpected(&mut lock.borrow_mut(), kind, &body, method)),
        };
        let generation = lock.borrow().generation;
        Ok(Box::new(IsolatedStream { shared: shared.clone(), method, id, generation, feed: input, item: Vec::new() }))
    }

    fn call_client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        let payload = [&[stream_shape::CLIENT][..], &args.bincode(interface, interface.method(method)?)?].concat();
        let shared = &self.0;
        let lock = shared.lock(method)?;
        match shared.call(&lock, Request { feed: Some(input), ..Request::new(request::STREAM_OPEN, method, &payload) })? {
            (reply::OUTPUT, body) => Ok(CallResult::Bincode(OutputBytes::from_vec(body))),
            (kind, body) => Err(shared.unexpected(&mut lock.borrow_mut(), kind, &body, method)),
        }
    }
}

/// A server-streaming or bidirectional call of an isolated plugin: each
/// item is a request to the worker that opened it, which holds the
/// plugin's stream.
struct IsolatedStream {
    shared: Arc<Shared>,
    method: u32,
    /// The stream's id in its worker.
    id: u32,
    /// Which of the handle's workers opened it.
    generation: u64,
    feed: Option<Feed>,
    item: Vec<u8>,
}

impl IsolatedStream {
    /// Whether the worker that opened this stream still runs.
    fn worker_alive(&self, state: &State) -> bool {
        state.worker.is_some() && state.generation == self.generation
    }
}

impl ItemSource for IsolatedStream {
    fn advance(&mut self, until: Option<Instant>) -> Result<bool> {
        let shared = &self.shared;
        let lock = shared.lock(self.method)?;
        if !self.worker_alive(&lock.borrow()) {
            return Err(Error::new(
                Status::WorkerLost,
                format!("{}: the worker process that served this stream was lost; the stream ended with it", shared.called(self.method)),
            ));
        }
        let id = self.id.to_le_bytes();
        let next = Request { feed: self.feed.as_ref(), until, ..Request::new(request::STREAM_NEXT, self.method, &id) };
        match shared.call(&lock, next)? {
            (reply::ITEM, body) => {
                self.item = body;
                Ok(true)
            }
            (reply::END, _) => Ok(false),
            (kind, body) => Err(shared.unexpected(&mut lock.borrow_mut(), kind, &body, self.method)),
        }
    }

    fn item(&self) -> Item<'_> {
        Item::Bincode(&self.item)
    }
}

impl Drop for IsolatedStream {
    /// Tells the worker to drop its stream (not waiting for it: the
    /// worker closes streams in order with the requests that follow).
    fn drop(&mut self) {
        // Behind a call that runs on and on, the worker keeps the stream
        // until it ends instead.
        let Some(lock) = self.shared.state.try_lock_for(Duration::from_secs(1)) else {
            return;
        };
        let state = lock.borrow();
        if self.worker_alive(&state) {
            let index = self.method.to_le_bytes();
            let id = self.id.to_le_bytes();
            let mut header = [0u8; protocol::HEADER];
            let frame = protocol::call_frame(request::STREAM_CLOSE, &index, &id, &mut header);
            if let Some(worker) = state.worker.as_ref() {
                // A worker that cannot take 13 bytes within a second is
                // stuck; the next request finds out.
                let _ = worker.channel.send(&frame, Some(Instant::now() + Duration::from_secs(1)));
            }
        }
    }
}

/// A probe worker for discovery and load-by-name: one process that is
/// asked about one candidate file after another.
pub struct Probe {
    spec: WorkerSpec,
    worker: Option<Worker>,
}

impl Probe {
    pub fn new(spec: WorkerSpec) -> Probe {
        Probe { spec, worker: None }
    }

    /// The probe's worker, started when there is none.
    fn worker(&mut self) -> Result<Worker> {
        match self.worker.take() {
            Some(worker) => Ok(worker),
            None => {
                let (child, socket) = process::spawn(&self.spec.executable)?;
                Ok(Worker { child, channel: Channel::new(socket) })
            }
        }
    }

    /// Keeps `worker` for the next request unless `outcome` says it died,
    /// hung or broke the protocol (it was killed then).
    fn keep<T>(&mut self, worker: Worker, outcome: &Result<T>) {
        let lost = outcome.as_ref().err().is_some_and(|e| matches!(e.status(), Status::WorkerLost | Status::Timeout | Status::PluginProtocol));
        if !lost {
            self.worker = Some(worker);
        }
    }

    /// What plugins the library of `request` holds (a discovery), opened
    /// in the probe's worker, which lives on for the next library unless
    /// this one took it down.
    pub fn describe(&mut self, request: LoadRequest) -> Result<(Vec<PluginInfo>, Vec<Error>)> {
        let mut worker = self.worker()?;
        let listing = describe(&mut worker, &self.spec, &request);
        self.keep(worker, &listing);
        listing
    }

    /// Asks for the plugin of `request` (a candidate file). Ok: the plugin
    /// loaded and the probe's worker now serves it.
    pub fn try_load(&mut self, request: LoadRequest) -> Result<(PluginDescription, IsolatedPlugin)> {
        let mut worker = self.worker()?;
        match load(&mut worker, &self.spec, &request) {
            Ok(description) => {
                let mut spec = self.spec.clone();
                spec.request = request;
                let plugin = IsolatedPlugin::new(spec, &description, worker);
                Ok((description, plugin))
            }
            Err(error) => {
                // A worker that refused the file lives on for the next one;
                // one that died or hung was killed and is replaced.
                let failed = Err(error);
                self.keep(worker, &failed);
                failed
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(Worker { mut child, channel }) = self.worker.take() {
            drop(channel);
            child.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_functions::{HostCall, HostFailure, HostHandler};
    use crate::interface::{InterfaceBuilder, MethodFlags};

    /// Echoes its arguments and the context it saw.
    struct Echo;
    impl HostHandler for Echo {
        fn call(&self, call: &HostCall<'_>) -> std::result::Result<Vec<u8>, HostFailure> {
            match call.args {
                b"fail" => Err(HostFailure::Error(crate::error::PluginError::new("NO", "refused", Some("{}")))),
                args => Ok([args, &call.context.to_le_bytes()].concat()),
            }
        }
    }

    fn bindings() -> Vec<Arc<HostBinding>> {
        let mut builder = InterfaceBuilder::new("Ledger", 1).unwrap();
        builder.method("log:String->", MethodFlags::default()).unwrap();
        vec![Arc::new(HostBinding::new(Arc::new(builder.build().unwrap()), Echo).unwrap())]
    }

    fn frame(binding: u32, method: u32, on_call_thread: bool, args: &[u8]) -> Vec<u8> {
        let frame = HostCallFrame { binding, method, on_call_thread, args };
        [&frame.prefix()[..], args].concat()
    }

    fn answer(body: &[u8]) -> std::result::Result<Vec<u8>, HostFailure> {
        // Through the wire form, as the worker receives it.
        let answer: HostAnswer = protocol::decode(&protocol::encode(&answer_host_call(&bindings(), body))).unwrap();
        answer.into()
    }

    #[test]
    fn a_host_call_gets_the_calls_context_only_from_the_thread_serving_the_call() {
        with_call_context(7, || {
            assert_eq!(answer(&frame(0, 0, true, b"hi")).unwrap(), [&b"hi"[..], &7usize.to_le_bytes()].concat());
            assert_eq!(answer(&frame(0, 0, false, b"hi")).unwrap(), [&b"hi"[..], &0usize.to_le_bytes()].concat());
        });
        let Err(HostFailure::Error(e)) = answer(&frame(0, 0, true, b"fail")) else { panic!("the handler's error is kept") };
        assert_eq!((e.code(), e.message(), e.details()), ("NO", "refused", Some("{}")));
    }

    #[test]
    fn a_worker_naming_what_was_not_bound_hears_a_failure() {
        let failed = |body: &[u8]| match answer(body) {
            Err(HostFailure::Failed(why)) => why,
            other => panic!("{other:?}"),
        };
        assert!(failed(&frame(1, 0, true, b"")).contains("host interface 1, which was not bound"));
        assert!(failed(&frame(0, 5, true, b"")).contains("method index 5 is out of range"));
        assert!(failed(&[1, 2, 3]).contains("shorter than its header"));
    }
}
