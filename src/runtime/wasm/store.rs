//! What a guest's store holds: WASI and HTTP contexts, the memory cap and
//! the running call's deadline and cancellation.

use super::engine::MAX_TABLE_ELEMENTS;
use super::egress;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What a guest's store holds.
pub struct GuestState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(super) egress: egress::EgressHooks,
    pub(super) table: ResourceTable,
    pub(super) memory: MemoryCap,
    /// When the running call must end (`None`: no deadline); bounds every
    /// wait the guest makes in the host (see `waits`).
    pub(super) call_deadline: Option<std::time::Instant>,
    /// Whether a clock wait of the running call was cut at the deadline.
    pub(super) wait_cut: bool,
    /// The host functions the guest may call (`fidius:host-call`).
    pub(super) host_bindings: std::sync::Arc<crate::host_functions::HostBindings>,
    /// What the guest's sockets and name lookups go through (`None`: it
    /// may open none).
    pub(super) sockets: Option<super::sandbox::SocketGate>,
    /// The items of the running call's `Stream<T>` argument, which the
    /// guest pulls through `fidius:stream-pull` (`None`: no items).
    pub(super) stream_input: Option<crate::stream::Feed>,
    /// How the running call is stopped from another thread (`None`: it
    /// has no cancel token).
    pub(super) stop: Option<std::sync::Arc<CallStop>>,
}

/// The cancellation of one running call: a flag the epoch callback checks
/// at every tick, and a wake-up for a wait the guest makes in the host.
#[derive(Default)]
pub(super) struct CallStop {
    cancelled: std::sync::atomic::AtomicBool,
    pub(super) wake: tokio::sync::Notify,
}

impl CallStop {
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        // Stored as a permit when nothing waits yet: a wait that starts
        // later ends at once.
        self.wake.notify_one();
    }

    pub(super) fn is_cancelled(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for GuestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// Refuses memory growth past the cap, and remembers that it did; records
/// the largest memory it allowed.
pub(super) struct MemoryCap {
    pub(super) max: usize,
    pub(super) exceeded: bool,
    /// The largest linear memory any instance of the plugin reached, in
    /// bytes (written only when a memory is made or grows).
    pub(super) high_water: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        self.high_water.fetch_max(desired as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

