//! Loading a Python package and calling its plugin.

use super::{deadline, values};
use crate::artifact::package::Package;
use crate::bytes::OutputBytes;
use crate::cancel::CancelToken;
use crate::error::{Error, PluginError, Result, Status};
use crate::interface::{json, Interface, Returns};
use crate::plugin::{Plugin, PluginBackend, RuntimeKind};
use crate::plugin_config::PluginConfig;
use crate::stream::{CallResult, Feed, ItemSource, StreamArgs};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyModule, PyTuple};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The host side of the plugin machinery, run once in the interpreter.
const HOST_MODULE: &str = include_str!("host.py");

/// `_fidius_host`, made once per process.
static HOST: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Namespaces are never reused, so a reloaded plugin never sees its
/// predecessor's modules.
static NEXT_NAMESPACE: AtomicU64 = AtomicU64::new(1);

/// File suffixes of native extension modules, which cannot be loaded from
/// the bytes the host holds.
const EXTENSION_SUFFIXES: [&str; 2] = [".so", ".pyd"];

/// `host.py` and `sdk.py` compiled at build time by the interpreter the
/// library links: its bytecode magic number, then the marshalled code;
/// empty if the build had no interpreter to run (see build.rs).
const HOST_MODULE_COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/host.pyc"));
const SDK_MODULE: &str = include_str!("sdk.py");
const SDK_MODULE_COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sdk.pyc"));

fn host_module(py: Python<'_>) -> Result<&Bound<'_, PyModule>> {
    let module = HOST.get_or_try_init(py, || {
        let module = PyModule::new(py, "_fidius_host")?;
        module.setattr("__file__", "<libfidius_host>")?;
        let exec = py.import("builtins")?.getattr("exec")?;
        module.setattr("_SDK_CODE", code_of(py, SDK_MODULE_COMPILED, SDK_MODULE, "<fidius sdk>")?)?;
        exec.call1((code_of(py, HOST_MODULE_COMPILED, HOST_MODULE, "<libfidius_host>")?, module.dict()))?;
        py.import("sys")?.getattr("modules")?.set_item("_fidius_host", &module)?;
        Ok::<_, PyErr>(module.unbind())
    });
    module
        .map(|m| m.bind(py))
        .map_err(|e| Error::new(Status::InternalPanic, format!("cannot set up Python plugin support: {e}")))
}

/// The code of a module of the library's: unmarshalled from the build's
/// bytecode when it was made for this interpreter's bytecode version
/// (compiling takes milliseconds in a fresh interpreter, most of what a
/// process's first Python load adds to starting it), compiled from its
/// source otherwise.
fn code_of<'py>(py: Python<'py>, compiled: &[u8], source: &str, filename: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Some((magic, code)) = compiled.split_at_checked(4) {
        // The import system's own module, always loaded (importlib.util
        // would import contextlib and collections for it).
        let running = py.import("_frozen_importlib_external")?.getattr("MAGIC_NUMBER")?;
        if running.cast::<PyBytes>().is_ok_and(|running| running.as_bytes() == magic) {
            return py.import("marshal")?.call_method1("loads", (PyBytes::new(py, code),));
        }
    }
    py.import("builtins")?.getattr("compile")?.call1((source, filename, "exec"))
}

/// `_fidius_host.DeadlineExceeded`, the exception a deadline raises.
/// Looked up once: calls pass it on every time.
pub(super) fn deadline_exception<'py>(py: Python<'py>) -> Result<&'py Bound<'py, PyAny>> {
    static EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    EXCEPTION
        .get_or_try_init(py, || host_module(py)?.getattr("DeadlineExceeded").map(Bound::unbind).map_err(|e| {
            Error::new(Status::InternalPanic, format!("cannot set up Python deadlines: {e}"))
        }))
        .map(|exception| exception.bind(py))
}

/// Loads the Python plugin of `package` for `interface`, configured with
/// `config` when given. Its import (the module's top-level code), its
/// configuration and every call of it end by `deadline`.
pub fn load(
    package: &Package,
    interface: &Arc<Interface>,
    config: Option<&PluginConfig>,
    max_output: usize,
    deadline: Option<std::time::Duration>,
) -> Result<Plugin> {
    let dir = package.dir();
    let manifest = package.manifest();
    let section = manifest.python.as_ref().ok_or_else(|| {
        Error::at(Status::InvalidManifest, dir, "a \"python\" package needs a [python] table with entry_module")
    })?;
    let files = package.files()?;
    Python::initialize();
    let name = manifest.package.name.clone();
    let invalid = |what: String| Error::at(Status::InvalidPythonPlugin, dir, format!("Python plugin '{name}': {what}"));
    Python::attach(|py| {
        let host = host_module(py)?;
        let sources = PyDict::new(py);
        for (path, bytes) in files.iter() {
            let set = if path.ends_with(".py") {
                sources.set_item(path, PyBytes::new(py, bytes))
            } else if EXTENSION_SUFFIXES.iter().any(|s| path.ends_with(s)) {
                sources.set_item(path, py.None())
            } else {
                Ok(())
            };
            set.map_err(|e| invalid(e.to_string()))?;
        }
        let root = dir.to_string_lossy();
        let namespace = Arc::new(Namespace(format!("p{}", NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed))));
        let exception = deadline_exception(py)?;
        let loaded = deadline::run(py, deadline, None, exception, || {
            host.call_method1("load", (&namespace.0, root.as_ref(), sources, &section.entry_module))
        })?;
        if loaded.timed_out {
            return Err(Error::at(
                Status::Timeout,
                dir,
                format!("Python plugin '{name}': importing '{}' ran past the deadline of {:?} and was stopped", section.entry_module, deadline.unwrap_or_default()),
            ));
        }
        let loaded = loaded.value.map_err(|e| invalid(format!("cannot load: {e}")))?;
        let (tag, first, second) = loaded
            .extract::<(String, Bound<'_, PyAny>, Bound<'_, PyAny>)>()
            .map_err(|e| invalid(format!("cannot load: {e}")))?;
        if tag != "ok" {
            let (code, message) = (first.to_string(), second.to_string());
            return Err(match code.as_str() {
                "NoHash" | "BadHash" => invalid(message),
                _ => invalid(format!("importing '{}' failed: {code}: {message}", section.entry_module)),
            });
        }
        let hash: u64 = first.extract().map_err(|e| invalid(format!("cannot read __interface_hash__: {e}")))?;
        // Checked before the methods, as upstream does: a module for another
        // interface is a hash mismatch, not a missing method.
        if hash != interface.hash() {
            return Err(Error::at(
                Status::InterfaceHashMismatch,
                dir,
                format!(
                    "Python plugin '{name}': interface hash mismatch: expected {:#018x}, found {hash:#018x} (interface {})",
                    interface.hash(),
                    interface.name()
                ),
            )
            .mismatch(interface.hash(), hash));
        }
        let module = Module {
            name: name.as_str().into(),
            namespace,
            module: second.unbind(),
            entry_module: section.entry_module.clone(),
            interface: interface.clone(),
            max_output,
            deadline,
        };
        let backend = match config {
            Some(config) => module.configured(py, config),
            None => module.unconfigured(py),
        }
        .map_err(|e| if e.status() == Status::InvalidPythonPlugin { e.context(dir.display()) } else { e })?;
        let capabilities = interface.capability_bits(|index| backend.funcs[index].is_some());
        let description = crate::runtime::package_description(package, interface, RuntimeKind::Python, hash, capabilities, Vec::new());
        Ok(Plugin::new(description, Box::new(backend)).with_interface(Some(interface.clone())))
    })
}

/// A plugin's namespace of modules, forgotten when its last instance goes.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        // At interpreter shutdown there is nothing left to clean up.
        let _ = Python::try_attach(|py| {
            if let Ok(host) = host_module(py) {
                let _ = host.call_method1("unload", (&self.0,));
            }
        });
    }
}

/// An imported plugin module: what every instance of the plugin shares.
pub(super) struct Module {
    pub(super) name: Arc<str>,
    namespace: Arc<Namespace>,
    module: Py<PyAny>,
    entry_module: String,
    pub(super) interface: Arc<Interface>,
    pub(super) max_output: usize,
    /// How long a call (or a configuration) may run.
    pub(super) deadline: Option<std::time::Duration>,
}

impl Module {
    /// Reads `object`, a result or item of `method`, as the JSON shape of
    /// `ty`. Reading it may run plugin code (attributes, `__eq__` of dict
    /// keys); pyo3 turns its PanicException into a panic, caught here.
    pub(super) fn read_value(&self, method: &str, ty: &crate::interface::types::WireType, object: &Bound<'_, PyAny>) -> Result<serde_json::Value> {
        let protocol = |what: String| Error::new(Status::PluginProtocol, format!("Python plugin '{}': the result of '{method}' {what}", self.name));
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| values::from_python(self.interface.types(), ty, object, 0)));
        match read {
            Ok(value) => value.map_err(|e| protocol(format!("is not a valid {ty}: {}", e.0))),
            Err(_) => Err(protocol("could not be read: reading it raised an exception".to_string())),
        }
    }

    pub(super) fn shared(&self, py: Python<'_>) -> Module {
        Module {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            module: self.module.clone_ref(py),
            entry_module: self.entry_module.clone(),
            interface: self.interface.clone(),
            max_output: self.max_output,
            deadline: self.deadline,
        }
    }

    /// The plugin as the module itself: its functions are the methods. A
    /// module that lacks them and has `__fidius_configure__` wants a
    /// configuration.
    fn unconfigured(self, py: Python<'_>) -> Result<PythonPlugin> {
        let wants_config = self.module.bind(py).hasattr("__fidius_configure__").unwrap_or(false);
        let (name, entry, interface) = (self.name.clone(), self.entry_module.clone(), self.interface.clone());
        let target = self.module.clone_ref(py);
        self.bind(py, target.bind(py), |missing| {
            if wants_config {
                Error::new(
                    Status::ConfigRequired,
                    format!(
                        "Python plugin '{name}': module '{entry}' has __fidius_configure__ and no function '{missing}': \
                         it is constructed with a configuration, and none was given"
                    ),
                )
            } else {
                Error::new(
                    Status::InvalidPythonPlugin,
                    format!(
                        "Python plugin '{name}': module '{entry}' has no function '{missing}' (a required method of {})",
                        interface.name()
                    ),
                )
            }
        })
    }

    /// The plugin as the object `__fidius_configure__(config)` returns:
    /// its attributes are the methods.
    fn configured(self, py: Python<'_>, config: &PluginConfig) -> Result<PythonPlugin> {
        let value = config.value(&self.name)?;
        let host = host_module(py)?;
        let object = values::json_to_python(py, &value)
            .map_err(|e| Error::new(Status::InternalPanic, format!("cannot build the configuration of '{}': {e}", self.name)))?;
        let outcome = deadline::run(py, self.deadline, None, deadline_exception(py)?, || {
            host.call_method1("configure", (self.module.bind(py), object))
        })?;
        if outcome.timed_out {
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "Python plugin '{}': __fidius_configure__ ran past the deadline of {:?} and was stopped",
                    self.name,
                    self.deadline.unwrap_or_default()
                ),
            ));
        }
        let outcome = outcome.value.map_err(|e| self.invalid(format!("cannot configure: {e}")))?;
        let tag: String = outcome.get_item(0).and_then(|t| t.extract()).map_err(|e| self.invalid(format!("cannot configure: {e}")))?;
        match tag.as_str() {
            "ok" => {
                let instance = outcome.get_item(1).map_err(|e| self.invalid(format!("cannot configure: {e}")))?;
                let (name, interface) = (self.name.clone(), self.interface.clone());
                self.bind(py, &instance, |missing| {
                    Error::new(
                        Status::ConfigRejected,
                        format!(
                            "Python plugin '{name}': the object __fidius_configure__ returned has no method '{missing}' (a required method of {})",
                            interface.name()
                        ),
                    )
                })
            }
            "missing" => Err(Error::new(
                Status::ConfigRejected,
                format!(
                    "Python plugin '{}': a configuration was given, and module '{}' has no __fidius_configure__ to take it",
                    self.name, self.entry_module
                ),
            )),
            _ => {
                let (_, code, message, details) = outcome
                    .extract::<(String, String, String, Option<String>)>()
                    .map_err(|e| self.invalid(format!("cannot configure: {e}")))?;
                let error = PluginError::new(&code, &message, details.as_deref());
                Err(Error::new(
                    Status::ConfigRejected,
                    format!("Python plugin '{}': __fidius_configure__ raised {code}: {message}", self.name),
                )
                .with_plugin_error(error))
            }
        }
    }

    /// The plugin whose methods are `target`'s attributes; `missing` makes
    /// the error for a required method it lacks.
    fn bind(self, py: Python<'_>, target: &Bound<'_, PyAny>, missing: impl Fn(&str) -> Error) -> Result<PythonPlugin> {
        let host = host_module(py)?;
        let names: Vec<&str> = self.interface.methods().iter().map(|m| m.name.as_str()).collect();
        let bound = host.call_method1("bind", (target, names)).map_err(|e| self.invalid(format!("cannot read the methods: {e}")))?;
        let tag: String = bound.get_item(0).and_then(|t| t.extract()).map_err(|e| self.invalid(format!("cannot read the methods: {e}")))?;
        if tag != "ok" {
            let (_, code, message, _) = bound
                .extract::<(String, String, String, Option<String>)>()
                .map_err(|e| self.invalid(format!("cannot read the methods: {e}")))?;
            return Err(self.invalid(format!("reading its methods raised {code}: {message}")));
        }
        let callables: Vec<Option<Py<PyAny>>> = bound
            .get_item(1)
            .and_then(|c| c.extract())
            .map_err(|e| self.invalid(format!("cannot read the methods: {e}")))?;
        for (method, func) in self.interface.methods().iter().zip(&callables) {
            if func.is_none() && method.capability_bit.is_none() {
                return Err(missing(&method.name));
            }
        }
        Ok(PythonPlugin { module: self, funcs: callables })
    }

    fn invalid(&self, what: String) -> Error {
        Error::new(Status::InvalidPythonPlugin, format!("Python plugin '{}': {what}", self.name))
    }
}

/// One instance of a Python plugin: the callables of its methods.
pub(super) struct PythonPlugin {
    pub(super) module: Module,
    funcs: Vec<Option<Py<PyAny>>>,
}

/// A raised exception as code, message and details (see `host.py`, whose
/// `describe` never raises).
pub(super) fn describe(py: Python<'_>, error: &PyErr) -> PluginError {
    let described = host_module(py).ok().and_then(|host| {
        host.call_method1("describe", (error.value(py), error.traceback(py)))
            .and_then(|d| d.extract::<(String, String, Option<String>)>())
            .ok()
    });
    let (code, message, details) =
        described.unwrap_or_else(|| ("PythonError".into(), "(the exception cannot be described)".into(), None));
    PluginError::new(&code, &message, details.as_deref())
}

impl PythonPlugin {
    fn func(&self, py: Python<'_>, method: u32) -> Result<Py<PyAny>> {
        let spec = self.module.interface.method(method)?;
        self.funcs[method as usize].as_ref().map(|f| f.clone_ref(py)).ok_or_else(|| {
            Error::new(Status::NotImplemented, format!("Python plugin '{}' does not implement '{}'", self.module.name, spec.name))
        })
    }

    /// Calls method `method` with `args`; an exception (any, `SystemExit`
    /// and `KeyboardInterrupt` included) is a plugin error. pyo3 turns its
    /// own PanicException, should a plugin raise it, into a Rust panic when
    /// it fetches the error: caught here, it is a plugin error too.
    pub(super) fn invoke<'py>(
        &self,
        py: Python<'py>,
        method: u32,
        args: Bound<'py, PyTuple>,
        cancel: Option<&CancelToken>,
    ) -> Result<Bound<'py, PyAny>> {
        let func = self.func(py, method)?;
        let exception = deadline_exception(py)?;
        let spec = self.module.interface.method(method)?;
        let what = cancel.map(|_| format!("Python plugin '{}': method '{}'", self.module.name, spec.name));
        let cancel = cancel.zip(what.as_deref());
        let outcome = deadline::run(py, self.module.deadline, cancel, exception, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| func.bind(py).call1(args)))
        })?;
        if let Some((_, what)) = cancel.filter(|_| outcome.cancelled) {
            return Err(crate::cancel::cancelled(what, "an exception was raised in it and it was stopped"));
        }
        if outcome.timed_out {
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "Python plugin '{}': method '{}' ran past its deadline of {:?} and was stopped",
                    self.module.name,
                    spec.name,
                    self.module.deadline.unwrap_or_default()
                ),
            ));
        }
        let error = match outcome.value {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(raised)) => describe(py, &raised),
            Err(_) => PluginError::new("PanicException", "the plugin raised pyo3's PanicException", None),
        };
        Err(Error::plugin(&self.module.name, method, error))
    }

    fn protocol(&self, method: &str, what: impl std::fmt::Display) -> Error {
        Error::new(Status::PluginProtocol, format!("Python plugin '{}': the result of '{method}' {what}", self.module.name))
    }
}

impl PluginBackend for PythonPlugin {
    fn call_raw(&self, method: u32, input: &[u8], cancel: Option<&CancelToken>) -> Result<OutputBytes> {
        let interface = &self.module.interface;
        let spec = interface.method(method)?;
        if !spec.flags.raw {
            // Typed: the arguments as values, the result straight to bincode.
            let args = json::decode_arg_values(interface, spec, input)?;
            return self.call_values(interface, method, &args, cancel).map(OutputBytes::from_vec);
        }
        let output = Python::attach(|py| {
            let args = PyTuple::new(py, [PyBytes::new(py, input)]).map_err(|e| self.protocol(&spec.name, e))?;
            let result = self.invoke(py, method, args, cancel)?;
            // The size is checked before the bytes are copied out of Python.
            let checked = |len: usize| crate::plugin::check_output_size(&self.module.name, &spec.name, len, self.module.max_output);
            if let Ok(bytes) = result.cast::<PyBytes>() {
                checked(bytes.as_bytes().len())?;
                crate::bytes::try_copy(bytes.as_bytes())
            } else if let Ok(bytes) = result.cast::<PyByteArray>() {
                checked(bytes.len())?;
                Ok(bytes.to_vec())
            } else {
                Err(self.protocol(&spec.name, "must be bytes or bytearray (a raw method)"))
            }
        })?;
        crate::plugin::check_output_size(&self.module.name, &spec.name, output.len(), self.module.max_output)?;
        Ok(OutputBytes::from_vec(output))
    }

    fn call_json(&self, interface: &Interface, method: u32, args_json: &str, cancel: Option<&CancelToken>) -> Result<String> {
        let spec = interface.method(method)?;
        if spec.flags.raw {
            return crate::plugin::json_call_through_raw(self, interface, method, args_json, cancel);
        }
        // Checks every argument against its type, with the same messages as
        // for the other runtimes, before Python sees anything.
        let args = json::parse_args(spec, args_json)?;
        json::encode_arg_values(interface, spec, &args)?;
        // Through bincode: checked in full, and printed exactly as a cdylib
        // plugin's result is.
        let bytes = self.call_values(interface, method, &args, cancel)?;
        json::decode_output(interface, spec, &bytes)
    }

    fn new_instance(&self, config: &PluginConfig) -> Result<Box<dyn PluginBackend>> {
        let instance = Python::attach(|py| self.module.shared(py).configured(py, config))?;
        Ok(Box::new(instance))
    }

    fn capabilities(&self) -> Option<u64> {
        Some(self.module.interface.capability_bits(|index| self.funcs[index].is_some()))
    }

    /// The interpreter's module directories (`sys.path`): a plugin may
    /// import a module of the standard library while it serves a call.
    fn files_read_when_called(&self) -> Vec<std::path::PathBuf> {
        let path = Python::attach(|py| py.import("sys")?.getattr("path")?.extract::<Vec<String>>());
        path.unwrap_or_default().into_iter().filter(|dir| !dir.is_empty()).map(std::path::PathBuf::from).collect()
    }

    fn call_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: Option<Feed>) -> Result<Box<dyn ItemSource>> {
        Ok(Box::new(self.start_stream(interface, method, args, input)?))
    }

    fn call_client_stream(&self, interface: &Arc<Interface>, method: u32, args: StreamArgs<'_>, input: &Feed) -> Result<CallResult> {
        self.client_stream(interface, method, args, input)
    }
}

impl PythonPlugin {
    /// Calls typed method `method` with `args` (checked against its
    /// parameter types) and returns its result as bincode, checked against
    /// the return type and the output limit.
    fn call_values(&self, interface: &Interface, method: u32, args: &[serde_json::Value], cancel: Option<&CancelToken>) -> Result<Vec<u8>> {
        let spec = interface.method(method)?;
        let types = interface.types();
        let result = Python::attach(|py| {
            let objects = spec
                .params
                .iter()
                .zip(args)
                .map(|(ty, value)| values::to_python(py, types, ty, value))
                .collect::<PyResult<Vec<_>>>()
                .and_then(|objects| PyTuple::new(py, objects))
                .map_err(|e| Error::new(Status::InternalPanic, format!("cannot build the arguments of '{}': {e}", spec.name)))?;
            let result = self.invoke(py, method, objects, cancel)?;
            match &spec.returns {
                Returns::Nothing => Ok(serde_json::Value::Null),
                Returns::Value(ty) | Returns::Result(ty) => self.module.read_value(&spec.name, ty, &result),
            }
        })?;
        let bytes = json::encode_result_value(interface, spec, &result)?;
        crate::plugin::check_output_size(&self.module.name, &spec.name, bytes.len(), self.module.max_output)?;
        Ok(bytes)
    }
}

impl Drop for PythonPlugin {
    fn drop(&mut self) {
        // Released with the GIL held, so that the module goes now, not at
        // the next time some thread takes the GIL. At interpreter shutdown
        // there is nothing left to release.
        let _ = Python::try_attach(|py| {
            drop(std::mem::take(&mut self.funcs));
            drop(std::mem::replace(&mut self.module.module, py.None()));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_compiled_at_build_time_are_the_sources_code() {
        Python::initialize();
        Python::attach(|py| {
            for (compiled, source, filename) in
                [(HOST_MODULE_COMPILED, HOST_MODULE, "<libfidius_host>"), (SDK_MODULE_COMPILED, SDK_MODULE, "<fidius sdk>")]
            {
                // This build had the interpreter it links, so it compiled both.
                assert!(compiled.len() > 4, "{filename} was not compiled at build time");
                let from_build = code_of(py, compiled, source, filename).unwrap();
                let from_source = code_of(py, &[], source, filename).unwrap();
                // Code objects compare their bytecode, constants and names.
                assert!(from_build.eq(&from_source).unwrap(), "{filename}: the build's code is not the source's");
            }
        });
    }

    #[test]
    fn code_for_another_bytecode_version_is_compiled_from_source() {
        Python::initialize();
        Python::attach(|py| {
            let mut foreign = HOST_MODULE_COMPILED.to_vec();
            foreign[..4].copy_from_slice(b"\x00\x00\r\n");
            // Bytes after a foreign magic number are never unmarshalled.
            foreign.truncate(8);
            let code = code_of(py, &foreign, "answer = 42", "<test>").unwrap();
            let namespace = PyDict::new(py);
            py.import("builtins").unwrap().getattr("exec").unwrap().call1((code, &namespace)).unwrap();
            assert_eq!(namespace.get_item("answer").unwrap().unwrap().extract::<i64>().unwrap(), 42);
        });
    }
}
