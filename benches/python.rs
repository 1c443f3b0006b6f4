//! Python plugin benchmark: per-call cost through libfidius_host's C API
//! against calling the same Python function directly through pyo3.
//!
//!   FIDIUS_TEST_FIXTURES=target/test-fixtures cargo bench --bench python
//!
//! The direct side runs the fixture's own functions (`reverse`, `add`),
//! compiled into a module of their own.

mod timing;

use fidius_host::ffi::builder::*;
use fidius_host::ffi::bytes::*;
use fidius_host::ffi::host::*;
use fidius_host::ffi::interface::*;
use fidius_host::ffi::load_options::*;
use fidius_host::ffi::plugin::*;
use fidius_host::ffi::FIDIUS_HOST_NUL_TERMINATED as NT;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyModule};
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use timing::{compare, time};

/// The fixture's functions, as plugin.py defines them.
const FUNCTIONS: &std::ffi::CStr = c"
def _wrap(n):
    return (n + 2**63) % 2**64 - 2**63

def add(a, b):
    return _wrap(a + b)

def reverse(data):
    assert isinstance(data, bytes)
    return data[::-1]
";

fn fixtures() -> PathBuf {
    std::env::var_os("FIDIUS_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures"))
}

fn main() {
    unsafe {
        let package = CString::new(fixtures().join("python/calc").to_str().unwrap()).unwrap();
        let interface_path = CString::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml").to_str().unwrap()).unwrap();
        let (mut host, mut interface, mut plugin) = (null_mut(), null_mut(), null_mut());
        assert_eq!(fidius_host_builder_build(fidius_host_builder_new(), &mut host, null_mut()) as u32, 0);
        assert_eq!(fidius_host_interface_new_from_file(interface_path.as_ptr(), NT, &mut interface, null_mut()) as u32, 0);
        let options = fidius_host_load_options_new();
        assert_eq!(fidius_host_load_options_set_interface(options, interface, null_mut()) as u32, 0);
        assert_eq!(fidius_host_load_path(host, package.as_ptr(), NT, null(), 0, options, &mut plugin, null_mut()) as u32, 0, "run `make fixtures` first");
        let plugin: *const fidius_host_plugin_t = plugin;

        // The interpreter is up (the load started it); the direct side calls the
        // same functions with the same objects the host would build.
        let (add, reverse) = Python::attach(|py| {
            let module = PyModule::from_code(py, FUNCTIONS, c"direct.py", c"direct").unwrap();
            (module.getattr("add").unwrap().unbind(), module.getattr("reverse").unwrap().unbind())
        });
        let payload: Vec<u8> = (0..1024).map(|i| i as u8).collect();
        // `add(3, 7)` with JSON through the C API, on `plugin`.
        let json_add = |plugin: *const fidius_host_plugin_t| {
            move || {
                let mut json: *mut std::ffi::c_char = null_mut();
                let args = b"[3, 7]";
                let status = fidius_host_plugin_call_json_index(plugin, 0, args.as_ptr().cast(), args.len(), &mut json, null_mut(), null_mut());
                assert_eq!(status as u32, 0);
                std::hint::black_box(*json);
                fidius_host_string_free(json);
            }
        };

        println!("libfidius_host {}: Python per-call cost, median of {} rounds", env!("CARGO_PKG_VERSION"), timing::ROUNDS);
        compare(
            "reverse(1 KiB) raw",
            time(50_000, || {
                let out: Vec<u8> = Python::attach(|py| {
                    let result = reverse.call1(py, (PyBytes::new(py, &payload),)).unwrap();
                    result.bind(py).cast::<PyBytes>().unwrap().as_bytes().to_vec()
                });
                std::hint::black_box(out[0]);
            }),
            time(50_000, || {
                let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
                assert_eq!(fidius_host_plugin_call(plugin, 5, payload.as_ptr(), payload.len(), &mut out, null_mut()) as u32, 0);
                std::hint::black_box(*out.data);
                fidius_host_bytes_free(&mut out);
            }),
        );
        compare(
            "add(i64, i64) JSON",
            time(50_000, || {
                let sum: i64 = Python::attach(|py| add.call1(py, (3i64, 7i64)).unwrap().extract(py).unwrap());
                std::hint::black_box(sum);
            }),
            time(50_000, json_add(plugin)),
        );
        // A typed call as a program linked to the plugin's interface makes it:
        // bincode arguments in, the bincode result out (the plugin itself
        // sees Python ints either way).
        let add_args: Vec<u8> = [3i64.to_le_bytes(), 7i64.to_le_bytes()].concat();
        compare(
            "add(i64, i64) typed (bincode)",
            time(50_000, || {
                let sum: i64 = Python::attach(|py| add.call1(py, (3i64, 7i64)).unwrap().extract(py).unwrap());
                std::hint::black_box(sum);
            }),
            time(50_000, || {
                let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
                assert_eq!(fidius_host_plugin_call(plugin, 0, add_args.as_ptr(), add_args.len(), &mut out, null_mut()) as u32, 0);
                assert_eq!(out.len, 8);
                std::hint::black_box(*out.data);
                fidius_host_bytes_free(&mut out);
            }),
        );
        // The same JSON call, written by hand for this one function: parse the
        // arguments, call, print the result. What any JSON-in, JSON-out call
        // costs before checking against an interface.
        compare(
            "add(i64, i64) JSON, direct with serde_json",
            time(50_000, || {
                let (a, b): (i64, i64) = serde_json::from_str(std::hint::black_box("[3, 7]")).unwrap();
                let sum: i64 = Python::attach(|py| add.call1(py, (a, b)).unwrap().extract(py).unwrap());
                let json = serde_json::to_string(&sum).unwrap();
                std::hint::black_box(json.as_bytes()[0]);
            }),
            time(50_000, json_add(plugin)),
        );
        // The cost of the deadline (10 s by default) on a call: the same plugin
        // loaded by a host without Python deadlines, side by side.
        let mut unbounded_host = null_mut();
        let builder = fidius_host_builder_new();
        assert_eq!(fidius_host_builder_set_python_deadline_ms(builder, 0, null_mut()) as u32, 0);
        assert_eq!(fidius_host_builder_build(builder, &mut unbounded_host, null_mut()) as u32, 0);
        let mut unbounded = null_mut();
        assert_eq!(fidius_host_load_path(unbounded_host, package.as_ptr(), NT, null(), 0, options, &mut unbounded, null_mut()) as u32, 0);
        let unbounded: *const fidius_host_plugin_t = unbounded;
        compare("add JSON: no deadline (direct) vs 10 s deadline", time(50_000, json_add(unbounded)), time(50_000, json_add(plugin)));
        fidius_host_plugin_free(unbounded.cast_mut());
        fidius_host_free(unbounded_host);

        // A repeated load of the package in one host, against compiling its
        // two source files (what loading them costs at least, uncached).
        let sources: Vec<(String, String)> = ["plugin.py", "vendor/greeting/__init__.py"]
            .iter()
            .map(|file| (file.to_string(), std::fs::read_to_string(fixtures().join("python/calc").join(file)).unwrap()))
            .collect();
        compare(
            "repeated load (direct: compile the sources)",
            time(200, || {
                Python::attach(|py| {
                    let compile = py.import("builtins").unwrap().getattr("compile").unwrap();
                    for (file, source) in &sources {
                        std::hint::black_box(compile.call1((source.as_str(), file.as_str(), "exec")).unwrap());
                    }
                })
            }),
            time(200, || {
                let mut again = null_mut();
                assert_eq!(fidius_host_load_path(host, package.as_ptr(), NT, null(), 0, options, &mut again, null_mut()) as u32, 0);
                fidius_host_plugin_free(again);
            }),
        );
        fidius_host_plugin_free(plugin.cast_mut());
        fidius_host_load_options_free(options);
        fidius_host_interface_free(interface);
        fidius_host_free(host);
    }
}
