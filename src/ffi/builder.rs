//! `fidius_host_builder_t`: collects a host's options.

use super::host::fidius_host_t;
use super::{arg_bytes, arg_handle, arg_out_cleared, arg_path, arg_str, entry, entry_value, new_handle, take_handle, Handle};
use super::error::fidius_host_error_t;
use crate::artifact::signature::TrustedKey;
use crate::error::{Error, Status};
use crate::host::{HostBuilder, LoadPolicy};
use crate::runtime::worker::{Hardening, Isolation};
use crate::plugin::BufferStrategy;
use std::ffi::c_char;

/// Options for a host. Made by `fidius_host_builder_new`, owned by the
/// caller, consumed by `fidius_host_builder_build` or freed with
/// `fidius_host_builder_free`. Movable: use from one thread at a time.
pub struct fidius_host_builder_t {
    _private: [u8; 0],
}

pub(crate) struct BuilderData {
    builder: HostBuilder,
}

impl Handle for fidius_host_builder_t {
    type Inner = BuilderData;
    const MAGIC: u64 = 0x4644_4255_494c_4431;
    const NAME: &'static str = "fidius_host_builder_t";
}

/// What a library with some invalid plugin descriptors does.
#[repr(u32)]
pub enum fidius_host_load_policy {
    /// One invalid descriptor rejects the whole library (default).
    Strict = 0,
    /// Invalid descriptors are skipped one by one (each reported by
    /// discovery) and the library's valid plugins stay loadable. Never
    /// relaxes signature, file-header, registry, interface-hash or
    /// buffer-strategy checks.
    Lenient = 1,
}

/// Where native and Python plugins run.
#[repr(u32)]
pub enum fidius_host_isolation {
    /// In the host process (default): the fastest calls; a crash, abort or
    /// exit in the plugin ends the host.
    InProcess = 0,
    /// Each plugin handle in a worker process of its own
    /// (`fidius-host-worker`): a fault in the plugin ends the worker, and
    /// the call fails with WORKER_LOST; calls have a deadline that kills
    /// (TIMEOUT) and the worker may be capped in memory and CPU time. WASM
    /// plugins are sandboxed in-process and ignore it.
    Isolated = 1,
}

/// Parts of a worker process's confinement, for
/// `fidius_host_builder_set_worker_hardening`; combine with `|`.
#[repr(u32)]
pub enum fidius_host_worker_hardening {
    /// `PR_SET_NO_NEW_PRIVS`: nothing the worker executes gains
    /// privileges (set-user-ID programs, file capabilities). Implied by
    /// the two others, which the kernel allows only with it.
    NoNewPrivileges = 1,
    /// A seccomp filter on every thread of the worker, from before the
    /// plugin is read: creating a socket or socket pair of any family, and
    /// setting up io_uring, fail with EACCES. The plugin can open no
    /// connection, to the network or to a UNIX socket by path; the
    /// worker's socket to the host, made before, is unaffected.
    DenyNetwork = 2,
    /// Landlock, from the moment the plugin is loaded (its library's
    /// initialisers and its Python modules' top level run before): files
    /// can be read only beneath the plugin's own path (library file,
    /// package directory or archive) and, for Python, the interpreter's
    /// module directories; nothing can be written, created or removed;
    /// no process outside the worker (the host included) can be
    /// signalled, no abstract UNIX socket made outside it connected to. A plugin that started a thread while it loaded cannot be
    /// confined (Landlock confines the threads that ask for it) and fails
    /// to load with UNSUPPORTED.
    ConfineFilesystem = 4,
}

const _: () = assert!(
    fidius_host_worker_hardening::NoNewPrivileges as u32 == Hardening::NO_NEW_PRIVILEGES
        && fidius_host_worker_hardening::DenyNetwork as u32 == Hardening::DENY_NETWORK
        && fidius_host_worker_hardening::ConfineFilesystem as u32 == Hardening::CONFINE_FILESYSTEM
);

/// How plugin outputs travel (fidius `BufferStrategyKind`).
#[repr(u32)]
pub enum fidius_host_buffer_strategy {
    /// The plugin allocates outputs; the host frees them through the plugin.
    PluginAllocated = 1,
    /// The host lends the plugin an arena (one per thread).
    Arena = 2,
}

fn with_builder(
    builder: *mut fidius_host_builder_t,
    err: *mut *mut fidius_host_error_t,
    f: impl FnOnce(&mut HostBuilder) -> crate::Result<()>,
) -> Status {
    super::update(builder, "builder", err, |b| f(&mut b.builder))
}

/// A new builder with defaults: no search paths, Strict policy, no
/// signatures required, no trusted keys, no expected interface hash or
/// buffer strategy, a 64 MiB output limit. Owned by the caller. Returns NULL
/// only if the library failed internally.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_new() -> *mut fidius_host_builder_t {
    entry_value(std::ptr::null_mut(), || {
        new_handle::<fidius_host_builder_t>(BuilderData { builder: HostBuilder::new() })
    })
}

/// Adds a directory to scan for plugins. Directories are scanned in the
/// order added; a directory that does not exist is reported by discovery.
/// `path` is UTF-8 of `path_len` bytes (or NUL-terminated with
/// `FIDIUS_HOST_NUL_TERMINATED`), borrowed for the call.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (empty path), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_add_search_path(
    builder: *mut fidius_host_builder_t,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.search_path(arg_path(path, path_len, "path")?);
        Ok(())
    })
}

/// Sets the load policy, a `fidius_host_load_policy` value.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown policy), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_load_policy(
    builder: *mut fidius_host_builder_t,
    policy: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.load_policy(LoadPolicy::try_from(policy)?);
        Ok(())
    })
}

/// Requires (or not) a valid detached signature (`<file>.sig`, as written
/// by `fidius sign`) for every library. When required, a library that is
/// unsigned, tampered with or signed by an untrusted key is never mapped,
/// and the verified bytes are exactly the bytes that get mapped.
///
/// The verified bytes are mapped from a sealed in-memory copy. The host
/// keeps the copies of up to 8 libraries (128 MiB in all, least recently
/// used dropped first) after they are unmapped, until it is freed: a later
/// load of a file that still holds the same bytes next to the same
/// signature maps the kept copy instead of verifying again.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_require_signature(
    builder: *mut fidius_host_builder_t,
    required: bool,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.require_signature(required);
        Ok(())
    })
}

/// Trusts an Ed25519 public key given as its raw 32 bytes (borrowed for
/// the call). Several keys may be trusted; any one of them verifying a
/// signature is enough.
///
/// Errors: NULL_ARGUMENT, INVALID_KEY (not 32 bytes, or not a valid key), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_add_trusted_key(
    builder: *mut fidius_host_builder_t,
    key: *const u8,
    key_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        if key.is_null() {
            return Err(Error::null_argument("key"));
        }
        b.trusted_key(TrustedKey::from_bytes(arg_bytes(key, key_len, "key")?)?);
        Ok(())
    })
}

/// Trusts the public key in a `NAME.public` file written by `fidius keygen`
/// (exactly 32 raw bytes). `path` as in `fidius_host_builder_add_search_path`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, FILE_NOT_FOUND, IO,
/// INVALID_KEY, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_add_trusted_key_file(
    builder: *mut fidius_host_builder_t,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.trusted_key(TrustedKey::from_file(&arg_path(path, path_len, "path")?)?);
        Ok(())
    })
}

/// Only accepts plugins whose interface hash is `hash`; others are
/// reported by discovery and fail to load with INTERFACE_HASH_MISMATCH.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_interface_hash(
    builder: *mut fidius_host_builder_t,
    hash: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.interface_hash(hash);
        Ok(())
    })
}

/// Only accepts plugins with this buffer strategy, a
/// `fidius_host_buffer_strategy` value.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown strategy), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_buffer_strategy(
    builder: *mut fidius_host_builder_t,
    strategy: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.buffer_strategy(BufferStrategy::try_from(strategy)?);
        Ok(())
    })
}

/// Sets the default deadline of each WASM call, in milliseconds (default
/// 10 000); 0 means no deadline. A call past it stops with TIMEOUT (within
/// about a millisecond) and the plugin's next call runs on a fresh
/// instance. Every wait the guest makes in the host (clocks, `poll`,
/// blocking stream reads and writes, HTTP responses) ends by the deadline
/// too, and a component's start-up code at load is bounded by it. A load
/// may override it (`fidius_host_load_options_set_wasm_deadline_ms`).
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_wasm_deadline_ms(
    builder: *mut fidius_host_builder_t,
    milliseconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.wasm_deadline(super::deadline_of(milliseconds));
        Ok(())
    })
}

/// Sets the default deadline of each call, in milliseconds (default
/// 10 000), for every runtime that can stop a call: WASM calls, and Python
/// calls and imports. 0 means no deadline. A runtime's own setting
/// (`fidius_host_builder_set_wasm_deadline_ms`,
/// `fidius_host_builder_set_python_deadline_ms`) overrides it, whatever the
/// order they are set in. Native (cdylib) calls cannot be stopped in-process and have no
/// deadline.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_call_deadline_ms(
    builder: *mut fidius_host_builder_t,
    milliseconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.call_deadline(super::deadline_of(milliseconds));
        Ok(())
    })
}

/// Sets the default deadline of each Python call and of a Python plugin's
/// import at load, in milliseconds; 0 means no deadline. Without it the
/// call deadline applies (10 s by default). Past it the host raises
/// `DeadlineExceeded` (a `BaseException`) in the plugin's thread, again
/// every 50 ms until the code gives up, and the call or load fails with
/// TIMEOUT; the plugin stays loaded and usable. Python code blocked inside
/// C (a socket read, a lock, a C extension) sees the exception only when
/// that C call returns; `time.sleep` in a plugin is cut at the deadline. A
/// load may override it (`fidius_host_load_options_set_python_deadline_ms`).
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_python_deadline_ms(
    builder: *mut fidius_host_builder_t,
    milliseconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.python_deadline(super::deadline_of(milliseconds));
        Ok(())
    })
}

/// Sets the largest library file the host reads, in bytes (default
/// 512 MiB). A larger file is refused with FILE_TOO_LARGE without being read
/// past the limit. On failure the builder keeps its previous limit.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_max_library_size(
    builder: *mut fidius_host_builder_t,
    bytes: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.max_library_size(bytes)?;
        Ok(())
    })
}

/// Sets the largest package (WASM or Python), all its files together, in
/// bytes (default 512 MiB). A larger package is refused with FILE_TOO_LARGE
/// without being read past the limit. On failure the builder keeps its
/// previous limit.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_max_package_size(
    builder: *mut fidius_host_builder_t,
    bytes: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.max_package_size(bytes)?;
        Ok(())
    })
}

/// Sets the default cap on a WASM guest's linear memory, in bytes (default
/// 256 MiB). Growing past it fails the call with MEMORY_LIMIT. A load may
/// override it (`fidius_host_load_options_set_wasm_memory_limit`).
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_wasm_memory_limit(
    builder: *mut fidius_host_builder_t,
    bytes: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.wasm_memory_limit(bytes)?;
        Ok(())
    })
}

/// A memory cap, which must be at least one byte.
/// Refuses every package that asks for `capability` (UTF-8, or
/// NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`): an exact capability
/// such as `stdout`, or a prefix such as `fs` or `env` that covers every
/// `fs:…` or `env:…` capability. Such loads fail with CAPABILITY_DENIED.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (empty), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_add_denied_capability(
    builder: *mut fidius_host_builder_t,
    capability: *const c_char,
    capability_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.deny_capability(arg_str(capability, capability_len, "capability")?)?;
        Ok(())
    })
}

/// Whether a package's precompiled `.cwasm` may be loaded when no verified
/// package signature covers it (default false: the component is compiled
/// instead, and the plugin's diagnostics say so). A `.cwasm` is native code
/// that runs outside the sandbox; allow this only for files you trust.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_allow_unsigned_precompiled(
    builder: *mut fidius_host_builder_t,
    allow: bool,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.allow_unsigned_precompiled(allow);
        Ok(())
    })
}

/// Keeps compiled WASM components in the directory `dir` (UTF-8 of
/// `dir_len` bytes, or NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`;
/// borrowed for the call), so that later processes load a component without
/// compiling it (about 100 ms for a small component, against about 1 ms).
/// Off by default. At most `max_bytes` of compiled code are kept (0: 256
/// MiB); the entries used least recently are removed first.
///
/// The directory is created (mode 0700) when missing, with a secret key
/// file in it (mode 0600). Compiled code runs outside the sandbox, so the
/// directory and the key must belong to the user running the host and be
/// writable (the key: readable) by nobody else; each entry carries an
/// HMAC-SHA-256 under that key of its code and of its name, which digests
/// the component's bytes and this engine's version, settings and CPU. An
/// entry that fails its check is never run: the component is compiled again,
/// the entry rewritten, and the plugin's diagnostics say so. Several
/// processes may share one directory: entries are written to a temporary
/// file and renamed into place.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (empty path; the
/// directory or key belongs to another user or may be written by others),
/// IO (the directory or key cannot be created or read), MISUSE. On error
/// the builder keeps its previous setting.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_wasm_compile_cache(
    builder: *mut fidius_host_builder_t,
    dir: *const c_char,
    dir_len: usize,
    max_bytes: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.wasm_compile_cache(arg_path(dir, dir_len, "dir")?, max_bytes)?;
        Ok(())
    })
}

/// Whether every WASM call runs on a fresh instance of the component
/// (default false). false: each plugin handle keeps one instance, guest
/// state persists between calls, and calls on one handle are serialized.
/// true: no state is carried from one call to the next, and calls on one
/// handle run in parallel, each on its own instance, at the cost of an
/// instantiation per call. A load may override it
/// (`fidius_host_load_options_set_wasm_fresh_instance_per_call`).
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_wasm_fresh_instance_per_call(
    builder: *mut fidius_host_builder_t,
    fresh: bool,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.wasm_fresh_instance_per_call(fresh);
        Ok(())
    })
}

/// Takes the host's WASM instances from a pool of `slots` preallocated
/// slots (default 0: no pool). Instantiating from the pool is about twice as
/// fast, which pays with a fresh instance per call. At most `slots`
/// instances live at once in the host: each loaded persistent plugin holds
/// one, each running call of a fresh-instance plugin one; a load or call
/// that finds no free slot fails with INSTANCE_POOL_EXHAUSTED and can be
/// retried later. Each slot reserves address space (not memory) for a
/// 4 GiB linear memory and its guard pages; when the host's first WASM load
/// cannot reserve it, that load and every later WASM load of the host fail
/// with UNSUPPORTED, naming the reservation.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_wasm_instance_pool(
    builder: *mut fidius_host_builder_t,
    slots: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.wasm_instance_pool(slots);
        Ok(())
    })
}

/// Sets the egress policy of the host: which outbound HTTP requests WASM
/// plugins with the `http` capability may send (load options may set their
/// own). Without a policy such plugins are not loaded (NO_EGRESS_POLICY).
/// The builder keeps its own reference; NULL removes the policy.
///
/// Errors: NULL_ARGUMENT (builder), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_egress_policy(
    builder: *mut fidius_host_builder_t,
    policy: *const super::egress::fidius_host_egress_policy_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.egress_policy(super::egress::arg_policy(policy)?);
        Ok(())
    })
}

/// Sets the largest output one call may return (default 64 MiB). A larger
/// result fails with OUTPUT_TOO_LARGE; an Arena never grows past it.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_max_output_size(
    builder: *mut fidius_host_builder_t,
    bytes: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.max_output_size(bytes)?;
        Ok(())
    })
}

/// Sets where native and Python plugins run by default, a
/// `fidius_host_isolation` value (default IN_PROCESS); a load may say
/// otherwise (`fidius_host_load_options_set_isolation`).
///
/// An isolated plugin is loaded by a worker process with this host's
/// settings (signatures included: the worker maps exactly the bytes it
/// verified), and the plugin handle works as an in-process one: info,
/// metadata, capabilities, raw and JSON calls, plugin errors, output
/// limits, instances, calls from several threads (served one at a time by
/// the worker). What differs:
/// - A crash, abort, exit or kill of the worker fails the call in flight
///   with WORKER_LOST (the message names the signal or exit code); no
///   output is delivered. The next call restarts the worker (a new
///   instance: plugin state is lost) as the restart policy allows.
/// - Each call has the host's call deadline (the Python deadline for
///   Python plugins): past it the worker is killed and the call is
///   TIMEOUT. The load has the same deadline.
/// - Loading by name probes each candidate library in a worker: no
///   unsigned library is mapped in the host, and one whose loading crashes
///   is a skipped file ("the worker process was killed by signal 11").
/// - Host functions (`fidius_host_load_options_add_binding`) run in this
///   process, on the thread that made the call into the plugin, with its
///   call context (none for a thread the plugin started), one at a time
///   per plugin; a host function may call the same plugin again. A plugin
///   thread that calls a host function while no call into the plugin runs
///   gets a host failure. Each host function call costs a round trip.
/// - Streams (`fidius_host_plugin_call_stream`, client streams) are served
///   item by item, each a round trip to the worker, which holds the
///   plugin's stream; a stream deadline passed while the worker makes an
///   item kills the worker (TIMEOUT). A stream whose worker was lost ends
///   with WORKER_LOST; the next call starts a new worker.
/// Each call costs a round trip to the worker (under 10 µs on a 2-vCPU VM;
/// each side polls its socket up to 50 µs before it sleeps).
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown value), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_isolation(
    builder: *mut fidius_host_builder_t,
    isolation: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.isolation(Isolation::try_from(isolation)?);
        Ok(())
    })
}

/// Sets where unsigned libraries are opened to list their plugins: by
/// `fidius_host_discover`, and by `fidius_host_load` (by name) to find the
/// library that holds the plugin, which is then loaded as the isolation
/// says. `FIDIUS_HOST_ISOLATION_IN_PROCESS` (the default): mapped in this
/// process, as any dlopen — a library whose initialisers crash or hang
/// takes the host with it. `FIDIUS_HOST_ISOLATION_ISOLATED`: opened in a
/// worker process kept for the whole scan; a library that takes its
/// worker down is a skipped file (WORKER_LOST naming the signal, or
/// TIMEOUT past the call deadline), the next one gets a new worker, and
/// no unsigned library is mapped in the host by discovery. It costs a
/// worker start per scan and a round trip per library (see
/// bench/README.md). With signatures required only verified bytes are
/// mapped, in-process, and this setting is not used.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown value), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_discovery_isolation(
    builder: *mut fidius_host_builder_t,
    isolation: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.discovery_isolation(Isolation::try_from(isolation)?);
        Ok(())
    })
}

/// Sets the worker executable of isolated plugins. Default: the
/// `fidius-host-worker` next to the shared library (or next to the program
/// the static library is linked into), else in `../libexec` from there, as
/// `make install` places it. The path is used as given when a worker
/// starts; a missing or unrunnable file makes isolated loads
/// WORKER_UNAVAILABLE.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (empty or over
/// 4096 bytes), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_worker_path(
    builder: *mut fidius_host_builder_t,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.worker_path(arg_path(path, path_len, "path")?);
        Ok(())
    })
}

/// Caps each worker process's address space at `bytes` (RLIMIT_AS; 0: no
/// cap, the default). A plugin that allocates past it fails to allocate,
/// which usually aborts its worker: the call is WORKER_LOST and its message
/// names the cap. The cap counts the worker's whole address space (this
/// library, Python when loaded): allow 256 MiB or more.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_worker_memory_limit(
    builder: *mut fidius_host_builder_t,
    bytes: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.worker_memory_limit((bytes > 0).then_some(bytes))?;
        Ok(())
    })
}

/// Caps each worker process's CPU time at `seconds` (RLIMIT_CPU; 0: no
/// cap, the default): the kernel kills a worker that used it (SIGXCPU),
/// and the call is WORKER_LOST. Unlike the call deadline it counts across
/// calls, for the worker's life.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_worker_cpu_limit(
    builder: *mut fidius_host_builder_t,
    seconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.worker_cpu_limit((seconds > 0).then_some(seconds))?;
        Ok(())
    })
}

/// Sets how each worker process confines itself: a combination of
/// `fidius_host_worker_hardening` bits (0: none, the default; see each
/// bit). Isolation contains faults; these parts also limit what a hostile
/// plugin in a worker can reach. Each needs a kernel feature (seccomp
/// filters, Landlock: Linux 5.13, its signal scope 6.12); a worker that
/// cannot apply a part it was asked for refuses the load with UNSUPPORTED
/// naming it, rather than run without it. Discovery and load-by-name probe
/// workers apply the first two parts; the third confines the worker of
/// each loaded plugin. Not covered, whatever the bits: files the worker
/// had open before (its standard output and error), other processes'
/// memory as the user's permissions allow (ptrace, /proc, unless the
/// filesystem part is on). For more, run the host as its
/// own user or in a container.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown bits), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_worker_hardening(
    builder: *mut fidius_host_builder_t,
    flags: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.worker_hardening(Hardening::from_flags(flags)?);
        Ok(())
    })
}

/// Sets what an isolated plugin's next call does after its worker was
/// lost: start a new worker, if fewer than `max_restarts` were started for
/// that handle in the last `window_ms` milliseconds; else fail with
/// WORKER_LOST (naming how the last worker ended) without starting one.
/// `max_restarts` 0: never restart. Default: 5 restarts a minute. A load
/// may override it (`fidius_host_load_options_set_restart_policy`).
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (`window_ms` 0 with restarts
/// allowed), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_set_restart_policy(
    builder: *mut fidius_host_builder_t,
    max_restarts: u32,
    window_ms: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        b.restart_policy(super::restart_policy(max_restarts, window_ms)?);
        Ok(())
    })
}

/// Builds a host. Always consumes `builder`, whether it succeeds or fails.
/// On success `*host_out` is a new host owned by the caller (free with
/// `fidius_host_free`); on failure it is NULL.
///
/// Errors: NULL_ARGUMENT, MISUSE, INVALID_ARGUMENT (signatures required
/// without a trusted key).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_build(
    builder: *mut fidius_host_builder_t,
    host_out: *mut *mut fidius_host_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let checked = arg_handle(builder, "builder").map(|_| ());
        let builder = take_handle(builder);
        let host_out = arg_out_cleared(host_out, "host_out")?;
        checked?;
        let builder = builder.expect("checked to be a live builder");
        *host_out = super::host::new(builder.builder.build()?);
        Ok(())
    })
}

/// Frees a builder that was not built. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_builder_free(builder: *mut fidius_host_builder_t) {
    entry_value((), || drop(take_handle(builder)))
}
