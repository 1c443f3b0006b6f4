//! The monotonic clock a guest sees, with every wait bounded by the call's
//! deadline.
//!
//! A guest waiting on a clock (`std::thread::sleep`, a `poll` with a
//! timeout) waits in the host, where epoch interruption cannot reach it: a
//! guest sleeping for an hour would hold the calling thread, and with it the
//! plugin's instance, for an hour. Each subscription is cut to what is left
//! of the deadline, so the wait ends by then; the store remembers the cut,
//! and a call that was cut and outlived its deadline ends with TIMEOUT even
//! if the guest returns before its next epoch check.

use super::GuestState;
use std::time::Instant as HostInstant;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{self, Duration, Instant};
use wasmtime_wasi::p2::DynPollable;

/// Replaces WASI's `wasi:clocks/monotonic-clock` in `linker` (which must
/// already hold WASI) with the deadline-bounded one.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = monotonic_clock::add_to_linker::<GuestState, BoundedClock>(linker, |state| BoundedClockView {
        clocks: WasiClocksCtxView { ctx: state.wasi.clocks(), table: &mut state.table },
        deadline: state.call_deadline,
        cut: &mut state.wait_cut,
    });
    linker.allow_shadowing(false);
    added
}

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
