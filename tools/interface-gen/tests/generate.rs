//! The generator against the fixture interface crate: its output is the
//! committed interface files, and their hashes are the ones the built
//! plugins report.

use fidius_host::interface::file;
use fidius_host::{ConfigSource, HostBuilder, LoadOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn fixtures() -> PathBuf {
    std::env::var_os("FIDIUS_TEST_FIXTURES").map(PathBuf::from).unwrap_or_else(|| repo().join("target/test-fixtures"))
}

fn generate(input: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fidius-interface-gen")).current_dir(repo()).arg(input).args(args).output().unwrap()
}

#[test]
fn generated_files_are_current_and_hash_like_the_plugins() {
    // (file, trait, fixture directory, plugin, config type)
    for (name, trait_name, dir, plugin, config) in [
        ("calculator", "Calculator", "plugins", "BasicCalculator", None),
        ("echo", "Echo", "arena", "ArenaEcho", None),
        ("type_echo", "TypeEcho", "types", "TypeEchoes", None),
        ("hostile", "Hostile", "", "", None),
        ("fetcher", "Fetcher", "", "", None),
        ("scaler", "Scaler", "configured", "ConfiguredScaler", Some("ScaleConfig")),
    ] {
        let mut args = vec!["--trait", trait_name];
        args.extend(config.iter().flat_map(|c| ["--config", *c]));
        let output = generate("tests/fixtures/rust/calc-interface", &args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let generated = String::from_utf8(output.stdout).unwrap();
        let committed_path = repo().join(format!("examples-c/interfaces/{name}.toml"));
        let committed = std::fs::read_to_string(&committed_path).unwrap();
        assert_eq!(generated, committed, "{} is stale: run `make interfaces`", committed_path.display());

        let interface = Arc::new(file::parse(&generated, name).unwrap());
        if plugin.is_empty() {
            continue; // implemented by a WebAssembly component only: tests/wasm.rs checks its hash
        }
        let host = HostBuilder::new().search_path(fixtures().join(dir)).build().unwrap();
        let mut options = LoadOptions::with_interface(interface.clone());
        if config.is_some() {
            options.config(Some(ConfigSource::Json(r#"{"factor": 2, "label": "x", "mode": "Quiet"}"#.into())));
        }
        let loaded = host.load_with(plugin, &options).unwrap();
        assert_eq!(loaded.info().interface_hash, interface.hash(), "{trait_name}");
        assert_eq!(loaded.info().interface_version, interface.version());
    }
}

#[test]
fn a_host_interface_hashes_as_the_plugins_that_import_it_were_built() {
    for (name, trait_name) in [("ledger", "Ledger"), ("bookkeeper", "Bookkeeper")] {
        let output = generate("tests/fixtures/rust/hostcall-plugin", &["--trait", trait_name]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let generated = String::from_utf8(output.stdout).unwrap();
        let committed = std::fs::read_to_string(repo().join(format!("examples-c/interfaces/{name}.toml"))).unwrap();
        assert_eq!(generated, committed, "{name}.toml is stale: run `make interfaces`");
    }
    let ledger = file::parse(&std::fs::read_to_string(repo().join("examples-c/interfaces/ledger.toml")).unwrap(), "ledger").unwrap();
    assert!(ledger.wasm_export().is_none(), "a host interface is no component export");
    let host = HostBuilder::new().build().unwrap();
    let plugin = host.load_path(&fixtures().join("hostcall/libhostcall_plugin.so"), None).unwrap();
    let import = &plugin.host_imports()[0];
    assert_eq!((import.interface_name.as_str(), import.interface_version), ("Ledger", 3));
    assert_eq!(import.interface_hash, ledger.hash());
}

fn temp_source(name: &str, text: &str) -> PathBuf {
    let dir = repo().join("target/test-tmp").join(format!("interface-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn failure(source: &str, args: &[&str]) -> String {
    let path = temp_source("iface.rs", source);
    let output = generate(path.to_str().unwrap(), args);
    assert!(!output.status.success(), "expected a failure for {source}");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn the_config_type_of_an_implementation_is_found_and_declared() {
    let source = "#[derive(Serialize, Deserialize)] pub struct Cfg { level: Level }\n\
        #[derive(Serialize, Deserialize)] pub enum Level { Low, High }\n\
        #[fidius::plugin_interface(version = 1, buffer = PluginAllocated)]\n\
        pub trait A: Send + Sync { fn a(&self) -> u8; }\n\
        pub struct X { cfg: Cfg }\n\
        #[plugin_impl(A, config = Cfg)]\nimpl A for X { fn a(&self) -> u8 { 1 } }\n";
    let path = temp_source("configured.rs", source);
    let output = generate(path.to_str().unwrap(), &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let interface = file::parse(&text, "generated").unwrap();
    assert_eq!(interface.config_type().unwrap().text, "Cfg", "{text}");
    assert!(text.contains("struct Cfg") && text.contains("enum Level"), "{text}");
    // --config wins over what the sources say.
    let output = generate(path.to_str().unwrap(), &["--config", "Vec<String>"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(file::parse(&text, "generated").unwrap().config_type().unwrap().text, "Vec<String>", "{text}");
}

#[test]
fn refuses_what_it_cannot_represent() {
    let header = "#[fidius::plugin_interface(version = 1, buffer = PluginAllocated)]\n";
    let message = failure("pub trait Nothing {}", &[]);
    assert!(message.contains("no #[plugin_interface] or #[host_interface] trait"), "{message}");
    let two = format!("{header}pub trait A: Send + Sync {{ fn a(&self); }}\n{header}pub trait B: Send + Sync {{ fn b(&self); }}");
    assert!(failure(&two, &[]).contains("choose one with --trait"));
    assert!(failure(&two, &["--trait", "C"]).contains("no #[plugin_interface] or #[host_interface] trait named C"));
    let renamed = format!("#[serde(rename_all = \"camelCase\")] pub struct P {{ a: u8 }}\n{header}pub trait A {{ fn a(&self, p: P); }}");
    assert!(failure(&renamed, &[]).contains("rename_all"));
    let generic = format!("pub struct G<T> {{ a: T }}\n{header}pub trait A {{ fn a(&self, p: G<u8>); }}");
    assert!(failure(&generic, &[]).contains("generic"));
    let unknown = format!("{header}pub trait A {{ fn a(&self, p: Missing); }}");
    assert!(failure(&unknown, &[]).contains("unknown type `Missing`"));
    let no_version = "#[fidius::plugin_interface(buffer = Arena)]\npub trait A { fn a(&self); }";
    assert!(failure(no_version, &[]).contains("no `version = N`"));
}

#[test]
fn writes_to_a_file() {
    let source = "pub struct P { x: f64 }\n#[plugin_interface(version = 4, buffer = Arena)]\npub trait Shapes: Send + Sync {\n    fn area(&self, p: P) -> Result<f64, fidius::PluginError>;\n    #[optional(since = 2)]\n    fn name(&self) -> String;\n}\n";
    let path = temp_source("shapes.rs", source);
    let out = path.with_extension("toml");
    let output = generate(path.to_str().unwrap(), &["-o", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let interface = file::read(&out).unwrap();
    assert_eq!(interface.version(), 4);
    assert_eq!(interface.wasm_export(), Some("fidius:shapes/shapes@0.1.0"));
    assert_eq!(interface.methods()[0].signature, "area:P->Result < f64, fidius :: PluginError >");
    assert!(interface.methods()[1].flags.optional);
    assert_eq!(interface.types()[0].declaration, "struct P { x: f64 }");
}
