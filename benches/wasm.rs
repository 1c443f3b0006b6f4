//! WASM plugin benchmark: per-call cost through libfidius_host's C API
//! against calling the same export directly through wasmtime on one live
//! instance, and load times (JIT compile, `.cwasm`, reload in one host, the
//! first load of a fresh process against wasmtime alone).
//!
//!   FIDIUS_TEST_FIXTURES=target/test-fixtures cargo bench --bench wasm
//!
//! Every figure is the median of several rounds; the two sides of each
//! comparison alternate so machine noise hits both alike.

mod timing;

use fidius_host::ffi::builder::*;
use fidius_host::ffi::bytes::*;
use fidius_host::ffi::host::*;
use fidius_host::ffi::interface::*;
use fidius_host::ffi::load_options::*;
use fidius_host::ffi::plugin::*;
use fidius_host::ffi::FIDIUS_HOST_NUL_TERMINATED as NT;
use fidius_host::interface::file;
use fidius_host::{HostBuilder, LoadOptions};
use std::ffi::CString;
use std::ptr::{null, null_mut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use timing::{compare, median, time, ROUNDS};
use wasmtime::component::{Component, Linker, ResourceTable, TypedFunc};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn fixtures() -> PathBuf {
    std::env::var_os("FIDIUS_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-fixtures"))
}

/// The first load of a process, timed inside it: this benchmark runs itself
/// with `FIDIUS_BENCH_FRESH` set to `direct` (wasmtime alone: engine, compile,
/// link, instantiate), `api` (a host, then a load of the package), `cwasm`
/// (the same with the package's `.cwasm` allowed) or `cache` (the same with
/// a compile cache), for the package in `FIDIUS_BENCH_PACKAGE` and the cache
/// in `FIDIUS_BENCH_CACHE`; the child prints microseconds.
fn fresh_child(mode: &str, options: &LoadOptions) {
    let package = PathBuf::from(std::env::var_os("FIDIUS_BENCH_PACKAGE").unwrap());
    let start = Instant::now();
    if mode == "direct" {
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let bytes = std::fs::read(package.join("calc_component.wasm")).unwrap();
        let component = Component::new(&engine, &bytes).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        let mut store = Store::new(&engine, State { wasi: WasiCtxBuilder::new().build(), table: ResourceTable::new() });
        store.set_epoch_deadline(u64::MAX / 2);
        std::hint::black_box(linker.instantiate(&mut store, &component).unwrap());
    } else {
        let mut builder = HostBuilder::new();
        match mode {
            "cwasm" => drop(builder.allow_unsigned_precompiled(true)),
            "cache" => drop(builder.wasm_compile_cache(std::env::var_os("FIDIUS_BENCH_CACHE").unwrap(), 0).unwrap()),
            _ => {}
        }
        let host = builder.build().unwrap();
        let plugin = host.load_path_with(&package, None, options).unwrap();
        assert!(plugin.description().diagnostics.is_empty(), "{:?}", plugin.description().diagnostics);
        std::hint::black_box(plugin);
    }
    println!("{}", start.elapsed().as_secs_f64() * 1e6);
}

/// Microseconds a fresh process of this benchmark reports in `mode`, for
/// `package` (and `cache`).
fn fresh_round(mode: &str, package: &Path, cache: &Path) -> f64 {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env("FIDIUS_BENCH_FRESH", mode)
        .env("FIDIUS_BENCH_PACKAGE", package)
        .env("FIDIUS_BENCH_CACHE", cache)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap()
}

fn main() {
    unsafe {
        let fixtures = fixtures();
        let package = fixtures.join("wasm/calc");
        let component_bytes = std::fs::read(package.join("calc_component.wasm")).expect("run `make fixtures` first");
        let interface = Arc::new(file::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml")).unwrap());
        let options = LoadOptions::with_interface(interface.clone());
        if let Ok(mode) = std::env::var("FIDIUS_BENCH_FRESH") {
            return fresh_child(&mode, &options);
        }

        // The direct path: wasmtime's typed API on one live instance, with the
        // same engine settings (epoch interruption, which deadlines need).
        let mut config = Config::new();
        config.wasm_component_model(true).epoch_interruption(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, &component_bytes).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        let mut store = Store::new(&engine, State { wasi: WasiCtxBuilder::new().build(), table: ResourceTable::new() });
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let export = instance.get_export_index(&mut store, None, "fidius:calculator/calculator@0.1.0").unwrap();
        let func = |store: &mut Store<State>, name: &str| {
            let index = instance.get_export_index(&mut *store, Some(&export), name).unwrap();
            instance.get_func(&mut *store, index).unwrap()
        };
        let reverse: TypedFunc<(Vec<u8>,), (Vec<u8>,)> = func(&mut store, "reverse").typed(&store).unwrap();
        let add: TypedFunc<(i64, i64), (i64,)> = func(&mut store, "add").typed(&store).unwrap();

        // For reference: a default engine, without the epoch checks deadlines need.
        let plain_engine = Engine::new(Config::new().wasm_component_model(true)).unwrap();
        let plain_component = Component::new(&plain_engine, &component_bytes).unwrap();
        let mut plain_linker = Linker::new(&plain_engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut plain_linker).unwrap();
        let mut plain_store = Store::new(&plain_engine, State { wasi: WasiCtxBuilder::new().build(), table: ResourceTable::new() });
        let plain_instance = plain_linker.instantiate(&mut plain_store, &plain_component).unwrap();
        let plain_export = plain_instance.get_export_index(&mut plain_store, None, "fidius:calculator/calculator@0.1.0").unwrap();
        let plain_index = plain_instance.get_export_index(&mut plain_store, Some(&plain_export), "reverse").unwrap();
        let plain_reverse: TypedFunc<(Vec<u8>,), (Vec<u8>,)> =
            plain_instance.get_func(&mut plain_store, plain_index).unwrap().typed(&plain_store).unwrap();

        // The measured path: everything through the C API.
        let interface_path = CString::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces/calculator.toml").to_str().unwrap()).unwrap();
        let package_path = CString::new(package.to_str().unwrap()).unwrap();
        let (mut c_host, mut c_interface, mut handle) = (null_mut(), null_mut(), null_mut());
        assert_eq!(fidius_host_builder_build(fidius_host_builder_new(), &mut c_host, null_mut()) as u32, 0);
        assert_eq!(fidius_host_interface_new_from_file(interface_path.as_ptr(), NT, &mut c_interface, null_mut()) as u32, 0);
        let c_options = fidius_host_load_options_new();
        assert_eq!(fidius_host_load_options_set_interface(c_options, c_interface, null_mut()) as u32, 0);
        assert_eq!(fidius_host_load_path(c_host, package_path.as_ptr(), NT, null(), 0, c_options, &mut handle, null_mut()) as u32, 0);
        let plugin_ptr: *const fidius_host_plugin_t = handle;
        let payload: Vec<u8> = (0..1024).map(|i| i as u8).collect();
        let reverse_index = interface.method_index("reverse").unwrap();
        let add_index = interface.method_index("add").unwrap();

        println!("libfidius_host {}: WASM per-call cost, median of {ROUNDS} rounds", env!("CARGO_PKG_VERSION"));
        compare(
            "reverse(1 KiB) raw",
            time(50_000, || {
                let (out,) = reverse.call(&mut store, (payload.clone(),)).unwrap();
                std::hint::black_box(u64::from(out[0]));
            }),
            time(50_000, || {
                let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
                let status = fidius_host_plugin_call(plugin_ptr, reverse_index, payload.as_ptr(), payload.len(), &mut out, null_mut());
                assert_eq!(status as u32, 0);
                std::hint::black_box(u64::from(*out.data));
                fidius_host_bytes_free(&mut out);
            }),
        );
        let mut plain = time(50_000, || {
            let (out,) = plain_reverse.call(&mut plain_store, (payload.clone(),)).unwrap();
            std::hint::black_box(out[0]);
        });
        plain();
        let plain_ns = median((0..ROUNDS).map(|_| plain()).collect());
        println!("{:<28} {plain_ns:>9.1} ns (direct, default engine: no epoch checks, so no deadlines)", "reverse(1 KiB) raw");
        compare(
            "add(i64, i64) JSON",
            time(100_000, || {
                let (sum,) = add.call(&mut store, (3, 7)).unwrap();
                std::hint::black_box(sum as u64);
            }),
            time(100_000, || {
                let mut json: *mut std::ffi::c_char = null_mut();
                let args = b"[3, 7]";
                let status = fidius_host_plugin_call_json_index(
                    plugin_ptr,
                    add_index,
                    args.as_ptr().cast(),
                    args.len(),
                    &mut json,
                    null_mut(),
                    null_mut(),
                );
                assert_eq!(status as u32, 0);
                std::hint::black_box(u64::from(*json as u8));
                fidius_host_string_free(json);
            }),
        );
        fidius_host_plugin_free(handle);
        fidius_host_load_options_free(c_options);
        fidius_host_interface_free(c_interface);
        fidius_host_free(c_host);

        // Loads: a cold JIT compile, a cold `.cwasm`, a reload in the same host.
        let staged = std::env::temp_dir().join(format!("fidius-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staged);
        std::fs::create_dir_all(&staged).unwrap();
        for name in ["package.toml", "calc_component.wasm"] {
            std::fs::copy(package.join(name), staged.join(name)).unwrap();
        }
        std::fs::write(staged.join("calc_component.cwasm"), fidius_host::host::precompile_component(&component_bytes).unwrap()).unwrap();
        let cold = |allow_cwasm: bool, dir: &Path| {
            let (mut times, mut plugins) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                let host = HostBuilder::new().allow_unsigned_precompiled(allow_cwasm).build().unwrap();
                let start = Instant::now();
                plugins.push(host.load_path_with(dir, None, &options).unwrap());
                times.push(start.elapsed().as_nanos() as f64 / 1e3);
            }
            median(times)
        };
        let jit = cold(false, &staged);
        let aot = cold(true, &staged);
        println!("{:<28} JIT {jit:>9.0} us   .cwasm {aot:>9.0} us   ratio {:.1}x", "cold load", jit / aot);
        let warm_host = HostBuilder::new().build().unwrap();
        let first = warm_host.load_path_with(&staged, None, &options).unwrap();
        let mut reload = Vec::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let again = warm_host.load_path_with(&staged, None, &options).unwrap();
            reload.push(start.elapsed().as_nanos() as f64 / 1e3);
            drop(again);
        }
        drop(first);
        println!("{:<28} {:>9.1} us (already compiled in this host)", "reload", median(reload));
        // A fresh process each: JIT against wasmtime alone, then the
        // `.cwasm` and a warm compile cache (filled by the first run).
        let cache = staged.with_extension("cache");
        let _ = std::fs::remove_dir_all(&cache);
        let (mut direct, mut api, mut cwasm, mut cached) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        fresh_round("cache", &package, &cache);
        for _ in 0..ROUNDS {
            direct.push(fresh_round("direct", &package, &cache));
            api.push(fresh_round("api", &package, &cache));
            cwasm.push(fresh_round("cwasm", &staged, &cache));
            cached.push(fresh_round("cache", &package, &cache));
        }
        let (direct, api, cwasm, cached) = (median(direct), median(api), median(cwasm), median(cached));
        println!("{:<28} direct {direct:>9.0} us   C API {api:>9.0} us   ratio {:.2}", "first load, fresh process", api / direct);
        println!(
            "{:<28} .cwasm {cwasm:>9.0} us   warm compile cache {cached:>9.0} us   ratio {:.2} (JIT {:.0}x slower than the cache)",
            "first load, fresh process",
            cached / cwasm,
            api / cached
        );
        let _ = std::fs::remove_dir_all(&cache);

        // State semantics: one persistent instance vs a fresh instance per call,
        // with and without an instance pool.
        let pooled_host = HostBuilder::new().wasm_instance_pool(16).build().unwrap();
        let reverse_on = |host: &fidius_host::Host, fresh: bool| {
            let options = options.clone().wasm_fresh_instance_per_call(fresh).clone();
            let plugin = host.load_path_with(&staged, None, &options).unwrap();
            let payload = payload.clone();
            time(2_000, move || {
                let out = plugin.call_raw(reverse_index, &payload).unwrap();
                std::hint::black_box(out.as_slice()[0]);
            })
        };
        let mut runs = [reverse_on(&warm_host, false), reverse_on(&warm_host, true), reverse_on(&pooled_host, true)];
        let mut samples = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (run, sample) in runs.iter_mut().zip(&mut samples) {
                sample.push(run());
            }
        }
        let [persistent_ns, fresh_ns, pooled_ns] = samples.map(median);
        println!(
            "{:<28} persistent {persistent_ns:>9.1} ns   fresh instance per call {:>9.1} us   from a pool {:>9.1} us ({:.2}x faster)",
            "reverse(1 KiB) raw",
            fresh_ns / 1e3,
            pooled_ns / 1e3,
            fresh_ns / pooled_ns
        );
        let _ = std::fs::remove_dir_all(&staged);
    }
}
