//! The engine of one host: its settings, the instance pool, and the epoch
//! ticker that enforces call deadlines.

use super::cache::CacheKey;
use super::compile_cache::CompileCache;
use super::CompileCacheDir;
use super::store::GuestState;
use super::waits;
use crate::error::{Error, Result, Status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Config, Engine};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);


/// The engine, linker and compiled components of one host.
pub struct WasmRuntime {
    pub(super) engine: Engine,
    pub(super) linker: Linker<GuestState>,
    pub(super) compiled: Mutex<HashMap<CacheKey, InstancePre<GuestState>>>,
    /// The persistent compile cache, or why there is none though one was
    /// set (told in every load's diagnostics).
    pub(super) compile_cache: Option<std::result::Result<CompileCache, String>>,
    pub(super) ticker: Arc<EpochTicker>,
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while any host or
/// plugin of this engine lives, so deadlines hold for plugins that outlive
/// their host. Stopped and joined when the last of them goes.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fidius-wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::new(Status::Io, format!("cannot start the WASM deadline thread: {e}")))?;
        Ok(EpochTicker { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime").finish_non_exhaustive()
    }
}

fn engine_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).epoch_interruption(true);
    config
}

/// The engine every host uses for compiling (and AOT precompiling):
/// `.cwasm` files must come from the same settings. (How instances are
/// allocated is not one of them: a pooled engine loads the same `.cwasm`.)
pub fn new_engine() -> Result<Engine> {
    start_engine(&engine_config())
}

fn start_engine(config: &Config) -> Result<Engine> {
    Engine::new(config).map_err(|e| Error::new(Status::Unsupported, format!("cannot start wasmtime: {e:#}")))
}

/// Per slot of an instance pool: room for a component of a few core
/// instances (a Rust `wasm32-wasip2` component has three to five) with
/// one linear memory and their tables. A component needing more uses more;
/// one needing more than the whole pool holds is refused at load.
const CORE_INSTANCES_PER_SLOT: u32 = 8;
/// Bytes of a slot's linear memory and tables kept mapped when an instance
/// ends, the pages it touched reset by writing rather than by unmapping: the
/// next instance in the slot takes no page faults there, and no TLB
/// shootdown interrupts every other core. The pages a small guest touches
/// fit; RSS grows by at most this much per slot.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;
const KEEP_RESIDENT_TABLE: usize = 64 << 10;
const TABLES_PER_SLOT: u32 = 8;
/// Elements a guest's table may grow to, pooled or not (a pool reserves
/// address space for as many, not memory).
pub(super) const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The pooling allocator for `slots` live instances. Each memory slot
/// reserves address space for a 4 GiB memory plus guard pages (nothing is
/// committed until used); instantiating reuses a slot instead of mapping
/// and unmapping memory.
fn pooled_engine(slots: u32) -> Result<Engine> {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    let core_instances = slots.saturating_mul(CORE_INSTANCES_PER_SLOT);
    let tables = slots.saturating_mul(TABLES_PER_SLOT);
    pool.total_component_instances(slots)
        .total_core_instances(core_instances)
        .total_tables(tables)
        .total_memories(slots)
        // A component bigger than the whole pool is refused at load, not
        // reported as a pool that is full for now.
        .max_core_instances_per_component(core_instances)
        .max_tables_per_component(tables)
        .max_memories_per_component(slots)
        .max_tables_per_module(TABLES_PER_SLOT)
        .table_elements(MAX_TABLE_ELEMENTS)
        // Calls are synchronous: no fiber stacks.
        .total_stacks(0);
    // Resetting kept pages is cheap only where the kernel says which were
    // touched (PAGEMAP_SCAN, Linux 6.7+); elsewhere writing the whole
    // region back costs more than unmapping it.
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
            .table_keep_resident(KEEP_RESIDENT_TABLE)
            .pagemap_scan(wasmtime::Enabled::Yes);
    }
    let mut config = engine_config();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    start_engine(&config)
}

impl WasmRuntime {
    /// Starts the engine (with an instance pool of `pool_slots` slots,
    /// unless 0) and the epoch ticker, and opens the compile cache, if any.
    pub fn new(pool_slots: u32, compile_cache: Option<&CompileCacheDir>) -> Result<WasmRuntime> {
        let engine = if pool_slots == 0 { new_engine()? } else { pooled_engine(pool_slots)? };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker))
            .and_then(|()| waits::add_to_linker(&mut linker))
            .and_then(|()| super::host_call::add_to_linker(&mut linker))
            .and_then(|()| super::name_lookup::add_to_linker(&mut linker))
            .map_err(|e| Error::new(Status::InternalPanic, format!("cannot link WASI: {e:#}")))?;
        let ticker = Arc::new(EpochTicker::start(engine.clone())?);
        // Checked when it was set; a directory changed since is not fatal:
        // components are compiled as without a cache.
        let compile_cache = compile_cache.map(|cache| {
            CompileCache::open(&cache.dir, cache.max_bytes)
                .map_err(|e| format!("compile cache not used: {}", e.message()))
        });
        Ok(WasmRuntime { engine, linker, compiled: Mutex::new(HashMap::new()), compile_cache, ticker })
    }
}
