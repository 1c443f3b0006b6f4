//! Instance lifecycle: what every instance of a plugin shares, how one is
//! made, and how a call's deadline is started on it.

use super::engine::{EpochTicker, EPOCH_TICK};
use super::store::{GuestState, MemoryCap};
use super::{egress, Sandbox, WasmLimits};
use crate::egress::{DenialLog, EgressPolicy};
use crate::error::{Error, Result, Status};
use crate::interface::Interface;
use std::sync::Arc;
use wasmtime::component::{Func, InstancePre, ResourceTable, TypedFunc};
use wasmtime::{Store, Trap};
use wasmtime_wasi_http::WasiHttpCtx;

/// What every instance of one plugin shares.
pub(super) struct Shared {
    pub(super) name: std::sync::Arc<str>,
    pub(super) pre: InstancePre<GuestState>,
    pub(super) sandbox: Sandbox,
    pub(super) limits: WasmLimits,
    pub(super) export: String,
    pub(super) interface: Arc<Interface>,
    pub(super) max_output: usize,
    /// `Some` when the guest may send HTTP requests.
    pub(super) egress: Option<EgressPolicy>,
    pub(super) denials: Arc<DenialLog>,
    /// Discard the instance after every call.
    pub(super) fresh_instance_per_call: bool,
    /// Keeps deadlines working after the host is freed.
    pub(super) _ticker: Arc<EpochTicker>,
}

impl Shared {
    /// A fresh store and instance, with the interface's functions looked up.
    pub(super) fn instantiate(&self) -> Result<Live> {
        let state = GuestState {
            wasi: self.sandbox.wasi_ctx()?,
            http: WasiHttpCtx::new(),
            egress: egress::EgressHooks {
                plugin: self.name.clone(),
                policy: self.egress.clone(),
                denials: self.denials.clone(),
                timeout: self.limits.deadline.map(|d| d + egress::GRACE),
            },
            table: ResourceTable::new(),
            memory: MemoryCap { max: self.limits.memory, exceeded: false },
            call_deadline: None,
            wait_cut: false,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_trap();
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
        let export = instance
            .get_export_index(&mut store, None, &self.export)
            .ok_or_else(|| self.error(Status::InvalidComponent, format!("the component does not export `{}`", self.export)))?;
        let lookup = |store: &mut Store<GuestState>, name: &str| -> Option<Func> {
            let index = instance.get_export_index(&mut *store, Some(&export), name)?;
            instance.get_func(&mut *store, index)
        };
        let mut funcs = Vec::new();
        let mut raw = Vec::new();
        for method in self.interface.methods() {
            let func = lookup(&mut store, &crate::interface::kebab_case(&method.name));
            if func.is_none() && method.capability_bit.is_none() {
                return Err(self.error(
                    Status::InvalidComponent,
                    format!("`{}` has no function `{}` (method '{}')", self.export, crate::interface::kebab_case(&method.name), method.name),
                ));
            }
            raw.push(match (&func, method.flags.raw) {
                (Some(f), true) => Some(f.typed::<(Vec<u8>,), (Vec<u8>,)>(&store).map_err(|e| {
                    self.error(
                        Status::InvalidComponent,
                        format!("raw method '{}' must be func(list<u8>) -> list<u8>: {e:#}", method.name),
                    )
                })?),
                _ => None,
            });
            funcs.push(func);
        }
        let hash = lookup(&mut store, "fidius-interface-hash");
        Ok(Live { store, funcs, raw, hash })
    }

    /// Starts the deadline of what runs next on `store`: the epoch count
    /// after which the guest traps, and the instant that bounds its waits
    /// in the host.
    pub(super) fn start_deadline(&self, store: &mut Store<GuestState>) {
        let deadline = self.limits.deadline;
        let ticks = deadline.map_or(u64::MAX / 2, |d| (d.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64 + 1);
        store.set_epoch_deadline(ticks);
        let state = store.data_mut();
        state.call_deadline = deadline.and_then(|d| std::time::Instant::now().checked_add(d));
        state.wait_cut = false;
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

/// One live instance.
pub(super) struct Live {
    pub(super) store: Store<GuestState>,
    pub(super) funcs: Vec<Option<Func>>,
    pub(super) raw: Vec<Option<TypedFunc<(Vec<u8>,), (Vec<u8>,)>>>,
    pub(super) hash: Option<Func>,
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
}

