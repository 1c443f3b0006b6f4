//! Host functions: the `Bookkeeper` fixture calls its host's `Ledger`
//! (log, lookup → Option, charge → Result) through a binding — a raw
//! (bincode) or JSON handler — with the per-call context, from the calling
//! thread and from a thread the plugin starts.
//!
//! fidius binds once per mapped library, so each test loads its own copy
//! of the library (a copy is a separate image); the tests that share an
//! image say so.

mod common;

use common::*;
use fidius_host::host_functions::with_call_context;
use fidius_host::interface::file;
use fidius_host::{
    HostBinding, HostBuilder, HostCall, HostFailure, HostHandler, Interface, Isolation, JsonHostHandler, LoadOptions, Plugin,
    PluginError, Status,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

fn interface(name: &str) -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name)).unwrap())
}

/// A private copy of the hostcall library, so that its image is this test's.
fn library_copy(test: &str) -> PathBuf {
    copy_into(&temp_dir(&format!("host-functions-{test}")), &fixture("hostcall/libhostcall_plugin.so"))
}

/// What the handler saw: each call's method, JSON arguments and context.
#[derive(Default)]
struct Ledger {
    seen: Mutex<Vec<(u32, String, usize)>>,
}

impl JsonHostHandler for Ledger {
    fn call(&self, call: &HostCall<'_>, args: &str) -> Result<String, HostFailure> {
        self.seen.lock().unwrap().push((call.method, args.to_string(), call.context));
        match (call.method, args) {
            (0, _) => Ok("null".into()),
            (1, r#"["answer"]"#) => Ok("41".into()),
            (1, r#"["wrong type"]"#) => Ok(r#""forty-one""#.into()),
            (1, _) => Ok("null".into()),
            (2, r#"["alice",250]"#) => Ok("750".into()),
            (2, _) => Err(HostFailure::Error(PluginError::new("NO_FUNDS", "the account cannot pay", Some(r#"{"short":250}"#)))),
            _ => unreachable!("Ledger has three methods"),
        }
    }
}

fn load(isolation: Isolation, path: &Path, bindings: &[Arc<HostBinding>]) -> fidius_host::Result<Plugin> {
    let mut options = LoadOptions::with_interface(interface("bookkeeper.toml"));
    for binding in bindings {
        options.bind_host_functions(binding.clone());
    }
    let plugin = builder_in(isolation).build().unwrap().load_path_with(path, None, &options)?;
    assert_runs(&plugin, isolation);
    Ok(plugin)
}

/// A private copy of the library for `test` in `isolation`.
fn copy_for(test: &str, isolation: Isolation) -> PathBuf {
    library_copy(&format!("{test}-{isolation:?}"))
}

fn json_ledger() -> (Arc<Ledger>, Arc<HostBinding>) {
    let ledger = Arc::new(Ledger::default());
    let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), ledger.clone()).unwrap());
    (ledger, binding)
}

#[test]
fn a_plugin_calls_its_host_many_times_in_one_call_with_the_calls_context() {
    for isolation in MODES {
        let (ledger, binding) = json_ledger();
        let plugin = load(isolation, &copy_for("many", isolation), &[binding]).unwrap();
        let result = with_call_context(0xC0FFEE, || plugin.call_json("record", r#"["entry", 500]"#)).unwrap();
        assert_eq!(result, "500", "{isolation:?}");
        let seen = ledger.seen.lock().unwrap();
        assert_eq!(seen.len(), 500, "{isolation:?}");
        for (i, (method, args, context)) in seen.iter().enumerate() {
            assert_eq!((*method, args.as_str(), *context), (0, format!(r#"["entry #{i}"]"#).as_str(), 0xC0FFEE), "{isolation:?}");
        }
    }
}

#[test]
fn option_and_result_host_functions_reach_the_plugin_as_typed_values() {
    for isolation in MODES {
        let (ledger, binding) = json_ledger();
        let plugin = load(isolation, &copy_for("typed", isolation), &[binding]).unwrap();
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["missing"]"#).unwrap(), "null");
        // From a thread the plugin starts: no call context there.
        assert_eq!(with_call_context(9, || plugin.call_json("charge_from_thread", r#"["alice", 250]"#)).unwrap(), "750");
        let e = with_call_context(9, || plugin.call_json("charge_from_thread", r#"["bob", 5]"#)).unwrap_err();
        assert_eq!(e.status(), Status::PluginError, "{isolation:?}: {e}");
        let error = e.plugin_error().unwrap();
        assert_eq!((error.code(), error.message(), error.details()), ("NO_FUNDS", "the account cannot pay", Some(r#"{"short":250}"#)));
        let seen = ledger.seen.lock().unwrap();
        assert_eq!(
            seen.iter().map(|s| s.2).collect::<Vec<_>>(),
            [0, 0, 0, 0],
            "{isolation:?}: no context outside with_call_context, none on plugin threads"
        );
    }
}

#[test]
fn a_raw_handler_gets_the_bincode_arguments_and_answers_bincode() {
    struct Raw;
    impl HostHandler for Raw {
        fn call(&self, call: &HostCall<'_>) -> Result<Vec<u8>, HostFailure> {
            assert_eq!(call.method, 1, "only lookup is called");
            let (key,): (String,) = bincode::deserialize(call.args).map_err(|e| HostFailure::BadArguments(e.to_string()))?;
            Ok(bincode::serialize(&Some(key.len() as u64 * 100)).unwrap())
        }
    }
    for isolation in MODES {
        let binding = Arc::new(HostBinding::new(interface("ledger.toml"), Raw).unwrap());
        let plugin = load(isolation, &copy_for("raw", isolation), &[binding]).unwrap();
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["abc"]"#).unwrap(), "301", "{isolation:?}");
    }
}

#[test]
fn a_host_function_that_fails_to_answer_is_an_error_for_the_plugin() {
    struct Garbage;
    impl HostHandler for Garbage {
        fn call(&self, call: &HostCall<'_>) -> Result<Vec<u8>, HostFailure> {
            match call.method {
                0 => panic!("the log is on fire"),
                _ => Ok(vec![7]), // not an Option<u64>
            }
        }
    }
    for isolation in MODES {
        let binding = Arc::new(HostBinding::new(interface("ledger.toml"), Garbage).unwrap());
        let plugin = load(isolation, &copy_for("garbage", isolation), &[binding]).unwrap();
        let e = plugin.call_json("record", r#"["x", 1]"#).unwrap_err();
        assert_eq!(e.plugin_error().unwrap().code(), "HOST_CALL", "{isolation:?}: {e}");
        assert!(e.plugin_error().unwrap().message().contains("host function Ledger.log failed: panicked: the log is on fire"), "{e}");
        let e = plugin.call_json("lookup_plus_one", r#"["x"]"#).unwrap_err();
        assert!(e.plugin_error().unwrap().message().contains("deserialization"), "{isolation:?}: {e}");

        // A JSON result that is not of the declared type is caught in the host.
        let (_, binding) = json_ledger();
        let plugin = load(isolation, &copy_for("wrong-type", isolation), &[binding]).unwrap();
        let e = plugin.call_json("lookup_plus_one", r#"["wrong type"]"#).unwrap_err();
        let message = e.plugin_error().unwrap().message();
        assert!(message.contains("host function Ledger.lookup failed") && message.contains("Option<u64>"), "{isolation:?}: {e}");
        // The plugin stays usable.
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
    }
}

#[test]
fn a_host_function_may_call_back_into_the_same_native_plugin() {
    struct Reentrant(OnceLock<Weak<Plugin>>);
    impl JsonHostHandler for Reentrant {
        fn call(&self, call: &HostCall<'_>, _args: &str) -> Result<String, HostFailure> {
            match call.method {
                // lookup answers through the plugin's own lookup_plus_one of another key
                1 if call.context == 0 => Ok("1".into()),
                1 => {
                    let plugin = self.0.get().unwrap().upgrade().unwrap();
                    let inner = with_call_context(0, || plugin.call_json("lookup_plus_one", r#"["inner"]"#)).unwrap();
                    Ok(inner)
                }
                _ => Ok("null".into()),
            }
        }
    }
    for isolation in MODES {
        let handler = Arc::new(Reentrant(OnceLock::new()));
        let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), handler.clone()).unwrap());
        let plugin = Arc::new(load(isolation, &copy_for("reentrant", isolation), &[binding]).unwrap());
        handler.0.set(Arc::downgrade(&plugin)).ok().unwrap();
        // outer lookup → host → plugin lookup (1 + 1) → host answers 2 → outer 3
        assert_eq!(with_call_context(1, || plugin.call_json("lookup_plus_one", r#"["outer"]"#)).unwrap(), "3", "{isolation:?}");
    }
}

#[test]
fn a_plugin_built_against_another_revision_of_the_host_interface_is_not_loaded() {
    for isolation in MODES {
        let path = copy_for("mismatch", isolation);
        let (_, good) = json_ledger();
        let ledger = || Arc::new(Ledger::default());
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/ledger.toml")).unwrap();
        let reparse = |text: &str| Arc::new(file::parse(text, "test").unwrap());
        let v4 = reparse(&text.replace("version = 3", "version = 4").replace("hash = ", "# hash = "));
        let e = load(isolation, &path, &[Arc::new(HostBinding::new_json(v4, ledger()).unwrap())]).unwrap_err();
        assert_eq!(e.status(), Status::InterfaceVersionMismatch, "{isolation:?}: {e}");
        assert!(e.message().contains("host interface 'Ledger' version mismatch: plugin was built against v3, host provides v4"), "{e}");
        let drifted = reparse(&text.replace("log:String->", "log:String,u8->").replace("hash = ", "# hash = "));
        let e = load(isolation, &path, &[Arc::new(HostBinding::new_json(drifted.clone(), ledger()).unwrap())]).unwrap_err();
        assert_eq!(e.status(), Status::InterfaceHashMismatch, "{isolation:?}: {e}");
        assert!(
            e.message().contains(&format!("plugin was built against {:#x}, host provides {:#x}", interface("ledger.toml").hash(), drifted.hash())),
            "{e}"
        );
        // Nothing was bound: the right revision still binds.
        assert_eq!(load(isolation, &path, &[good]).unwrap().call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
    }
}

/// Answers every lookup with its number.
struct Fixed(u64);

impl JsonHostHandler for Fixed {
    fn call(&self, _: &HostCall<'_>, _: &str) -> Result<String, HostFailure> {
        Ok(self.0.to_string())
    }
}

#[test]
fn a_plugin_compiled_against_ledger_v4_is_refused_the_v3_ledger() {
    let path = fixture("hostcall-drift/libauditor_plugin.so");
    let host = HostBuilder::new().build().unwrap();
    let plugin = host.load_path(&path, None).unwrap();
    let import = &plugin.host_imports()[0];
    assert_eq!((import.interface_name.as_str(), import.interface_version), ("Ledger", 4));
    let (_, binding) = json_ledger();
    let mut options = LoadOptions::new();
    options.bind_host_functions(binding);
    let e = host.load_path_with(&path, None, &options).unwrap_err();
    assert_eq!(e.status(), Status::InterfaceVersionMismatch, "{e}");
    assert!(e.message().contains("host interface 'Ledger' version mismatch: plugin was built against v4, host provides v3"), "{e}");
    assert!(e.message().contains("libauditor_plugin.so"), "{e}");
    // It stays unbound: its call gets fidius's NotBound.
    let e = plugin.call_raw(0, &bincode::serialize(&("x".to_string(),)).unwrap()).unwrap_err();
    assert!(e.plugin_error().unwrap().message().contains("is not bound"), "{e}");
}

#[test]
fn a_mapped_library_is_bound_once_until_it_is_unmapped() {
    let path = library_copy("once");
    let answer = |n: u64| Arc::new(HostBinding::new_json(interface("ledger.toml"), Fixed(n)).unwrap());
    let (first, second) = (answer(10), answer(20));
    let plugin = load(Isolation::InProcess, &path, &[first.clone()]).unwrap();
    // Another host, same file: the same image, already bound.
    let e = load(Isolation::InProcess, &path, &[second.clone()]).unwrap_err();
    assert_eq!(e.status(), Status::HostAlreadyBound, "{e}");
    assert!(e.message().contains("host interface 'Ledger' is already bound"), "{e}");
    // The same binding again, or none, shares the bound table.
    let again = load(Isolation::InProcess, &path, &[first.clone()]).unwrap();
    let unbound = load(Isolation::InProcess, &path, &[]).unwrap();
    for p in [&plugin, &again, &unbound] {
        assert_eq!(p.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "11");
    }
    drop((plugin, again, unbound));
    // Unmapped with its last plugin: a new mapping takes a new binding, and
    // the first one is released.
    let plugin = load(Isolation::InProcess, &path, &[second]).unwrap();
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "21");
    assert_eq!(Arc::strong_count(&first), 1, "the unmapped image let go of its binding");
}

#[test]
fn isolated_plugins_of_one_file_each_bind_their_own_host_functions() {
    // Each worker maps its own image: no binding is shared or refused.
    let path = library_copy("own-image");
    let answer = |n: u64| Arc::new(HostBinding::new_json(interface("ledger.toml"), Fixed(n)).unwrap());
    let ten = load(Isolation::Isolated, &path, &[answer(10)]).unwrap();
    let twenty = load(Isolation::Isolated, &path, &[answer(20)]).unwrap();
    assert_eq!(ten.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "11");
    assert_eq!(twenty.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "21");
    // Unbound: fidius's NotBound, as in-process.
    let unbound = load(Isolation::Isolated, &path, &[]).unwrap();
    let e = unbound.call_json("lookup_plus_one", r#"["k"]"#).unwrap_err();
    assert!(e.plugin_error().unwrap().message().contains("is not bound"), "{e}");
}

#[test]
fn an_isolated_worker_lost_inside_a_host_function_fails_the_call_and_restarts() {
    struct Killer(OnceLock<Weak<Plugin>>);
    impl JsonHostHandler for Killer {
        fn call(&self, call: &HostCall<'_>, args: &str) -> Result<String, HostFailure> {
            if call.method == 1 && args == r#"["kill"]"# {
                let plugin = self.0.get().unwrap().upgrade().unwrap();
                let pid = plugin.worker_usage().unwrap().pid;
                // SAFETY: plain syscall on the plugin's own worker.
                assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
                return Ok("5".into());
            }
            Ok("5".into())
        }
    }
    let handler = Arc::new(Killer(OnceLock::new()));
    let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), handler.clone()).unwrap());
    let plugin = Arc::new(load(Isolation::Isolated, &library_copy("killed"), &[binding]).unwrap());
    handler.0.set(Arc::downgrade(&plugin)).ok().unwrap();
    let e = plugin.call_json("lookup_plus_one", r#"["kill"]"#).unwrap_err();
    assert_eq!(e.status(), Status::WorkerLost, "{e}");
    assert!(e.message().contains("signal 9"), "{e}");
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["again"]"#).unwrap(), "6", "the next call restarts the worker");
    assert_eq!(plugin.worker_usage().unwrap().restarts, 1);
}

#[test]
fn a_host_function_waiting_for_another_threads_call_into_its_isolated_plugin_gets_a_timeout() {
    // Calls to an isolated handle are served one at a time: a call from
    // another thread cannot start while a host function of the running
    // call waits for it, and it ends at its deadline instead of never.
    struct WaitsForAnother(OnceLock<Weak<Plugin>>, Mutex<Option<fidius_host::Error>>);
    impl JsonHostHandler for WaitsForAnother {
        fn call(&self, call: &HostCall<'_>, _: &str) -> Result<String, HostFailure> {
            if call.method != 1 {
                return Ok("null".into());
            }
            let plugin = self.0.get().unwrap().upgrade().unwrap();
            let other = std::thread::spawn(move || plugin.call_json("lookup_plus_one", r#"["other"]"#));
            *self.1.lock().unwrap() = other.join().unwrap().err();
            Ok("1".into())
        }
    }
    let handler = Arc::new(WaitsForAnother(OnceLock::new(), Mutex::new(None)));
    let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), handler.clone()).unwrap());
    let mut options = LoadOptions::with_interface(interface("bookkeeper.toml"));
    options.bind_host_functions(binding);
    let mut builder = builder_in(Isolation::Isolated);
    builder.call_deadline(Some(std::time::Duration::from_millis(500)));
    let host = builder.build().unwrap();
    let plugin = Arc::new(host.load_path_with(&library_copy("waits"), None, &options).unwrap());
    handler.0.set(Arc::downgrade(&plugin)).ok().unwrap();
    let started = std::time::Instant::now();
    // The outer call itself outlives its deadline while the host function
    // waits: it is TIMEOUT too, and the worker is replaced.
    let outer = plugin.call_json("lookup_plus_one", r#"["outer"]"#);
    let inner = handler.1.lock().unwrap().take().expect("the other thread's call failed");
    assert_eq!(inner.status(), Status::Timeout, "{inner}");
    assert!(inner.message().contains("could not start within 500ms"), "{inner}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(outer.unwrap_err().status(), Status::Timeout);
}

#[test]
fn python_plugins_cannot_take_host_functions() {
    for isolation in MODES {
        let (_, binding) = json_ledger();
        let mut options = LoadOptions::with_interface(interface("calculator.toml"));
        options.bind_host_functions(binding);
        let e = builder_in(isolation).build().unwrap().load_path_with(&fixture("python/calc"), None, &options).unwrap_err();
        assert_eq!(e.status(), Status::Unsupported, "{isolation:?}: {e}");
        assert!(e.message().contains("Python plugins cannot call host functions") && e.message().contains("Ledger"), "{e}");
    }
}

const COMPONENT: &str = "hostcall-wasm/bookkeeper";

#[test]
fn a_component_calls_its_host_through_the_host_call_import() {
    let (ledger, binding) = json_ledger();
    let plugin = load(Isolation::InProcess, &fixture(COMPONENT), &[binding]).unwrap();
    assert_eq!(with_call_context(5, || plugin.call_json("record", r#"["w", 40]"#)).unwrap(), "40");
    assert_eq!(with_call_context(5, || plugin.call_json("lookup_plus_one", r#"["answer"]"#)).unwrap(), "42");
    assert_eq!(with_call_context(5, || plugin.call_json("charge_from_thread", r#"["alice", 250]"#)).unwrap(), "750");
    let e = with_call_context(5, || plugin.call_json("charge_from_thread", r#"["bob", 1]"#)).unwrap_err();
    let error = e.plugin_error().unwrap();
    assert_eq!((error.code(), error.details()), ("NO_FUNDS", Some(r#"{"short":250}"#)), "{e}");
    let seen = ledger.seen.lock().unwrap();
    assert_eq!(seen.len(), 43);
    assert!(seen.iter().all(|s| s.2 == 5), "a component calls back on the calling thread, with its context");
    assert_eq!(seen[39].1, r#"["w #39"]"#);
}

#[test]
fn a_component_gets_the_checks_of_every_call_as_typed_errors() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/ledger.toml")).unwrap();
    let ledger = |text: String| Arc::new(file::parse(&text, "test").unwrap());
    let bind = |interface| Arc::new(HostBinding::new_json(interface, Arc::new(Ledger::default())).unwrap());
    let cases = [
        (None, "NOT_BOUND", "host interface 'Ledger' is not bound".to_string()),
        (
            Some(bind(ledger(text.replace("version = 3", "version = 4").replace("hash = ", "# hash = ")))),
            "HOST_CALL",
            "plugin was built against v3, host provides v4".to_string(),
        ),
        (
            Some(bind(ledger(text.replace("log:String->", "log:u8->").replace("hash = ", "# hash = ")))),
            "HOST_CALL",
            "signature hash mismatch".to_string(),
        ),
    ];
    for (binding, code, text) in cases {
        let plugin = load(Isolation::InProcess, &fixture(COMPONENT), binding.as_slice()).unwrap();
        let e = plugin.call_json("record", r#"["x", 1]"#).unwrap_err();
        let error = e.plugin_error().unwrap();
        assert_eq!(error.code(), code, "{e}");
        assert!(error.message().contains(&text), "{e}");
    }
}

/// Answers `lookup` after calling the plugin's `lookup_plus_one` itself,
/// and keeps what that nested call gave.
struct CallsBack {
    plugin: OnceLock<Arc<Plugin>>,
    nested: Mutex<Vec<fidius_host::Result<String>>>,
}

impl JsonHostHandler for CallsBack {
    fn call(&self, call: &HostCall<'_>, args: &str) -> Result<String, HostFailure> {
        if call.method == 1 && args == r#"["outer"]"# {
            let nested = self.plugin.get().unwrap().call_json("lookup_plus_one", r#"["inner"]"#);
            self.nested.lock().unwrap().push(nested);
        }
        Ok("1".into())
    }
}

#[test]
fn a_component_called_back_from_its_own_host_function() {
    for fresh in [false, true] {
        let handler = Arc::new(CallsBack { plugin: OnceLock::new(), nested: Mutex::new(Vec::new()) });
        let mut options = LoadOptions::with_interface(interface("bookkeeper.toml"));
        options.bind_host_functions(Arc::new(HostBinding::new_json(interface("ledger.toml"), handler.clone()).unwrap()));
        options.wasm_fresh_instance_per_call(fresh);
        let plugin = Arc::new(HostBuilder::new().build().unwrap().load_path_with(&fixture(COMPONENT), None, &options).unwrap());
        handler.plugin.set(plugin.clone()).ok().unwrap();
        // The outer call completes either way; no deadlock.
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["outer"]"#).unwrap(), "2");
        let nested = handler.nested.lock().unwrap();
        match (fresh, &nested[0]) {
            // A persistent instance is busy with the outer call.
            (false, Err(e)) => {
                assert_eq!(e.status(), Status::Misuse, "{e}");
                assert!(e.message().contains("called from inside a call to this plugin on the same thread"), "{e}");
            }
            // A fresh instance per call serves it on an instance of its own.
            (true, Ok(answer)) => assert_eq!(answer, "2"),
            (fresh, other) => panic!("fresh instance per call {fresh}: {other:?}"),
        }
        drop(nested);
        // The handle stays usable (the cycle through the handler is broken here).
        assert_eq!(plugin.call_json("lookup_plus_one", r#"["again"]"#).unwrap(), "2");
    }
}
