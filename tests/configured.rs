//! Configured instances (`#[plugin_impl(Scaler, config = ScaleConfig)]`)
//! in every runtime: the same `ConfiguredScaler` as a cdylib and as a WASM
//! component, and `PyScaler` in Python, each constructed from a
//! configuration, with instances of their own; and every way a
//! configuration can be missing, malformed or refused.

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{ConfigSource, Host, HostBuilder, Interface, LoadOptions, Plugin, Status};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `Scaler`'s method indices.
const SCALE: u32 = 0;
const LABEL: u32 = 1;
const BUMP: u32 = 2;

fn scaler_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/scaler.toml")).unwrap()
}

/// The Scaler interface, with its config type `ScaleConfig`.
fn scaler() -> Arc<Interface> {
    Arc::new(file::parse(&scaler_text(), "scaler.toml").unwrap())
}

/// The same interface without a declared config type.
fn untyped_scaler() -> Arc<Interface> {
    let text: String = scaler_text().lines().filter(|l| !l.starts_with("config = ")).map(|l| format!("{l}\n")).collect();
    let interface = file::parse(&text, "scaler.toml").unwrap();
    assert!(interface.config_type().is_none());
    Arc::new(interface)
}

/// bincode of `ScaleConfig { factor, label, mode }` (mode 0 Quiet, 1 Loud).
fn config_bytes(factor: i64, label: &str, mode: u32) -> Vec<u8> {
    let mut out = factor.to_le_bytes().to_vec();
    out.extend((label.len() as u64).to_le_bytes());
    out.extend(label.as_bytes());
    out.extend(mode.to_le_bytes());
    out
}

fn json(text: &str) -> Option<ConfigSource> {
    Some(ConfigSource::Json(text.to_string()))
}

fn options(interface: Arc<Interface>, config: Option<ConfigSource>) -> LoadOptions {
    let mut options = LoadOptions::with_interface(interface);
    options.config(config);
    options
}

/// The configured fixture of each runtime this build has: (what, path).
fn scalers() -> Vec<(&'static str, PathBuf)> {
    let mut all = vec![("cdylib", fixture("configured/libscaler_plugin.so"))];
    if cfg!(feature = "wasm") {
        all.push(("wasm", fixture("configured/wasm-scaler")));
    }
    if cfg!(feature = "python") {
        all.push(("python", fixture("configured/python-scaler")));
    }
    all
}

fn host() -> Host {
    HostBuilder::new().build().unwrap()
}

fn load(host: &Host, path: &Path, options: &LoadOptions) -> fidius_host::Result<Plugin> {
    host.load_path_with(path, None, options)
}

fn call(plugin: &Plugin, method: &str) -> String {
    let args = if method == "scale" { "[5]" } else { "[]" };
    plugin.call_json(method, args).unwrap_or_else(|e| panic!("{}: {method}: {e}", plugin.info().name))
}

#[test]
fn each_runtime_answers_with_its_configuration_and_instances_keep_their_own_state() {
    for (what, path) in scalers() {
        let host = host();
        let first = load(&host, &path, &options(scaler(), json(r#"{"factor": 3, "label": "abc", "mode": "Loud"}"#))).unwrap();
        assert_eq!(call(&first, "scale"), "15", "{what}");
        assert_eq!(call(&first, "label"), "\"ABC\"", "{what}");
        assert_eq!(call(&first, "bump"), "1", "{what}");
        assert_eq!(call(&first, "bump"), "2", "{what}");

        // Another instance from bincode: its own configuration and count.
        let second = first.new_instance(&ConfigSource::Bincode(config_bytes(-2, "xy", 0))).unwrap();
        assert_eq!(call(&second, "scale"), "-10", "{what}");
        assert_eq!(call(&second, "label"), "\"xy\"", "{what}");
        assert_eq!(call(&second, "bump"), "1", "{what}");
        assert_eq!(call(&first, "bump"), "3", "{what}: the first instance's count is its own");

        // Raw calls see the configuration too (bincode in and out).
        let out = second.call_raw(SCALE, &7i64.to_le_bytes()).unwrap();
        assert_eq!(out.as_slice(), &(-14i64).to_le_bytes(), "{what}");

        // An instance outlives the handle it was made from, and the host.
        let third = second.new_instance(&ConfigSource::Json(r#"{"factor": 1, "label": "q", "mode": "Quiet"}"#.into())).unwrap();
        drop(first);
        drop(second);
        drop(host);
        assert_eq!(call(&third, "scale"), "5", "{what}");
        assert_eq!(third.call_json_index(LABEL, "[]").unwrap(), "\"q\"", "{what}");
        assert_eq!(third.call_json_index(BUMP, "[]").unwrap(), "1", "{what}");
    }
}

#[test]
fn a_declared_config_type_needs_a_configuration_at_load() {
    for (what, path) in scalers() {
        let e = load(&host(), &path, &options(scaler(), None)).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRequired, "{what}: {e}");
        assert!(e.message().contains("ScaleConfig"), "{what}: {e}");
    }
}

#[test]
fn configurations_are_checked_against_their_type_before_a_plugin_sees_them() {
    for (what, path) in scalers() {
        let host = host();
        let cases = [
            (json(r#"{"factor": "3", "label": "a", "mode": "Loud"}"#), Status::ConfigInvalid, "factor"),
            (json(r#"{"factor": 3, "label": "a", "mode": "Shout"}"#), Status::ConfigInvalid, "Shout"),
            (json(r#"{"factor": 3, "label": "a"}"#), Status::ConfigInvalid, "mode"),
            (json(r#"{"factor": 3,"#), Status::InvalidJson, "JSON"),
            (Some(ConfigSource::Bincode(vec![1, 2, 3])), Status::ConfigInvalid, "ScaleConfig"),
            (Some(ConfigSource::Bincode([config_bytes(3, "a", 1), vec![0]].concat())), Status::ConfigInvalid, "follow"),
            (Some(ConfigSource::Bincode(config_bytes(3, "a", 7))), Status::ConfigInvalid, "variant"),
        ];
        for (config, status, needle) in cases {
            let e = load(&host, &path, &options(scaler(), config.clone())).unwrap_err();
            assert_eq!(e.status(), status, "{what} {config:?}: {e}");
            assert!(e.message().contains(needle), "{what} {config:?}: {e}");
        }
        let good = load(&host, &path, &options(scaler(), json(r#"{"factor": 2, "label": "a", "mode": "Quiet"}"#))).unwrap();
        for (config, status) in [
            (ConfigSource::Json("[]".into()), Status::ConfigInvalid),
            (ConfigSource::Bincode(Vec::new()), Status::ConfigInvalid),
        ] {
            let e = good.new_instance(&config).unwrap_err();
            assert_eq!(e.status(), status, "{what} {config:?}: {e}");
        }
        assert_eq!(call(&good, "scale"), "10", "{what}: a refused instance changes nothing");
    }
}

#[test]
fn a_cdylib_without_a_declared_type_gets_the_bytes_and_refuses_what_it_cannot_decode() {
    let path = fixture("configured/libscaler_plugin.so");
    let host = host();
    let e = load(&host, &path, &options(untyped_scaler(), None)).unwrap_err();
    assert_eq!(e.status(), Status::ConstructFailed, "{e}");
    let e = load(&host, &path, &options(untyped_scaler(), Some(ConfigSource::Bincode(vec![1, 2, 3])))).unwrap_err();
    assert_eq!(e.status(), Status::ConfigRejected, "{e}");
    assert!(e.message().contains("construct returned NULL"), "{e}");
    // A JSON configuration cannot become bytes without the type.
    let e = load(&host, &path, &options(untyped_scaler(), json(r#"{"factor": 2}"#))).unwrap_err();
    assert_eq!(e.status(), Status::ConfigInvalid, "{e}");
    // Loaded without any interface: bytes are all there is.
    let mut bare = LoadOptions::new();
    bare.config(Some(ConfigSource::Bincode(config_bytes(4, "n", 0))));
    let plugin = load(&host, &path, &bare).unwrap();
    assert_eq!(plugin.call_raw(SCALE, &2i64.to_le_bytes()).unwrap().as_slice(), &8i64.to_le_bytes());
    let e = plugin.new_instance(&ConfigSource::Bincode(vec![9])).unwrap_err();
    assert_eq!(e.status(), Status::ConfigRejected, "{e}");
}

#[test]
fn a_plugin_without_a_configuration_ignores_one_as_fidius_does() {
    let options = {
        let mut o = LoadOptions::new();
        o.config(Some(ConfigSource::Bincode(vec![1, 2, 3])));
        o
    };
    let plugin = host_for(&fixture("plugins")).load_with("BasicCalculator", &options).unwrap();
    let sum = plugin.call_raw(calc::ADD, &[2i64.to_le_bytes(), 3i64.to_le_bytes()].concat()).unwrap();
    assert_eq!(sum.as_slice(), &5i64.to_le_bytes());
}

#[cfg(feature = "wasm")]
mod wasm {
    use super::*;

    fn path() -> PathBuf {
        fixture("configured/wasm-scaler")
    }

    #[test]
    fn a_component_loaded_without_its_configuration_traps_when_called() {
        // Without a declared config type nothing tells the host that the
        // component needs one: its methods trap (fidius's guest panics).
        let plugin = load(&host(), &path(), &options(untyped_scaler(), None)).unwrap();
        let e = plugin.call_json("scale", "[5]").unwrap_err();
        assert_eq!(e.status(), Status::PluginTrap, "{e}");
    }

    #[test]
    fn a_configuration_the_guest_cannot_decode_is_refused_in_fidius_configure() {
        let host = host();
        let e = load(&host, &path(), &options(untyped_scaler(), Some(ConfigSource::Bincode(vec![1, 2, 3])))).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRejected, "{e}");
        assert!(e.message().contains("fidius-configure"), "{e}");
        let plugin = load(&host, &path(), &options(untyped_scaler(), Some(ConfigSource::Bincode(config_bytes(6, "w", 1))))).unwrap();
        assert_eq!(call(&plugin, "scale"), "30");
        assert_eq!(call(&plugin, "label"), "\"W\"");
        let e = plugin.new_instance(&ConfigSource::Bincode(vec![7])).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRejected, "{e}");
        assert_eq!(call(&plugin, "scale"), "30", "a refused instance leaves the plugin as it was");
    }

    #[test]
    fn a_component_without_a_configuration_ignores_one_as_fidius_does() {
        let calc = Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml")).unwrap());
        let mut options = LoadOptions::with_interface(calc);
        options.config(Some(ConfigSource::Bincode(vec![1, 2, 3])));
        let plugin = load(&host(), &fixture("wasm/calc"), &options).unwrap();
        assert_eq!(plugin.call_json("add", "[2, 3]").unwrap(), "5");
    }

    #[test]
    fn every_fresh_instance_is_configured() {
        let mut options = options(scaler(), json(r#"{"factor": 5, "label": "f", "mode": "Quiet"}"#));
        options.wasm_fresh_instance_per_call(true);
        let plugin = load(&host(), &path(), &options).unwrap();
        for _ in 0..3 {
            assert_eq!(call(&plugin, "scale"), "25");
            // No state survives a call on a fresh instance.
            assert_eq!(call(&plugin, "bump"), "1");
        }
    }
}

#[cfg(feature = "python")]
mod python {
    use super::*;

    fn path() -> PathBuf {
        fixture("configured/python-scaler")
    }

    #[test]
    fn a_module_with_fidius_configure_needs_a_configuration() {
        let e = load(&host(), &path(), &options(untyped_scaler(), None)).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRequired, "{e}");
        assert!(e.message().contains("__fidius_configure__"), "{e}");
    }

    #[test]
    fn json_reaches_python_without_a_declared_type_and_bincode_does_not() {
        let host = host();
        let plugin = load(&host, &path(), &options(untyped_scaler(), json(r#"{"factor": 2, "label": "p", "mode": "Loud"}"#))).unwrap();
        assert_eq!(call(&plugin, "scale"), "10");
        assert_eq!(call(&plugin, "label"), "\"P\"", "the unit variant arrives as the string \"Loud\"");
        let e = load(&host, &path(), &options(untyped_scaler(), Some(ConfigSource::Bincode(config_bytes(2, "p", 1))))).unwrap_err();
        assert_eq!(e.status(), Status::ConfigInvalid, "{e}");
    }

    #[test]
    fn an_exception_in_fidius_configure_is_a_refusal_with_the_plugins_error() {
        let host = host();
        let e = load(&host, &path(), &options(scaler(), json(r#"{"factor": 0, "label": "z", "mode": "Quiet"}"#))).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRejected, "{e}");
        let plugin_error = e.plugin_error().expect("the plugin's own error");
        assert_eq!(plugin_error.code(), "ZERO_FACTOR");
        assert!(plugin_error.details().unwrap().contains("\"factor\""), "{:?}", plugin_error.details());
        let good = load(&host, &path(), &options(scaler(), json(r#"{"factor": 1, "label": "z", "mode": "Quiet"}"#))).unwrap();
        let e = good.new_instance(&ConfigSource::Bincode(config_bytes(0, "z", 0))).unwrap_err();
        assert_eq!(e.plugin_error().map(|p| p.code()), Some("ZERO_FACTOR"), "{e}");
    }

    #[test]
    fn a_configuration_that_never_returns_is_stopped_at_the_deadline() {
        let host = HostBuilder::new().python_deadline(Some(std::time::Duration::from_millis(200))).build().unwrap();
        let e = load(&host, &path(), &options(scaler(), json(r#"{"factor": 1, "label": "hang", "mode": "Quiet"}"#))).unwrap_err();
        assert_eq!(e.status(), Status::Timeout, "{e}");
    }

    #[test]
    fn a_module_without_fidius_configure_refuses_a_configuration() {
        let calc = Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml")).unwrap());
        let mut options = LoadOptions::with_interface(calc);
        options.config(json("{}"));
        let e = load(&host(), &fixture("python/calc"), &options).unwrap_err();
        assert_eq!(e.status(), Status::ConfigRejected, "{e}");
        assert!(e.message().contains("no __fidius_configure__"), "{e}");
    }
}
