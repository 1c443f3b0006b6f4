//! Cancellation: a call stopped from another thread through its cancel
//! token, in every runtime that can stop one (WASM, isolated plugins,
//! in-process Python), CANCELLED before it starts when the token already
//! is, and UNSUPPORTED for in-process native code.

mod common;

use common::*;
use fidius_host::interface::file;
use fidius_host::{CancelToken, Host, HostBuilder, Interface, Isolation, LoadOptions, Plugin, RestartPolicy, RuntimeKind, Status};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: u32 = 1;

fn interface(name: &str) -> Arc<Interface> {
    Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name)).unwrap())
}

fn faulty(host: &Host, path: &Path) -> Plugin {
    host.load_path_with(path, None, &LoadOptions::with_interface(interface("faulty.toml"))).unwrap()
}

fn calls(plugin: &Plugin) -> u64 {
    decode(plugin.call_raw(CALLS, &encode(&())).unwrap().as_slice())
}

/// Runs `call` with a fresh token that another thread cancels after
/// `after`; the call's error and how long it took.
fn cancelled_after(after: Duration, call: impl FnOnce(&CancelToken) -> fidius_host::Result<String>) -> (fidius_host::Error, Duration) {
    let token = CancelToken::new();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            token.cancel();
        })
    };
    let start = Instant::now();
    let result = call(&token);
    let took = start.elapsed();
    canceller.join().unwrap();
    (result.expect_err("the call was cancelled"), took)
}

fn assert_cancelled(error: &fidius_host::Error, took: Duration, what: &str) {
    assert_eq!(error.status(), Status::Cancelled, "{what}: {}", error.message());
    assert!(error.message().contains("cancel"), "{what}: {}", error.message());
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(10), "{what}: stopped after {took:?}");
}

fn python_built_in() -> bool {
    fidius_host::host::runtime_built_in(RuntimeKind::Python)
}

#[test]
fn an_isolated_call_is_cancelled_by_killing_its_worker_which_the_restart_policy_does_not_count() {
    let mut builder = HostBuilder::new();
    // No restart after a fault: only cancelling may restart the worker.
    builder
        .isolation(Isolation::Isolated)
        .worker_path(worker())
        .call_deadline(None)
        .restart_policy(RestartPolicy { max_restarts: 0, window: Duration::from_secs(60) });
    let host = builder.build().unwrap();
    let mut paths = vec![fixture("faulty/libfaulty_plugin.so")];
    if python_built_in() {
        paths.push(fixture("isolated/py-faulty"));
    }
    for path in paths {
        let plugin = faulty(&host, &path);
        let first_pid = plugin.worker_usage().unwrap().pid;
        for round in 1..=2u64 {
            let (error, took) = cancelled_after(Duration::from_millis(300), |token| {
                plugin.call_json_cancellable("fault", "[\"spin\"]", Some(token))
            });
            assert_cancelled(&error, took, &path.display().to_string());
            assert!(error.message().contains("worker process was killed"), "{}", error.message());
            // The next call runs on a new worker, whatever the policy says
            // of faults.
            assert_eq!(calls(&plugin), 0, "a new worker, a new instance");
            let usage = plugin.worker_usage().unwrap();
            assert_eq!(usage.restarts, round, "{usage:?}");
            assert!(usage.pid > 0 && usage.pid != first_pid, "{usage:?}");
        }
        // A token that is never cancelled changes nothing.
        let token = CancelToken::new();
        assert_eq!(plugin.call_json_cancellable("ping", "[1]", Some(&token)).unwrap(), "2");
        // A cancelled token refuses the call before it reaches the worker.
        token.cancel();
        let before = plugin.worker_usage().unwrap();
        let refused = plugin.call_json_cancellable("ping", "[1]", Some(&token)).unwrap_err();
        assert_eq!(refused.status(), Status::Cancelled, "{}", refused.message());
        assert!(refused.message().contains("before it started"), "{}", refused.message());
        let after = plugin.worker_usage().unwrap();
        assert_eq!((after.pid, after.calls, after.errors), (before.pid, before.calls, before.errors), "the worker was not asked");
        assert_eq!(calls(&plugin), 2, "only the two calls above reached the plugin");
        // A fault still ends the plugin for good under this policy.
        let lost = plugin.call_json("fault", "[\"abort\"]").unwrap_err();
        assert_eq!(lost.status(), Status::WorkerLost);
        assert_eq!(plugin.call_json("ping", "[1]").unwrap_err().status(), Status::WorkerLost);
    }
}

#[test]
fn one_token_cancels_every_call_it_was_given_to() {
    let host = {
        let mut builder = HostBuilder::new();
        builder.isolation(Isolation::Isolated).worker_path(worker()).call_deadline(None);
        builder.build().unwrap()
    };
    let path = fixture("faulty/libfaulty_plugin.so");
    let plugins: Vec<Plugin> = (0..3).map(|_| faulty(&host, &path)).collect();
    let bystander = faulty(&host, &path);
    let token = CancelToken::new();
    let errors: Vec<fidius_host::Error> = std::thread::scope(|scope| {
        let calls: Vec<_> = plugins
            .iter()
            .map(|plugin| scope.spawn(|| plugin.call_json_cancellable("fault", "[\"spin\"]", Some(&token)).unwrap_err()))
            .collect();
        // Calls on another handle keep being answered meanwhile.
        for n in 0..50 {
            assert_eq!(bystander.call_json("ping", &format!("[{n}]")).unwrap(), (n + 1).to_string());
        }
        std::thread::sleep(Duration::from_millis(300));
        token.cancel();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    for error in errors {
        assert_eq!(error.status(), Status::Cancelled, "{}", error.message());
    }
    for plugin in &plugins {
        assert_eq!(plugin.call_json("ping", "[41]").unwrap(), "42");
    }
    assert_eq!(bystander.worker_usage().unwrap().restarts, 0);
}

#[test]
fn in_process_native_calls_cannot_be_cancelled_and_say_so_before_running() {
    let host = HostBuilder::new().build().unwrap();
    let plugin = faulty(&host, &fixture("faulty/libfaulty_plugin.so"));
    let before = calls(&plugin);
    let token = CancelToken::new();
    for result in [
        plugin.call_json_cancellable("ping", "[1]", Some(&token)).map(drop),
        plugin.call_raw_cancellable(0, &encode(&(1u64,)), Some(&token)).map(drop),
    ] {
        let error = result.unwrap_err();
        assert_eq!(error.status(), Status::Unsupported, "{}", error.message());
        assert!(error.message().contains("load it isolated"), "{}", error.message());
    }
    assert_eq!(calls(&plugin), before + 1, "neither call reached the plugin");
    // Without a token the same calls run.
    assert_eq!(plugin.call_json_cancellable("ping", "[1]", None).unwrap(), "2");
}

#[test]
fn in_process_python_is_cancelled_with_an_exception_in_its_thread() {
    if !python_built_in() {
        return;
    }
    for deadline in [None, Some(Duration::from_secs(60))] {
        let mut builder = HostBuilder::new();
        builder.python_deadline(deadline);
        let host = builder.build().unwrap();
        let plugin = faulty(&host, &fixture("isolated/py-faulty"));
        let (error, took) = cancelled_after(Duration::from_millis(300), |token| {
            plugin.call_json_cancellable("fault", "[\"spin\"]", Some(token))
        });
        assert_cancelled(&error, took, &format!("Python with deadline {deadline:?}"));
        // The plugin and its state live on.
        assert_eq!(calls(&plugin), 1, "the spin call came before this one");
        assert_eq!(plugin.call_json("ping", "[1]").unwrap(), "2");
        // A later exception never lands outside the cancelled call.
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(plugin.call_json("ping", "[2]").unwrap(), "3");
    }
}

#[cfg(feature = "wasm")]
mod wasm {
    use super::*;

    fn hostile(host: &Host) -> Plugin {
        let options = LoadOptions::with_interface(interface("hostile.toml"));
        host.load_path_with(&fixture("wasm/hostile"), Some("HostileGuest"), &options).unwrap()
    }

    #[test]
    fn a_spinning_or_sleeping_guest_is_cancelled_and_the_next_call_gets_a_fresh_instance() {
        for deadline in [None, Some(Duration::from_secs(60))] {
            let host = HostBuilder::new().wasm_deadline(deadline).build().unwrap();
            let plugin = hostile(&host);
            for (method, args) in [("spin", "[]"), ("nap", "[3600000]")] {
                assert_eq!(plugin.call_json("counter", "[]").unwrap(), "1");
                let (error, took) = cancelled_after(Duration::from_millis(300), |token| plugin.call_json_cancellable(method, args, Some(token)));
                assert_cancelled(&error, took, &format!("{method} with deadline {deadline:?}"));
                assert!(error.message().contains("fresh instance"), "{}", error.message());
            }
            // A call that is not cancelled runs as usual, and a token
            // cancelled before the call leaves the instance alone.
            let token = CancelToken::new();
            assert_eq!(plugin.call_json_cancellable("counter", "[]", Some(&token)).unwrap(), "1");
            let slept: u64 = plugin.call_json_cancellable("nap", "[20]", Some(&token)).unwrap().parse().unwrap();
            assert!(slept >= 20, "slept {slept} ms");
            token.cancel();
            assert_eq!(plugin.call_json_cancellable("counter", "[]", Some(&token)).unwrap_err().status(), Status::Cancelled);
            assert_eq!(plugin.call_json("counter", "[]").unwrap(), "2", "the refused call did not discard the instance");
        }
    }

    #[test]
    fn a_cancellable_call_still_stops_at_its_deadline() {
        let host = HostBuilder::new().wasm_deadline(Some(Duration::from_millis(300))).build().unwrap();
        let plugin = hostile(&host);
        let token = CancelToken::new();
        for (method, args) in [("spin", "[]"), ("nap", "[3600000]")] {
            let start = Instant::now();
            let error = plugin.call_json_cancellable(method, args, Some(&token)).unwrap_err();
            let took = start.elapsed();
            assert_eq!(error.status(), Status::Timeout, "{method}: {}", error.message());
            assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{method}: stopped after {took:?}");
        }
    }
}
