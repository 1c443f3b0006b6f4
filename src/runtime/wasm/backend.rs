//! A WASM plugin handle: calls on its instance, as the plugin backend.

use super::engine::WasmRuntime;
use super::instance::{Exports, Live, Shared};
use super::store::GuestState;
use super::sandbox::SocketGate;
use super::{values, Sandbox, WasmPluginSettings, WasmSettings};
use crate::artifact::package::Package;
use crate::egress::{DenialLog, EgressPolicy, SocketProtocol};
use crate::plugin::{Plugin, RuntimeKind};
use crate::runtime::PackageLoad;
use wasmtime::component::InstancePre;
use crate::bytes::OutputBytes;
use crate::cancel::CancelToken;
use crate::egress::DeniedRequest;
use crate::error::{Error, PluginError, Result, Status};
use crate::interface::{Interface, Method, Returns};
use crate::plugin::PluginBackend;
use crate::plugin_config::PluginConfig;
use crate::stream::{CallResult, Feed, ItemSource, StreamArgs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Type, Val};
use wasmtime::Trap;

impl WasmRuntime {
    /// Loads the WASM plugin of `package` for `interface`: its exports are
    /// looked up by the interface's names, and the hash the guest reports and
    /// the manifest's interface version go into the plugin's description for
    /// the host to check against the interface.
    pub(super) fn load(
        &self,
        load: &PackageLoad,
        interface: &Arc<Interface>,
        settings: &WasmSettings,
        plugin_settings: WasmPluginSettings,
    ) -> Result<Plugin> {
        let PackageLoad { package, config, max_output, .. } = *load;
        let WasmPluginSettings { limits, egress, fresh_instance_per_call } = plugin_settings;
        let dir = package.dir();
        let manifest = package.manifest();
        let wasm = manifest.wasm.as_ref().expect("a WASM package has a [wasm] table");
        let sandbox = Sandbox::from_capabilities(dir, &wasm.capabilities, &settings.denied_capabilities)?;
        let mut diagnostics = Vec::new();
        let pre = self.instance_pre(package, settings, &mut diagnostics)?;
        let denials = Arc::new(DenialLog::default());
        let sockets = socket_gate(package, &sandbox, egress.as_ref(), &manifest.package.name, &denials)?;
        let egress = self.egress_of(&pre, package, &sandbox, egress.as_ref())?;
        let export = interface
            .wasm_export()
            .map_or_else(|| crate::interface::default_wasm_export(interface.name()), str::to_string);
        let name: Arc<str> = manifest.package.name.as_str().into();
        let exports = Exports::of(pre.component(), &export, interface)
            .map_err(|what| Error::new(Status::InvalidComponent, format!("WASM plugin '{name}': {what}")))?;
        let shared = Arc::new(Shared {
            name,
            exports,
            pre,
            sandbox,
            limits,
            export,
            interface: interface.clone(),
            max_output,
            egress,
            sockets,
            denials,
            fresh_instance_per_call,
            host_bindings: Arc::new(load.host_bindings.clone()),
            memory_high_water: Arc::default(),
            _ticker: self.ticker.clone(),
        });
        let mut live = shared.instantiate()?;
        let hash = live.interface_hash(&shared)?;
        let config: Option<Arc<[u8]>> = config.map(|c| c.bincode(&shared.name).map(Arc::from)).transpose()?;
        if let Some(config) = &config {
            // After the hash check: only a component of the interface asked
            // for is handed a configuration.
            if hash == interface.hash() {
                live.configure(&shared, config)?;
            }
        }
        let capabilities = interface.capability_bits(|index| live.funcs[index].is_some());
        let description = crate::runtime::package_description(package, interface, RuntimeKind::Wasm, hash, capabilities, diagnostics);
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
        let backend = WasmPlugin { shared, signatures, config, live: Mutex::new(Some(live)), busy_thread: AtomicUsize::new(0) };
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

}

/// What a guest's sockets go through: a package that declares `tcp` or
/// `udp` needs an egress policy, or it is not loaded (fail closed).
fn socket_gate(
    package: &Package,
    sandbox: &Sandbox,
    policy: Option<&EgressPolicy>,
    plugin: &str,
    denials: &Arc<DenialLog>,
) -> Result<Option<SocketGate>> {
    if !sandbox.sockets() {
        return Ok(None);
    }
    let policy = policy.ok_or_else(|| {
        Error::at(
            Status::NoEgressPolicy,
            package.dir(),
            "the package declares \"tcp\" or \"udp\" and may open sockets, but no egress policy is set (set one on \
             the builder or in the load options)",
        )
    })?;
    let answers_for = if sandbox.tcp() { SocketProtocol::Tcp } else { SocketProtocol::Udp };
    Ok(Some(SocketGate { plugin: plugin.into(), policy: policy.clone(), denials: denials.clone(), answers_for, pins: Default::default() }))
}

/// A WASM plugin handle: one instance, calls serialized.
pub(super) struct WasmPlugin {
    pub(super) shared: Arc<Shared>,
    /// Per method, the export's parameter types and result count (`None`
    /// for an optional method the component lacks). Component-level facts,
    /// the same for every instance.
    signatures: Vec<Option<(Vec<Type>, usize)>>,
    /// What every instance of this handle is configured with.
    config: Option<Arc<[u8]>>,
    live: Mutex<Option<Live>>,
    /// The thread holding `live` (its [`thread_token`]; 0 when none).
    busy_thread: AtomicUsize,
}

/// `live`, locked, with the holder recorded.
struct BusyGuard<'a> {
    guard: std::sync::MutexGuard<'a, Option<Live>>,
    busy_thread: &'a AtomicUsize,
}

impl std::ops::Deref for BusyGuard<'_> {
    type Target = Option<Live>;
    fn deref(&self) -> &Option<Live> {
        &self.guard
    }
}

impl std::ops::DerefMut for BusyGuard<'_> {
    fn deref_mut(&mut self) -> &mut Option<Live> {
        &mut self.guard
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.busy_thread.store(0, Ordering::Relaxed);
    }
}

/// A number that tells the calling thread from every other live thread.
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| t as *const u8 as usize)
}

impl WasmPlugin {
    /// A new instance, configured as this handle's instances are.
    pub(super) fn instantiate(&self) -> Result<Live> {
        let mut live = self.shared.instantiate()?;
        if let Some(config) = &self.config {
            live.configure(&self.shared, config)?;
        }
        Ok(live)
    }

    /// Runs `call` on the plugin's instance, within the deadline and memory
    /// cap. Persistent instance: calls are serialized on it, and a failure
    /// discards it (the next call makes a new one). Fresh instance per call:
    /// each call gets its own, so no lock is held while the guest runs and
    /// calls from several threads proceed in parallel.
    pub(super) fn with_instance<T>(
        &self,
        method: &Method,
        cancel: Option<&CancelToken>,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
    ) -> Result<T> {
        if let Some(token) = cancel {
            token.check(format_args!("WASM plugin '{}' method '{}'", self.shared.name, method.name))?;
        }
        if self.shared.fresh_instance_per_call {
            // The instance made at load serves the first call.
            let spare = self.live.lock().unwrap_or_else(|p| p.into_inner()).take();
            let (mut live, just_made) = match spare {
                Some(live) => (live, false),
                None => (self.instantiate()?, true),
            };
            return self.run(&mut live, method, cancel, call, just_made);
        }
        let mut guard = self.lock_live(method)?;
        let just_made = guard.is_none();
        if just_made {
            *guard = Some(self.instantiate()?);
        }
        let result = self.run(guard.as_mut().expect("set above"), method, cancel, call, just_made);
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// The persistent instance, locked for one call. A call from the thread
    /// already holding it — a host function or egress callback calling back
    /// into this plugin during its own call — is refused: it would wait for
    /// itself forever.
    fn lock_live(&self, method: &Method) -> Result<BusyGuard<'_>> {
        let me = thread_token();
        let guard = match self.live.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                if self.busy_thread.load(Ordering::Relaxed) == me {
                    return Err(self.shared.error(
                        Status::Misuse,
                        format!(
                            "'{}' was called from inside a call to this plugin on the same thread (from a host \
                             function or egress callback); its instance runs one call at a time. Load it with a fresh \
                             instance per call to allow this",
                            method.name
                        ),
                    ));
                }
                self.live.lock().unwrap_or_else(|p| p.into_inner())
            }
        };
        // Written only while holding the lock: a thread that reads its own
        // token holds it.
        self.busy_thread.store(me, Ordering::Relaxed);
        Ok(BusyGuard { guard, busy_thread: &self.busy_thread })
    }

    /// One call on `live`. Its deadline starts here, unless `live` was
    /// just made for this call: then the deadline started for the last step
    /// of making it (instantiation, or `fidius-configure` for a configured
    /// handle) covers the call too. Cancelling `cancel` stops the guest at
    /// its next epoch check or wait in the host (CANCELLED).
    fn run<T>(
        &self,
        live: &mut Live,
        method: &Method,
        cancel: Option<&CancelToken>,
        call: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
        just_made: bool,
    ) -> Result<T> {
        if !just_made {
            self.shared.start_deadline(&mut live.store);
        }
        let registration = match cancel {
            Some(token) => Some(self.shared.arm_cancel(&mut live.store, token, &method.name)?),
            None => None,
        };
        live.store.data_mut().memory.exceeded = false;
        let result = call(live);
        drop(registration);
        let cancelled = live.store.data_mut().stop.take().is_some_and(|stop| stop.is_cancelled());
        if cancelled && result.is_err() {
            return Err(crate::cancel::cancelled(
                format_args!("WASM plugin '{}': method '{}'", self.shared.name, method.name),
                "the guest was stopped (the next call gets a fresh instance)",
            ));
        }
        if result.is_ok() && Shared::wait_outlived_deadline(&live.store) {
            return Err(self.classify(method, Trap::Interrupt.into(), false));
        }
        result.map_err(|e| self.classify(method, e, live.store.data().memory.exceeded))
    }

    fn classify(&self, method: &Method, error: wasmtime::Error, memory_exceeded: bool) -> Error {
        self.shared.classify(&format!("method '{}'", method.name), error, memory_exceeded)
    }
}

impl Shared {
    /// The error for what stopped `what` (a call, a stream's `next`).
    pub(super) fn classify(&self, what: &str, error: wasmtime::Error, memory_exceeded: bool) -> Error {
        let shared = self;
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
    fn call_raw(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes> {
        let interface = &self.shared.interface;
        let spec = interface.method(method)?;
        if !spec.flags.raw {
            return crate::plugin::raw_call_through_json(self, interface, method, input, cancel);
        }
        let output = self.with_instance(spec, cancel, |live| {
            let func = live.raw[method as usize].ok_or_else(|| wasmtime::Error::msg("not implemented"))?;
            let (output,) = func.call(&mut live.store, (input.to_vec(),))?;
            Ok(output)
        })?;
        crate::plugin::check_output_size(&self.shared.name, &spec.name, output.len(), self.shared.max_output)?;
        Ok(OutputBytes::from_vec(output))
    }

    fn call_json(&self, interface: &Interface, method: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        let spec = interface.method(method)?;
        if spec.flags.raw {
            return crate::plugin::json_call_through_raw(self, interface, method, args_json, cancel);
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
        let (params, result_count) = self.lower_args(spec, method, &args)?;
        let mut results = vec![Val::Bool(false); result_count];
        self.with_instance(spec, cancel, |live| {
            let func = live.funcs[method as usize].expect("checked above");
            func.call(&mut live.store, &params, &mut results)
        })?;
        self.result_json(interface, spec, method, results)
    }

    fn denied_requests(&self) -> Vec<DeniedRequest> {
        self.shared.denials.entries()
    }

    fn memory_high_water(&self) -> Option<u64> {
        Some(self.shared.memory_high_water.load(Ordering::Relaxed))
    }

    fn call_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<Box<dyn ItemSource>> {
        Ok(Box::new(self.start_stream(interface, method, args, input)?))
    }

    fn call_client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        self.client_stream(interface, method, args, input)
    }

    fn new_instance(&self, config: &PluginConfig) -> Result<Box<dyn PluginBackend>> {
        let config: Arc<[u8]> = config.bincode(&self.shared.name)?.into();
        let mut instance = WasmPlugin { shared: self.shared.clone(), signatures: self.signatures.clone(), config: Some(config), live: Mutex::new(None), busy_thread: AtomicUsize::new(0) };
        // Configured now, so that a refused configuration is refused here.
        let live = instance.instantiate()?;
        *instance.live.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(live);
        Ok(Box::new(instance))
    }
}

impl WasmPlugin {
    /// The JSON arguments of a call as the export's parameters (the
    /// arguments but a `Stream<T>` one, which the guest pulls), and the
    /// number of its results.
    pub(super) fn lower_args(&self, spec: &Method, method: u32, args: &[serde_json::Value]) -> Result<(Vec<Val>, usize)> {
        let (param_types, result_count) = self.signatures[method as usize].as_ref().ok_or_else(|| {
            Error::new(Status::NotImplemented, format!("WASM plugin '{}' does not implement '{}'", self.shared.name, spec.name))
        })?;
        if args.len() != param_types.len() {
            return Err(Error::new(
                Status::ArgumentMismatch,
                format!("method '{}': expected {} argument(s), found {}", spec.name, param_types.len(), args.len()),
            ));
        }
        let declared: Vec<String> = spec.tuple_params().map(|(_, t)| t.to_string()).collect();
        let params = param_types
            .iter()
            .zip(args)
            .enumerate()
            .map(|(i, (t, a))| {
                values::lower(t, a, 0).map_err(|e| {
                    let declared = declared.get(i).cloned().unwrap_or_default();
                    Error::new(Status::ArgumentMismatch, format!("method '{}': argument {} ({declared}): {e}", spec.name, i + 1))
                })
            })
            .collect::<Result<Vec<Val>>>()?;
        Ok((params, *result_count))
    }

    /// A call's results as the JSON of its return value, or its plugin error.
    pub(super) fn result_json(&self, interface: &Interface, spec: &Method, method: u32, results: Vec<Val>) -> Result<String> {
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

    /// A `plugin-error` record (`code`, `message`, `details`) as a plugin error.
    fn plugin_error(&self, method: u32, payload: Option<Val>) -> Error {
        plugin_error(&self.shared.name, method, payload)
    }
}

/// A `plugin-error` record (`code`, `message`, `details`) as a plugin error.
pub(super) fn plugin_error(plugin: &Arc<str>, method: u32, payload: Option<Val>) -> Error {
    {
        let (mut code, mut message, mut details) = (None, None, None);
        if let Some(Val::Record(fields)) = &payload {
            for (name, value) in fields {
                match (name.as_str(), value) {
                    ("code", Val::String(text)) => code = Some(text.as_str()),
                    ("message", Val::String(text)) => message = Some(text.as_str()),
                    ("details", Val::Option(Some(inner))) => {
                        if let Val::String(text) = &**inner {
                            details = Some(text.as_str());
                        }
                    }
                    _ => {}
                }
            }
        }
        let error = PluginError::new(code.unwrap_or("WASM_ERROR"), message.unwrap_or(""), details);
        Error::plugin(plugin, method, error)
    }
}

