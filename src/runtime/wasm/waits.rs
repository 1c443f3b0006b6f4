//! Every wait a guest can make in the host ends by the call's deadline.
//!
//! A guest waiting on a clock, a pollable or a blocking stream operation
//! (`poll`, `pollable.block`, `blocking-read`, `blocking-write-and-flush`,
//! …) waits in the host, where epoch interruption cannot reach it: a guest
//! sleeping for an hour, or writing into an HTTP request body nobody reads,
//! would hold the calling thread, and with it the plugin's instance, for
//! as long. So:
//!
//! - clock subscriptions are cut to what is left of the deadline; the store
//!   remembers the cut, and a call that was cut and outlived its deadline
//!   ends with TIMEOUT even if the guest returns before its next epoch check;
//! - blocking `wasi:io` operations wait at most until the deadline, then
//!   trap with [`Trap::Interrupt`], which the call reports as TIMEOUT.
//!
//! A call with a cancel token ends its wait when the token is cancelled,
//! the same way.
//!
//! WASI's own implementations do the work; these only bound the waits.

use super::store::{CallStop, GuestState};
use std::future::Future;
use std::task::Poll;
use std::time::Instant as HostInstant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::Trap;
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{self, Duration, Instant};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{HostInputStream as AsyncInput, HostOutputStream as AsyncOutput};

type InputStream = streams::InputStream;
type OutputStream = streams::OutputStream;

/// Replaces WASI's monotonic clock, `wasi:io/poll` and `wasi:io/streams`
/// in `linker` (which must already hold WASI) with the deadline-bounded
/// ones.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = add_bounded(linker);
    linker.allow_shadowing(false);
    added
}

fn add_bounded(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<GuestState, BoundedClock>(linker, |state| BoundedClockView {
        clocks: WasiClocksCtxView { ctx: state.wasi.clocks(), table: &mut state.table },
        deadline: state.call_deadline,
        cut: &mut state.wait_cut,
    })?;
    poll::add_to_linker::<GuestState, BoundedIo>(linker, bounded_io)?;
    streams::add_to_linker::<GuestState, BoundedIo>(linker, bounded_io)
}

fn bounded_io(state: &mut GuestState) -> BoundedIoView<'_> {
    BoundedIoView { table: &mut state.table, deadline: state.call_deadline, stop: state.stop.as_deref() }
}

// ---- clocks ---------------------------------------------------------------

struct BoundedClock;

impl HasData for BoundedClock {
    type Data<'a> = BoundedClockView<'a>;
}

/// WASI's clock of one store, the deadline of the call running on it, and
/// whether a wait of that call was cut.
struct BoundedClockView<'a> {
    clocks: WasiClocksCtxView<'a>,
    deadline: Option<HostInstant>,
    cut: &'a mut bool,
}

impl BoundedClockView<'_> {
    /// `nanos`, or what is left of the deadline if that is less.
    fn bounded(&mut self, nanos: u64) -> u64 {
        let Some(deadline) = self.deadline else { return nanos };
        let left = deadline.saturating_duration_since(HostInstant::now()).as_nanos();
        let left = u64::try_from(left).unwrap_or(u64::MAX);
        if nanos > left {
            *self.cut = true;
            return left;
        }
        nanos
    }
}

impl monotonic_clock::Host for BoundedClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<Instant> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<Duration> {
        self.clocks.resolution()
    }

    fn subscribe_instant(&mut self, when: Instant) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = when.saturating_sub(self.clocks.now()?);
        self.subscribe_duration(wait)
    }

    fn subscribe_duration(&mut self, duration: Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = self.bounded(duration);
        self.clocks.subscribe_duration(wait)
    }
}

// ---- wasi:io --------------------------------------------------------------

struct BoundedIo;

impl HasData for BoundedIo {
    type Data<'a> = BoundedIoView<'a>;
}

/// A store's resources, and the deadline and cancellation of the call
/// running on it.
struct BoundedIoView<'a> {
    table: &'a mut ResourceTable,
    deadline: Option<HostInstant>,
    stop: Option<&'a CallStop>,
}

/// Runs `wait` in WASI's runtime until it completes, the deadline passes or
/// the call is cancelled; `None` when it did not complete.
fn until_deadline<F: Future>(view: (Option<HostInstant>, Option<&CallStop>), wait: F) -> Option<F::Output> {
    let (deadline, stop) = view;
    let bounded = async move {
        match deadline {
            None => Some(wait.await),
            Some(deadline) => tokio::time::timeout_at(deadline.into(), wait).await.ok(),
        }
    };
    let Some(stop) = stop else { return in_tokio(bounded) };
    if stop.is_cancelled() {
        return None;
    }
    in_tokio(async move {
        let mut bounded = std::pin::pin!(bounded);
        let mut cancelled = std::pin::pin!(stop.wake.notified());
        std::future::poll_fn(|cx| {
            if let Poll::Ready(done) = bounded.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            cancelled.as_mut().poll(cx).map(|()| None)
        })
        .await
    })
}

impl<'a> BoundedIoView<'a> {
    /// What bounds a wait of this view's call.
    fn bounds(&self) -> (Option<HostInstant>, Option<&'a CallStop>) {
        (self.deadline, self.stop)
    }
}

fn timed_out<T>() -> wasmtime::Result<T> {
    Err(Trap::Interrupt.into())
}

fn stream_timed_out<T>() -> StreamResult<T> {
    Err(StreamError::Trap(Trap::Interrupt.into()))
}

impl poll::Host for BoundedIoView<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        until_deadline(self.bounds(), async_poll::Host::poll(self.table, pollables)).unwrap_or_else(timed_out)
    }
}

impl poll::HostPollable for BoundedIoView<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        until_deadline(self.bounds(), async_poll::HostPollable::block(self.table, pollable)).unwrap_or_else(timed_out)
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for BoundedIoView<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostOutputStream for BoundedIoView<'_> {
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        until_deadline(self.bounds(), AsyncOutput::drop(self.table, stream)).unwrap_or_else(timed_out)
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        until_deadline(self.bounds(), AsyncOutput::blocking_write_and_flush(self.table, stream, bytes)).unwrap_or_else(stream_timed_out)
    }

    fn blocking_write_zeroes_and_flush(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        until_deadline(self.bounds(), AsyncOutput::blocking_write_zeroes_and_flush(self.table, stream, len)).unwrap_or_else(stream_timed_out)
    }

    fn subscribe(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        until_deadline(self.bounds(), AsyncOutput::blocking_flush(self.table, stream)).unwrap_or_else(stream_timed_out)
    }

    fn splice(&mut self, dst: Resource<OutputStream>, src: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(&mut self, dst: Resource<OutputStream>, src: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        until_deadline(self.bounds(), AsyncOutput::blocking_splice(self.table, dst, src, len)).unwrap_or_else(stream_timed_out)
    }
}

impl streams::HostInputStream for BoundedIoView<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        until_deadline(self.bounds(), AsyncInput::drop(self.table, stream)).unwrap_or_else(timed_out)
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        until_deadline(self.bounds(), AsyncInput::blocking_read(self.table, stream, len)).unwrap_or_else(stream_timed_out)
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        until_deadline(self.bounds(), AsyncInput::blocking_skip(self.table, stream, len)).unwrap_or_else(stream_timed_out)
    }

    fn subscribe(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}
