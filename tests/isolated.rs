//! Isolated plugins: native and Python plugins in worker processes. Every
//! way plugin code can end its process (segfault, abort, exit, endless
//! loop, leak) fails the call with its status while the host, and its
//! other plugins, keep running; the restart policy decides what follows.

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{Hardening, Host, HostBuilder, Interface, Isolation, LoadOptions, Plugin, RestartPolicy, Status};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PING: u32 = 0;
const CALLS: u32 = 1;
const ECHO: u32 = 3;

fn faulty_interface() -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/faulty.toml")).unwrap())
}

fn isolated_builder() -> HostBuilder {
    let mut builder = HostBuilder::new();
    builder.isolation(Isolation::Isolated).worker_path(worker());
    builder
}

fn native() -> PathBuf {
    fixture("faulty/libfaulty_plugin.so")
}

fn python() -> PathBuf {
    fixture("isolated/py-faulty")
}

fn load(host: &Host, path: &Path) -> Plugin {
    host.load_path_with(path, None, &LoadOptions::with_interface(faulty_interface())).unwrap()
}

fn fault(plugin: &Plugin, how: &str) -> fidius_host::Error {
    plugin.call_json("fault", &format!("[\"{how}\"]")).unwrap_err()
}

fn ping(plugin: &Plugin, n: u64) -> u64 {
    decode(plugin.call_raw(PING, &encode(&(n,))).unwrap().as_slice())
}

fn both() -> [PathBuf; 2] {
    [native(), python()]
}

#[test]
fn an_isolated_plugin_answers_as_an_in_process_one() {
    let isolated = isolated_builder().build().unwrap();
    let in_process = HostBuilder::new().build().unwrap();
    for path in both() {
        if path == python() && !fidius_host::host::runtime_built_in(fidius_host::RuntimeKind::Python) {
            continue;
        }
        let a = load(&isolated, &path);
        let b = load(&in_process, &path);
        assert!(a.worker_usage().is_some() && b.worker_usage().is_none());
        assert_eq!(a.info(), b.info());
        assert_eq!(a.method_count(), b.method_count());
        assert_eq!(ping(&a, 41), 42);
        assert_eq!(a.call_json("ping", "[7]").unwrap(), "8");
        let data: Vec<u8> = (0..=255).collect();
        assert_eq!(a.call_raw(ECHO, &data).unwrap().as_slice(), b.call_raw(ECHO, &data).unwrap().as_slice());
        // A plugin's own error crosses with its code, message and details.
        let (ea, eb) = (fault(&a, "error"), fault(&b, "error"));
        assert_eq!(ea.status(), Status::PluginError);
        assert_eq!(ea.message(), eb.message());
        let (pa, pb) = (ea.plugin_error().unwrap(), eb.plugin_error().unwrap());
        assert_eq!((pa.code(), pa.message(), pa.details()), (pb.code(), pb.message(), pb.details()));
        // Host-side checks are the same too.
        assert_eq!(a.call_json("nope", "[]").unwrap_err().status(), Status::UnknownMethod);
        assert_eq!(a.call_json("ping", "[\"x\"]").unwrap_err().status(), b.call_json("ping", "[\"x\"]").unwrap_err().status());
        assert_eq!(a.call_raw(9, b"").unwrap_err().status(), b.call_raw(9, b"").unwrap_err().status());
        let usage = a.worker_usage().unwrap();
        assert!(usage.calls >= 5 && usage.pid > 0 && usage.restarts == 0, "{usage:?}");
    }
}

#[test]
fn every_fault_is_worker_lost_and_the_host_lives_on() {
    let host = isolated_builder().build().unwrap();
    let bystander = HostBuilder::new().build().unwrap().load_path(&fixture("plugins/libcalc_plugin.so"), Some("BasicCalculator")).unwrap();
    let cases: &[(&str, &str)] = &[("segfault", "SIGSEGV"), ("abort", "SIGABRT"), ("exit", "exited with code 3")];
    for path in both() {
        if path == python() && !fidius_host::host::runtime_built_in(fidius_host::RuntimeKind::Python) {
            continue;
        }
        let plugin = load(&host, &path);
        for (how, named) in cases {
            assert_eq!(ping(&plugin, 1), 2);
            let error = fault(&plugin, how);
            assert_eq!(error.status(), Status::WorkerLost, "{how} in {}: {}", path.display(), error.message());
            assert!(error.message().contains(named), "{how}: {}", error.message());
            assert_eq!(plugin.worker_usage().unwrap().pid, 0, "no worker runs until the next call");
            // The next call restarts the worker: a new instance, no state.
            let calls: u64 = decode(plugin.call_raw(CALLS, &encode(&())).unwrap().as_slice());
            assert_eq!(calls, 0, "{how}: the restarted worker has a fresh instance");
            // The host and its other plugins are untouched.
            assert_eq!(decode::<i64>(bystander.call_raw(calc::ADD, &encode(&(2i64, 3i64))).unwrap().as_slice()), 5);
        }
        let usage = plugin.worker_usage().unwrap();
        assert_eq!(usage.restarts, cases.len() as u64, "{usage:?}");
    }
}

#[test]
fn a_call_past_its_deadline_kills_the_worker() {
    // Long enough for a Python worker to start and import under a loaded
    // machine: the load has the same deadline.
    let mut builder = isolated_builder();
    builder.call_deadline(Some(Duration::from_millis(1000)));
    let host = builder.build().unwrap();
    for path in both() {
        if path == python() && !fidius_host::host::runtime_built_in(fidius_host::RuntimeKind::Python) {
            continue;
        }
        let plugin = load(&host, &path);
        let pid = plugin.worker_usage().unwrap().pid;
        let started = Instant::now();
        let error = fault(&plugin, "spin");
        assert_eq!(error.status(), Status::Timeout, "{}", error.message());
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(error.message().contains("worker process was killed"), "{}", error.message());
        assert!(error.message().contains("method 'fault' did not return within 1s"), "{}", error.message());
        // The spinning process is gone, not left running.
        // SAFETY: probing a pid with signal 0.
        assert_ne!(unsafe { libc_kill(pid, 0) }, 0, "the killed worker is reaped");
        assert_eq!(ping(&plugin, 9), 10);
        let usage = plugin.worker_usage().unwrap();
        assert_eq!((usage.timeouts, usage.restarts), (1, 1), "{usage:?}");
        // The killed worker spun for most of a second: its CPU time counts.
        assert!(usage.cpu_time >= Duration::from_millis(100), "{usage:?}");
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

#[test]
fn the_memory_cap_ends_a_leak() {
    let mut builder = isolated_builder();
    builder.worker_memory_limit(Some(768 << 20)).unwrap();
    let host = builder.build().unwrap();
    for path in both() {
        if path == python() && !fidius_host::host::runtime_built_in(fidius_host::RuntimeKind::Python) {
            continue;
        }
        let plugin = load(&host, &path);
        let before = plugin.worker_usage().unwrap();
        assert!(before.peak_memory > 0 && before.peak_memory < 768 << 20, "a running worker's peak so far: {before:?}");
        let error = fault(&plugin, "leak");
        // Native code aborts when an allocation fails; Python raises
        // MemoryError, which reaches the host as the plugin's exception.
        assert!(matches!(error.status(), Status::WorkerLost | Status::PluginError), "{:?}: {}", error.status(), error.message());
        if error.status() == Status::WorkerLost {
            assert!(error.message().contains("memory cap"), "{}", error.message());
        }
        assert_eq!(ping(&plugin, 1), 2);
        // The leak touched hundreds of MiB before the cap stopped it.
        let after = plugin.worker_usage().unwrap();
        assert!(after.peak_memory >= 256 << 20 && after.peak_memory <= 768 << 20, "{after:?}");
    }
}

#[test]
fn the_restart_policy_decides_what_follows_a_loss() {
    let host = isolated_builder().build().unwrap();
    let mut options = LoadOptions::with_interface(faulty_interface());
    options.restart_policy(RestartPolicy { max_restarts: 1, window: Duration::from_secs(60) });
    let plugin = host.load_path_with(&native(), None, &options).unwrap();
    assert_eq!(fault(&plugin, "abort").status(), Status::WorkerLost);
    assert_eq!(ping(&plugin, 1), 2, "one restart is allowed");
    assert_eq!(fault(&plugin, "abort").status(), Status::WorkerLost);
    let refused = plugin.call_raw(PING, &encode(&(1u64,))).unwrap_err();
    assert_eq!(refused.status(), Status::WorkerLost);
    assert!(refused.message().contains("allows no restart") && refused.message().contains("SIGABRT"), "{}", refused.message());
    assert_eq!(plugin.worker_usage().unwrap().restarts, 1);

    options.restart_policy(RestartPolicy { max_restarts: 0, window: Duration::from_secs(1) });
    let never = host.load_path_with(&native(), None, &options).unwrap();
    assert_eq!(fault(&never, "exit").status(), Status::WorkerLost);
    for _ in 0..3 {
        assert_eq!(never.call_json("ping", "[1]").unwrap_err().status(), Status::WorkerLost);
    }
    assert_eq!(never.worker_usage().unwrap().restarts, 0);
}

#[test]
fn loading_by_name_probes_every_library_in_a_worker() {
    // Defective libraries first in the search path: each is refused in the
    // worker (never mapped here), and the plugin is found after them.
    let dir = temp_dir("isolated-by-name");
    for defect in ["magic", "null_vtable", "huge_count"] {
        copy_into(&dir, &fixture(&format!("crafted/libdefect_{defect}.so")));
    }
    copy_into(&dir, &native());
    let mut builder = isolated_builder();
    builder.search_path(&dir);
    let host = builder.build().unwrap();
    let plugin = host.load_with("FaultyNative", &LoadOptions::with_interface(faulty_interface())).unwrap();
    assert_eq!(ping(&plugin, 2), 3);
    assert!(plugin.worker_usage().is_some());
    let missing = host.load_with("Nobody", &LoadOptions::new()).unwrap_err();
    assert_eq!(missing.status(), Status::PluginNotFound, "{}", missing.message());
    assert!(missing.message().contains("skipped"), "{}", missing.message());
}

#[test]
fn discovery_in_a_worker_survives_libraries_that_crash_or_hang_when_opened() {
    let good = ["plugins/libcalc_plugin.so", "faulty/libfaulty_plugin.so", "crafted/libdefect_magic.so"];
    let calm = temp_dir("discovery-calm");
    let wild = temp_dir("discovery-wild");
    for file in good {
        copy_into(&calm, &fixture(file));
        copy_into(&wild, &fixture(file));
    }
    copy_into(&wild, &fixture("probe/libinit_crash.so"));
    copy_into(&wild, &fixture("probe/libinit_hang.so"));
    let mut builder = HostBuilder::new();
    builder.discovery_isolation(Isolation::Isolated).worker_path(worker()).search_path(&wild).call_deadline(Some(Duration::from_millis(1500)));
    let host = builder.build().unwrap();
    let started = Instant::now();
    let found = host.discover();
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let skipped = |file: &str| {
        found.skipped.iter().find(|s| s.path.ends_with(file)).unwrap_or_else(|| panic!("{file} not skipped: {:?}", found.skipped)).error.clone()
    };
    let crash = skipped("libinit_crash.so");
    assert_eq!(crash.status(), Status::WorkerLost, "{}", crash.message());
    assert!(crash.message().contains("SIGSEGV") && crash.message().contains("libinit_crash.so"), "{}", crash.message());
    let hang = skipped("libinit_hang.so");
    assert_eq!(hang.status(), Status::Timeout, "{}", hang.message());
    // The rest is listed exactly as an in-process discovery lists it.
    let in_process = HostBuilder::new().search_path(&calm).build().unwrap().discover();
    let names = |d: &fidius_host::Discovery| d.plugins.iter().map(|p| (p.name.clone(), p.interface_hash, p.path.file_name().map(|f| f.to_owned()))).collect::<Vec<_>>();
    assert_eq!(names(&found), names(&in_process));
    assert!(names(&found).iter().any(|(name, _, _)| name == "FaultyNative"), "{:?}", names(&found));
    let defect = skipped("libdefect_magic.so");
    let expected = in_process.skipped.iter().find(|s| s.path.ends_with("libdefect_magic.so")).unwrap();
    let same_place = defect.message().replace("discovery-wild", "discovery-calm");
    assert_eq!((defect.status(), same_place.as_str()), (expected.error.status(), expected.error.message()));
    // Loading by name finds the library through a worker, then loads the
    // plugin as its isolation says: in-process here.
    let plugin = host.load_with("FaultyNative", &LoadOptions::with_interface(faulty_interface())).unwrap();
    assert!(plugin.worker_usage().is_none());
    assert_eq!(ping(&plugin, 4), 5);
    assert_eq!(host.load_with("Nobody", &LoadOptions::new()).unwrap_err().status(), Status::PluginNotFound);
}

#[test]
fn a_missing_worker_executable_is_worker_unavailable() {
    let host = HostBuilder::new().isolation(Isolation::Isolated).worker_path("/nonexistent/fidius-host-worker").build().unwrap();
    let error = host.load_path(&native(), None).unwrap_err();
    assert_eq!(error.status(), Status::WorkerUnavailable, "{}", error.message());
    assert!(error.message().contains("/nonexistent/fidius-host-worker"), "{}", error.message());
    // A load that asks for in-process never needs it.
    let mut options = LoadOptions::new();
    options.isolation(Isolation::InProcess);
    assert!(host.load_path_with(&native(), None, &options).is_ok());
}

#[test]
fn signatures_are_checked_before_the_worker_maps_anything() {
    let key = fidius_host::TrustedKey::from_file(&fixture("keys/trusted.public")).unwrap();
    let mut builder = isolated_builder();
    builder.require_signature(true).trusted_key(key);
    let host = builder.build().unwrap();
    let signed = host.load_path(&fixture("signed/libcalc_plugin.so"), Some("BasicCalculator")).unwrap();
    assert_eq!(decode::<i64>(signed.call_raw(calc::ADD, &encode(&(20i64, 22i64))).unwrap().as_slice()), 42);
    assert_eq!(host.load_path(&native(), None).unwrap_err().status(), Status::SignatureRequired);
    assert_eq!(host.load_path(&fixture("signed/libmarker.so"), None).unwrap_err().status(), Status::SignatureInvalid);
}

#[test]
fn calls_from_many_threads_survive_kills_from_outside() {
    let host = isolated_builder().build().unwrap();
    let mut options = LoadOptions::with_interface(faulty_interface());
    options.restart_policy(RestartPolicy { max_restarts: 1000, window: Duration::from_secs(60) });
    let plugin = Arc::new(host.load_path_with(&native(), None, &options).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (plugin, stop) = (plugin.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut lost) = (0u64, 0u64);
                let mut n = t * 1_000_000;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    n += 1;
                    match plugin.call_raw(PING, &encode(&(n,))) {
                        Ok(out) => {
                            assert_eq!(decode::<u64>(out.as_slice()), n + 1, "an answer is never another call's");
                            ok += 1;
                        }
                        Err(e) => {
                            assert_eq!(e.status(), Status::WorkerLost, "{}", e.message());
                            lost += 1;
                        }
                    }
                }
                (ok, lost)
            })
        })
        .collect();
    let mut kills = 0;
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(30));
        let pid = plugin.worker_usage().unwrap().pid;
        if pid > 0 {
            // SAFETY: the worker of this test's plugin.
            unsafe { libc_kill(pid, 9) };
            kills += 1;
        }
    }
    std::thread::sleep(Duration::from_millis(30));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (ok, lost) = threads.into_iter().map(|t| t.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(kills >= 5 && ok > 0 && lost > 0 && lost <= kills, "{kills} kills, {ok} answers, {lost} lost");
    assert_eq!(ping(&plugin, 5), 6);
}

#[test]
fn instances_of_an_isolated_plugin_each_get_a_worker() {
    let host = isolated_builder().build().unwrap();
    let plugin = load(&host, &native());
    let other = plugin.new_instance(&fidius_host::ConfigSource::Bincode(Vec::new())).unwrap();
    assert_ne!(plugin.worker_usage().unwrap().pid, other.worker_usage().unwrap().pid);
    assert_eq!(fault(&other, "segfault").status(), Status::WorkerLost);
    assert_eq!(ping(&plugin, 1), 2, "one instance's crash leaves the other running");
    assert_eq!(plugin.worker_usage().unwrap().restarts, 0);
}

/// A stand-in for the worker executable: a shell script that answers the
/// host as a hostile plugin inside a worker could (it owns the socket on
/// descriptor 3 as much as the worker does).
fn fake_worker(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_worker_that_lies_or_stalls_fails_the_load_in_bounded_time() {
    let dir = temp_dir("isolated-fake-workers");
    let cases: &[(&str, &str, Status, &str)] = &[
        ("silent", "exec /bin/sleep 30", Status::Timeout, "did not load the plugin within"),
        ("exits", "exit 7", Status::WorkerLost, "exited with code 7"),
        ("huge", r"printf '\377\377\377\177\002' >&3; exec /bin/sleep 30", Status::WorkerLost, "over the limit"),
        ("unknown-kind", r"printf '\001\000\000\000\011' >&3; exec /bin/sleep 30", Status::PluginProtocol, "message kind 9"),
        ("garbage", r"printf '\005\000\000\000\001abcd' >&3; exec /bin/sleep 30", Status::PluginProtocol, "malformed"),
    ];
    for (name, body, status, says) in cases {
        let mut builder = HostBuilder::new();
        builder.isolation(Isolation::Isolated).worker_path(fake_worker(&dir, name, body)).call_deadline(Some(Duration::from_millis(500)));
        let host = builder.build().unwrap();
        let started = Instant::now();
        let error = host.load_path(&native(), None).unwrap_err();
        assert_eq!(error.status(), *status, "{name}: {}", error.message());
        assert!(error.message().contains(says), "{name}: {}", error.message());
        assert!(started.elapsed() < Duration::from_secs(5), "{name} took {:?}", started.elapsed());
    }
}

/// What a probe of the Faulty fixture's reach answered: its text, or the
/// system's refusal.
fn reach(plugin: &Plugin, probe: &str) -> Result<String, String> {
    match plugin.call_json("fault", &serde_json::to_string(&[probe]).unwrap()) {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(e) => {
            let error = e.plugin_error().unwrap_or_else(|| panic!("{probe}: {e}"));
            assert_eq!(error.code(), "OS_ERROR", "{probe}: {e}");
            Err(error.message().to_string())
        }
    }
}

fn hardened(hardening: Hardening) -> Host {
    let mut builder = isolated_builder();
    builder.worker_hardening(hardening);
    builder.build().unwrap()
}

#[test]
fn a_hardened_worker_reaches_no_network_no_other_file_and_not_the_host() {
    let dir = temp_dir("isolated-hardening");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    let read_secret = format!("read:{}", secret.display());
    let write_beside = |name: &str| format!("write:{}", dir.join(name).display());
    let own_file = |path: &Path| if path.is_dir() { path.join("faulty.py") } else { path.to_path_buf() };
    for path in both() {
        let native = path == native();
        // Without hardening every probe reaches what it asks for.
        let plugin = load(&isolated_builder().build().unwrap(), &path);
        assert_eq!(reach(&plugin, "socket").unwrap(), "a network socket was opened");
        assert_eq!(reach(&plugin, "unix-socket").unwrap(), "a UNIX socket was opened");
        assert_eq!(reach(&plugin, &read_secret).unwrap(), "read 6 bytes");
        assert_eq!(reach(&plugin, &write_beside("plain")).unwrap(), "written");
        if native {
            assert_eq!(reach(&plugin, "privileges").unwrap(), "no_new_privs=0");
            assert_eq!(reach(&plugin, "signal-parent").unwrap(), "the parent can be signalled");
        }

        // Everything on.
        let all = Hardening { no_new_privileges: true, deny_network: true, confine_filesystem: true };
        let plugin = load(&hardened(all), &path);
        let denied = |probe: &str| reach(&plugin, probe).expect_err(probe);
        assert!(denied("socket").contains("Permission denied"), "{path:?}");
        assert!(denied("unix-socket").contains("Permission denied"), "{path:?}: no connection by path either");
        assert!(denied(&read_secret).contains("Permission denied"), "{path:?}");
        assert!(denied(&write_beside("confined")).contains("Permission denied"), "{path:?}");
        assert!(!dir.join("confined").exists());
        // Its own files stay readable, and (Python) the standard library.
        let own = own_file(&path);
        let size = std::fs::metadata(&own).unwrap().len();
        assert_eq!(reach(&plugin, &format!("read:{}", own.display())).unwrap(), format!("read {size} bytes"));
        if native {
            assert_eq!(reach(&plugin, "privileges").unwrap(), "no_new_privs=1");
            assert!(denied("signal-parent").contains("Operation not permitted"));
        } else {
            assert_eq!(reach(&plugin, "import:colorsys").unwrap(), "colorsys imported");
        }
        assert_eq!(ping(&plugin, 41), 42, "{path:?}: confined, it still answers");

        // Each part alone does its part only.
        let plugin = load(&hardened(Hardening { deny_network: true, ..Hardening::default() }), &path);
        assert!(reach(&plugin, "socket").unwrap_err().contains("Permission denied"));
        assert_eq!(reach(&plugin, &read_secret).unwrap(), "read 6 bytes");
        let plugin = load(&hardened(Hardening { confine_filesystem: true, ..Hardening::default() }), &path);
        assert_eq!(reach(&plugin, "socket").unwrap(), "a network socket was opened");
        assert!(reach(&plugin, &read_secret).unwrap_err().contains("Permission denied"));
        if native {
            let plugin = load(&hardened(Hardening { no_new_privileges: true, ..Hardening::default() }), &path);
            assert_eq!(reach(&plugin, "privileges").unwrap(), "no_new_privs=1");
            assert_eq!(reach(&plugin, &read_secret).unwrap(), "read 6 bytes");
        }
    }
}

#[test]
fn hardening_flags_are_checked() {
    assert_eq!(Hardening::from_flags(7).unwrap(), Hardening { no_new_privileges: true, deny_network: true, confine_filesystem: true });
    assert_eq!(Hardening::from_flags(0).unwrap(), Hardening::default());
    let e = Hardening::from_flags(9).unwrap_err();
    assert_eq!(e.status(), Status::InvalidArgument);
    assert!(e.message().contains("unknown bits 0x8"), "{e}");
}

#[test]
fn a_hardened_load_by_name_confines_the_plugin_found() {
    let mut builder = isolated_builder();
    builder.worker_hardening(Hardening { no_new_privileges: false, deny_network: true, confine_filesystem: true });
    builder.search_path(fixture("faulty"));
    let host = builder.build().unwrap();
    let plugin = host.load_with("FaultyNative", &LoadOptions::with_interface(faulty_interface())).unwrap();
    assert!(reach(&plugin, "socket").unwrap_err().contains("Permission denied"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    assert!(reach(&plugin, &format!("read:{}", manifest.display())).unwrap_err().contains("Permission denied"));
    assert_eq!(ping(&plugin, 1), 2);
}
