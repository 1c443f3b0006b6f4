//! `fidius_host_cancel_token_t`: stops running calls from another thread.

use super::{arg_handle, arg_out_cleared, entry, entry_value, new_handle, take_handle, Handle};
use super::error::fidius_host_error_t;
use crate::cancel::CancelToken;
use crate::error::Status;

/// A cancellation signal for calls. Made by `fidius_host_cancel_token_new`,
/// owned by the caller, freed with `fidius_host_cancel_token_free`; given
/// to `fidius_host_plugin_call_cancellable` or `_call_json_cancellable`,
/// which borrow it for the call.
///
/// Shareable: one token may be given to any number of calls on any threads
/// at once, and cancelled from any thread while they run. Cancelling is
/// final: a cancelled token stays cancelled; make a new one per request.
pub struct fidius_host_cancel_token_t {
    _private: [u8; 0],
}

impl Handle for fidius_host_cancel_token_t {
    type Inner = CancelToken;
    const MAGIC: u64 = 0x4644_4341_4e43_4c31;
    const NAME: &'static str = "fidius_host_cancel_token_t";
}

/// Makes a cancel token, not cancelled. `*out` is the new token (owned by
/// the caller) on success, NULL on failure.
///
/// Thread-safety: any thread.
///
/// Errors: NULL_ARGUMENT.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_cancel_token_new(out: *mut *mut fidius_host_cancel_token_t, err: *mut *mut fidius_host_error_t) -> Status {
    entry(err, || {
        let out = arg_out_cleared(out, "out")?;
        *out = new_handle::<fidius_host_cancel_token_t>(CancelToken::new());
        Ok(())
    })
}

/// Cancels: every call running with `token` is stopped, and every call
/// started with it later is CANCELLED before it reaches the plugin. How a
/// running call stops depends on its runtime:
///
/// - WASM: the guest is interrupted at its next epoch check (within about
///   a millisecond of guest code) or wait in the host (a sleep, a blocking
///   read); its instance is discarded, the next call gets a fresh one.
/// - Isolated plugins: the worker process is killed (SIGKILL); the next
///   call starts a new worker, which the restart policy does not count
///   (the host stopped it, not the plugin).
/// - In-process Python: an exception is raised in the thread running the
///   plugin, the same way a deadline stops it; a thread blocked in C code
///   sees it when that code returns.
///
/// The stopped call returns CANCELLED — unless it had completed first:
/// then it returns its result, and cancelling came too late for it. Returns
/// once every running call was told to stop, without waiting for them to
/// end. Calling it again does nothing more.
///
/// Thread-safety: any thread, concurrently with the calls using `token`
/// and with other cancels. Async-signal-safe it is not.
///
/// Returns OK; NULL_ARGUMENT for NULL, MISUSE for a pointer that is not a
/// live token.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_cancel_token_cancel(token: *const fidius_host_cancel_token_t) -> Status {
    entry(std::ptr::null_mut(), || {
        arg_handle(token, "token")?.cancel();
        Ok(())
    })
}

/// Whether `token` was cancelled. False for NULL or a pointer that is not
/// a live token.
///
/// Thread-safety: any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_cancel_token_is_cancelled(token: *const fidius_host_cancel_token_t) -> bool {
    super::get(token, false, CancelToken::is_cancelled)
}

/// Frees a token. It must not be in use: free it after the calls it was
/// given to have returned and no thread will cancel it any more. NULL is a
/// no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_cancel_token_free(token: *mut fidius_host_cancel_token_t) {
    entry_value((), || drop(take_handle(token)))
}

/// The token behind an optional argument (NULL: none).
pub(crate) fn arg_cancel<'a>(token: *const fidius_host_cancel_token_t) -> crate::Result<Option<&'a CancelToken>> {
    match token.is_null() {
        true => Ok(None),
        false => arg_handle(token, "cancel").map(Some),
    }
}
