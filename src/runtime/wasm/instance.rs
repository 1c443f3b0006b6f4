//! Instance lifecycle: what every instance of a plugin shares, how one is
//! made, and how a call's deadline is started on it.

use super::engine::{EpochTicker, EPOCH_TICK};
use super::store::{CallStop, GuestState, MemoryCap};
use super::sandbox::SocketGate;
use super::{egress, Sandbox, WasmLimits};
use crate::cancel::{CancelToken, Registration};
use crate::egress::{DenialLog, EgressPolicy};
use crate::error::{Error, Result, Status};
use crate::host_functions::HostBindings;
use crate::interface::Interface;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, Func, InstancePre, ResourceTable, TypedFunc};
use wasmtime::{StoreContextMut, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpCtx;

/// Where the interface's functions are among a component's exports: looked
/// up by name once per plugin, then by index in each instance.
pub(super) struct Exports {
    /// One per interface method; `None` for an optional method the
    /// component does not have.
    funcs: Vec<Option<ComponentExportIndex>>,
    /// `fidius-interface-hash`.
    hash: Option<ComponentExportIndex>,
    /// `fidius-configure`.
    configure: Option<ComponentExportIndex>,
    /// Per method: `[method]<name>-stream.next` of a method that streams out.
    pub(super) stream_next: Vec<Option<ComponentExportIndex>>,
}

impl Exports {
    /// The functions of `interface` in the `export` instance of `component`.
    /// Fails, naming what is missing or mistyped, when a required method is
    /// not a function there or a raw method is not
    /// `func(list<u8>) -> list<u8>`.
    pub(super) fn of(component: &Component, export: &str, interface: &Interface) -> std::result::Result<Exports, String> {
        let instance = component.get_export_index(None, export).ok_or_else(|| format!("the component does not export `{export}`"))?;
        let function = |name: &str| match component.get_export(Some(&instance), name) {
            Some((ComponentItem::ComponentFunc(ty), index)) => Some((ty, index)),
            _ => None,
        };
        let mut funcs = Vec::new();
        let mut stream_next = Vec::new();
        for method in interface.methods() {
            let name = crate::interface::kebab_case(&method.name);
            // A method that streams out returns a `<name>-stream` resource.
            let next = format!("[method]{name}-stream.next");
            stream_next.push(method.flags.streaming.then(|| function(&next).map(|(_, index)| index)).flatten());
            let Some((ty, index)) = function(&name) else {
                if method.capability_bit.is_none() {
                    return Err(format!("`{export}` has no function `{name}` (method '{}')", method.name));
                }
                funcs.push(None);
                continue;
            };
            if method.flags.raw && !is_bytes_to_bytes(&ty) {
                return Err(format!("raw method '{}' must be func(list<u8>) -> list<u8>", method.name));
            }
            funcs.push(Some(index));
        }
        Ok(Exports {
            funcs,
            stream_next,
            hash: function("fidius-interface-hash").map(|(_, index)| index),
            configure: function("fidius-configure").map(|(_, index)| index),
        })
    }
}

/// Whether a function type is `func(list<u8>) -> list<u8>`.
fn is_bytes_to_bytes(ty: &wasmtime::component::types::ComponentFunc) -> bool {
    use wasmtime::component::types::Type;
    let bytes = |t: &Type| matches!(t, Type::List(list) if matches!(list.ty(), Type::U8));
    let params: Vec<Type> = ty.params().map(|(_, t)| t).collect();
    let results: Vec<Type> = ty.results().collect();
    matches!((params.as_slice(), results.as_slice()), ([p], [r]) if bytes(p) && bytes(r))
}

/// What every instance of one plugin shares.
pub(super) struct Shared {
    pub(super) name: std::sync::Arc<str>,
    pub(super) pre: InstancePre<GuestState>,
    pub(super) sandbox: Sandbox,
    pub(super) limits: WasmLimits,
    pub(super) export: String,
    pub(super) interface: Arc<Interface>,
    pub(super) exports: Exports,
    pub(super) max_output: usize,
    /// `Some` when the guest may send HTTP requests.
    pub(super) egress: Option<EgressPolicy>,
    /// `Some` when the guest may open sockets.
    pub(super) sockets: Option<SocketGate>,
    pub(super) denials: Arc<DenialLog>,
    /// Discard the instance after every call.
    pub(super) fresh_instance_per_call: bool,
    /// The host functions the guest may call.
    pub(super) host_bindings: Arc<HostBindings>,
    /// The largest linear memory an instance reached (see [`MemoryCap`]).
    pub(super) memory_high_water: Arc<std::sync::atomic::AtomicU64>,
    /// Keeps deadlines working after the host is freed.
    pub(super) _ticker: Arc<EpochTicker>,
}

impl Shared {
    /// A fresh store and instance, with the interface's functions looked up.
    pub(super) fn instantiate(&self) -> Result<Live> {
        // Each store pins its own lookups.
        let sockets = self.sockets.as_ref().map(SocketGate::for_new_store);
        let state = GuestState {
            wasi: self.sandbox.wasi_ctx(sockets.as_ref())?,
            http: WasiHttpCtx::new(),
            egress: egress::EgressHooks {
                plugin: self.name.clone(),
                policy: self.egress.clone(),
                denials: self.denials.clone(),
                timeout: self.limits.deadline.map(|d| d + egress::GRACE),
            },
            table: ResourceTable::new(),
            memory: MemoryCap { max: self.limits.memory, exceeded: false, high_water: self.memory_high_water.clone() },
            call_deadline: None,
            wait_cut: false,
            host_bindings: self.host_bindings.clone(),
            sockets,
            stream_input: None,
            stop: None,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(at_epoch_deadline);
        // A guest's start-up code is bounded like a call.
        self.start_deadline(&mut store);
        let timed_out = || {
            let limit = self.limits.deadline.unwrap_or_default();
            self.error(Status::Timeout, format!("instantiation ran past the deadline of {limit:?} and was stopped"))
        };
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
                return self.error(Status::InstancePoolExhausted, format!("no free slot in the host's instance pool: {e:#}"));
            }
            if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                return timed_out();
            }
            self.error(Status::InvalidComponent, format!("cannot instantiate: {e:#}"))
        })?;
        if Shared::wait_outlived_deadline(&store) {
            return Err(timed_out());
        }
        let mut funcs = Vec::with_capacity(self.exports.funcs.len());
        let mut raw = Vec::with_capacity(self.exports.funcs.len());
        for (index, method) in self.exports.funcs.iter().zip(self.interface.methods()) {
            let func = index.as_ref().and_then(|index| instance.get_func(&mut store, index));
            raw.push(match func {
                // SAFETY: `Exports::of` checked the raw methods' type on the
                // component every instance of this plugin comes from.
                Some(f) if method.flags.raw => Some(unsafe { TypedFunc::<(Vec<u8>,), (Vec<u8>,)>::new_unchecked(f) }),
                _ => None,
            });
            funcs.push(func);
        }
        let stream_next = self.exports.stream_next.iter().map(|index| index.as_ref().and_then(|i| instance.get_func(&mut store, i))).collect();
        let hash = self.exports.hash.as_ref().and_then(|index| instance.get_func(&mut store, index));
        let configure = self.exports.configure.as_ref().and_then(|index| instance.get_func(&mut store, index));
        Ok(Live { store, funcs, raw, stream_next, hash, configure })
    }

    /// Starts the deadline of what runs next on `store`: the epoch count
    /// after which the guest traps, and the instant that bounds its waits
    /// in the host.
    pub(super) fn start_deadline(&self, store: &mut Store<GuestState>) {
        self.start_deadline_within(store, None);
    }

    /// Like [`Shared::start_deadline`], ending at `until` if that is sooner
    /// (a stream's own deadline).
    pub(super) fn start_deadline_within(&self, store: &mut Store<GuestState>, until: Option<std::time::Instant>) {
        let now = std::time::Instant::now();
        let left = until.map(|u| u.saturating_duration_since(now));
        let deadline = match (self.limits.deadline, left) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        let ticks = deadline.map_or(u64::MAX / 2, |d| (d.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1);
        store.set_epoch_deadline(ticks);
        let state = store.data_mut();
        state.call_deadline = deadline.and_then(|d| now.checked_add(d));
        state.wait_cut = false;
    }

    /// Makes the call about to run on `store` stop when `token` is
    /// cancelled: from then on the epoch callback checks at every tick.
    /// CANCELLED when the token already is.
    pub(super) fn arm_cancel(&self, store: &mut Store<GuestState>, token: &CancelToken, method: &str) -> Result<Registration> {
        let stop = Arc::new(CallStop::default());
        let canceller = stop.clone();
        let registration = token.register(format_args!("WASM plugin '{}' method '{method}'", self.name), move || canceller.cancel())?;
        store.data_mut().stop = Some(stop);
        store.set_epoch_deadline(1);
        Ok(registration)
    }

    /// Whether what ran on `store` outlived its deadline in a clock wait
    /// that was cut: it stopped for the deadline, even if the guest got to
    /// return before its next epoch check.
    pub(super) fn wait_outlived_deadline(store: &Store<GuestState>) -> bool {
        let state = store.data();
        state.wait_cut && state.call_deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
    }

    pub(super) fn error(&self, status: Status, what: impl std::fmt::Display) -> Error {
        Error::new(status, format!("WASM plugin '{}': {what}", self.name))
    }
}

/// What a guest that reached its epoch deadline meets: the trap that stops
/// it ([`Trap::Interrupt`], TIMEOUT), unless its call can be cancelled —
/// then the deadline is one tick away, and the guest runs on, tick by tick,
/// until its call is cancelled or its deadline passes.
fn at_epoch_deadline(store: StoreContextMut<'_, GuestState>) -> wasmtime::Result<UpdateDeadline> {
    let state = store.data();
    let running = state.stop.as_ref().is_some_and(|stop| !stop.is_cancelled())
        && state.call_deadline.is_none_or(|deadline| std::time::Instant::now() < deadline);
    match running {
        true => Ok(UpdateDeadline::Continue(1)),
        false => Err(Trap::Interrupt.into()),
    }
}

/// One live instance.
pub(super) struct Live {
    pub(super) store: Store<GuestState>,
    pub(super) funcs: Vec<Option<Func>>,
    pub(super) raw: Vec<Option<TypedFunc<(Vec<u8>,), (Vec<u8>,)>>>,
    /// Per method: the `next` of its output stream's resource.
    pub(super) stream_next: Vec<Option<Func>>,
    pub(super) hash: Option<Func>,
    pub(super) configure: Option<Func>,
}

impl Live {
    /// What the guest's `fidius-interface-hash` export says.
    pub(super) fn interface_hash(&mut self, shared: &Shared) -> Result<u64> {
        let missing = || shared.error(Status::InvalidComponent, format!("`{}` has no `fidius-interface-hash` function", shared.export));
        let func = self.hash.ok_or_else(missing)?;
        let typed = func.typed::<(), (u64,)>(&self.store).map_err(|e| {
            shared.error(Status::InvalidComponent, format!("`fidius-interface-hash` must be func() -> u64: {e:#}"))
        })?;
        shared.start_deadline(&mut self.store);
        let (hash,) = typed.call(&mut self.store, ()).map_err(|e| {
            let status = if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) { Status::Timeout } else { Status::PluginTrap };
            shared.error(status, format!("`fidius-interface-hash` failed: {e:#}"))
        })?;
        Ok(hash)
    }

    /// Hands the guest its configuration (bincode of the config type)
    /// through `fidius-configure`, which fidius guests accept once per
    /// instance. A trap there (the guest could not decode it, or its
    /// `configure` panicked) is CONFIG_REJECTED.
    pub(super) fn configure(&mut self, shared: &Shared, config: &[u8]) -> Result<()> {
        let func = self.configure.ok_or_else(|| {
            shared.error(Status::ConfigRejected, format!("`{}` has no `fidius-configure` function to take a configuration", shared.export))
        })?;
        let typed = func.typed::<(Vec<u8>,), ()>(&self.store).map_err(|e| {
            shared.error(Status::InvalidComponent, format!("`fidius-configure` must be func(config: list<u8>): {e:#}"))
        })?;
        shared.start_deadline(&mut self.store);
        self.store.data_mut().memory.exceeded = false;
        typed.call(&mut self.store, (config.to_vec(),)).map_err(|e| {
            if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
                let limit = shared.limits.deadline.unwrap_or_default();
                return shared.error(Status::Timeout, format!("`fidius-configure` ran past the deadline of {limit:?} and was stopped"));
            }
            if self.store.data().memory.exceeded {
                return shared.error(Status::MemoryLimit, format!("`fidius-configure` tried to grow memory past the cap of {} bytes", shared.limits.memory));
            }
            shared.error(Status::ConfigRejected, format!("`fidius-configure` refused the configuration ({} bytes): {e:#}", config.len()))
        })
    }
}

