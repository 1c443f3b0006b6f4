//! Deadlines for Python code, imports at load and every call, and the
//! cancellation of calls.
//!
//! Python code cannot be stopped from outside, only asked to stop: a
//! watchdog thread raises `DeadlineExceeded` (a `BaseException`, so
//! `except Exception` does not swallow it) in the thread running past its
//! deadline with `PyThreadState_SetAsyncExc`. Code that catches it anyway
//! gets it again [`REPEAT`] later, now from a trace function installed in
//! that thread that raises it at every line and call: an `except` clause
//! that swallows it raises it again on its first line, so no amount of
//! catching keeps pure-Python code running. The exception lands when the
//! thread next runs Python bytecode: a pure-Python loop ends within a few
//! milliseconds, and `time.sleep` inside a plugin sleeps in short slices
//! (see `host.py`) so a sleeping plugin ends too. A thread blocked in C code
//! (a socket read, a lock) or in a C extension sees nothing until that call
//! returns: the header says so. Cancelling a call's token makes its watch
//! due at once: the same exception, the same way.
//!
//! Lock order: the GIL, then the watch list. Calls register and unregister
//! while holding the GIL, and the watchdog takes the GIL before the list,
//! so a call that has unregistered can never be interrupted afterwards.

use crate::cancel::CancelToken;
use crate::error::Result;
use pyo3::prelude::*;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the exception is raised again while a thread stays past its
/// deadline.
const REPEAT: Duration = Duration::from_millis(50);

/// The deadline of a watched call that has none: a cancel token is all
/// that ends it.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long the watchdog sleeps with nothing due. A call whose deadline is
/// later than the watchdog's next wake-up registers without waking it (a
/// futex wake on every call would cost more than the call): the watchdog
/// finds the call when it wakes.
const IDLE: Duration = Duration::from_secs(1);

/// One running import or call.
struct Watch {
    token: u64,
    /// `PyThread_get_thread_ident()` of the thread running it.
    thread: std::ffi::c_ulong,
    /// That thread's Python state; alive while the watch is registered.
    state: ThreadState,
    deadline: Instant,
    /// When the exception was last raised (`None`: not yet).
    fired: Option<Instant>,
    /// Raised for a cancel token, not for the deadline.
    cancelled: bool,
}

struct ThreadState(*mut pyo3::ffi::PyThreadState);

// SAFETY: only used with the GIL held, while its thread runs the watched call.
unsafe impl Send for ThreadState {}

extern "C" {
    /// `sys.settrace` for any thread (CPython's own, behind
    /// `threading.settrace_all_threads`).
    fn _PyEval_SetTrace(
        tstate: *mut pyo3::ffi::PyThreadState,
        func: Option<pyo3::ffi::Py_tracefunc>,
        arg: *mut pyo3::ffi::PyObject,
    ) -> std::ffi::c_int;
}

/// The trace function of a thread past its deadline: raises `exception`
/// (the trace argument) at every line and call of the plugin's own code,
/// and lets the host's and the standard library's code (import machinery,
/// `host.py`'s error handling) run undisturbed.
unsafe extern "C" fn raise_deadline(
    exception: *mut pyo3::ffi::PyObject,
    frame: *mut pyo3::ffi::PyFrameObject,
    what: std::ffi::c_int,
    _arg: *mut pyo3::ffi::PyObject,
) -> std::ffi::c_int {
    if what != pyo3::ffi::PyTrace_LINE && what != pyo3::ffi::PyTrace_CALL {
        return 0;
    }
    // SAFETY: called by the interpreter with the GIL held and a live frame.
    unsafe {
        if !in_plugin(frame) {
            return 0;
        }
        pyo3::ffi::PyErr_SetNone(exception);
    }
    -1
}

/// Whether `frame` runs a module of a plugin (`_fidius_plugins.*`).
///
/// # Safety
/// The GIL is held and `frame` is live.
unsafe fn in_plugin(frame: *mut pyo3::ffi::PyFrameObject) -> bool {
    use pyo3::ffi;
    let globals = unsafe { ffi::PyFrame_GetGlobals(frame) };
    if globals.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return false;
    }
    let name = unsafe { ffi::PyDict_GetItemString(globals, c"__name__".as_ptr()) };
    let mut len: ffi::Py_ssize_t = 0;
    let text = if name.is_null() || unsafe { ffi::PyUnicode_Check(name) } == 0 {
        std::ptr::null()
    } else {
        unsafe { ffi::PyUnicode_AsUTF8AndSize(name, &mut len) }
    };
    let prefix = b"_fidius_plugins.";
    let found = !text.is_null()
        && len as usize >= prefix.len()
        && unsafe { std::slice::from_raw_parts(text.cast::<u8>(), prefix.len()) } == prefix;
    unsafe {
        ffi::PyErr_Clear();
        ffi::Py_DECREF(globals);
    }
    found
}

#[derive(Default)]
struct Watches {
    list: Vec<Watch>,
    next_token: u64,
    /// When the watchdog wakes next (`None`: it is not waiting).
    next_wake: Option<Instant>,
}

struct Watchdog {
    watches: Mutex<Watches>,
    changed: Condvar,
    /// `_fidius_host.DeadlineExceeded`.
    exception: Py<PyAny>,
}

static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

/// What [`run`] learned besides the result.
pub(super) struct Outcome<T> {
    pub value: T,
    /// The deadline passed and the code was interrupted.
    pub timed_out: bool,
    /// The call's cancel token was cancelled and the code was interrupted.
    pub cancelled: bool,
}

/// A cancel token, and what the call it is given to is (for the error of
/// a token cancelled before the call starts).
pub(super) type Cancel<'a> = Option<(&'a CancelToken, &'a str)>;

/// Runs `f` (Python code on this thread, with the GIL held) under
/// `deadline`, interrupted when it passes or `cancel`'s token is cancelled;
/// `exception` is the class to raise then. CANCELLED without running `f`
/// when the token already is.
pub(super) fn run<T>(
    _py: Python<'_>,
    deadline: Option<Duration>,
    cancel: Cancel<'_>,
    exception: &Bound<'_, PyAny>,
    f: impl FnOnce() -> T,
) -> Result<Outcome<T>> {
    if deadline.is_none() && cancel.is_none() {
        return Ok(Outcome { value: f(), timed_out: false, cancelled: false });
    }
    // A call with a token and no deadline is watched until the token fires.
    let limit = deadline.unwrap_or(NEVER);
    let watchdog = WATCHDOG.get_or_init(|| start(exception.clone().unbind()));
    // SAFETY: plain query of the current thread's id.
    let thread = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
    // SAFETY: the GIL is held (`_py`), so this thread has a Python state.
    let state = ThreadState(unsafe { pyo3::ffi::PyThreadState_Get() });
    let token = {
        let mut watches = watchdog.lock();
        watches.next_token += 1;
        let token = watches.next_token;
        let now = Instant::now();
        let deadline = now.checked_add(limit).unwrap_or(now + NEVER);
        watches.list.push(Watch { token, thread, state, deadline, fired: None, cancelled: false });
        if watches.next_wake.is_none_or(|wake| deadline < wake) {
            watchdog.changed.notify_one();
        }
        token
    };
    // Unregisters even if `f` unwinds: the watchdog must never touch this
    // thread's state once the call is over.
    let mut registration = Registration { watchdog, token: Some(token), thread };
    let _canceller = match cancel {
        Some((cancel, what)) => Some(cancel.register(what, move || watchdog.cancel(token))?),
        None => None,
    };
    let value = f();
    let (fired, cancelled) = registration.finish();
    Ok(Outcome { value, timed_out: fired && !cancelled, cancelled: fired && cancelled })
}

/// A registered watch, removed when finished or dropped (with the GIL held:
/// both happen inside the call's `Python::attach`).
struct Registration<'a> {
    watchdog: &'a Watchdog,
    token: Option<u64>,
    thread: std::ffi::c_ulong,
}

impl Registration<'_> {
    /// Removes the watch; whether the exception was raised, and whether
    /// for a cancel token.
    fn finish(&mut self) -> (bool, bool) {
        let Some(token) = self.token.take() else { return (false, false) };
        let (fired, cancelled) = {
            let mut watches = self.watchdog.lock();
            let at = watches.list.iter().position(|w| w.token == token).expect("registered by run");
            let watch = watches.list.swap_remove(at);
            (watch.fired.is_some(), watch.cancelled)
        };
        if fired {
            // An exception raised after the code returned would land in the
            // caller's own Python code (when the host is Python): withdraw it.
            // SAFETY: the GIL is held (see the type); NULL clears the pending
            // exception and removes this thread's trace function.
            unsafe {
                pyo3::ffi::PyThreadState_SetAsyncExc(self.thread as std::ffi::c_long, std::ptr::null_mut());
                pyo3::ffi::PyEval_SetTrace(None, std::ptr::null_mut());
            }
        }
        (fired, cancelled)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Watchdog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watches> {
        self.watches.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes watch `token`, if it is still registered, due now, for its
    /// cancel token. Takes the list only, never the GIL: it runs on the
    /// cancelling thread, which may hold nothing else.
    fn cancel(&self, token: u64) {
        let mut watches = self.lock();
        if let Some(watch) = watches.list.iter_mut().find(|w| w.token == token) {
            watch.cancelled = true;
            if watch.fired.is_none() {
                watch.deadline = Instant::now();
            }
            self.changed.notify_one();
        }
    }
}

fn start(exception: Py<PyAny>) -> Watchdog {
    std::thread::Builder::new()
        .name("fidius-python-deadline".into())
        .spawn(watch)
        .expect("cannot start the Python deadline thread");
    Watchdog { watches: Mutex::new(Watches::default()), changed: Condvar::new(), exception }
}

/// The watchdog: sleeps until the next deadline (or repeat), then raises.
fn watch() {
    let watchdog = loop {
        match WATCHDOG.get() {
            Some(watchdog) => break watchdog,
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    loop {
        {
            let mut watches = watchdog.lock();
            loop {
                let now = Instant::now();
                let due = watches.list.iter().map(|w| w.fired.map_or(w.deadline, |at| at + REPEAT)).min();
                let wake = match due {
                    Some(due) if due <= now => break,
                    Some(due) => due.min(now + IDLE),
                    None => now + IDLE,
                };
                watches.next_wake = Some(wake);
                watches = watchdog.changed.wait_timeout(watches, wake - now).unwrap_or_else(|p| p.into_inner()).0;
            }
            watches.next_wake = None;
        }
        // The GIL first, then the list (see the module documentation).
        Python::attach(|_py| {
            let now = Instant::now();
            let mut watches = watchdog.lock();
            for w in watches.list.iter_mut() {
                if w.fired.map_or(w.deadline, |at| at + REPEAT) <= now {
                    let exception = watchdog.exception.as_ptr();
                    // SAFETY: the GIL is held; the class is a live exception
                    // type; the thread state is alive while the watch is
                    // registered (its call unregisters with the GIL held).
                    unsafe {
                        pyo3::ffi::PyThreadState_SetAsyncExc(w.thread as std::ffi::c_long, exception);
                        if w.fired.is_some() {
                            _PyEval_SetTrace(w.state.0, Some(raise_deadline), exception);
                        }
                    }
                    w.fired = Some(now);
                }
            }
        });
    }
}
