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
    HostBinding, HostBuilder, HostCall, HostFailure, HostHandler, Interface, JsonHostHandler, LoadOptions, Plugin, PluginError,
    Status,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

fn load(path: &Path, bindings: &[Arc<HostBinding>]) -> fidius_host::Result<Plugin> {
    let mut options = LoadOptions::with_interface(interface("bookkeeper.toml"));
    for binding in bindings {
        options.bind_host_functions(binding.clone());
    }
    HostBuilder::new().build().unwrap().load_path_with(path, None, &options)
}

fn json_ledger() -> (Arc<Ledger>, Arc<HostBinding>) {
    let ledger = Arc::new(Ledger::default());
    let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), ledger.clone()).unwrap());
    (ledger, binding)
}

#[test]
fn a_plugin_calls_its_host_many_times_in_one_call_with_the_calls_context() {
    let (ledger, binding) = json_ledger();
    let plugin = load(&library_copy("many"), &[binding]).unwrap();
    let result = with_call_context(0xC0FFEE, || plugin.call_json("record", r#"["entry", 500]"#)).unwrap();
    assert_eq!(result, "500");
    let seen = ledger.seen.lock().unwrap();
    assert_eq!(seen.len(), 500);
    for (i, (method, args, context)) in seen.iter().enumerate() {
        assert_eq!((*method, args.as_str(), *context), (0, format!(r#"["entry #{i}"]"#).as_str(), 0xC0FFEE));
    }
}

#[test]
fn option_and_result_host_functions_reach_the_plugin_as_typed_values() {
    let (ledger, binding) = json_ledger();
    let plugin = load(&library_copy("typed"), &[binding]).unwrap();
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["missing"]"#).unwrap(), "null");
    // From a thread the plugin starts: no call context there.
    assert_eq!(with_call_context(9, || plugin.call_json("charge_from_thread", r#"["alice", 250]"#)).unwrap(), "750");
    let e = with_call_context(9, || plugin.call_json("charge_from_thread", r#"["bob", 5]"#)).unwrap_err();
    assert_eq!(e.status(), Status::PluginError, "{e}");
    let error = e.plugin_error().unwrap();
    assert_eq!((error.code(), error.message(), error.details()), ("NO_FUNDS", "the account cannot pay", Some(r#"{"short":250}"#)));
    let seen = ledger.seen.lock().unwrap();
    assert_eq!(seen.iter().map(|s| s.2).collect::<Vec<_>>(), [0, 0, 0, 0], "no context outside with_call_context, none on plugin threads");
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
    let binding = Arc::new(HostBinding::new(interface("ledger.toml"), Raw).unwrap());
    let plugin = load(&library_copy("raw"), &[binding]).unwrap();
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["abc"]"#).unwrap(), "301");
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
    let plugin = load(&library_copy("garbage"), &[Arc::new(HostBinding::new(interface("ledger.toml"), Garbage).unwrap())]).unwrap();
    let e = plugin.call_json("record", r#"["x", 1]"#).unwrap_err();
    assert_eq!(e.plugin_error().unwrap().code(), "HOST_CALL", "{e}");
    assert!(e.plugin_error().unwrap().message().contains("host function Ledger.log failed: panicked: the log is on fire"), "{e}");
    let e = plugin.call_json("lookup_plus_one", r#"["x"]"#).unwrap_err();
    assert!(e.plugin_error().unwrap().message().contains("deserialization"), "{e}");

    // A JSON result that is not of the declared type is caught in the host.
    let (_, binding) = json_ledger();
    let plugin = load(&library_copy("wrong-type"), &[binding]).unwrap();
    let e = plugin.call_json("lookup_plus_one", r#"["wrong type"]"#).unwrap_err();
    let message = e.plugin_error().unwrap().message();
    assert!(message.contains("host function Ledger.lookup failed") && message.contains("Option<u64>"), "{e}");
    // The plugin stays usable.
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
}

#[test]
fn a_host_function_may_call_back_into_the_same_native_plugin() {
    struct Reentrant(OnceLock<Arc<Plugin>>);
    impl JsonHostHandler for Reentrant {
        fn call(&self, call: &HostCall<'_>, _args: &str) -> Result<String, HostFailure> {
            match call.method {
                // lookup answers through the plugin's own lookup_plus_one of another key
                1 if call.context == 0 => Ok("1".into()),
                1 => {
                    let plugin = self.0.get().unwrap();
                    let inner = with_call_context(0, || plugin.call_json("lookup_plus_one", r#"["inner"]"#)).unwrap();
                    Ok(inner)
                }
                _ => Ok("null".into()),
            }
        }
    }
    let handler = Arc::new(Reentrant(OnceLock::new()));
    let binding = Arc::new(HostBinding::new_json(interface("ledger.toml"), handler.clone()).unwrap());
    let plugin = Arc::new(load(&library_copy("reentrant"), &[binding]).unwrap());
    handler.0.set(plugin.clone()).ok().unwrap();
    // outer lookup → host → plugin lookup (1 + 1) → host answers 2 → outer 3
    assert_eq!(with_call_context(1, || plugin.call_json("lookup_plus_one", r#"["outer"]"#)).unwrap(), "3");
}

#[test]
fn a_plugin_built_against_another_revision_of_the_host_interface_is_not_loaded() {
    let path = library_copy("mismatch");
    let (_, good) = json_ledger();
    let ledger = || Arc::new(Ledger::default());
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/ledger.toml")).unwrap();
    let reparse = |text: &str| Arc::new(file::parse(text, "test").unwrap());
    let v4 = reparse(&text.replace("version = 3", "version = 4").replace("hash = ", "# hash = "));
    let e = load(&path, &[Arc::new(HostBinding::new_json(v4, ledger()).unwrap())]).unwrap_err();
    assert_eq!(e.status(), Status::InterfaceVersionMismatch, "{e}");
    assert!(e.message().contains("host interface 'Ledger' version mismatch: plugin was built against v3, host provides v4"), "{e}");
    let drifted = reparse(&text.replace("log:String->", "log:String,u8->").replace("hash = ", "# hash = "));
    let e = load(&path, &[Arc::new(HostBinding::new_json(drifted.clone(), ledger()).unwrap())]).unwrap_err();
    assert_eq!(e.status(), Status::InterfaceHashMismatch, "{e}");
    assert!(
        e.message().contains(&format!("plugin was built against {:#x}, host provides {:#x}", interface("ledger.toml").hash(), drifted.hash())),
        "{e}"
    );
    // Nothing was bound: the right revision still binds.
    assert_eq!(load(&path, &[good]).unwrap().call_json("lookup_plus_one", r#"["answer"]"#).unwrap(), "42");
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
    let plugin = load(&path, &[first.clone()]).unwrap();
    // Another host, same file: the same image, already bound.
    let e = load(&path, &[second.clone()]).unwrap_err();
    assert_eq!(e.status(), Status::HostAlreadyBound, "{e}");
    assert!(e.message().contains("host interface 'Ledger' is already bound"), "{e}");
    // The same binding again, or none, shares the bound table.
    let again = load(&path, &[first.clone()]).unwrap();
    let unbound = load(&path, &[]).unwrap();
    for p in [&plugin, &again, &unbound] {
        assert_eq!(p.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "11");
    }
    drop((plugin, again, unbound));
    // Unmapped with its last plugin: a new mapping takes a new binding, and
    // the first one is released.
    let plugin = load(&path, &[second]).unwrap();
    assert_eq!(plugin.call_json("lookup_plus_one", r#"["k"]"#).unwrap(), "21");
    assert_eq!(Arc::strong_count(&first), 1, "the unmapped image let go of its binding");
}

#[test]
fn python_plugins_cannot_take_host_functions() {
    let (_, binding) = json_ledger();
    let mut options = LoadOptions::with_interface(interface("calculator.toml"));
    options.bind_host_functions(binding);
    let e = HostBuilder::new().build().unwrap().load_path_with(&fixture("python/calc"), None, &options).unwrap_err();
    assert_eq!(e.status(), Status::Unsupported, "{e}");
    assert!(e.message().contains("Python plugins cannot call host functions") && e.message().contains("Ledger"), "{e}");
}

const COMPONENT: &str = "hostcall-wasm/bookkeeper";

#[test]
fn a_component_calls_its_host_through_the_host_call_import() {
    let (ledger, binding) = json_ledger();
    let plugin = load(&fixture(COMPONENT), &[binding]).unwrap();
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
        let plugin = load(&fixture(COMPONENT), binding.as_slice()).unwrap();
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
