//! WebAssembly component plugins (wasmtime, component model, WASI p2).
//!
//! One [`WasmRuntime`] per host: one engine, one linker, a cache of compiled
//! components (a package loaded twice is compiled once) and an epoch ticker
//! that enforces per-call deadlines. By default each plugin handle owns one
//! live instance; calls on it are serialized by a mutex, and guest state
//! persists between calls. A trap (or a deadline, or the memory cap)
//! discards the instance: the next call runs on a fresh one. A plugin
//! loaded with a fresh instance per call keeps no state and takes no lock.

mod egress;
mod sandbox;
mod values;
mod waits;

use crate::artifact::package::Package;
use crate::bytes::OutputBytes;
use crate::egress::{DenialLog, DeniedRequest, EgressPolicy};
use crate::error::{Error, PluginError, Result, Status};
pub use crate::host::{WasmLimits, WasmPluginSettings, WasmSettings};
use crate::interface::{Interface, Method, Returns};
use crate::plugin::{BufferStrategy, Plugin, PluginBackend, PluginDescription, PluginInfo, RuntimeKind};
pub use sandbox::Sandbox;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, Func, InstancePre, Linker, ResourceTable, Type, TypedFunc, Val};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Identifies a component's bytes: path and file identity, or the
/// verified bytes' digest.
type CacheKey = (PathBuf, u64, u64, u64, Option<std::time::SystemTime>, [u8; 32]);

/// The engine, linker and compiled components of one host.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<GuestState>,
    compiled: Mutex<HashMap<CacheKey, InstancePre<GuestState>>>,
    ticker: Arc<EpochTicker>,
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while any host or
/// plugin of this engine lives, so deadlines hold for plugins that outlive
/// their host. Stopped and joined when the last of them goes.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fidius-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::new(Status::Io, format!("cannot start the WASM deadline thread: {e}")))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime").finish_non_exhaustive()
    }
}

fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

/// The engine every host uses for compiling (and AOT precompiling):
/// `.cwasm` files must come from the same settings. (How instances are
/// allocated is not one of them: a pooled engine loads the same `.cwasm`.)
pub fn new_engine() -> Result<Engine> {
    start_engine(&engine_config())
}

fn start_engine(config: &Config) -> Result<Engine> {
    Engine::new(config).map_err(|e| Error::new(Status::Unsupported, format!("cannot start wasmtime: {e:#}")))
}

/// Per slot of an instance pool: room for a component of a few core
/// instances (a Rust `wasm32-wasip2` component has three to five) with
/// one linear memory and their tables. A component needing more uses more;
/// one needing more than the whole pool holds is refused at load.
const CORE_INSTANCES_PER_SLOT: u32 = 8;
const TABLES_PER_SLOT: u32 = 8;
/// Elements a guest's table may grow to, pooled or not (a pool reserves
/// address space for as many, not memory).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The pooling allocator for `slots` live instances. Each memory slot
/// reserves address space for a 4 GiB memory plus guard pages (nothing is
/// committed until used); instantiating reuses a slot instead of mapping
/// and unmapping memory.
fn pooled_engine(slots: u32) -> Result<Engine> {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    let core_instances = slots.saturating_mul(CORE_INSTANCES_PER_SLOT);
    let tables = slots.saturating_mul(TABLES_PER_SLOT);
    pool.total_component_instances(slots)
        .total_core_instances(core_instances)
        .total_tables(tables)
        .total_memories(slots)
        // A component bigger than the whole pool is refused at load, not
        // reported as a pool that is full for now.
        .max_core_instances_per_component(core_instances)
        .max_tables_per_component(tables)
        .max_memories_per_component(slots)
        .max_tables_per_module(TABLES_PER_SLOT)
        .table_elements(MAX_TABLE_ELEMENTS)
        // Calls are synchronous: no fiber stacks.
        .total_stacks(0);
    let mut config = engine_config();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    start_engine(&config)
}

impl WasmRuntime {
    /// Starts the engine (with an instance pool of `pool_slots` slots,
    /// unless 0) and the epoch ticker.
    pub fn new(pool_slots: u32) -> Result<WasmRuntime> {
        let engine = if pool_slots == 0 { new_engine()? } else { pooled_engine(pool_slots)? };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker))
            .and_then(|()| waits::add_to_linker(&mut linker))
            .map_err(|e| Error::new(Status::InternalPanic, format!("cannot link WASI: {e:#}")))?;
        let ticker = Arc::new(EpochTicker::start(engine.clone())?);
        Ok(WasmRuntime { engine, linker, compiled: Mutex::new(HashMap::new()), ticker })
    }

    /// Loads the WASM plugin of `package` for `interface`: its exports are
    /// looked up by the interface's names, and the hash the guest reports and
    /// the manifest's interface version go into the plugin's description for
    /// the host to check against the interface.
    pub fn load(
        &self,
        package: &Package,
        interface: &Arc<Interface>,
        settings: &WasmSettings,
        plugin_settings: WasmPluginSettings,
        max_output: usize,
    ) -> Result<Plugin> {
        let WasmPluginSettings { limits, egress, fresh_instance_per_call } = plugin_settings;
        let dir = package.dir();
        let manifest = package.manifest();
        let wasm = manifest.wasm.as_ref().expect("a WASM package has a [wasm] table");
        let sandbox = Sandbox::from_capabilities(dir, &wasm.capabilities, &settings.denied_capabilities)?;
        let mut diagnostics = Vec::new();
        let pre = self.instance_pre(package, settings, &mut diagnostics)?;
        let egress = self.egress_of(&pre, package, &sandbox, egress.as_ref())?;
        let export = interface
            .wasm_export()
            .map_or_else(|| crate::interface::default_wasm_export(interface.name()), str::to_string);
        let shared = Arc::new(Shared {
            name: manifest.package.name.clone(),
            pre,
            sandbox,
            limits,
            export,
            interface: interface.clone(),
            max_output,
            egress,
            denials: Arc::new(DenialLog::default()),
            fresh_instance_per_call,
            _ticker: self.ticker.clone(),
        });
        let mut live = shared.instantiate()?;
        let hash = live.interface_hash(&shared)?;
        let capabilities = interface.capability_bits(|index| live.funcs[index].is_some());
        let info = PluginInfo {
            name: shared.name.clone(),
            interface_name: interface.name().to_string(),
            interface_hash: hash,
            interface_version: manifest.package.interface_version,
            capabilities,
            buffer_strategy: BufferStrategy::PluginAllocated,
            runtime: RuntimeKind::Wasm,
            path: dir.to_path_buf(),
        };
        let description = PluginDescription {
            info,
            method_count: interface.methods().len() as u32,
            method_metadata: Vec::new(),
            trait_metadata: Vec::new(),
            diagnostics,
        };
        let signatures = live
            .funcs
            .iter()
            .map(|func| {
                func.map(|f| {
                    let ty = f.ty(&live.store);
                    let params: Vec<Type> = ty.params().map(|(_, t)| t).collect();
                    let results = ty.results().len();
                    (params, results)
                })
            })
            .collect();
        let backend = WasmPlugin { shared, signatures, live: Mutex::new(Some(live)) };
        Ok(Plugin::new(description, Box::new(backend)).with_interface(Some(interface.clone())))
    }

    /// The policy a guest's outbound HTTP goes through. A component that
    /// imports `wasi:http` needs the `http` capability and a policy, or it is
    /// not loaded (fail closed); one without the capability gets none.
    fn egress_of(
        &self,
        pre: &InstancePre<GuestState>,
        package: &Package,
        sandbox: &Sandbox,
        policy: Option<&EgressPolicy>,
    ) -> Result<Option<EgressPolicy>> {
        let component = pre.component().component_type();
        let Some(import) = component.imports(&self.engine).map(|(name, _)| name).find(|name| name.starts_with("wasi:http/")) else {
            return Ok(None);
        };
        if !sandbox.http() {
            return Err(Error::at(
                Status::CapabilityMissing,
                package.dir(),
                format!("the component imports {import}, but its package does not declare the \"http\" capability"),
            ));
        }
        match policy {
            Some(policy) => Ok(Some(policy.clone())),
            None => Err(Error::at(
                Status::NoEgressPolicy,
                package.dir(),
                format!(
                    "the component imports {import} and may send HTTP requests, but no egress policy is set \
                     (set one on the builder or in the load options)"
                ),
            )),
        }
    }

    /// The pre-linked component of a package, compiled at most once per
    /// file version (or verified content) per host.
    fn instance_pre(&self, package: &Package, settings: &WasmSettings, diagnostics: &mut Vec<String>) -> Result<InstancePre<GuestState>> {
        let wasm = package.manifest().wasm.as_ref().expect("a WASM package has a [wasm] table");
        let component_path = package.dir().join(&wasm.component);
        let bytes = package.file(&wasm.component)?;
        let key = cache_key(package, &component_path, &bytes)?;
        let mut compiled = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pre) = compiled.get(&key) {
            return Ok(pre.clone());
        }
        let component = match self.precompiled(package, settings, diagnostics)? {
            Some(component) => component,
            None => Component::new(&self.engine, &bytes).map_err(|e| {
                Error::at(Status::InvalidComponent, &component_path, format!("not a valid WebAssembly component: {e:#}"))
            })?,
        };
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            Error::at(
                Status::InvalidComponent,
                &component_path,
                format!("the component needs imports this sandbox does not grant: {e:#}"),
            )
        })?;
        compiled.retain(|(path, ..), _| path != &component_path);
        compiled.insert(key, pre.clone());
        Ok(pre)
    }

    /// The package's `.cwasm`, when there is one, it may be trusted, and it
    /// deserializes; otherwise `None` (with a diagnostic saying why, if a
    /// file was there).
    fn precompiled(&self, package: &Package, settings: &WasmSettings, diagnostics: &mut Vec<String>) -> Result<Option<Component>> {
        let wasm = package.manifest().wasm.as_ref().expect("a WASM package has a [wasm] table");
        let name = match &wasm.precompiled {
            Some(name) => name.clone(),
            None => {
                let stem = Path::new(&wasm.component).with_extension("cwasm");
                let stem = stem.to_string_lossy().into_owned();
                if !package.has_file(&stem) {
                    return Ok(None);
                }
                stem
            }
        };
        if !package.is_verified() && !settings.allow_unsigned_precompiled {
            diagnostics.push(format!(
                "{name}: not loaded: precompiled code runs outside the sandbox, and the package is not signed \
                 (allow unsigned precompiled code on the builder to use it); compiled the component instead"
            ));
            return Ok(None);
        }
        let bytes = match package.file(&name) {
            Ok(bytes) => bytes,
            Err(e) => {
                diagnostics.push(format!("{name}: {}; compiled the component instead", e.message()));
                return Ok(None);
            }
        };
        // SAFETY: the bytes are trusted native code by the check above (a
        // verified signature covers them, or the host opted in); wasmtime
        // checks that they were made by this engine version and settings.
        match unsafe { Component::deserialize(&self.engine, &bytes) } {
            Ok(component) => Ok(Some(component)),
            Err(e) => {
                diagnostics.push(format!("{name}: stale or corrupted ({e:#}); compiled the component instead"));
                Ok(None)
            }
        }
    }
}

fn cache_key(package: &Package, path: &Path, bytes: &[u8]) -> Result<CacheKey> {
    if package.is_verified() {
        use sha2::Digest;
        return Ok((path.to_path_buf(), 0, 0, bytes.len() as u64, None, sha2::Sha256::digest(bytes).into()));
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, &e))?;
    #[cfg(unix)]
    let (device, inode) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (device, inode) = (0, 0);
    Ok((path.to_path_buf(), device, inode, meta.len(), meta.modified().ok(), [0; 32]))
}

/// Compiles a component to a `.cwasm` for this library's engine settings.
pub fn precompile(component: &[u8]) -> Result<Vec<u8>> {
    new_engine()?
        .precompile_component(component)
        .map_err(|e| Error::new(Status::InvalidComponent, format!("cannot precompile the component: {e:#}")))
}

/// What a guest's store holds.
pub struct GuestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    egress: egress::EgressHooks,
    table: ResourceTable,
    memory: MemoryCap,
    /// When the running call must end (`None`: no deadline); bounds every
    /// wait the guest makes in the host (see `waits`).
    call_deadline: Option<std::time::Instant>,
    /// Whether a clock wait of the running call was cut at the deadline.
    wait_cut: bool,
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

/// Refuses memory growth past the cap, and remembers that it did.
struct MemoryCap {
    max: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// What every instance of one plugin shares.
struct Shared {
    name: String,
    pre: InstancePre<GuestState>,
    sandbox: Sandbox,
    limits: WasmLimits,
    export: String,
    interface: Arc<Interface>,
    max_output: usize,
    /// `Some` when the guest may send HTTP requests.
    egress: Option<EgressPolicy>,
    denials: Arc<DenialLog>,
    /// Discard the instance after every call.
    fresh_instance_per_call: bool,
    /// Keeps deadlines working after the host is freed.
    _ticker: Arc<EpochTicker>,
}

impl Shared {
    /// A fresh store and instance, with the interface's functions looked up.
    fn instantiate(&self) -> Result<Live> {
        let state = GuestState {
            wasi: self.sandbox.wasi_ctx()?,
            http: WasiHttpCtx::new(),
            egress: egress::EgressHooks {
                plugin: self.name.as_str().into(),
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
    fn start_deadline(&self, store: &mut Store<GuestState>) {
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
    fn wait_outlived_deadline(store: &Store<GuestState>) -> bool {
        let state = store.data();
        state.wait_cut && state.call_deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline)
    }

    fn error(&self, status: Status, what: impl std::fmt::Display) -> Error {
        Error::new(status, format!("WASM plugin '{}': {what}", self.name))
    }
}

/// One live instance.
struct Live {
    store: Store<GuestState>,
    funcs: Vec<Option<Func>>,
    raw: Vec<Option<TypedFunc<(Vec<u8>,), (Vec<u8>,)>>>,
    hash: Option<Func>,
}

impl Live {
    /// What the guest's `fidius-interface-hash` export says.
    fn interface_hash(&mut self, shared: &Shared) -> Result<u64> {
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

/// A WASM plugin handle: one instance, calls serialized.
struct WasmPlugin {
    shared: Arc<Shared>,
    /// Per method, the export's parameter types and result count (`None`
    /// for an optional method the component lacks). Component-level facts,
    /// the same for every instance.
    signatures: Vec<Option<(Vec<Type>, usize)>>,
    live: Mutex<Option<Live>>,
}

impl WasmPlugin {
    /// Runs `call` on the plugin's instance, within the deadline and memory
    /// cap. Persistent instance: calls are serialized on it, and a failure
    /// discards it (the next call makes a new one). Fresh instance per call:
    /// each call gets its own, so no lock is held while the guest runs and
    /// calls from several threads proceed in parallel.
    fn with_instance<T>(&self, method: &Method, call: impl FnOnce(&mut Live) -> wasmtime::Result<T>) -> Result<T> {
        if self.shared.fresh_instance_per_call {
            // The instance made at load serves the first call.
            let spare = self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
            let (mut live, just_made) = match spare {
                Some(live) => (live, false),
                None => (self.shared.instantiate()?, true),
            };
            return self.run(&mut live, method, call, just_made);
        }
        let mut guard = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let just_made = guard.is_none();
        if just_made {
            *guard = Some(self.shared.instantiate()?);
        }
        let result = self.run(guard.as_mut().expect("set above"), method, call, just_made);
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// One call on `live`. Its deadline starts here, unless `live` was
    /// just instantiated for this call: then one deadline covers both.
    fn run<T>(
        &self,
        live: &mut Live,
        method: &Method,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
        just_made: bool,
    ) -> Result<T> {
        if !just_made {
            self.shared.start_deadline(&mut live.store);
        }
        live.store.data_mut().memory.exceeded = false;
        let result = call(live);
        if result.is_ok() && Shared::wait_outlived_deadline(&live.store) {
            return Err(self.classify(method, Trap::Interrupt.into(), false));
        }
        result.map_err(|e| self.classify(method, e, live.store.data().memory.exceeded))
    }

    fn classify(&self, method: &Method, error: wasmtime::Error, memory_exceeded: bool) -> Error {
        let shared = &self.shared;
        let what = format!("method '{}'", method.name);
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            let limit = shared.limits.deadline.unwrap_or_default();
            return shared.error(Status::Timeout, format!("{what} ran past its deadline of {limit:?} and was stopped"));
        }
        if memory_exceeded {
            return shared.error(
                Status::MemoryLimit,
                format!("{what} tried to grow memory past the cap of {} bytes and was stopped", shared.limits.memory),
            );
        }
        if error.downcast_ref::<Trap>().is_some() {
            return shared.error(Status::PluginTrap, format!("{what} trapped: {error:#}"));
        }
        // wasmtime bounds what a guest hands the host in one go ("hostcall
        // fuel", 128 MiB) with an error of a private type: its message is all
        // there is to recognise it by.
        if format!("{error:#}").contains("fuel allocated for hostcalls has been exhausted") {
            return shared.error(
                Status::OutputTooLarge,
                format!("{what} returned more data than the host takes from a guest in one call (the output limit is {} bytes)", shared.max_output),
            );
        }
        shared.error(Status::PluginProtocol, format!("{what} failed: {error:#}"))
    }
}

impl PluginBackend for WasmPlugin {
    fn call_raw(&self, method: u32, input: &[u8]) -> Result<OutputBytes> {
        let interface = &self.shared.interface;
        let spec = interface.method(method)?;
        if !spec.flags.raw {
            return crate::plugin::raw_call_through_json(self, interface, method, input);
        }
        let output = self.with_instance(spec, |live| {
            let func = live.raw[method as usize].ok_or_else(|| wasmtime::Error::msg("not implemented"))?;
            let (output,) = func.call(&mut live.store, (input.to_vec(),))?;
            Ok(output)
        })?;
        crate::plugin::check_output_size(&self.shared.name, &spec.name, output.len(), self.shared.max_output)?;
        Ok(OutputBytes::from_vec(output))
    }

    fn call_json(&self, interface: &Interface, method: u32, args_json: &str) -> Result<String> {
        let spec = interface.method(method)?;
        if spec.flags.raw {
            return crate::plugin::json_call_through_raw(self, interface, method, args_json);
        }
        let args: serde_json::Value = serde_json::from_str(args_json).map_err(|e| {
            Error::new(Status::InvalidJson, format!("arguments of '{}' are not valid JSON: {e}", spec.name))
        })?;
        let serde_json::Value::Array(args) = args else {
            return Err(Error::new(
                Status::ArgumentMismatch,
                format!("method '{}': arguments must be a JSON array of {} value(s)", spec.name, spec.params.len()),
            ));
        };
        let (param_types, result_count) = self.signatures[method as usize].as_ref().ok_or_else(|| {
            Error::new(Status::NotImplemented, format!("WASM plugin '{}' does not implement '{}'", self.shared.name, spec.name))
        })?;
        let result_count = *result_count;
        if args.len() != param_types.len() {
            return Err(Error::new(
                Status::ArgumentMismatch,
                format!("method '{}': expected {} argument(s), found {}", spec.name, param_types.len(), args.len()),
            ));
        }
        let params = param_types
            .iter()
            .zip(&args)
            .enumerate()
            .map(|(i, (t, a))| {
                values::lower(t, a, 0).map_err(|e| {
                    let declared = spec.params.get(i).map(ToString::to_string).unwrap_or_default();
                    Error::new(Status::ArgumentMismatch, format!("method '{}': argument {} ({declared}): {e}", spec.name, i + 1))
                })
            })
            .collect::<Result<Vec<Val>>>()?;
        let mut results = vec![Val::Bool(false); result_count];
        self.with_instance(spec, |live| {
            let func = live.funcs[method as usize].expect("checked above");
            func.call(&mut live.store, &params, &mut results)
        })?;
        let Some(result) = results.into_iter().next() else { return Ok("null".to_string()) };
        let hint = match &spec.returns {
            Returns::Nothing => None,
            Returns::Value(t) | Returns::Result(t) => Some(t),
        };
        let value = match result {
            Val::Result(Ok(payload)) => payload.map(|v| *v),
            Val::Result(Err(payload)) => return Err(self.plugin_error(method, payload.map(|v| *v))),
            other => Some(other),
        };
        let json = match value {
            None => serde_json::Value::Null,
            Some(v) => values::lift(&v, hint, interface.types()).map_err(|e| {
                self.shared.error(Status::PluginProtocol, format!("the result of '{}' cannot be expressed: {e}", spec.name))
            })?,
        };
        Ok(json.to_string())
    }

    fn denied_requests(&self) -> Vec<DeniedRequest> {
        self.shared.denials.entries()
    }
}

impl WasmPlugin {
    /// A `plugin-error` record (`code`, `message`, `details`) as a plugin error.
    fn plugin_error(&self, method: u32, payload: Option<Val>) -> Error {
        let mut error = PluginError { code: "WASM_ERROR".into(), message: String::new(), details: None };
        if let Some(Val::Record(fields)) = payload {
            for (name, value) in fields {
                match (name.as_str(), value) {
                    ("code", Val::String(code)) => error.code = code,
                    ("message", Val::String(message)) => error.message = message,
                    ("details", Val::Option(Some(details))) => {
                        if let Val::String(details) = *details {
                            error.details = Some(details);
                        }
                    }
                    _ => {}
                }
            }
        }
        Error::plugin(&self.shared.name, method, error)
    }
}
