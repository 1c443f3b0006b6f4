//! WebAssembly component plugins: the calculator component against the
//! cdylib calculator, signatures, the sandbox, limits and precompiled code.
#![cfg(feature = "wasm")]

mod common;

use common::*;
use ed25519_dalek::{Signer, SigningKey};
use fidius_host::artifact::package::package_digest;
use fidius_host::interface::file;
use fidius_host::{Host, HostBuilder, Interface, LoadOptions, Plugin, RuntimeKind, Status, TrustedKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn interface(name: &str) -> Arc<Interface> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name);
    Arc::new(file::read(&path).unwrap())
}

fn with(interface: &Arc<Interface>) -> LoadOptions {
    LoadOptions::with_interface(interface.clone())
}

fn wasm_calculator() -> Plugin {
    host_for(&fixture("wasm")).load_with("WasmCalculator", &with(&interface("calculator.toml"))).unwrap()
}

fn hostile_in(host: &Host, dir: &Path, options: LoadOptions) -> fidius_host::Result<Plugin> {
    host.load_path_with(dir, Some("HostileGuest"), options.clone().interface(Some(interface("hostile.toml"))))
}

/// A copy of fixture package `name` in a fresh directory, with its manifest
/// edited by `edit`.
fn stage(test: &str, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let dir = temp_dir(test).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("wasm").join(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let manifest = dir.join("package.toml");
    std::fs::write(&manifest, edit(std::fs::read_to_string(&manifest).unwrap())).unwrap();
    dir
}

#[test]
fn the_component_answers_like_the_cdylib() {
    let calc = interface("calculator.toml");
    let native = host_for(&fixture("plugins")).load_with("BasicCalculator", &with(&calc)).unwrap();
    let wasm = wasm_calculator();
    assert_eq!(wasm.info().runtime, RuntimeKind::Wasm);
    assert_eq!(wasm.info().interface_hash, native.info().interface_hash);
    assert!(wasm.has_capability(0), "multiply is implemented");
    for (method, args) in [
        ("add", "[3, 7]"),
        ("add", "[-9223372036854775808, -1]"),
        ("greet", r#"["wasm"]"#),
        ("divide", "[9, 2]"),
        ("describe", r#"[true, 0.25, ["a", "b"], null]"#),
        ("describe", r#"[false, 1e300, [], "n"]"#),
        ("reverse", "[[1, 2, 3]]"),
        ("ping", "[]"),
        ("multiply", "[6, 7]"),
    ] {
        assert_eq!(wasm.call_json(method, args).unwrap(), native.call_json(method, args).unwrap(), "{method} {args}");
    }
    // Plugin errors keep code, message and details in both runtimes.
    let (w, n) = (wasm.call_json("divide", "[1, 0]").unwrap_err(), native.call_json("divide", "[1, 0]").unwrap_err());
    assert_eq!(w.status(), Status::PluginError);
    assert_eq!(w.plugin_error(), n.plugin_error());
    // Raw calls take the same bytes as on the cdylib: raw bytes for raw
    // methods, bincode of the argument tuple for typed ones.
    let reverse = calc.method_index("reverse").unwrap();
    assert_eq!(wasm.call_raw(reverse, b"fidius").unwrap().as_slice(), b"suidif");
    for (method, input) in [
        ("add", bincode::serialize(&(3i64, 7i64)).unwrap()),
        ("describe", bincode::serialize(&(true, 0.5f64, vec!["x".to_string()], Some("n".to_string()))).unwrap()),
        ("ping", Vec::new()),
    ] {
        let index = calc.method_index(method).unwrap();
        assert_eq!(wasm.call_raw(index, &input).unwrap().as_slice(), native.call_raw(index, &input).unwrap().as_slice(), "{method}");
    }
    let divide = calc.method_index("divide").unwrap();
    let e = wasm.call_raw(divide, &bincode::serialize(&(1i64, 0i64)).unwrap()).unwrap_err();
    assert_eq!(e.plugin_error().unwrap().code(), "DIV_ZERO");
    assert_eq!(wasm.call_raw(0, &[1, 2, 3]).unwrap_err().status(), Status::PluginSerialization);
    assert_eq!(native.call_raw(0, &[1, 2, 3]).unwrap_err().status(), Status::PluginSerialization);
    // Bad arguments are refused before the guest runs.
    let e = wasm.call_json("add", r#"[1, "2"]"#).unwrap_err();
    assert_eq!(e.status(), Status::ArgumentMismatch);
    assert!(e.message().contains("argument 2 (i64)"), "{}", e.message());
    assert_eq!(wasm.call_json("add", "[1]").unwrap_err().status(), Status::ArgumentMismatch);
}

#[test]
fn a_trap_is_an_error_and_the_next_call_runs_on_a_fresh_instance() {
    let host = host_for(&fixture("wasm"));
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1");
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "2", "state persists between calls");
    let e = hostile.call_json("crash", "[]").unwrap_err();
    assert_eq!(e.status(), Status::PluginTrap);
    assert!(e.message().contains("crash"), "{}", e.message());
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1", "a trap discards the instance");

    let calc = wasm_calculator();
    assert_eq!(calc.call_json("boom", "[]").unwrap_err().status(), Status::PluginTrap);
    assert_eq!(calc.call_json("add", "[1, 1]").unwrap(), "2");
}

#[test]
fn an_endless_guest_is_stopped_at_its_deadline() {
    let host = HostBuilder::new().wasm_deadline(Some(Duration::from_secs(30))).build().unwrap();
    let options = LoadOptions::new().wasm_deadline(Some(Duration::from_millis(200))).clone();
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), options).unwrap();
    drop(host); // deadlines hold for plugins that outlive their host
    let start = Instant::now();
    let e = hostile.call_json("spin", "[]").unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.status(), Status::Timeout, "{}", e.message());
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(3), "stopped after {took:?}");
    // The host and the plugin keep serving.
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1");
    assert_eq!(wasm_calculator().call_json("add", "[2, 2]").unwrap(), "4");
}

#[test]
fn a_guest_asleep_on_a_clock_is_stopped_at_its_deadline() {
    let host = HostBuilder::new().wasm_deadline(Some(Duration::from_millis(300))).build().unwrap();
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    // A short nap within the deadline is a nap.
    let slept: u64 = hostile.call_json("nap", "[20]").unwrap().parse().unwrap();
    assert!((20..300).contains(&slept), "slept {slept} ms");
    // An hour-long one (or one that never ends) waits in the host; it ends
    // at the deadline.
    for millis in ["3600000", "18446744073709551615"] {
        let start = Instant::now();
        let e = hostile.call_json("nap", &format!("[{millis}]")).unwrap_err();
        let took = start.elapsed();
        assert_eq!(e.status(), Status::Timeout, "{}", e.message());
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "stopped after {took:?}");
    }
    // Without a deadline, waits are not cut.
    let patient = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::new().wasm_deadline(None).clone()).unwrap();
    let slept: u64 = patient.call_json("nap", "[400]").unwrap().parse().unwrap();
    assert!(slept >= 400, "slept {slept} ms");
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1");
}

#[test]
fn instances_come_from_the_pool_until_it_is_exhausted() {
    // One slot: a persistent plugin holds it while it lives.
    let host = HostBuilder::new().wasm_instance_pool(1).build().unwrap();
    let first = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    assert_eq!(first.call_json("counter", "[]").unwrap(), "1");
    let e = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap_err();
    assert_eq!(e.status(), Status::InstancePoolExhausted, "{}", e.message());
    assert!(e.message().contains("pool"), "{}", e.message());
    drop(first);
    let second = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    assert_eq!(second.call_json("counter", "[]").unwrap(), "1");
    // A trap or a deadline gives the slot back for the next instance.
    assert_eq!(second.call_json("crash", "[]").unwrap_err().status(), Status::PluginTrap);
    assert_eq!(second.call_json("counter", "[]").unwrap(), "1");
    drop(second);

    // Fresh instances per call take a slot only while a call runs: the
    // same answers as the cdylib, call after call.
    let pooled = HostBuilder::new().search_path(fixture("wasm")).wasm_instance_pool(2).wasm_fresh_instance_per_call(true).build().unwrap();
    let calc = pooled.load_with("WasmCalculator", &with(&interface("calculator.toml"))).unwrap();
    for i in 0..200 {
        assert_eq!(calc.call_json("add", &format!("[{i}, 1]")).unwrap(), (i + 1).to_string());
    }
    let hostile = hostile_in(&pooled, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    assert_eq!(hostile.call_json("hog", "[8]").unwrap(), "8", "a slot's memory grows up to the cap");
    // Pages a slot keeps mapped between instances are reset all the same.
    for _ in 0..3 {
        assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1", "a slot's memory starts clean");
    }
}

#[test]
fn a_fresh_instance_per_call_keeps_no_state_and_runs_calls_in_parallel() {
    let host = HostBuilder::new().wasm_fresh_instance_per_call(true).build().unwrap();
    let options = LoadOptions::new().wasm_deadline(Some(Duration::from_secs(2))).clone();
    let hostile = Arc::new(hostile_in(&host, &fixture("wasm/hostile"), options).unwrap());
    for _ in 0..3 {
        assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1", "no state between calls");
    }
    // While one call spins until its deadline, others on the same handle run.
    let spinning = {
        let hostile = hostile.clone();
        std::thread::spawn(move || hostile.call_json("spin", "[]").unwrap_err().status())
    };
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "1");
    assert!(start.elapsed() < Duration::from_secs(1), "blocked for {:?}", start.elapsed());
    assert_eq!(spinning.join().unwrap(), Status::Timeout);
    // A load may ask for the persistent instance again.
    let persistent = LoadOptions::new().wasm_fresh_instance_per_call(false).clone();
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), persistent).unwrap();
    hostile.call_json("counter", "[]").unwrap();
    assert_eq!(hostile.call_json("counter", "[]").unwrap(), "2");
}

#[test]
fn outputs_over_the_hosts_limit_are_refused() {
    let host = HostBuilder::new().search_path(fixture("wasm")).max_output_size(8).unwrap().build().unwrap();
    let plugin = host.load_with("WasmCalculator", &with(&interface("calculator.toml"))).unwrap();
    assert_eq!(plugin.call_raw(5, b"12345678").unwrap().as_slice(), b"87654321");
    let e = plugin.call_raw(5, b"123456789").unwrap_err();
    assert_eq!(e.status(), Status::OutputTooLarge, "{}", e.message());
    assert!(e.message().contains("WasmCalculator") && e.message().contains("limit of 8"), "{}", e.message());
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let host = HostBuilder::new().wasm_memory_limit(16 << 20).unwrap().build().unwrap();
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    let at_load = hostile.memory_high_water().unwrap();
    assert!(at_load > 0 && at_load < 4 << 20, "the instance made at load: {at_load}");
    assert_eq!(hostile.call_json("hog", "[4]").unwrap(), "4");
    let after_hog = hostile.memory_high_water().unwrap();
    assert!(after_hog >= 4 << 20 && after_hog <= 16 << 20, "{after_hog}");
    let e = hostile.call_json("hog", "[64]").unwrap_err();
    assert_eq!(e.status(), Status::MemoryLimit, "{}", e.message());
    assert!(e.message().contains("16777216"), "{}", e.message());
    // The refused growth is not counted: the mark stays within the cap.
    assert!(hostile.memory_high_water().unwrap() <= 16 << 20);
    assert_eq!(hostile.call_json("hog", "[1]").unwrap(), "1");
    // A load may raise the cap.
    let roomy = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::new().wasm_memory_limit(128 << 20).unwrap().clone()).unwrap();
    assert_eq!(roomy.call_json("hog", "[64]").unwrap(), "64");
    assert!(roomy.memory_high_water().unwrap() >= 64 << 20);
    // Other runtimes have no linear memory of their own.
    assert_eq!(wasm_calculator().memory_high_water().map(|m| m > 0), Some(true));
    let native = host_for(&fixture("plugins")).load_with("BasicCalculator", &with(&interface("calculator.toml"))).unwrap();
    assert_eq!(native.memory_high_water(), None);
}

#[test]
fn the_sandbox_grants_nothing_unless_asked() {
    let secret_dir = temp_dir("wasm-secret");
    std::fs::write(secret_dir.join("secret.txt"), "s3cret").unwrap();
    let secret = secret_dir.join("secret.txt");
    let host = host_for(&fixture("wasm"));
    let hostile = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    let args = serde_json::json!([secret.to_str().unwrap()]).to_string();
    let e = hostile.call_json("read_file", &args).unwrap_err();
    assert_eq!(e.status(), Status::PluginError);
    assert_eq!(e.plugin_error().unwrap().code(), "IO");

    let grant = format!("component = \"hostile_component.wasm\"\ncapabilities = [\"fs:ro:{}\"]", secret_dir.display());
    let granted = stage("wasm-grant", "hostile", |m| m.replace("component = \"hostile_component.wasm\"", &grant));
    let reader = hostile_in(&host, &granted, LoadOptions::default()).unwrap();
    assert_eq!(reader.call_json("read_file", &args).unwrap(), "\"s3cret\"");

    // The host may deny what a package asks for.
    let strict = HostBuilder::new().deny_capability("fs").unwrap().build().unwrap();
    assert_eq!(hostile_in(&strict, &granted, LoadOptions::default()).unwrap_err().status(), Status::CapabilityDenied);

    // Grants of the whole filesystem, unknown capabilities, paths out of the package.
    for (capability, status) in
        [("fs:rw:/", Status::InvalidCapability), ("fs:ro:/", Status::InvalidCapability), ("teleport", Status::InvalidCapability)]
    {
        let edit = format!("component = \"hostile_component.wasm\"\ncapabilities = [\"{capability}\"]");
        let dir = stage("wasm-caps", "hostile", |m| m.replace("component = \"hostile_component.wasm\"", &edit));
        let e = hostile_in(&host, &dir, LoadOptions::default()).unwrap_err();
        assert_eq!(e.status(), status, "{capability}: {}", e.message());
    }
    let dir = stage("wasm-escape", "hostile", |m| m.replace("\"hostile_component.wasm\"", "\"../hostile/hostile_component.wasm\""));
    assert_eq!(hostile_in(&host, &dir, LoadOptions::default()).unwrap_err().status(), Status::InvalidManifest);
    let dir = stage("wasm-symlink", "hostile", |m| m.replace("\"hostile_component.wasm\"", "\"link.wasm\""));
    std::os::unix::fs::symlink(fixture("wasm/hostile/hostile_component.wasm"), dir.join("link.wasm")).unwrap();
    let e = hostile_in(&host, &dir, LoadOptions::default()).unwrap_err();
    assert_eq!(e.status(), Status::InvalidManifest, "{}", e.message());
    assert!(e.message().contains("outside the package"), "{}", e.message());
}

#[test]
fn loads_are_checked_against_the_interface() {
    let host = host_for(&fixture("wasm"));
    // No interface: a WASM load cannot know the export.
    assert_eq!(host.load("WasmCalculator").unwrap_err().status(), Status::NoInterface);
    // Same methods by name, other types: the guest's hash differs.
    let text = file::to_toml(&interface("calculator.toml"));
    let text: String = text.lines().filter(|l| !l.starts_with("hash")).collect::<Vec<_>>().join("\n");
    let other = Arc::new(file::parse(&text.replace("add:i64,i64->i64", "add:i32,i32->i32"), "edited").unwrap());
    let e = host.load_with("WasmCalculator", &with(&other)).unwrap_err();
    assert_eq!(e.status(), Status::InterfaceHashMismatch);
    assert!(e.message().contains("found 0x0271e9b7d21d10f1"), "{}", e.message());
    let newer = Arc::new(file::parse(&text.replace("version = 2", "version = 3"), "edited").unwrap());
    assert_eq!(host.load_with("WasmCalculator", &with(&newer)).unwrap_err().status(), Status::InterfaceVersionMismatch);
    // An interface whose export the component does not have.
    let e = host.load_with("WasmCalculator", &LoadOptions::with_interface(interface("echo.toml")));
    assert!(matches!(e.unwrap_err().status(), Status::InterfaceVersionMismatch | Status::InvalidComponent));

    // Discovery lists packages from their manifests.
    let found = host.discover();
    let names: Vec<(&str, RuntimeKind)> = found.plugins.iter().map(|p| (p.name.as_str(), p.runtime)).collect();
    assert!(names.contains(&("WasmCalculator", RuntimeKind::Wasm)), "{names:?}");
    assert!(names.contains(&("HostileGuest", RuntimeKind::Wasm)), "{names:?}");
}

#[test]
fn signed_packages_verify_what_is_loaded() {
    let key = TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    let host = HostBuilder::new().require_signature(true).trusted_key(key).build().unwrap();
    let calc = with(&interface("calculator.toml"));
    let plugin = host.load_path_with(&fixture("wasm-signed/calc"), None, &calc).unwrap();
    assert_eq!(plugin.call_json("add", "[40, 2]").unwrap(), "42");
    assert_eq!(host.load_path_with(&fixture("wasm/calc"), None, &calc).unwrap_err().status(), Status::SignatureRequired);

    // Any changed file fails verification, whichever it is.
    let dir = temp_dir("wasm-tampered").join("calc");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("wasm-signed/calc")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    assert!(host.load_path_with(&dir, None, &calc).is_ok());
    std::fs::write(dir.join("notes.txt"), "added later").unwrap();
    assert_eq!(host.load_path_with(&dir, None, &calc).unwrap_err().status(), Status::SignatureInvalid);
}

/// Signs `dir` as `fidius package sign` does, with a fresh key.
fn sign_package(dir: &Path) -> TrustedKey {
    let key = SigningKey::from_bytes(&[7; 32]);
    let digest = package_digest(dir).unwrap();
    std::fs::write(dir.join("package.sig"), key.sign(&digest).to_bytes()).unwrap();
    TrustedKey::from_bytes(key.verifying_key().as_bytes()).unwrap()
}

#[test]
fn precompiled_components_are_used_only_when_trusted() {
    let calc = with(&interface("calculator.toml"));
    let dir = stage("wasm-aot", "calc", |m| m);
    let component = std::fs::read(dir.join("calc_component.wasm")).unwrap();
    std::fs::write(dir.join("calc_component.cwasm"), fidius_host::host::precompile_component(&component).unwrap()).unwrap();

    // Unsigned: compiled from the component, with a diagnostic saying why.
    let plugin = HostBuilder::new().build().unwrap().load_path_with(&dir, None, &calc).unwrap();
    assert!(plugin.description().diagnostics[0].contains("not signed"), "{:?}", plugin.description().diagnostics);
    assert_eq!(plugin.call_json("add", "[1, 2]").unwrap(), "3");
    // Opted in: used.
    let opted = HostBuilder::new().allow_unsigned_precompiled(true).build().unwrap();
    let plugin = opted.load_path_with(&dir, None, &calc).unwrap();
    assert!(plugin.description().diagnostics.is_empty(), "{:?}", plugin.description().diagnostics);
    assert_eq!(plugin.call_json("add", "[1, 2]").unwrap(), "3");
    // Signed: used, since the signature covers it.
    let key = sign_package(&dir);
    let signed = HostBuilder::new().require_signature(true).trusted_key(key).build().unwrap();
    let plugin = signed.load_path_with(&dir, None, &calc).unwrap();
    assert!(plugin.description().diagnostics.is_empty(), "{:?}", plugin.description().diagnostics);
    // Corrupted: falls back to compiling, and says so (a new host: this
    // one has the component compiled already and would not look again).
    std::fs::write(dir.join("calc_component.cwasm"), b"not native code at all").unwrap();
    std::fs::remove_file(dir.join("package.sig")).unwrap();
    let fresh = HostBuilder::new().allow_unsigned_precompiled(true).build().unwrap();
    let plugin = fresh.load_path_with(&dir, None, &calc).unwrap();
    assert!(plugin.description().diagnostics[0].contains("stale or corrupted"), "{:?}", plugin.description().diagnostics);
    assert_eq!(plugin.call_json("multiply", "[3, 3]").unwrap(), "9");
}

#[test]
fn calls_from_several_threads_are_serialized_safely() {
    let plugin = Arc::new(wasm_calculator());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let plugin = plugin.clone();
            std::thread::spawn(move || {
                for i in 0..100i64 {
                    let expected = (t * 1000 + i + 1).to_string();
                    assert_eq!(plugin.call_json("add", &format!("[{}, 1]", t * 1000 + i)).unwrap(), expected);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn a_pool_too_large_to_reserve_fails_wasm_loads_clearly() {
    // A million slots would reserve petabytes of address space.
    let host = HostBuilder::new().wasm_instance_pool(1_000_000).build().unwrap();
    for _ in 0..2 {
        let e = hostile_in(&host, &fixture("wasm/hostile"), LoadOptions::default()).unwrap_err();
        assert_eq!(e.status(), Status::Unsupported, "{}", e.message());
        assert!(e.message().contains("memory pool"), "{}", e.message());
    }
}

/// A result over the output limit is OUTPUT_TOO_LARGE, also when it is
/// larger than what wasmtime lets a guest hand the host in one call.
#[test]
fn huge_results_are_output_too_large() {
    let wasm = wasm_calculator();
    for megabytes in [100usize, 150] {
        let input = vec![7u8; megabytes << 20];
        let err = wasm.call_raw(5, &input).unwrap_err();
        assert_eq!(err.status(), Status::OutputTooLarge, "{megabytes} MiB: {err}");
    }
    // The plugin keeps working.
    assert_eq!(wasm.call_raw(5, b"abc").unwrap().as_slice(), b"cba");
}

#[test]
fn a_cwasm_from_an_engine_without_deadlines_is_refused() {
    // fidius-cli's `package pack --precompile` compiles with wasmtime's
    // default engine, whose code never checks the epoch: it could not be
    // stopped at a deadline. (Its wasmtime version differs from this
    // library's too; either is refused by the same check.)
    let calc = with(&interface("calculator.toml"));
    let dir = stage("wasm-aot-default", "calc", |m| m);
    let component = std::fs::read(dir.join("calc_component.wasm")).unwrap();
    let cwasm = wasmtime::Engine::default().precompile_component(&component).unwrap();
    std::fs::write(dir.join("calc_component.cwasm"), cwasm).unwrap();
    let host = HostBuilder::new().allow_unsigned_precompiled(true).build().unwrap();
    let plugin = host.load_path_with(&dir, None, &calc).unwrap();
    let diagnostics = &plugin.description().diagnostics;
    assert!(diagnostics[0].contains("stale or corrupted") && diagnostics[0].contains("compiled without epoch interruption"), "{diagnostics:?}");
    assert_eq!(plugin.call_json("add", "[1, 2]").unwrap(), "3");
}

/// The entries of a compile cache directory: (path, inode, modified).
fn cache_entries(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "entry"))
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            (p, meta.ino(), meta.modified().unwrap())
        })
        .collect();
    entries.sort();
    entries
}

fn set_modified(path: &Path, when: std::time::SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(when).unwrap();
}

#[test]
fn the_compile_cache_serves_later_hosts_and_never_runs_a_changed_entry() {
    let calc = with(&interface("calculator.toml"));
    let cache = temp_dir("wasm-compile-cache").join("cache");
    let cached_host = || HostBuilder::new().wasm_compile_cache(&cache, 0).unwrap().build().unwrap();
    let load = |host: &Host| {
        let plugin = host.load_path_with(&fixture("wasm/calc"), None, &calc).unwrap();
        assert_eq!(plugin.call_json("add", "[20, 22]").unwrap(), "42");
        plugin.description().diagnostics.clone()
    };

    // The first host compiles and keeps the component.
    assert_eq!(load(&cached_host()), Vec::<String>::new());
    let written = cache_entries(&cache);
    assert_eq!(written.len(), 1, "{written:?}");
    let (entry, inode, _) = written[0].clone();

    // A later host reads it: the same file, marked as used just now.
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    set_modified(&entry, long_ago);
    assert_eq!(load(&cached_host()), Vec::<String>::new());
    let read = cache_entries(&cache);
    assert_eq!((read[0].1, read.len()), (inode, 1), "read in place, not written again");
    assert!(read[0].2 > long_ago);

    // A changed entry fails its check: compiled again (and said), and
    // written anew, so the next host reads it again.
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&entry, &bytes).unwrap();
    let diagnostics = load(&cached_host());
    assert!(diagnostics.len() == 1 && diagnostics[0].contains("failed its check"), "{diagnostics:?}");
    let rewritten = cache_entries(&cache);
    assert_ne!(rewritten[0].1, inode, "replaced by a new file");
    assert_eq!(load(&cached_host()), Vec::<String>::new());

    // Another component's entry under this one's name is refused too: the
    // tag covers the name.
    let hostile = HostBuilder::new().wasm_compile_cache(&cache, 0).unwrap().build().unwrap();
    hostile_in(&hostile, &fixture("wasm/hostile"), LoadOptions::default()).unwrap();
    let both = cache_entries(&cache);
    assert_eq!(both.len(), 2);
    let other = both.iter().find(|(path, ..)| *path != entry).unwrap().0.clone();
    std::fs::copy(&other, &entry).unwrap();
    let diagnostics = load(&cached_host());
    assert!(diagnostics.len() == 1 && diagnostics[0].contains("failed its check"), "{diagnostics:?}");

    // Bounded: with room for one entry, loading the other component removes
    // the one used least recently.
    let small = || HostBuilder::new().wasm_compile_cache(&cache, 1).unwrap().build().unwrap();
    let diagnostics = load(&small());
    assert!(diagnostics.iter().any(|d| d.contains("larger than the cache's bound")), "{diagnostics:?}");
    let one_entry = std::fs::metadata(&entry).unwrap().len() + std::fs::metadata(&other).unwrap().len() - 1;
    let tight = HostBuilder::new().wasm_compile_cache(&cache, one_entry).unwrap().build().unwrap();
    std::fs::remove_file(&entry).unwrap();
    assert_eq!(load(&tight), Vec::<String>::new());
    let left: Vec<PathBuf> = cache_entries(&cache).into_iter().map(|(path, ..)| path).collect();
    assert_eq!(left, vec![entry.clone()], "the entry just written stays, the other goes");
}

#[test]
fn a_compile_cache_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cache = temp_dir("wasm-compile-cache-open").join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = HostBuilder::new().wasm_compile_cache(&cache, 0).unwrap_err();
    assert_eq!(e.status(), Status::InvalidArgument);
    assert!(e.message().contains("others may write it"), "{}", e.message());
    let e = HostBuilder::new().wasm_compile_cache("", 0).unwrap_err();
    assert_eq!(e.status(), Status::InvalidArgument);
}
