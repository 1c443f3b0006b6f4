//! Loading a Python package and calling its plugin.

use super::{deadline, values};
use crate::artifact::package::Package;
use crate::bytes::OutputBytes;
use crate::error::{Error, PluginError, Result, Status};
use crate::interface::{json, Interface, Returns};
use crate::plugin::{Plugin, PluginBackend, RuntimeKind};
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
fn deadline_exception<'py>(py: Python<'py>) -> Result<&'py Bound<'py, PyAny>> {
    static EXCEPTION: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    EXCEPTION
        .get_or_try_init(py, || host_module(py)?.getattr("DeadlineExceeded").map(Bound::unbind).map_err(|e| {
            Error::new(Status::InternalPanic, format!("cannot set up Python deadlines: {e}"))
        }))
        .map(|exception| exception.bind(py))
}

/// Loads the Python plugin of `package` for `interface`. Its import (the
/// module's top-level code) and every call of it end by `deadline`.
pub fn load(package: &Package, interface: &Arc<Interface>, max_output: usize, deadline: Option<std::time::Duration>) -> Result<Plugin> {
    let dir = package.dir();
    let manifest = package.manifest();
    let section = manifest.python.as_ref().ok_or_else(|| {
        Error::at(Status::InvalidManifest, dir, "a \"python\" package needs a [python] table with entry_module")
    })?;
    let files = package.files()?;
    Python::initialize();
    let namespace = format!("p{}", NEXT_NAMESPACE.fetch_add(1, Ordering::Relaxed));
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
        let method_names: Vec<&str> = interface.methods().iter().map(|m| m.name.as_str()).collect();
        let exception = deadline_exception(py)?;
        let loaded = deadline::run(py, deadline, exception, || {
            host.call_method1("load", (&namespace, root.as_ref(), sources, &section.entry_module, method_names))
        });
        if loaded.timed_out {
            let _ = host.call_method1("unload", (&namespace,));
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
        let unload = |e: Error| {
            let _ = host.call_method1("unload", (&namespace,));
            e
        };
        let hash: u64 = first.extract().map_err(|e| unload(invalid(format!("cannot read __interface_hash__: {e}"))))?;
        // Checked before the methods, as upstream does: a module for another
        // interface is a hash mismatch, not a missing method.
        if hash != interface.hash() {
            return Err(unload(Error::at(
                Status::InterfaceHashMismatch,
                dir,
                format!(
                    "Python plugin '{name}': interface hash mismatch: expected {:#018x}, found {hash:#018x} (interface {})",
                    interface.hash(),
                    interface.name()
                ),
            )
            .mismatch(interface.hash(), hash)));
        }
        let callables: Vec<Option<Py<PyAny>>> =
            second.extract().map_err(|e| unload(invalid(format!("cannot read the methods: {e}"))))?;
        let mut funcs = Vec::new();
        for (method, func) in interface.methods().iter().zip(callables) {
            if func.is_none() && method.capability_bit.is_none() {
                return Err(unload(invalid(format!(
                    "module '{}' has no function '{}' (a required method of {})",
                    section.entry_module,
                    method.name,
                    interface.name()
                ))));
            }
            funcs.push(func);
        }
        let capabilities = interface.capability_bits(|index| funcs[index].is_some());
        let description = crate::runtime::package_description(package, interface, RuntimeKind::Python, hash, capabilities, Vec::new());
        let backend =
            PythonPlugin { name: name.as_str().into(), namespace: namespace.clone(), funcs, interface: interface.clone(), max_output, deadline };
        Ok(Plugin::new(description, Box::new(backend)).with_interface(Some(interface.clone())))
    })
}

/// A loaded Python plugin: its namespace and the callables of its methods.
struct PythonPlugin {
    name: std::sync::Arc<str>,
    namespace: String,
    funcs: Vec<Option<Py<PyAny>>>,
    interface: Arc<Interface>,
    max_output: usize,
    /// How long a call may run.
    deadline: Option<std::time::Duration>,
}

/// A raised exception as code, message and details (see `host.py`, whose
/// `describe` never raises).
fn describe(py: Python<'_>, error: &PyErr) -> PluginError {
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
        let spec = self.interface.method(method)?;
        self.funcs[method as usize].as_ref().map(|f| f.clone_ref(py)).ok_or_else(|| {
            Error::new(Status::NotImplemented, format!("Python plugin '{}' does not implement '{}'", self.name, spec.name))
        })
    }

    /// Calls method `method` with `args`; an exception (any, `SystemExit`
    /// and `KeyboardInterrupt` included) is a plugin error. pyo3 turns its
    /// own PanicException, should a plugin raise it, into a Rust panic when
    /// it fetches the error: caught here, it is a plugin error too.
    fn invoke<'py>(&self, py: Python<'py>, method: u32, args: Bound<'py, PyTuple>) -> Result<Bound<'py, PyAny>> {
        let func = self.func(py, method)?;
        let exception = deadline_exception(py)?;
        let outcome = deadline::run(py, self.deadline, exception, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| func.bind(py).call1(args)))
        });
        if outcome.timed_out {
            let spec = self.interface.method(method)?;
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "Python plugin '{}': method '{}' ran past its deadline of {:?} and was stopped",
                    self.name,
                    spec.name,
                    self.deadline.unwrap_or_default()
                ),
            ));
        }
        let error = match outcome.value {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(raised)) => describe(py, &raised),
            Err(_) => PluginError::new("PanicException", "the plugin raised pyo3's PanicException", None),
        };
        Err(Error::plugin(&self.name, method, error))
    }

    fn protocol(&self, method: &str, what: impl std::fmt::Display) -> Error {
        Error::new(Status::PluginProtocol, format!("Python plugin '{}': the result of '{method}' {what}", self.name))
    }
}

impl PluginBackend for PythonPlugin {
    fn call_raw(&self, method: u32, input: &[u8]) -> Result<OutputBytes> {
        let interface = &self.interface;
        let spec = interface.method(method)?;
        if !spec.flags.raw {
            // Typed: the arguments as values, the result straight to bincode.
            let args = json::decode_arg_values(interface, spec, input)?;
            return self.call_values(interface, method, &args).map(OutputBytes::from_vec);
        }
        let output = Python::attach(|py| {
            let result = self.invoke(py, method, PyTuple::new(py, [PyBytes::new(py, input)]).map_err(|e| self.protocol(&spec.name, e))?)?;
            // The size is checked before the bytes are copied out of Python.
            let checked = |len: usize| crate::plugin::check_output_size(&self.name, &spec.name, len, self.max_output);
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
        crate::plugin::check_output_size(&self.name, &spec.name, output.len(), self.max_output)?;
        Ok(OutputBytes::from_vec(output))
    }

    fn call_json(&self, interface: &Interface, method: u32, args_json: &str) -> Result<String> {
        let spec = interface.method(method)?;
        if spec.flags.raw {
            return crate::plugin::json_call_through_raw(self, interface, method, args_json);
        }
        // Checks every argument against its type, with the same messages as
        // for the other runtimes, before Python sees anything.
        let args = json::parse_args(spec, args_json)?;
        json::encode_arg_values(interface, spec, &args)?;
        // Through bincode: checked in full, and printed exactly as a cdylib
        // plugin's result is.
        let bytes = self.call_values(interface, method, &args)?;
        json::decode_output(interface, spec, &bytes)
    }
}

impl PythonPlugin {
    /// Calls typed method `method` with `args` (checked against its
    /// parameter types) and returns its result as bincode, checked against
    /// the return type and the output limit.
    fn call_values(&self, interface: &Interface, method: u32, args: &[serde_json::Value]) -> Result<Vec<u8>> {
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
            let result = self.invoke(py, method, objects)?;
            let ty = match &spec.returns {
                Returns::Nothing => return Ok(serde_json::Value::Null),
                Returns::Value(ty) | Returns::Result(ty) => ty,
            };
            // Reading the result may run plugin code (attributes, `__eq__`
            // of dict keys); pyo3 turns its PanicException into a panic.
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| values::from_python(types, ty, &result, 0)));
            match read {
                Ok(value) => value.map_err(|e| self.protocol(&spec.name, format_args!("is not a valid {ty}: {}", e.0))),
                Err(_) => Err(self.protocol(&spec.name, "could not be read: reading it raised an exception")),
            }
        })?;
        let bytes = json::encode_result_value(interface, spec, &result)?;
        crate::plugin::check_output_size(&self.name, &spec.name, bytes.len(), self.max_output)?;
        Ok(bytes)
    }
}

impl Drop for PythonPlugin {
    fn drop(&mut self) {
        let funcs = std::mem::take(&mut self.funcs);
        // At interpreter shutdown there is nothing left to clean up.
        let _ = Python::try_attach(|py| {
            drop(funcs);
            if let Ok(host) = host_module(py) {
                let _ = host.call_method1("unload", (&self.namespace,));
            }
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
