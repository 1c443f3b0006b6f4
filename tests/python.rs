//! Python plugins: the Python calculator against the cdylib one, every type
//! through the TypeEcho plugin, isolation, exceptions, broken plugins,
//! signatures and threads.
#![cfg(feature = "python")]

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{Host, HostBuilder, Interface, LoadOptions, Plugin, RuntimeKind, Status};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn interface(name: &str) -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name)).unwrap())
}

fn with(interface: &Arc<Interface>) -> LoadOptions {
    LoadOptions::with_interface(interface.clone())
}

fn load(host: &Host, dir: &Path, interface_file: &str) -> fidius_host::Result<Plugin> {
    host.load_path_with(dir, None, &with(&interface(interface_file)))
}

/// A copy of fixture package `name` in a fresh directory, with `edits`
/// (relative path, new contents) applied.
fn stage(test: &str, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let dir = temp_dir(test).join(name);
    copy_tree(&fixture("python").join(name), &dir);
    for (path, contents) in edits {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn has_pycache(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        path.file_name().unwrap() == "__pycache__" || (path.is_dir() && has_pycache(&path))
    })
}

#[test]
fn the_python_calculator_answers_like_the_cdylib() {
    for isolation in MODES {
        let calc = interface("calculator.toml");
        let native = host_in(isolation, &fixture("plugins")).load_with("BasicCalculator", &with(&calc)).unwrap();
        let python = host_in(isolation, &fixture("python")).load_with("PyCalculator", &with(&calc)).unwrap();
        assert_runs(&python, isolation);
        assert_eq!(python.info().runtime, RuntimeKind::Python);
        assert_eq!(python.info().interface_hash, native.info().interface_hash);
        assert!(python.has_capability(0), "multiply is implemented");
        for (method, args) in [
            ("add", "[3, 7]"),
            ("add", "[9223372036854775807, 1]"),
            ("greet", r#"["py"]"#),
            ("divide", "[9, 2]"),
            ("divide", "[-9, 2]"),
            ("describe", r#"[true, 0.25, ["a", "b"], null]"#),
            ("describe", r#"[false, 0.5, [], "n"]"#),
            ("reverse", "[[1, 2, 3]]"),
            ("ping", "[]"),
            ("multiply", "[6, 7]"),
        ] {
            assert_eq!(python.call_json(method, args).unwrap(), native.call_json(method, args).unwrap(), "{method}{args}");
        }
        // Raw calls: bincode of typed methods, bytes of raw ones, as the cdylib.
        let input = bincode::serialize(&(40i64, 2i64)).unwrap();
        assert_eq!(python.call_raw(0, &input).unwrap().as_slice(), native.call_raw(0, &input).unwrap().as_slice());
        assert_eq!(python.call_raw(5, b"fidius").unwrap().as_slice(), b"suidif");
        // A plugin error with code, message and details.
        let (p, n) = (python.call_json("divide", "[1, 0]").unwrap_err(), native.call_json("divide", "[1, 0]").unwrap_err());
        assert_eq!(p.status(), Status::PluginError);
        assert_eq!(p.plugin_error(), n.plugin_error());
        // Argument checks happen before Python runs.
        assert_eq!(python.call_json("add", r#"[1, "x"]"#).unwrap_err().status(), Status::ArgumentMismatch);
        assert_eq!(python.call_json("add", "[1,").unwrap_err().status(), Status::InvalidJson);
        assert!(!has_pycache(&fixture("python/calc")), "loading wrote bytecode into the package");
    }
}

#[test]
fn every_type_travels_as_documented() {
    for isolation in MODES {
        let echo = interface("type_echo.toml");
        let native = host_in(isolation, &fixture("types")).load_with("TypeEchoes", &with(&echo)).unwrap();
        let python = host_in(isolation, &fixture("python")).load_with("PyTypeEcho", &with(&echo)).unwrap();
        let everything = r#"{"shapes": ["Empty", {"Circle": 1.5}, {"Rect": {"w": 2.0, "h": 3.0}}, {"Tagged": ["t", 7]}],
            "origin": {"x": 1.0, "y": -2.0, "label": "o"}, "sizes": [1, 2], "pair": [-3, "p"], "marker": null,
            "lookup": [[1, ["a"]], [2, []]], "nested": {"shapes": [], "origin": null, "sizes": [0, 0], "pair": [0, ""],
            "marker": null, "lookup": [], "nested": null}}"#;
        for (method, args) in [
            ("echo_bool", "[true]"),
            ("echo_signed", "[-128, -32768, -2147483648, -9223372036854775808, \"-170141183460469231731687303715884105728\"]"),
            ("echo_unsigned", "[255, 65535, 4294967295, 18446744073709551615, \"340282366920938463463374607431768211455\"]"),
            ("echo_floats", "[1.5, -2.25]"),
            ("echo_char", r#"["é"]"#),
            ("echo_string", r#"["text"]"#),
            ("echo_bytes", "[[0, 1, 255]]"),
            ("echo_list", "[[[1, 2], [], [3]]]"),
            ("echo_option", "[null]"),
            ("echo_option", r#"["some"]"#),
            ("echo_tuple", r#"[[7, "seven", true]]"#),
            ("echo_hash_map", r#"[{"a": 1}]"#),
            ("echo_btree_map", r#"[[[1, "one"], [2, "two"]]]"#),
            ("echo_unit", "[null]"),
            ("nothing", "[]"),
            ("echo_point", r#"[{"x": 1.0, "y": 2.0, "label": "p"}]"#),
            ("echo_shape", r#"["Empty"]"#),
            ("echo_shape", r#"[{"Circle": 2.5}]"#),
            ("echo_shape", r#"[{"Rect": {"w": 1.0, "h": 2.0}}]"#),
            ("echo_shape", r#"[{"Tagged": ["x", 9]}]"#),
            ("echo_structs", r#"[5, [-1, "pair"], null]"#),
            ("echo_everything", &format!("[{everything}]")),
            ("checked", "[5]"),
            ("echo_raw", "[[1, 2, 3]]"),
        ] {
            let expected = native.call_json(method, args).unwrap();
            let found = python.call_json(method, args).unwrap_or_else(|e| panic!("{method}: {}", e.message()));
            assert_eq!(found, expected, "{method}{args}");
        }
        let (p, n) = (python.call_json("checked", "[-1]").unwrap_err(), native.call_json("checked", "[-1]").unwrap_err());
        assert_eq!(p.plugin_error(), n.plugin_error());
    }
}

#[test]
fn exceptions_become_plugin_errors_and_the_host_survives() {
    for isolation in MODES {
        let python = load(&host_in(isolation, &fixture("python")), &fixture("python/raising"), "calculator.toml").unwrap();
        let expect = |method: &str, args: &str, status: Status, code: &str, text: &str| {
            let e = python.call_json(method, args).unwrap_err();
            assert_eq!(e.status(), status, "{method}: {}", e.message());
            if status == Status::PluginError {
                let error = e.plugin_error().unwrap();
                assert_eq!(error.code(), code, "{method}");
                assert!(error.message().contains(text), "{method}: {}", error.message());
            } else {
                assert!(e.message().contains(text), "{method}: {}", e.message());
            }
        };
        expect("add", "[1, 2]", Status::PluginError, "SystemExit", "3");
        expect("greet", r#"["x"]"#, Status::PluginError, "KeyboardInterrupt", "");
        expect("divide", "[1, 2]", Status::PluginError, "QUOTA", "over quota dividing 1");
        expect("ping", "[]", Status::PluginError, "SystemExit", "exit from ping");
        expect("describe", r#"[true, 1.0, [], null]"#, Status::PluginProtocol, "", "expected a str, found list");
        expect("reverse", "[[1]]", Status::PluginProtocol, "", "must be bytes");
        expect("multiply", "[1, 2]", Status::NotImplemented, "", "multiply");
        let boom = python.call_json("boom", "[]").unwrap_err();
        let details = boom.plugin_error().unwrap().details().unwrap().to_string();
        let details: serde_json::Value = serde_json::from_str(&details).unwrap();
        assert!(details["traceback"].as_str().unwrap().contains("raising.py"), "{details}");
        assert!(details["traceback"].as_str().unwrap().contains("ValueError: boom"), "{details}");
        // Still alive, and so is every other plugin.
        expect("add", "[1, 2]", Status::PluginError, "SystemExit", "3");
        let calc = host_in(isolation, &fixture("python")).load_with("PyCalculator", &with(&interface("calculator.toml"))).unwrap();
        assert_eq!(calc.call_json("add", "[1, 2]").unwrap(), "3");
    }
}

#[test]
fn raising_pyo3s_own_panic_exception_is_a_plugin_error_too() {
    for isolation in MODES {
        let calc = interface("calculator.toml");
        let plugin_py = "__interface_hash__ = 0x0271E9B7D21D10F1\n\
                         def divide(a, b): raise ValueError('an ordinary error first')\n\
                         def boom():\n    \
                         panic = [c for c in BaseException.__subclasses__() if c.__name__ == 'PanicException']\n    \
                         raise (panic[0] if panic else RuntimeError)('no PanicException class found')\n\
                         add = greet = describe = reverse = ping = divide\n";
        let dir = stage(&format!("py-panic-exception-{isolation:?}"), "calc", &[("plugin.py", plugin_py)]);
        let plugin = host_in(isolation, &fixture("python")).load_path_with(&dir, None, &with(&calc)).unwrap();
        assert_eq!(plugin.call_json("divide", "[1, 2]").unwrap_err().plugin_error().unwrap().code(), "ValueError");
        let e = plugin.call_json("boom", "[]").unwrap_err();
        assert_eq!(e.status(), Status::PluginError, "{}", e.message());
        assert_eq!(e.plugin_error().unwrap().code(), "PanicException", "{}", e.message());
        assert_eq!(plugin.call_json("divide", "[1, 2]").unwrap_err().status(), Status::PluginError);
    }
}

#[test]
fn outputs_over_the_hosts_limit_are_refused() {
    for isolation in MODES {
        let calc = interface("calculator.toml");
        let host = builder_in(isolation).search_path(fixture("python")).max_output_size(8).unwrap().build().unwrap();
        let plugin = host.load_with("PyCalculator", &with(&calc)).unwrap();
        assert_eq!(plugin.call_raw(5, b"12345678").unwrap().as_slice(), b"87654321");
        for e in [plugin.call_raw(5, b"123456789").unwrap_err(), plugin.call_json("greet", r#"["a long name"]"#).unwrap_err()] {
            assert_eq!(e.status(), Status::OutputTooLarge, "{}", e.message());
            assert!(e.message().contains("PyCalculator") && e.message().contains("limit of 8"), "{}", e.message());
        }
    }
}

#[test]
fn broken_plugins_fail_to_load_with_a_reason() {
    for isolation in MODES {
        let host = host_in(isolation, &fixture("python"));
        for (case, edits, status, text) in [
            ("syntax", vec![("plugin.py", "def broken(:\n")], Status::InvalidPythonPlugin, "SyntaxError"),
            ("raises", vec![("plugin.py", "raise RuntimeError('no import for you')\n")], Status::InvalidPythonPlugin, "no import for you"),
            ("exits", vec![("plugin.py", "import sys\nsys.exit(1)\n")], Status::InvalidPythonPlugin, "SystemExit"),
            ("missing-dep", vec![("plugin.py", "import no_such_module_anywhere\n")], Status::InvalidPythonPlugin, "no_such_module_anywhere"),
            ("no-hash", vec![("plugin.py", "def add(a, b): return a + b\n")], Status::InvalidPythonPlugin, "__interface_hash__"),
            ("wrong-hash", vec![("plugin.py", "__interface_hash__ = 1\n")], Status::InterfaceHashMismatch, "0x0000000000000001"),
            (
                "missing-method",
                vec![("plugin.py", "__interface_hash__ = 0x0271E9B7D21D10F1\ndef add(a, b): return a + b\n")],
                Status::InvalidPythonPlugin,
                "no function 'greet'",
            ),
            ("no-entry", vec![("package.toml", &std::fs::read_to_string(fixture("python/calc/package.toml")).unwrap().replace("\"plugin\"", "\"elsewhere\""))], Status::InvalidPythonPlugin, "elsewhere"),
        ] {
            let dir = stage(&format!("py-broken-{case}-{isolation:?}"), "calc", &edits);
            let e = load(&host, &dir, "calculator.toml").unwrap_err();
            assert_eq!(e.status(), status, "{case}: {}", e.message());
            assert!(e.message().contains(text), "{case}: {}", e.message());
        }
        // Without an interface there is nothing to check the module against.
        let e = host.load_path_with(&fixture("python/calc"), None, &LoadOptions::default()).unwrap_err();
        assert_eq!(e.status(), Status::NoInterface);
    }
}

/// A traceback quotes the source that ran, even after the file on disk
/// changed, whether or not anything had imported `linecache` before.
#[test]
fn tracebacks_quote_the_source_that_ran() {
    for isolation in MODES {
        let dir = stage(&format!("py-traceback-{isolation:?}"), "raising", &[]);
        let plugin = load(&host_in(isolation, &fixture("python")), &dir, "calculator.toml").unwrap();
        let source = std::fs::read_to_string(dir.join("raising.py")).unwrap();
        std::fs::write(dir.join("raising.py"), source.replace("raise ValueError(\"boom\")", "pass  # edited on disk")).unwrap();
        for _ in 0..2 {
            let boom = plugin.call_json("boom", "[]").unwrap_err();
            let details = boom.plugin_error().unwrap().details().unwrap().to_string();
            let details: serde_json::Value = serde_json::from_str(&details).unwrap();
            let traceback = details["traceback"].as_str().unwrap();
            assert!(traceback.contains("raise ValueError(\"boom\")"), "{traceback}");
            assert!(!traceback.contains("edited on disk"), "{traceback}");
        }
    }
}

#[test]
fn plugins_with_the_same_module_names_do_not_see_each_other() {
    let calc = interface("calculator.toml");
    let howdy = stage("py-isolation", "calc", &[("vendor/greeting/words.py", "HELLO = 'Howdy'\n")]);
    let host = host_for(&fixture("python"));
    let first = host.load_with("PyCalculator", &with(&calc)).unwrap();
    let second = host.load_path_with(&howdy, None, &with(&calc)).unwrap();
    let third = host.load_with("PyCalculator", &with(&calc)).unwrap();
    assert_eq!(first.call_json("greet", r#"["a"]"#).unwrap(), r#""Hello, a!""#);
    assert_eq!(second.call_json("greet", r#"["b"]"#).unwrap(), r#""Howdy, b!""#);
    assert_eq!(third.call_json("greet", r#"["c"]"#).unwrap(), r#""Hello, c!""#);
    // Neither plugin's `plugin` or `greeting` is in the interpreter's
    // global module table, where a later plugin would find it.
    let probe = stage("py-probe", "calc", &[(
        "plugin.py",
        "import sys\n__interface_hash__ = 0x0271E9B7D21D10F1\n\
         def greet(name): return ','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('plugin', 'greeting')))\n\
         add = divide = describe = boom = reverse = ping = greet\n",
    )]);
    let probe = host.load_path_with(&probe, None, &with(&calc)).unwrap();
    assert_eq!(probe.call_json("greet", r#"[""]"#).unwrap(), r#""""#);
}

#[test]
fn a_freed_plugin_leaves_no_module_behind() {
    let calc = interface("calculator.toml");
    let gone = stage("py-forget", "calc", &[]);
    let host = host_for(&fixture("python"));
    for _ in 0..3 {
        let plugin = host.load_path_with(&gone, None, &with(&calc)).unwrap();
        assert_eq!(plugin.call_json("greet", r#"["x"]"#).unwrap(), r#""Hello, x!""#);
    }
    // Modules made from the freed plugin's files, or its namespace package
    // (whose path is the package directory), by name.
    let root = std::fs::canonicalize(&gone).unwrap();
    let probe = stage("py-forget-probe", "calc", &[(
        "plugin.py",
        &format!(
            "import sys\n__interface_hash__ = 0x0271E9B7D21D10F1\n\
             ROOT = {root:?}\n\
             def mine(m):\n    return (getattr(m, '__file__', None) or '').startswith(ROOT) or any(p.startswith(ROOT) for p in (getattr(m, '__path__', None) or []))\n\
             def greet(name): return ','.join(sorted(n for n, m in list(sys.modules.items()) if mine(m)))\n\
             add = divide = describe = boom = reverse = ping = greet\n",
            root = root.to_str().unwrap()
        ),
    )]);
    let probe = host.load_path_with(&probe, None, &with(&calc)).unwrap();
    assert_eq!(probe.call_json("greet", r#"[""]"#).unwrap(), r#""""#);
    // The probe does see a live plugin's modules.
    let live = host.load_path_with(&gone, None, &with(&calc)).unwrap();
    let seen = probe.call_json("greet", r#"[""]"#).unwrap();
    assert!(seen.contains(".plugin") && seen.contains(".greeting.words"), "{seen}");
    drop(live);
    assert_eq!(probe.call_json("greet", r#"[""]"#).unwrap(), r#""""#);
}

#[test]
fn nothing_is_imported_from_disk_after_load() {
    let calc = interface("calculator.toml");
    let dir = stage("py-late", "calc", &[(
        "plugin.py",
        "__interface_hash__ = 0x0271E9B7D21D10F1\n\
         def greet(name):\n    import late\n    return late.VALUE\n\
         def ping():\n    from greeting import speedups\n\
         add = divide = describe = boom = reverse = greet\n",
    )]);
    let plugin = host_for(&fixture("python")).load_path_with(&dir, None, &with(&calc)).unwrap();
    // Files that appear after the load are never run, at the top level or
    // inside a package.
    std::fs::write(dir.join("late.py"), "VALUE = 'ran code written after load'\n").unwrap();
    std::fs::write(dir.join("vendor/greeting/speedups.py"), "raise SystemExit('ran')\n").unwrap();
    for (method, args) in [("greet", r#"["x"]"#), ("ping", "[]")] {
        let e = plugin.call_json(method, args).unwrap_err();
        assert_eq!(e.status(), Status::PluginError, "{method}: {}", e.message());
        // `from greeting import speedups` reports the missing name as ImportError.
        let code = e.plugin_error().unwrap().code();
        assert!(code == "ModuleNotFoundError" || code == "ImportError", "{method}: {code}");
    }
    assert!(!has_pycache(&dir));
}

#[test]
fn a_vendored_fidius_sdk_is_used_and_its_errors_are_understood() {
    let calc = interface("calculator.toml");
    let sdk = "class PluginError(Exception):\n    def __init__(self, code, message, details=None):\n        \
               super().__init__(message)\n        self.code, self.message, self.details = code, message, details\n\
               def method(f):\n    return f\nVENDORED = True\n";
    let plugin_py = "import fidius\nfrom fidius import PluginError\n__interface_hash__ = 0x0271E9B7D21D10F1\n\
                     def greet(name): return 'vendored' if getattr(fidius, 'VENDORED', False) else 'built-in'\n\
                     def divide(a, b): raise PluginError('OWN', 'from the vendored SDK', {'a': a})\n\
                     add = describe = boom = reverse = ping = greet\n";
    let dir = stage("py-own-sdk", "calc", &[("vendor/fidius/__init__.py", sdk), ("plugin.py", plugin_py)]);
    let plugin = host_for(&fixture("python")).load_path_with(&dir, None, &with(&calc)).unwrap();
    assert_eq!(plugin.call_json("greet", r#"["x"]"#).unwrap(), r#""vendored""#);
    let e = plugin.call_json("divide", "[1, 2]").unwrap_err();
    let error = e.plugin_error().unwrap();
    assert_eq!((error.code(), error.message(), error.details()), ("OWN", "from the vendored SDK", Some(r#"{"a":1}"#)));
}

#[test]
fn signed_packages_run_what_was_verified() {
    let calc = interface("calculator.toml");
    let host = signed_host_for(&fixture("python-signed"));
    let plugin = host.load_with("PyCalculator", &with(&calc)).unwrap();
    assert_eq!(plugin.call_json("add", "[40, 2]").unwrap(), "42");
    assert_eq!(host.load_path_with(&fixture("python/calc"), None, &with(&calc)).unwrap_err().status(), Status::SignatureRequired);
    // Any changed file fails verification, before anything is imported.
    let tampered = temp_dir("py-tampered").join("calc");
    copy_tree(&fixture("python-signed/calc"), &tampered);
    std::fs::write(tampered.join("vendor/greeting/words.py"), "HELLO = 'Pwned'\n").unwrap();
    assert_eq!(host.load_path_with(&tampered, None, &with(&calc)).unwrap_err().status(), Status::SignatureInvalid);
    // A module imported lazily, after load, still comes from the verified
    // copy: change the file on disk after loading.
    let lazy = temp_dir("py-lazy").join("calc");
    copy_tree(&fixture("python-signed/calc"), &lazy);
    let plugin = host.load_path_with(&lazy, None, &with(&calc)).unwrap();
    std::fs::write(lazy.join("vendor/greeting/words.py"), "HELLO = 'Pwned'\n").unwrap();
    assert_eq!(plugin.call_json("greet", r#"["v"]"#).unwrap(), r#""Hello, v!""#);
    assert!(!has_pycache(&lazy));
}

#[test]
fn threads_call_while_another_thread_loads() {
    let calc = interface("calculator.toml");
    let host = Arc::new(HostBuilder::new().search_path(fixture("python")).build().unwrap());
    let plugin = Arc::new(host.load_with("PyCalculator", &with(&calc)).unwrap());
    let workers: Vec<_> = (0..4i64)
        .map(|k| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    assert_eq!(plugin.call_json("add", &format!("[{k}, {i}]")).unwrap(), (k + i).to_string());
                }
            })
        })
        .collect();
    for _ in 0..10 {
        let other = host.load_with("PyCalculator", &with(&calc)).unwrap();
        assert_eq!(other.call_json("multiply", "[6, 7]").unwrap(), "42");
    }
    for worker in workers {
        worker.join().unwrap();
    }
}

/// Compiled modules are reused only for the very same source bytes: a
/// package whose file changed between two loads runs the new file.
#[test]
fn a_changed_module_is_compiled_again() {
    let dir = stage("changed_module", "calc", &[]);
    let host = HostBuilder::new().build().unwrap();
    let greet = |plugin: &Plugin| plugin.call_json("greet", "[\"C\"]").unwrap();
    let first = load(&host, &dir, "calculator.toml").unwrap();
    assert_eq!(greet(&first), "\"Hello, C!\"");
    let again = load(&host, &dir, "calculator.toml").unwrap();
    assert_eq!(greet(&again), "\"Hello, C!\"");
    let module = dir.join("vendor/greeting/__init__.py");
    let source = std::fs::read_to_string(&module).unwrap();
    std::fs::write(&module, source.replace("f\"{HELLO}, {name}!\"", "f\"{HELLO} again, {name}!\"")).unwrap();
    let changed = load(&host, &dir, "calculator.toml").unwrap();
    assert_eq!(greet(&changed), "\"Hello again, C!\"");
    // The plugins loaded before keep the code they ran with.
    assert_eq!(greet(&first), "\"Hello, C!\"");
}
