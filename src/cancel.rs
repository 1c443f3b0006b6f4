//! Cancellation of running calls from another thread.
//!
//! A [`CancelToken`] is handed to calls; [`CancelToken::cancel`] stops the
//! calls running with it and refuses those that start with it afterwards
//! (a cancelled token stays cancelled). How a call is stopped is its
//! runtime's business: each one [`CancelToken::register`]s a canceller for
//! the time it runs — WASM interrupts the guest at its next epoch check,
//! an isolated plugin's worker is killed, in-process Python gets an
//! exception raised in its thread.
//!
//! A canceller never runs after its registration is dropped: dropping waits
//! for a canceller that is running. So a canceller may act on resources of
//! the call (a worker's process id) that outlive the registration and no
//! longer: the call drops its registration before it reaps its worker or
//! ends.

use crate::error::{Error, Result, Status};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

type Canceller = Box<dyn FnMut() + Send>;

/// A cancellation signal shared by the calls it is given to.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// The cancellers of the calls running with this token.
    running: Mutex<Vec<Arc<Slot>>>,
}

/// One registered canceller; `None` once its call deregistered or it ran.
#[derive(Default)]
struct Slot(Mutex<Option<Canceller>>);

impl Slot {
    fn lock(&self) -> MutexGuard<'_, Option<Canceller>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken").field("cancelled", &self.is_cancelled()).finish_non_exhaustive()
    }
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Cancels: every call running with this token is stopped (each
    /// canceller runs once, on this thread), and every later call with it
    /// is refused. Idempotent.
    pub fn cancel(&self) {
        let running = {
            let mut running = self.inner.lock();
            self.inner.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut *running)
        };
        for slot in running {
            // Held while the canceller runs: a call deregistering now waits.
            let mut canceller = slot.lock();
            if let Some(mut cancel) = canceller.take() {
                cancel();
            }
        }
    }

    /// Registers how to stop the call about to run; the call is stopped
    /// that way if the token is cancelled before the registration drops.
    /// CANCELLED (and nothing registered) when the token already is:
    /// the call must not start; `what` names it then (it is formatted
    /// only then).
    pub fn register(&self, what: impl std::fmt::Display, canceller: impl FnMut() + Send + 'static) -> Result<Registration> {
        let slot = Arc::new(Slot(Mutex::new(Some(Box::new(canceller)))));
        let mut running = self.inner.lock();
        if self.is_cancelled() {
            return Err(cancelled_before_start(what));
        }
        running.push(slot.clone());
        Ok(Registration { token: self.inner.clone(), slot })
    }

    /// CANCELLED when the token is cancelled, for a call that checks
    /// before it starts instead of registering.
    pub fn check(&self, what: impl std::fmt::Display) -> Result<()> {
        match self.is_cancelled() {
            true => Err(cancelled_before_start(what)),
            false => Ok(()),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Slot>>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn cancelled_before_start(what: impl std::fmt::Display) -> Error {
    Error::new(Status::Cancelled, format!("{what}: the call's cancel token was cancelled before it started; nothing ran"))
}

/// A call's registered canceller. Dropping it removes the canceller,
/// waiting for it first if it is running on another thread.
pub struct Registration {
    token: Arc<Inner>,
    slot: Arc<Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        *self.slot.lock() = None;
        self.token.lock().retain(|slot| !Arc::ptr_eq(slot, &self.slot));
    }
}

/// The error of a unary call stopped through its token: `what` names the
/// call, `effect` what stopping it did to the plugin.
pub fn cancelled(what: impl std::fmt::Display, effect: &str) -> Error {
    Error::new(Status::Cancelled, format!("{what} was cancelled through its cancel token; {effect}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancel_runs_each_registered_canceller_once_and_refuses_later_calls() {
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let registration = token.register("call", move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(registration.is_ok());
        token.cancel();
        token.cancel();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let refused = token.register("later call", || {}).err().expect("a cancelled token refuses");
        assert_eq!(refused.status(), Status::Cancelled);
        assert!(refused.message().contains("later call"), "{}", refused.message());
    }

    #[test]
    fn a_dropped_registration_is_never_cancelled() {
        let token = CancelToken::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        drop(token.register("call", move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        token.cancel();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(token.is_cancelled());
    }

    #[test]
    fn dropping_a_registration_waits_for_its_running_canceller() {
        let token = CancelToken::new();
        let started = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (start_flag, finish_flag) = (started.clone(), finished.clone());
        let registration = token.register("call", move || {
            start_flag.store(true, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100));
            finish_flag.store(true, Ordering::SeqCst);
        });
        let canceller = {
            let token = token.clone();
            std::thread::spawn(move || token.cancel())
        };
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        drop(registration);
        assert!(finished.load(Ordering::SeqCst), "the drop returned while the canceller ran");
        canceller.join().unwrap();
    }
}
