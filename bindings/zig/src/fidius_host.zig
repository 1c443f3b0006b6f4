//! Zig binding of libfidius_host, the fidius plugin host (C API in
//! include/fidius_host.h).
//!
//! Conventions, the same for every type in this file:
//!
//! * Failures are Zig errors: `Error` has one error per status code of the
//!   C API (`error.PluginNotFound` for FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND,
//!   ...). Functions that copy a result into caller memory may also fail
//!   with `error.OutOfMemory` (`AllocError`).
//! * Every fallible function takes `diag: ?*Diagnostics` last. Pass null
//!   when the error name is enough; pass a `Diagnostics` to also get the
//!   library's message and, for `error.PluginError`, the plugin's own code,
//!   message and details, for a mismatch the values expected and found,
//!   for `error.MethodOutOfRange` the index and the method count. One
//!   `Diagnostics` may serve many calls (it always describes the last
//!   one); `deinit` it once at the end.
//! * Text and byte inputs are slices, borrowed for the call only.
//! * Results the library hands over (call outputs, JSON text, interface
//!   text, denied requests) are copied into memory from the allocator you
//!   pass, and the library's buffer is released at once: free them with
//!   that allocator. Stream items are the exception: borrowed from the
//!   `Stream` until its next call, so that pulling needs no allocator. Strings returned without an allocator (names, paths,
//!   metadata, signatures) are borrowed from the handle they came from and
//!   live as long as it does.
//! * Every handle type has `deinit`. Plugins and discovery results stay
//!   valid after their host is deinitialized; plugins keep their own
//!   reference to the interface and egress policy they were loaded with.
//! * Threads: `Host`, `Plugin`, `Discovery`, `PluginInfo`, `Interface`
//!   and `CancelToken` may be used from any number of threads at once.
//!   `HostBuilder`, `InterfaceBuilder`, `LoadOptions`, `Diagnostics` and
//!   `Stream` belong to one thread at a time (a stream may move between
//!   threads).
const std = @import("std");
const Allocator = std.mem.Allocator;

/// The raw C declarations, translated from fidius_host.h, for anything this
/// binding does not wrap.
pub const c = @import("fidius_host_c");

// ---------------------------------------------------------------------------
// Versions and status codes
// ---------------------------------------------------------------------------

/// The version of the header this binding was compiled against.
pub const header_version_string: []const u8 = c.FIDIUS_HOST_VERSION_STRING;
/// `MAJOR * 10000 + MINOR * 100 + PATCH` of the header, to compare with
/// `versionNumber()`.
pub const header_version_number: u32 = c.FIDIUS_HOST_VERSION_NUMBER;

/// The version of the library actually loaded, e.g. "0.1.0".
pub fn version() [:0]const u8 {
    return std.mem.span(c.fidius_host_version());
}

/// The loaded library's version as `MAJOR * 10000 + MINOR * 100 + PATCH`.
pub fn versionNumber() u32 {
    return c.fidius_host_version_number();
}

/// The optional runtimes a library may be built with
/// (`fidius_host_feature` bits).
pub const Features = packed struct(u32) {
    /// WebAssembly component plugins.
    wasm: bool = false,
    /// Python plugins, with CPython embedded.
    python: bool = false,
    _unused: u30 = 0,

    comptime {
        std.debug.assert(@as(u32, @bitCast(Features{ .wasm = true })) == c.FIDIUS_HOST_FEATURE_WASM);
        std.debug.assert(@as(u32, @bitCast(Features{ .python = true })) == c.FIDIUS_HOST_FEATURE_PYTHON);
    }
};

/// The runtimes of the build the header was generated for; `features()`
/// answers for the library actually loaded.
pub const header_features: Features = .{
    .wasm = c.FIDIUS_HOST_BUILT_WITH_WASM != 0,
    .python = c.FIDIUS_HOST_BUILT_WITH_PYTHON != 0,
};

/// The runtimes the loaded library was built with. A library without one
/// fails loads of its plugins with `error.Unsupported`.
pub fn features() Features {
    return @bitCast(c.fidius_host_features());
}

/// The library's name for a status number without prefix
/// ("PLUGIN_NOT_FOUND"), or "UNKNOWN" for a number that is no status.
pub fn statusName(status: u32) [:0]const u8 {
    return std.mem.span(c.fidius_host_status_name(status));
}

/// Every status code of the C API. Non-exhaustive: a newer library may
/// report codes this binding does not know yet.
pub const Status = enum(u32) {
    ok = c.FIDIUS_HOST_STATUS_OK,
    null_argument = c.FIDIUS_HOST_STATUS_NULL_ARGUMENT,
    invalid_argument = c.FIDIUS_HOST_STATUS_INVALID_ARGUMENT,
    invalid_utf8 = c.FIDIUS_HOST_STATUS_INVALID_UTF8,
    internal_panic = c.FIDIUS_HOST_STATUS_INTERNAL_PANIC,
    misuse = c.FIDIUS_HOST_STATUS_MISUSE,
    unsupported = c.FIDIUS_HOST_STATUS_UNSUPPORTED,
    io = c.FIDIUS_HOST_STATUS_IO,
    not_a_regular_file = c.FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE,
    file_too_large = c.FIDIUS_HOST_STATUS_FILE_TOO_LARGE,
    /// Not a failure: a stream has no more items (`Stream.next` answers
    /// null), and what a producer returns at the end of its items.
    stream_end = c.FIDIUS_HOST_STATUS_STREAM_END,
    file_not_found = c.FIDIUS_HOST_STATUS_FILE_NOT_FOUND,
    plugin_not_found = c.FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND,
    not_a_library = c.FIDIUS_HOST_STATUS_NOT_A_LIBRARY,
    architecture_mismatch = c.FIDIUS_HOST_STATUS_ARCHITECTURE_MISMATCH,
    library_load_failed = c.FIDIUS_HOST_STATUS_LIBRARY_LOAD_FAILED,
    registry_missing = c.FIDIUS_HOST_STATUS_REGISTRY_MISSING,
    invalid_registry = c.FIDIUS_HOST_STATUS_INVALID_REGISTRY,
    invalid_magic = c.FIDIUS_HOST_STATUS_INVALID_MAGIC,
    incompatible_registry_version = c.FIDIUS_HOST_STATUS_INCOMPATIBLE_REGISTRY_VERSION,
    incompatible_abi_version = c.FIDIUS_HOST_STATUS_INCOMPATIBLE_ABI_VERSION,
    invalid_descriptor_size = c.FIDIUS_HOST_STATUS_INVALID_DESCRIPTOR_SIZE,
    invalid_plugin_pointer = c.FIDIUS_HOST_STATUS_INVALID_PLUGIN_POINTER,
    invalid_plugin_string = c.FIDIUS_HOST_STATUS_INVALID_PLUGIN_STRING,
    invalid_plugin_count = c.FIDIUS_HOST_STATUS_INVALID_PLUGIN_COUNT,
    unknown_buffer_strategy = c.FIDIUS_HOST_STATUS_UNKNOWN_BUFFER_STRATEGY,
    interface_hash_mismatch = c.FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH,
    buffer_strategy_mismatch = c.FIDIUS_HOST_STATUS_BUFFER_STRATEGY_MISMATCH,
    construct_failed = c.FIDIUS_HOST_STATUS_CONSTRUCT_FAILED,
    duplicate_plugin = c.FIDIUS_HOST_STATUS_DUPLICATE_PLUGIN,
    ambiguous_plugin = c.FIDIUS_HOST_STATUS_AMBIGUOUS_PLUGIN,
    interface_version_mismatch = c.FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH,
    method_count_mismatch = c.FIDIUS_HOST_STATUS_METHOD_COUNT_MISMATCH,
    invalid_manifest = c.FIDIUS_HOST_STATUS_INVALID_MANIFEST,
    invalid_capability = c.FIDIUS_HOST_STATUS_INVALID_CAPABILITY,
    capability_denied = c.FIDIUS_HOST_STATUS_CAPABILITY_DENIED,
    invalid_component = c.FIDIUS_HOST_STATUS_INVALID_COMPONENT,
    capability_missing = c.FIDIUS_HOST_STATUS_CAPABILITY_MISSING,
    no_egress_policy = c.FIDIUS_HOST_STATUS_NO_EGRESS_POLICY,
    invalid_python_plugin = c.FIDIUS_HOST_STATUS_INVALID_PYTHON_PLUGIN,
    config_required = c.FIDIUS_HOST_STATUS_CONFIG_REQUIRED,
    config_invalid = c.FIDIUS_HOST_STATUS_CONFIG_INVALID,
    config_rejected = c.FIDIUS_HOST_STATUS_CONFIG_REJECTED,
    host_already_bound = c.FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND,
    host_bind_failed = c.FIDIUS_HOST_STATUS_HOST_BIND_FAILED,
    worker_unavailable = c.FIDIUS_HOST_STATUS_WORKER_UNAVAILABLE,
    signature_required = c.FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED,
    signature_invalid = c.FIDIUS_HOST_STATUS_SIGNATURE_INVALID,
    invalid_key = c.FIDIUS_HOST_STATUS_INVALID_KEY,
    method_out_of_range = c.FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE,
    not_implemented = c.FIDIUS_HOST_STATUS_NOT_IMPLEMENTED,
    plugin_error = c.FIDIUS_HOST_STATUS_PLUGIN_ERROR,
    plugin_panic = c.FIDIUS_HOST_STATUS_PLUGIN_PANIC,
    plugin_serialization = c.FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION,
    output_too_large = c.FIDIUS_HOST_STATUS_OUTPUT_TOO_LARGE,
    input_too_large = c.FIDIUS_HOST_STATUS_INPUT_TOO_LARGE,
    plugin_protocol = c.FIDIUS_HOST_STATUS_PLUGIN_PROTOCOL,
    invalid_json = c.FIDIUS_HOST_STATUS_INVALID_JSON,
    argument_mismatch = c.FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH,
    unknown_method = c.FIDIUS_HOST_STATUS_UNKNOWN_METHOD,
    no_interface = c.FIDIUS_HOST_STATUS_NO_INTERFACE,
    plugin_trap = c.FIDIUS_HOST_STATUS_PLUGIN_TRAP,
    timeout = c.FIDIUS_HOST_STATUS_TIMEOUT,
    memory_limit = c.FIDIUS_HOST_STATUS_MEMORY_LIMIT,
    instance_pool_exhausted = c.FIDIUS_HOST_STATUS_INSTANCE_POOL_EXHAUSTED,
    stream_mismatch = c.FIDIUS_HOST_STATUS_STREAM_MISMATCH,
    stream_input_failed = c.FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED,
    worker_lost = c.FIDIUS_HOST_STATUS_WORKER_LOST,
    cancelled = c.FIDIUS_HOST_STATUS_CANCELLED,
    invalid_interface = c.FIDIUS_HOST_STATUS_INVALID_INTERFACE,
    _,

    /// The library's name of this status, e.g. "PLUGIN_NOT_FOUND".
    pub fn name(status: Status) [:0]const u8 {
        return statusName(@backingInt(status));
    }
};

/// One error per failure status of the C API (see `Status` and the header
/// for what each means), plus `UnknownStatus` for a code this binding does
/// not know. `.ok` and `.stream_end` are no failures and have no error.
pub const Error = error{
    // Arguments and the host itself (statuses 1-99).
    NullArgument,
    InvalidArgument,
    InvalidUtf8,
    InternalPanic,
    Misuse,
    Unsupported,
    Io,
    NotARegularFile,
    FileTooLarge,
    // Finding and validating a library or package (100-199).
    FileNotFound,
    PluginNotFound,
    NotALibrary,
    ArchitectureMismatch,
    LibraryLoadFailed,
    RegistryMissing,
    InvalidRegistry,
    InvalidMagic,
    IncompatibleRegistryVersion,
    IncompatibleAbiVersion,
    InvalidDescriptorSize,
    InvalidPluginPointer,
    InvalidPluginString,
    InvalidPluginCount,
    UnknownBufferStrategy,
    InterfaceHashMismatch,
    BufferStrategyMismatch,
    ConstructFailed,
    DuplicatePlugin,
    AmbiguousPlugin,
    InterfaceVersionMismatch,
    MethodCountMismatch,
    InvalidManifest,
    InvalidCapability,
    CapabilityDenied,
    InvalidComponent,
    CapabilityMissing,
    NoEgressPolicy,
    InvalidPythonPlugin,
    ConfigRequired,
    ConfigInvalid,
    ConfigRejected,
    HostAlreadyBound,
    HostBindFailed,
    /// An isolated load could not start its worker process: the
    /// `fidius-host-worker` executable is missing or cannot run (the
    /// message names the path tried; see `HostBuilder.setWorkerPath`).
    WorkerUnavailable,
    // Signatures (200-299).
    SignatureRequired,
    SignatureInvalid,
    InvalidKey,
    // Calls (300-399).
    MethodOutOfRange,
    NotImplemented,
    PluginError,
    PluginPanic,
    PluginSerialization,
    OutputTooLarge,
    InputTooLarge,
    PluginProtocol,
    InvalidJson,
    ArgumentMismatch,
    UnknownMethod,
    NoInterface,
    PluginTrap,
    Timeout,
    MemoryLimit,
    InstancePoolExhausted,
    /// The call does not match how the method streams: `callJson` of a
    /// method returning `Stream<T>`, `callStream` of a unary method,
    /// `callClientStream` of one returning a stream, a bidirectional call
    /// without an input or a server stream with one. Nothing was called.
    StreamMismatch,
    /// The items of a `Stream<T>` argument failed: the producer returned an
    /// error, or an item that is not a value of the item type. The plugin
    /// was told its input ended; its result was discarded.
    StreamInputFailed,
    /// The worker process of an isolated plugin died during the call (a
    /// crash, an abort, an exit, a kill from outside, a cap it hit): the
    /// message says how it ended, and no output was delivered. The host
    /// and its other plugins run on. The next call starts a new worker (a
    /// new instance: the plugin's state is lost) if the restart policy
    /// allows, and otherwise fails with this error again.
    WorkerLost,
    /// The call was cancelled through its `CancelToken`
    /// (`Plugin.callCancellable`, `Plugin.callJsonCancellable`): stopped
    /// while it ran (the plugin is left as after a `Timeout` of its
    /// runtime: a WASM guest's next call gets a fresh instance, an
    /// isolated plugin's a new worker), or refused before it started
    /// because the token already was (nothing ran). No output was
    /// delivered.
    Cancelled,
    // Interfaces (400-499).
    InvalidInterface,

    /// The library reported a status code this binding does not know
    /// (a newer library); `Diagnostics.status` has the number.
    UnknownStatus,
};

/// `Error`, or no memory for copying a result.
pub const AllocError = Error || Allocator.Error;

/// Which error stands for which failure status: the one table both
/// directions of the mapping are read from.
const status_errors = [_]struct { Status, Error }{
    .{ .null_argument, error.NullArgument },
    .{ .invalid_argument, error.InvalidArgument },
    .{ .invalid_utf8, error.InvalidUtf8 },
    .{ .internal_panic, error.InternalPanic },
    .{ .misuse, error.Misuse },
    .{ .unsupported, error.Unsupported },
    .{ .io, error.Io },
    .{ .not_a_regular_file, error.NotARegularFile },
    .{ .file_too_large, error.FileTooLarge },
    .{ .file_not_found, error.FileNotFound },
    .{ .plugin_not_found, error.PluginNotFound },
    .{ .not_a_library, error.NotALibrary },
    .{ .architecture_mismatch, error.ArchitectureMismatch },
    .{ .library_load_failed, error.LibraryLoadFailed },
    .{ .registry_missing, error.RegistryMissing },
    .{ .invalid_registry, error.InvalidRegistry },
    .{ .invalid_magic, error.InvalidMagic },
    .{ .incompatible_registry_version, error.IncompatibleRegistryVersion },
    .{ .incompatible_abi_version, error.IncompatibleAbiVersion },
    .{ .invalid_descriptor_size, error.InvalidDescriptorSize },
    .{ .invalid_plugin_pointer, error.InvalidPluginPointer },
    .{ .invalid_plugin_string, error.InvalidPluginString },
    .{ .invalid_plugin_count, error.InvalidPluginCount },
    .{ .unknown_buffer_strategy, error.UnknownBufferStrategy },
    .{ .interface_hash_mismatch, error.InterfaceHashMismatch },
    .{ .buffer_strategy_mismatch, error.BufferStrategyMismatch },
    .{ .construct_failed, error.ConstructFailed },
    .{ .duplicate_plugin, error.DuplicatePlugin },
    .{ .ambiguous_plugin, error.AmbiguousPlugin },
    .{ .interface_version_mismatch, error.InterfaceVersionMismatch },
    .{ .method_count_mismatch, error.MethodCountMismatch },
    .{ .invalid_manifest, error.InvalidManifest },
    .{ .invalid_capability, error.InvalidCapability },
    .{ .capability_denied, error.CapabilityDenied },
    .{ .invalid_component, error.InvalidComponent },
    .{ .capability_missing, error.CapabilityMissing },
    .{ .no_egress_policy, error.NoEgressPolicy },
    .{ .invalid_python_plugin, error.InvalidPythonPlugin },
    .{ .config_required, error.ConfigRequired },
    .{ .config_invalid, error.ConfigInvalid },
    .{ .config_rejected, error.ConfigRejected },
    .{ .host_already_bound, error.HostAlreadyBound },
    .{ .host_bind_failed, error.HostBindFailed },
    .{ .worker_unavailable, error.WorkerUnavailable },
    .{ .signature_required, error.SignatureRequired },
    .{ .signature_invalid, error.SignatureInvalid },
    .{ .invalid_key, error.InvalidKey },
    .{ .method_out_of_range, error.MethodOutOfRange },
    .{ .not_implemented, error.NotImplemented },
    .{ .plugin_error, error.PluginError },
    .{ .plugin_panic, error.PluginPanic },
    .{ .plugin_serialization, error.PluginSerialization },
    .{ .output_too_large, error.OutputTooLarge },
    .{ .input_too_large, error.InputTooLarge },
    .{ .plugin_protocol, error.PluginProtocol },
    .{ .invalid_json, error.InvalidJson },
    .{ .argument_mismatch, error.ArgumentMismatch },
    .{ .unknown_method, error.UnknownMethod },
    .{ .no_interface, error.NoInterface },
    .{ .plugin_trap, error.PluginTrap },
    .{ .timeout, error.Timeout },
    .{ .memory_limit, error.MemoryLimit },
    .{ .instance_pool_exhausted, error.InstancePoolExhausted },
    .{ .stream_mismatch, error.StreamMismatch },
    .{ .stream_input_failed, error.StreamInputFailed },
    .{ .worker_lost, error.WorkerLost },
    .{ .cancelled, error.Cancelled },
    .{ .invalid_interface, error.InvalidInterface },
};

/// The error of a failure status (`error.UnknownStatus` for unknown codes;
/// `.ok` and `.stream_end` are no failures and also give
/// `error.UnknownStatus`).
pub fn errorFromStatus(status: Status) Error {
    inline for (status_errors) |entry| {
        if (status == entry[0]) return entry[1];
    }
    return error.UnknownStatus;
}

/// The status an error stands for (`null` for `error.UnknownStatus`).
pub fn statusFromError(err: Error) ?Status {
    inline for (status_errors) |entry| {
        if (err == entry[1]) return entry[0];
    }
    return null;
}

// ---------------------------------------------------------------------------
// Diagnostics: the details of a failure
// ---------------------------------------------------------------------------

/// The details of the last failure of the calls it was passed to: the
/// status, the library's message (naming the file or plugin, expected versus
/// found) and, for `error.PluginError`, the plugin's own error. A successful
/// call clears it; a call failing before it reaches the library
/// (`error.OutOfMemory`) leaves it as it was. Strings it returns stay valid
/// until the next call it is passed to, or `deinit`.
///
/// A Diagnostics owns the library's error object: do not copy it.
pub const Diagnostics = struct {
    c_error: ?*c.fidius_host_error_t = null,

    pub fn deinit(diag: *Diagnostics) void {
        c.fidius_host_error_free(diag.c_error);
        diag.c_error = null;
    }

    /// The status of the last failure, `.ok` when the last call succeeded.
    pub fn status(diag: *const Diagnostics) Status {
        const c_error = diag.c_error orelse return .ok;
        return @fromBackingInt(c.fidius_host_error_status(c_error));
    }

    /// The message of the last failure, "" when the last call succeeded.
    pub fn message(diag: *const Diagnostics) [:0]const u8 {
        return borrowedString(c.fidius_host_error_message(diag.c_error));
    }

    /// The `code` of the plugin's own error (e.g. "DIV_ZERO"); null unless
    /// the failure was `error.PluginError`.
    pub fn pluginCode(diag: *const Diagnostics) ?[:0]const u8 {
        return optionalString(c.fidius_host_error_plugin_code(diag.c_error));
    }

    /// The `message` of the plugin's own error, when there is one.
    pub fn pluginMessage(diag: *const Diagnostics) ?[:0]const u8 {
        return optionalString(c.fidius_host_error_plugin_message(diag.c_error));
    }

    /// The `details` of the plugin's own error (JSON text), when it gave any.
    pub fn pluginDetails(diag: *const Diagnostics) ?[:0]const u8 {
        return optionalString(c.fidius_host_error_plugin_details(diag.c_error));
    }

    /// The value expected and the value found, for
    /// `error.InterfaceHashMismatch`, `error.InterfaceVersionMismatch`,
    /// `error.MethodCountMismatch` and `error.BufferStrategyMismatch` (a
    /// `BufferStrategy` number); null for any other failure.
    pub fn mismatch(diag: *const Diagnostics) ?Mismatch {
        var found: Mismatch = undefined;
        if (!c.fidius_host_error_mismatch(diag.c_error, &found.expected, &found.found)) return null;
        return found;
    }

    /// The method index a call asked for and the plugin's method count, for
    /// `error.MethodOutOfRange`; null for any other failure.
    pub fn methodOutOfRange(diag: *const Diagnostics) ?MethodOutOfRange {
        var found: MethodOutOfRange = undefined;
        if (!c.fidius_host_error_method_out_of_range(diag.c_error, &found.index, &found.count)) return null;
        return found;
    }

    /// Prints "STATUS_NAME: message" (for `{f}` in format strings).
    pub fn format(diag: *const Diagnostics, writer: *std.Io.Writer) std.Io.Writer.Error!void {
        try writer.print("{s}: {s}", .{ diag.status().name(), diag.message() });
    }
};

/// What a host expected of a plugin and what it found (`Diagnostics.mismatch`).
pub const Mismatch = struct {
    expected: u64,
    found: u64,
};

/// A method index past a plugin's methods (`Diagnostics.methodOutOfRange`).
pub const MethodOutOfRange = struct {
    /// The index the call asked for.
    index: u32,
    /// The plugin's number of methods: valid indices are below it.
    count: u32,
};

/// Where a C call should store its error object: inside `diag` (after
/// releasing the one of its previous call), or nowhere.
fn errorSlot(diag: ?*Diagnostics) ?*?*c.fidius_host_error_t {
    const d = diag orelse return null;
    d.deinit();
    return &d.c_error;
}

/// Turns a C status into success or the matching error.
fn check(status: c.fidius_host_status) Error!void {
    if (status == c.FIDIUS_HOST_STATUS_OK) return;
    return errorFromStatus(@fromBackingInt(status));
}

fn optionalString(ptr: [*c]const u8) ?[:0]const u8 {
    if (ptr == null) return null;
    return std.mem.span(@as([*:0]const u8, @ptrCast(ptr)));
}

fn borrowedString(ptr: [*c]const u8) [:0]const u8 {
    return optionalString(ptr) orelse "";
}

/// Copies a string of `len` bytes the library handed over into
/// `allocator`'s memory and releases the library's copy.
fn takeString(allocator: Allocator, ptr: [*c]u8, len: usize) Allocator.Error![]u8 {
    defer c.fidius_host_string_free(ptr);
    if (ptr == null) return allocator.dupe(u8, "");
    return allocator.dupe(u8, ptr[0..len]);
}

/// Copies bytes the library handed over into `allocator`'s memory and
/// releases the library's buffer.
fn takeBytes(allocator: Allocator, bytes: *c.fidius_host_bytes_t) Allocator.Error![]u8 {
    defer c.fidius_host_bytes_free(bytes);
    if (bytes.len == 0) return allocator.dupe(u8, "");
    return allocator.dupe(u8, bytes.data[0..bytes.len]);
}

/// `strings` as the library's list of strings, in `allocator`'s memory
/// (the strings themselves are borrowed, not copied).
fn strArray(allocator: Allocator, strings: []const []const u8) Allocator.Error![]c.fidius_host_str_t {
    const strs = try allocator.alloc(c.fidius_host_str_t, strings.len);
    for (strings, strs) |string, *str| str.* = .{ .data = string.ptr, .len = string.len };
    return strs;
}

/// The library's allocating constructors return NULL only on an internal
/// failure of the library.
fn notNull(comptime T: type, ptr: ?*T) Error!*T {
    return ptr orelse error.InternalPanic;
}

// ---------------------------------------------------------------------------
// Small value types
// ---------------------------------------------------------------------------

/// What a library with some invalid plugin descriptors does.
pub const LoadPolicy = enum(u32) {
    /// One invalid descriptor rejects the whole library (default).
    strict = c.FIDIUS_HOST_LOAD_POLICY_STRICT,
    /// Invalid descriptors are skipped; the valid plugins stay loadable.
    lenient = c.FIDIUS_HOST_LOAD_POLICY_LENIENT,
};

/// Where native and Python plugins run (WASM plugins are sandboxed
/// in-process and ignore it). See docs/isolation.md.
pub const Isolation = enum(u32) {
    /// In the host process (default): the fastest calls; a crash, abort or
    /// exit in the plugin ends the host.
    in_process = c.FIDIUS_HOST_ISOLATION_IN_PROCESS,
    /// Each plugin handle in a worker process of its own
    /// (`fidius-host-worker`): a fault in the plugin ends the worker and
    /// fails the call with `error.WorkerLost`; a call past the call
    /// deadline kills the worker (`error.Timeout`); the next call starts a
    /// new worker as the restart policy allows. The handle answers as an
    /// in-process one (host functions, `LoadOptions.addBinding`, and
    /// streams are served across the process boundary), and each call or
    /// stream item costs a round trip to the worker (under 10 µs). `HostBuilder.setWorkerHardening` confines the worker
    /// further.
    isolated = c.FIDIUS_HOST_ISOLATION_ISOLATED,
};

/// How each worker process of isolated plugins confines itself
/// (`fidius_host_worker_hardening` bits, for
/// `HostBuilder.setWorkerHardening`). All off by default; see
/// docs/isolation.md, "Hardening". A confined plugin sees a refused system
/// call as its language reports one (EACCES, "Permission denied"); the
/// worker keeps serving.
pub const WorkerHardening = packed struct(u32) {
    /// `PR_SET_NO_NEW_PRIVS`: nothing the worker executes gains privileges
    /// (set-user-ID programs, file capabilities). Implied by the two
    /// others, which the kernel allows only with it.
    no_new_privileges: bool = false,
    /// A seccomp filter on every thread of the worker, from before the
    /// plugin is read: creating a socket or socket pair of any family, and
    /// setting up io_uring, fail with EACCES. The plugin can open no
    /// connection, to the network or to a UNIX socket by path; the
    /// worker's socket to the host, made before, is unaffected.
    deny_network: bool = false,
    /// Landlock, from the moment the plugin is loaded (a library's
    /// initialisers and a Python module's top level run before): files can
    /// be read only beneath the plugin's own path (and, for Python, the
    /// interpreter's module directories); nothing can be written, created
    /// or removed; no process outside the worker can be signalled, no
    /// abstract UNIX socket made outside it connected to. A plugin that
    /// started a thread while it loaded cannot be confined and fails to
    /// load with `error.Unsupported`.
    confine_filesystem: bool = false,
    /// Bits the library does not know: must stay 0 (a value bit-cast from
    /// a `u32` with others set is `error.InvalidArgument`).
    _unused: u29 = 0,

    /// Every part.
    pub const all: WorkerHardening = .{ .no_new_privileges = true, .deny_network = true, .confine_filesystem = true };

    comptime {
        std.debug.assert(@as(u32, @bitCast(WorkerHardening{ .no_new_privileges = true })) == c.FIDIUS_HOST_WORKER_HARDENING_NO_NEW_PRIVILEGES);
        std.debug.assert(@as(u32, @bitCast(WorkerHardening{ .deny_network = true })) == c.FIDIUS_HOST_WORKER_HARDENING_DENY_NETWORK);
        std.debug.assert(@as(u32, @bitCast(WorkerHardening{ .confine_filesystem = true })) == c.FIDIUS_HOST_WORKER_HARDENING_CONFINE_FILESYSTEM);
    }
};

/// How plugin outputs travel.
pub const BufferStrategy = enum(u32) {
    plugin_allocated = c.FIDIUS_HOST_BUFFER_STRATEGY_PLUGIN_ALLOCATED,
    arena = c.FIDIUS_HOST_BUFFER_STRATEGY_ARENA,
    _,
};

/// Which runtime executes a plugin.
pub const Runtime = enum(u32) {
    cdylib = c.FIDIUS_HOST_RUNTIME_CDYLIB,
    python = c.FIDIUS_HOST_RUNTIME_PYTHON,
    wasm = c.FIDIUS_HOST_RUNTIME_WASM,
    _,
};

/// The flags of an interface method (fidius_host_method_flag bits).
pub const MethodFlags = packed struct(u32) {
    /// `#[optional]`: not part of the hash; a plugin may lack it.
    optional: bool = false,
    /// `#[wire(raw)]`: bytes travel unencoded.
    raw: bool = false,
    /// Returns `Stream<T>`.
    streaming: bool = false,
    _unused: u29 = 0,

    comptime {
        std.debug.assert(@as(u32, @bitCast(MethodFlags{ .optional = true })) == c.FIDIUS_HOST_METHOD_FLAG_OPTIONAL);
        std.debug.assert(@as(u32, @bitCast(MethodFlags{ .raw = true })) == c.FIDIUS_HOST_METHOD_FLAG_RAW);
        std.debug.assert(@as(u32, @bitCast(MethodFlags{ .streaming = true })) == c.FIDIUS_HOST_METHOD_FLAG_STREAMING);
    }
};

/// A key/value metadata pair of a plugin, borrowed from the plugin.
pub const Metadata = struct {
    key: [:0]const u8,
    value: [:0]const u8,
};

// ---------------------------------------------------------------------------
// Egress policies (outbound HTTP and sockets of WASM plugins)
// ---------------------------------------------------------------------------

/// What an egress callback answers. Anything but `.allow` denies.
pub const EgressDecision = enum(i32) {
    deny = c.FIDIUS_HOST_EGRESS_DECISION_DENY,
    allow = c.FIDIUS_HOST_EGRESS_DECISION_ALLOW,
    _,
};

/// What a response rule (`EgressRules.response`) answers.
pub const ResponseDirective = enum(i32) {
    /// The guest gets the response.
    forward = c.FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD,
    /// The response is dropped and the request, as the guest made it, goes
    /// to the HTTP rule again (which may set a fresh credential); if the
    /// rule allows it, it is sent once more with the same body and the
    /// guest gets that second response, whatever it is. If the rule denies
    /// it, the guest gets an HTTP-request-denied error (logged as a
    /// denial). Treated as `.forward` when the response's
    /// `retry_available` is false.
    retry_once = c.FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE,
};

/// One header of an outbound request or of its response; same layout as
/// `fidius_host_http_header_t`, so the library's array is used in place.
pub const HttpHeader = extern struct {
    name_ptr: [*:0]const u8,
    value_ptr: [*:0]const u8,

    /// The header name, lowercase.
    pub fn name(header: HttpHeader) [:0]const u8 {
        return std.mem.span(header.name_ptr);
    }

    /// The value as sent (not necessarily UTF-8).
    pub fn value(header: HttpHeader) [:0]const u8 {
        return std.mem.span(header.value_ptr);
    }

    comptime {
        std.debug.assert(@sizeOf(HttpHeader) == @sizeOf(c.fidius_host_http_header_t));
        std.debug.assert(@offsetOf(HttpHeader, "value_ptr") == @offsetOf(c.fidius_host_http_header_t, "value"));
    }
};

/// The library's array of `count` headers, used in place.
fn headerSlice(headers: [*c]const c.fidius_host_http_header_t, count: usize) []const HttpHeader {
    if (count == 0) return &.{};
    return @as([*]const HttpHeader, @ptrCast(headers))[0..count];
}

/// The value of the first of `headers` called `name` (compared without case).
fn findHeader(headers: []const HttpHeader, name: []const u8) ?[:0]const u8 {
    for (headers) |h| {
        if (std.ascii.eqlIgnoreCase(h.name(), name)) return h.value();
    }
    return null;
}

/// An outbound request as an egress callback sees it. Every string is
/// borrowed for the duration of the callback only.
///
/// An HTTP rule (`EgressRules.http`, or `decide` of
/// `EgressPolicy.fromCallback`) may set and remove headers of the request
/// it allows with `setHeader` and `removeHeader`. A response rule sees the
/// request as it was sent, with those edits applied, and cannot edit it.
pub const HttpRequest = struct {
    /// The name of the plugin sending the request.
    plugin: [:0]const u8,
    /// "GET", "POST", ...
    method: [:0]const u8,
    /// "http" or "https".
    scheme: [:0]const u8,
    /// "host", "host:port" or "[ipv6]:port", as the guest wrote it.
    authority: [:0]const u8,
    /// The host alone: lowercase, IPv6 without brackets.
    host: [:0]const u8,
    /// The port, explicit or the scheme's default.
    port: u16,
    /// Path and query, "/" at least.
    path_with_query: [:0]const u8,
    /// The request's headers, names lowercase: as the guest made them for
    /// an HTTP rule, as sent (with the HTTP rule's edits) for a response
    /// rule.
    headers: []const HttpHeader,
    /// Where `setHeader` and `removeHeader` record their edits: the
    /// library's, valid while the HTTP rule that got this request runs;
    /// null for a response rule (and for a request made by hand).
    edits: ?*c.fidius_host_header_edits_t = null,

    fn fromC(request: *const c.fidius_host_http_request_t) HttpRequest {
        return .{
            .plugin = borrowedString(request.plugin),
            .method = borrowedString(request.method),
            .scheme = borrowedString(request.scheme),
            .authority = borrowedString(request.authority),
            .host = borrowedString(request.host),
            .port = request.port,
            .path_with_query = borrowedString(request.path_with_query),
            .headers = headerSlice(request.headers, request.header_count),
            .edits = request.edits,
        };
    }

    /// The value of the first header called `name` (compared without case).
    /// Edits made with `setHeader` do not show here (they apply once the
    /// rule allows the request); a response rule sees them.
    pub fn header(request: HttpRequest, name: []const u8) ?[:0]const u8 {
        return findHeader(request.headers, name);
    }

    /// Sets header `name` (case-insensitive) of the request an HTTP rule is
    /// deciding on to `value` (bytes, not necessarily UTF-8), replacing every
    /// value the guest gave it: a credential, a trace id. The guest never
    /// sees it. Edits apply in call order when the rule allows the request
    /// and are dropped when it denies; a retry (`ResponseDirective.retry_once`)
    /// asks the HTTP rule again from the guest's request, so the rule sets
    /// its headers afresh. Call it only from the HTTP rule, on the request
    /// it got, while it runs. Both texts are copied for the call.
    ///
    /// Errors: `error.Misuse` when the request has no edits (a response
    /// rule's request, one made by hand; `diag` is left as it was) or its
    /// rule has returned; `error.InvalidArgument` for a name that is not an
    /// HTTP token or is one the library frames or routes the request with
    /// (`host`, `content-length`, `transfer-encoding`, `connection`,
    /// `keep-alive`, `proxy-connection`, `upgrade`, `te`, `trailer`,
    /// `http2-settings`), a value with a control character, a name or value
    /// with a NUL byte (refused before the library is asked, `diag` left as
    /// it was), more than 64 edits for one request; `error.InvalidUtf8` for
    /// a name that is not UTF-8; `error.OutOfMemory`. An error leaves the
    /// edits made so far.
    pub fn setHeader(request: HttpRequest, name: []const u8, value: []const u8, diag: ?*Diagnostics) AllocError!void {
        return request.editHeader(name, value, diag);
    }

    /// Removes header `name` (case-insensitive) from the request an HTTP
    /// rule is deciding on, every value of it (e.g. a header the guest set
    /// that should not leave the host). Applied like `setHeader`, with the
    /// same errors (but no value to check).
    pub fn removeHeader(request: HttpRequest, name: []const u8, diag: ?*Diagnostics) AllocError!void {
        return request.editHeader(name, null, diag);
    }

    /// `fidius_host_header_edits_set` with NUL-terminated copies of `name`
    /// and `value` (null: remove), on the stack when they are short.
    fn editHeader(request: HttpRequest, name: []const u8, value: ?[]const u8, diag: ?*Diagnostics) AllocError!void {
        const edits = request.edits orelse return error.Misuse;
        // A NUL byte would cut the C string short: refuse it rather than
        // send something else than asked for.
        if (std.mem.findScalar(u8, name, 0) != null) return error.InvalidArgument;
        if (value) |v| if (std.mem.findScalar(u8, v, 0) != null) return error.InvalidArgument;
        var stack: [512]u8 = undefined;
        var buffer_first: std.heap.BufferFirstAllocator = .init(&stack, std.heap.c_allocator);
        const allocator = buffer_first.allocator();
        const name_z = try allocator.dupeSentinel(u8, name, 0);
        defer allocator.free(name_z);
        const value_z: ?[:0]u8 = if (value) |v| try allocator.dupeSentinel(u8, v, 0) else null;
        defer if (value_z) |v| allocator.free(v);
        try check(c.fidius_host_header_edits_set(edits, name_z.ptr, if (value_z) |v| v.ptr else null, errorSlot(diag)));
    }
};

/// The head of a response to a request an HTTP rule allowed, as a response
/// rule sees it (never the body). Every string is borrowed for the duration
/// of the rule only.
pub const HttpResponse = struct {
    /// The status code, e.g. 401.
    status: u16,
    /// The response's headers, names lowercase.
    headers: []const HttpHeader,
    /// Whether answering `.retry_once` sends the request again: false for
    /// the response to a retry, and when the request's body was not kept
    /// whole (over 64 KiB, trailers, or still being written when the
    /// response came).
    retry_available: bool,

    fn fromC(response: *const c.fidius_host_http_response_t) HttpResponse {
        return .{
            .status = response.status,
            .headers = headerSlice(response.headers, response.header_count),
            .retry_available = response.retry_available,
        };
    }

    /// The value of the first header called `name` (compared without case).
    pub fn header(response: HttpResponse, name: []const u8) ?[:0]const u8 {
        return findHeader(response.headers, name);
    }
};

/// The transport of a socket target.
pub const SocketProtocol = enum(u32) {
    /// An outbound TCP connection.
    tcp = c.FIDIUS_HOST_SOCKET_PROTOCOL_TCP,
    /// An outbound UDP datagram.
    udp = c.FIDIUS_HOST_SOCKET_PROTOCOL_UDP,
    _,
};

/// A socket a guest would open (a TCP connect, a UDP datagram), as a socket
/// rule sees it. Every string is borrowed for the duration of the rule only.
pub const SocketTarget = struct {
    /// The name of the plugin opening it.
    plugin: [:0]const u8,
    protocol: SocketProtocol,
    /// The host name the guest dialed, when a lookup of it (which the DNS
    /// rule allowed) gave `address`; null when the guest dialed an address.
    host: ?[:0]const u8,
    /// The address: "127.0.0.1", "::1" (IPv4-mapped IPv6 as its IPv4 form).
    address: [:0]const u8,
    /// The port. 0 asks about a lookup's answer: may this address reach
    /// the guest at all?
    port: u16,
    /// Whether the address is special (loopback, private, link-local,
    /// shared, multicast, unspecified, broadcast): allow it only if you mean
    /// that very address. A special address reached by name is asked about
    /// twice: with `host` set, then with `host` null; both must allow.
    special: bool,

    fn fromC(target: *const c.fidius_host_socket_target_t) SocketTarget {
        return .{
            .plugin = borrowedString(target.plugin),
            .protocol = @fromBackingInt(target.protocol),
            .host = optionalString(target.host),
            .address = borrowedString(target.address),
            .port = target.port,
            .special = target.special,
        };
    }
};

/// A name a guest that may open sockets looks up, as a DNS rule sees it.
/// Both strings are borrowed for the duration of the rule only.
pub const DnsLookup = struct {
    /// The name of the plugin looking it up.
    plugin: [:0]const u8,
    /// The name: lowercase, no trailing dot.
    name: [:0]const u8,
};

/// The rules of `EgressPolicy.fromRules`, each optional: a missing rule
/// denies everything of its kind (a missing `response` rule observes
/// nothing).
pub fn EgressRules(comptime Context: type) type {
    return struct {
        /// Decides each outbound HTTP request; may set and remove headers of
        /// the request it allows (`HttpRequest.setHeader`).
        http: ?fn (context: Context, request: HttpRequest) EgressDecision = null,
        /// Decides each socket target of guests that declare `tcp` or `udp`.
        socket: ?fn (context: Context, target: SocketTarget) EgressDecision = null,
        /// Decides each name such a guest looks up; without it, guests can
        /// only dial addresses.
        dns: ?fn (context: Context, lookup: DnsLookup) EgressDecision = null,
        /// Sees the head of each response to a request `http` allowed,
        /// before the guest does, with the request as it was sent (with
        /// the headers `http` set; it cannot edit them), and answers
        /// `.forward` or `.retry_once` (e.g. on a 401, to have `http` set a
        /// fresh credential and the request sent once more). It runs on one
        /// of the library's I/O threads while the plugin call waits for the
        /// response (a retry's `http` rule runs there too), possibly on
        /// several threads at once: it must be thread-safe and must not
        /// call into the plugin. Without it, responses go to the guest
        /// unobserved and request bodies are not kept for a retry.
        response: ?fn (context: Context, request: HttpRequest, response: HttpResponse) ResponseDirective = null,
    };
}

/// Turns the library's `void *userdata` back into `Context` and back.
fn ContextAdapter(comptime Context: type, comptime caller: []const u8) type {
    const is_void = Context == void;
    if (!is_void and !(@typeInfo(Context) == .pointer and @typeInfo(Context).pointer.size == .one)) {
        @compileError(caller ++ ": Context must be a single-item pointer or void, not " ++ @typeName(Context));
    }
    return struct {
        fn toContext(userdata: ?*anyopaque) Context {
            return if (is_void) {} else @ptrCast(@alignCast(userdata));
        }

        fn toUserdata(context: Context) ?*anyopaque {
            return if (is_void) null else @ptrCast(@constCast(context));
        }
    };
}

/// Which outbound HTTP requests WASM plugins with the `http` capability may
/// send, and which sockets (and name lookups) those with `tcp` or `udp` may
/// open. Builders and load options keep their own reference, so a policy
/// may be deinitialized right after it is set.
pub const EgressPolicy = struct {
    handle: *c.fidius_host_egress_policy_t,

    /// A policy that asks `decide(context, request)` about every request.
    ///
    /// `Context` is a single-item pointer type (or `void`); `context` is
    /// handed to `decide` unchanged. `decide` runs on the thread that called
    /// the plugin, during that call, possibly on several threads at once: it
    /// must be thread-safe and must not call back into the same plugin.
    /// `release` (may be null) is called once with `context` when the policy
    /// and every builder, host, load options and plugin using it are gone
    /// (also when this function fails): the place to free the context.
    pub fn fromCallback(
        comptime Context: type,
        context: Context,
        comptime decide: fn (context: Context, request: HttpRequest) EgressDecision,
        comptime release: ?fn (context: Context) void,
        diag: ?*Diagnostics,
    ) Error!EgressPolicy {
        const Adapter = ContextAdapter(Context, "EgressPolicy.fromCallback");
        // C-callable functions that turn the library's `void *userdata`
        // back into `Context`.
        const Trampoline = struct {
            fn decideC(userdata: ?*anyopaque, request: [*c]const c.fidius_host_http_request_t) callconv(.c) i32 {
                return @backingInt(decide(Adapter.toContext(userdata), HttpRequest.fromC(request)));
            }

            fn releaseC(userdata: ?*anyopaque) callconv(.c) void {
                release.?(Adapter.toContext(userdata));
            }
        };
        const userdata = Adapter.toUserdata(context);
        var handle: ?*c.fidius_host_egress_policy_t = null;
        try check(c.fidius_host_egress_policy_new_callback(
            Trampoline.decideC,
            userdata,
            if (release != null) Trampoline.releaseC else null,
            &handle,
            errorSlot(diag),
        ));
        return .{ .handle = try notNull(c.fidius_host_egress_policy_t, handle) };
    }

    /// A policy that asks `rules.http(context, request)` about every HTTP
    /// request, `rules.socket(context, target)` about every socket target
    /// (a TCP connect, a UDP datagram) of guests that declare `tcp` or
    /// `udp`, and `rules.dns(context, lookup)` about every name such a guest
    /// looks up. A missing rule denies all of its kind. A lookup's answers
    /// in special ranges reach the guest only when the socket rule allows
    /// that address (asked with port 0), and a later connect to such an
    /// answer is asked with the looked-up name as `host`. The HTTP rule may
    /// set headers on the requests it allows (`HttpRequest.setHeader`), and
    /// `rules.response(context, request, response)`, when given, sees the
    /// head of every response to an allowed request and may have the
    /// request sent once more (`ResponseDirective.retry_once`).
    ///
    /// `Context`, `context` and `release` are as in `fromCallback`; the
    /// rules run like its `decide` (thread-safe, on the calling thread),
    /// except the response rule, and the HTTP rule deciding a retry, which
    /// run on one of the library's I/O threads.
    ///
    ///     var policy = try EgressPolicy.fromRules(*State, &state, .{
    ///         .socket = State.allowSocket,
    ///         .dns = State.allowLookup,
    ///     }, null, null);
    ///
    ///     // A credential, renewed when the server refuses it:
    ///     var policy = try EgressPolicy.fromRules(*Tokens, &tokens, .{
    ///         .http = Tokens.authorize, // request.setHeader("Authorization", ...)
    ///         .response = Tokens.retryOn401, // .retry_once when status is 401
    ///     }, null, null);
    pub fn fromRules(
        comptime Context: type,
        context: Context,
        comptime rules: EgressRules(Context),
        comptime release: ?fn (context: Context) void,
        diag: ?*Diagnostics,
    ) Error!EgressPolicy {
        const Adapter = ContextAdapter(Context, "EgressPolicy.fromRules");
        const Trampoline = struct {
            fn httpC(userdata: ?*anyopaque, request: [*c]const c.fidius_host_http_request_t) callconv(.c) i32 {
                return @backingInt(rules.http.?(Adapter.toContext(userdata), HttpRequest.fromC(request)));
            }

            fn socketC(userdata: ?*anyopaque, target: [*c]const c.fidius_host_socket_target_t) callconv(.c) i32 {
                return @backingInt(rules.socket.?(Adapter.toContext(userdata), SocketTarget.fromC(target)));
            }

            fn dnsC(userdata: ?*anyopaque, plugin: [*c]const u8, name: [*c]const u8) callconv(.c) i32 {
                return @backingInt(rules.dns.?(Adapter.toContext(userdata), .{
                    .plugin = borrowedString(plugin),
                    .name = borrowedString(name),
                }));
            }

            fn responseC(
                userdata: ?*anyopaque,
                request: [*c]const c.fidius_host_http_request_t,
                response: [*c]const c.fidius_host_http_response_t,
            ) callconv(.c) i32 {
                return @backingInt(rules.response.?(
                    Adapter.toContext(userdata),
                    HttpRequest.fromC(request),
                    HttpResponse.fromC(response),
                ));
            }

            fn releaseC(userdata: ?*anyopaque) callconv(.c) void {
                release.?(Adapter.toContext(userdata));
            }
        };
        const callbacks: c.fidius_host_egress_callbacks_t = .{
            .http = if (rules.http != null) &Trampoline.httpC else null,
            .socket = if (rules.socket != null) &Trampoline.socketC else null,
            .dns = if (rules.dns != null) &Trampoline.dnsC else null,
            .response = if (rules.response != null) &Trampoline.responseC else null,
        };
        var handle: ?*c.fidius_host_egress_policy_t = null;
        try check(c.fidius_host_egress_policy_new_callbacks(
            &callbacks,
            Adapter.toUserdata(context),
            if (release != null) Trampoline.releaseC else null,
            &handle,
            errorSlot(diag),
        ));
        return .{ .handle = try notNull(c.fidius_host_egress_policy_t, handle) };
    }

    /// A policy allowing requests whose host and port match one of
    /// `patterns`: "example.com" (any port), "example.com:8080",
    /// "*.example.com" (subdomains only), "127.0.0.1:9000", "[::1]:9000".
    /// No patterns deny everything. The same patterns govern sockets of
    /// guests that declare `tcp` or `udp`: a name is looked up only when a
    /// pattern names it, a target matches by the name its lookup gave it
    /// or by its address and port, and a special address (loopback,
    /// private, ...) only when a pattern names that very address. `allocator` holds the list of patterns
    /// for the library during the call.
    pub fn fromAllowList(allocator: Allocator, patterns: []const []const u8, diag: ?*Diagnostics) AllocError!EgressPolicy {
        for (patterns) |pattern| {
            // No host name has a NUL byte: such a pattern could never match.
            if (std.mem.indexOfScalar(u8, pattern, 0) != null) return error.InvalidArgument;
        }
        const strs = try strArray(allocator, patterns);
        defer allocator.free(strs);
        var handle: ?*c.fidius_host_egress_policy_t = null;
        try check(c.fidius_host_egress_policy_new_allow_list(strs.ptr, strs.len, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_egress_policy_t, handle) };
    }

    pub fn deinit(policy: *EgressPolicy) void {
        c.fidius_host_egress_policy_free(policy.handle);
        policy.* = undefined;
    }
};

// ---------------------------------------------------------------------------
// Host functions (`#[host_interface]` traits plugins call)
// ---------------------------------------------------------------------------

/// What a host function handler may fail with:
///
/// * `error.PluginError`, after `HostCall.fail` set the error: it reaches
///   the plugin as the host function's `Err(PluginError)` (code, message,
///   details). Returned without `fail`, the plugin gets a "HOST_ERROR".
/// * any other `Error` (e.g. from a plugin the handler called): the host
///   could not answer, and the plugin's call fails with a host failure
///   naming that status and the error's name.
/// * `error.OutOfMemory`, `error.WriteFailed` (no memory for the result)
///   and `error.UnknownStatus`: a host failure too, as INTERNAL_PANIC.
pub const HostError = Error || error{ OutOfMemory, WriteFailed };

/// One call of a host function, as its handler sees it. Everything in it
/// is borrowed for the duration of the handler only.
pub const HostCall = struct {
    /// The method of the host interface (its index in declaration order).
    method: u32,
    /// The arguments: for `Binding.initRaw` the bincode of the argument
    /// tuple, for `Binding.initJson` the JSON array of the arguments
    /// (e.g. `["alice",250]`).
    args: []const u8,
    /// The `context` of the plugin call this serves
    /// (`Plugin.callWithContext`, `Plugin.callJsonWithContext`); null for
    /// calls without one, and for calls from a thread the plugin started.
    context: ?*anyopaque,
    /// Where the handler writes the return value: its bincode (raw), or
    /// its JSON text. Write nothing for `()` (raw) or `null` (JSON). For a
    /// `Result<T, PluginError>` method, write the `T`; the error goes
    /// through `fail`. The binding owns the memory and hands it to the
    /// library, which copies it.
    result: *std.Io.Writer,
    c_error: *c.fidius_host_callback_error_t,

    /// `context` as a `*T` (null when the call has no context).
    pub fn contextAs(call: HostCall, comptime T: type) ?*T {
        return @ptrCast(@alignCast(call.context));
    }

    /// Sets the host function's error (`details_json`: JSON text or null)
    /// and returns `error.PluginError`, for `return call.fail(...)`: the
    /// plugin receives it as its `PluginError`. The texts are copied.
    /// Invalid UTF-8 or details that are not JSON give `error.InvalidUtf8`
    /// or `error.InvalidJson` instead (a host failure for the plugin).
    pub fn fail(call: HostCall, code: []const u8, message: []const u8, details_json: ?[]const u8) HostError {
        const gpa = std.heap.c_allocator;
        const code_z = try gpa.dupeSentinel(u8, code, 0);
        defer gpa.free(code_z);
        const message_z = try gpa.dupeSentinel(u8, message, 0);
        defer gpa.free(message_z);
        const details_z = if (details_json) |d| try gpa.dupeSentinel(u8, d, 0) else null;
        defer if (details_z) |d| gpa.free(d);
        try check(c.fidius_host_callback_error_set(call.c_error, code_z.ptr, message_z.ptr, if (details_z) |d| d.ptr else null, null));
        return error.PluginError;
    }
};

/// Host functions for one host interface: a handler plugins call through
/// it, added to `LoadOptions` with `addBinding`. Load options, and every
/// library and plugin it was bound to, keep their own reference, so a
/// binding may be deinitialized right after it is added. May be shared
/// between threads.
///
/// A native library is bound once per mapped image, in the whole process:
/// while any plugin handle of it is alive, a load of it with a different
/// binding of the same interface fails with `error.HostAlreadyBound` (a
/// thread the plugin started from a thread of yours keeps the library
/// mapped until your thread exits). WASM components have no such rule.
pub const Binding = struct {
    handle: *c.fidius_host_binding_t,

    /// A binding of `host_interface` (name, version and hash those the
    /// plugin was built against, e.g. from the interface file the generator
    /// wrote) to `handler`, which gets the bincode arguments and writes the
    /// bincode result (see `HostCall`).
    ///
    /// `Context` is a single-item pointer type (or `void`); `context` is
    /// handed to `handler` unchanged. `handler` runs on the thread the
    /// plugin calls from (the caller's, or a thread the plugin started),
    /// possibly on several threads at once: it must be thread-safe. It may
    /// call into plugins. `release` (may be null) is called once with
    /// `context` when the binding and every load options, library and
    /// plugin holding it are gone (also when this function fails).
    pub fn initRaw(
        host_interface: *const Interface,
        comptime Context: type,
        context: Context,
        comptime handler: fn (context: Context, call: HostCall) HostError!void,
        comptime release: ?fn (context: Context) void,
        diag: ?*Diagnostics,
    ) Error!Binding {
        const T = Trampolines(Context, handler, release);
        var handle: ?*c.fidius_host_binding_t = null;
        try check(c.fidius_host_binding_new_raw(
            host_interface.handle,
            T.rawC,
            T.freeResultC,
            T.userdata(context),
            if (release != null) T.releaseC else null,
            &handle,
            errorSlot(diag),
        ));
        return .{ .handle = try notNull(c.fidius_host_binding_t, handle) };
    }

    /// `initRaw` with a handler that speaks JSON: `call.args` is the JSON
    /// array of the arguments, and the handler writes the JSON of the
    /// return value (nothing, or "null", for none). The library converts
    /// both with the interface's types; a result that does not fit the
    /// return type is a host failure for the plugin.
    pub fn initJson(
        host_interface: *const Interface,
        comptime Context: type,
        context: Context,
        comptime handler: fn (context: Context, call: HostCall) HostError!void,
        comptime release: ?fn (context: Context) void,
        diag: ?*Diagnostics,
    ) Error!Binding {
        const T = Trampolines(Context, handler, release);
        var handle: ?*c.fidius_host_binding_t = null;
        try check(c.fidius_host_binding_new_json(
            host_interface.handle,
            T.jsonC,
            T.freeResultC,
            T.userdata(context),
            if (release != null) T.releaseC else null,
            &handle,
            errorSlot(diag),
        ));
        return .{ .handle = try notNull(c.fidius_host_binding_t, handle) };
    }

    pub fn deinit(binding: *Binding) void {
        c.fidius_host_binding_free(binding.handle);
        binding.* = undefined;
    }

    /// The C callbacks of a handler: they turn the library's `void
    /// *userdata` back into `Context`, run the handler with a result writer
    /// and turn its outcome into a status.
    fn Trampolines(
        comptime Context: type,
        comptime handler: fn (context: Context, call: HostCall) HostError!void,
        comptime release: ?fn (context: Context) void,
    ) type {
        const is_void = Context == void;
        if (!is_void and !(@typeInfo(Context) == .pointer and @typeInfo(Context).pointer.size == .one)) {
            @compileError("Binding: Context must be a single-item pointer or void, not " ++ @typeName(Context));
        }
        return struct {
            /// Results live in C-allocator memory until `freeResultC`.
            const result_allocator = std.heap.c_allocator;

            fn userdata(context: Context) ?*anyopaque {
                return if (is_void) null else @ptrCast(@constCast(context));
            }

            fn toContext(data: ?*anyopaque) Context {
                return if (is_void) {} else @ptrCast(@alignCast(data));
            }

            /// Runs the handler; on success `result` holds what it wrote
            /// (null when nothing), in `result_allocator`'s memory.
            fn run(
                data: ?*anyopaque,
                call_context: ?*anyopaque,
                method: u32,
                args: []const u8,
                result: *?[*]u8,
                result_len: *usize,
                c_error: ?*c.fidius_host_callback_error_t,
            ) u32 {
                var writer: std.Io.Writer.Allocating = .init(result_allocator);
                defer writer.deinit();
                const call: HostCall = .{
                    .method = method,
                    .args = args,
                    .context = call_context,
                    .result = &writer.writer,
                    .c_error = c_error.?,
                };
                handler(toContext(data), call) catch |err| return failure(c_error.?, err);
                if (writer.written().len == 0) return c.FIDIUS_HOST_STATUS_OK;
                const owned = writer.toOwnedSlice() catch |err| return failure(c_error.?, err);
                result.* = owned.ptr;
                result_len.* = owned.len;
                return c.FIDIUS_HOST_STATUS_OK;
            }

            /// The status of a handler's error. Anything but a plugin error
            /// also names the error in the callback's error message.
            fn failure(c_error: *c.fidius_host_callback_error_t, err: HostError) u32 {
                if (err == error.PluginError) return c.FIDIUS_HOST_STATUS_PLUGIN_ERROR;
                _ = c.fidius_host_callback_error_set(c_error, "HOST_FAILURE", @errorName(err), null, null);
                const status: Status = switch (err) {
                    error.OutOfMemory, error.WriteFailed => .internal_panic,
                    inline else => |e| statusFromError(e) orelse .internal_panic,
                };
                return @backingInt(status);
            }

            fn rawC(
                data: ?*anyopaque,
                call_context: ?*anyopaque,
                method: u32,
                args: [*c]const u8,
                args_len: usize,
                result: [*c][*c]u8,
                result_len: [*c]usize,
                c_error: ?*c.fidius_host_callback_error_t,
            ) callconv(.c) u32 {
                const arg_bytes: []const u8 = if (args_len == 0) &.{} else args[0..args_len];
                var out: ?[*]u8 = null;
                const status = run(data, call_context, method, arg_bytes, &out, result_len, c_error);
                result.* = out;
                return status;
            }

            fn jsonC(
                data: ?*anyopaque,
                call_context: ?*anyopaque,
                method: u32,
                args_json: [*c]const u8,
                args_json_len: usize,
                result_json: [*c][*c]u8,
                result_json_len: [*c]usize,
                c_error: ?*c.fidius_host_callback_error_t,
            ) callconv(.c) u32 {
                const arg_text: []const u8 = if (args_json_len == 0) &.{} else args_json[0..args_json_len];
                var out: ?[*]u8 = null;
                const status = run(data, call_context, method, arg_text, &out, result_json_len, c_error);
                result_json.* = out;
                return status;
            }

            fn freeResultC(_: ?*anyopaque, result: ?*anyopaque, result_len: usize) callconv(.c) void {
                const bytes: [*]u8 = @ptrCast(result orelse return);
                result_allocator.free(bytes[0..result_len]);
            }

            fn releaseC(data: ?*anyopaque) callconv(.c) void {
                release.?(toContext(data));
            }
        };
    }
};

// ---------------------------------------------------------------------------
// Interfaces
// ---------------------------------------------------------------------------

/// A validated, immutable interface: name, version, methods and types. Set
/// on `LoadOptions`, it is checked at load and enables JSON calls. Made by
/// an `InterfaceBuilder` or read from an interface file (TOML).
pub const Interface = struct {
    handle: *c.fidius_host_interface_t,

    /// Reads an interface file.
    pub fn fromFile(path: []const u8, diag: ?*Diagnostics) Error!Interface {
        var handle: ?*c.fidius_host_interface_t = null;
        try check(c.fidius_host_interface_new_from_file(path.ptr, path.len, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_interface_t, handle) };
    }

    /// Parses interface-file text.
    pub fn fromToml(toml: []const u8, diag: ?*Diagnostics) Error!Interface {
        var handle: ?*c.fidius_host_interface_t = null;
        try check(c.fidius_host_interface_new_from_toml(toml.ptr, toml.len, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_interface_t, handle) };
    }

    pub fn deinit(interface: *Interface) void {
        c.fidius_host_interface_free(interface.handle);
        interface.* = undefined;
    }

    /// The interface as interface-file text, in `allocator`'s memory.
    pub fn toToml(interface: Interface, allocator: Allocator, diag: ?*Diagnostics) AllocError![]u8 {
        var toml: [*c]u8 = null;
        try check(c.fidius_host_interface_to_toml(interface.handle, &toml, errorSlot(diag)));
        defer c.fidius_host_string_free(toml);
        return allocator.dupe(u8, borrowedString(toml));
    }

    /// The interface (trait) name.
    pub fn name(interface: Interface) [:0]const u8 {
        return borrowedString(c.fidius_host_interface_name(interface.handle));
    }

    pub fn version(interface: Interface) u32 {
        return c.fidius_host_interface_version(interface.handle);
    }

    /// The hash of the required methods, as `#[plugin_interface]` computes it.
    pub fn hash(interface: Interface) u64 {
        return c.fidius_host_interface_hash(interface.handle);
    }

    /// The WASM component export name, if one was given.
    pub fn wasmExport(interface: Interface) ?[:0]const u8 {
        return optionalString(c.fidius_host_interface_wasm_export(interface.handle));
    }

    /// The type plugins of the interface are configured with, if it
    /// declares one.
    pub fn configType(interface: Interface) ?[:0]const u8 {
        return optionalString(c.fidius_host_interface_config_type(interface.handle));
    }

    pub fn methodCount(interface: Interface) u32 {
        return c.fidius_host_interface_method_count(interface.handle);
    }

    /// The canonical signature of method `index` (what the hash sees), or
    /// null when out of range.
    pub fn methodSignature(interface: Interface, index: u32) ?[:0]const u8 {
        return optionalString(c.fidius_host_interface_method_signature(interface.handle, index));
    }

    /// The flags of method `index` (all false when out of range).
    pub fn methodFlags(interface: Interface, index: u32) MethodFlags {
        return @bitCast(c.fidius_host_interface_method_flags(interface.handle, index));
    }

    /// The index of the method called `method_name`.
    pub fn methodIndex(interface: Interface, method_name: []const u8, diag: ?*Diagnostics) Error!u32 {
        var index: u32 = 0;
        try check(c.fidius_host_interface_method_index(interface.handle, method_name.ptr, method_name.len, &index, errorSlot(diag)));
        return index;
    }
};

/// Collects an interface's methods and types; `build` checks them and
/// makes an `Interface` (the builder stays usable).
pub const InterfaceBuilder = struct {
    handle: *c.fidius_host_interface_builder_t,

    /// Starts an interface called `name` (the Rust trait name) at `version`.
    pub fn init(name: []const u8, interface_version: u32, diag: ?*Diagnostics) Error!InterfaceBuilder {
        var handle: ?*c.fidius_host_interface_builder_t = null;
        try check(c.fidius_host_interface_builder_new(name.ptr, name.len, interface_version, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_interface_builder_t, handle) };
    }

    pub fn deinit(builder: *InterfaceBuilder) void {
        c.fidius_host_interface_builder_free(builder.handle);
        builder.* = undefined;
    }

    /// Sets the WASM component export name, e.g.
    /// "fidius:calculator/calculator@0.1.0".
    pub fn setWasmExport(builder: *InterfaceBuilder, export_name: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_interface_builder_set_wasm_export(builder.handle, export_name.ptr, export_name.len, errorSlot(diag)));
    }

    /// Declares the type plugins are constructed with (`config = C`), e.g.
    /// "ScaleConfig" (declared with addType) or "Vec<String>"; the hash
    /// does not change.
    pub fn setConfigType(builder: *InterfaceBuilder, type_name: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_interface_builder_set_config_type(builder.handle, type_name.ptr, type_name.len, errorSlot(diag)));
    }

    /// Adds the next method (declaration order) from its fidius signature,
    /// e.g. "add:i64,i64->i64" or "ping:->".
    pub fn addMethod(builder: *InterfaceBuilder, signature: []const u8, flags: MethodFlags, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_interface_builder_add_method(builder.handle, signature.ptr, signature.len, @bitCast(flags), errorSlot(diag)));
    }

    /// Declares a struct or enum in Rust syntax, e.g.
    /// "struct Point { x: f64, y: f64 }".
    pub fn addType(builder: *InterfaceBuilder, declaration: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_interface_builder_add_type(builder.handle, declaration.ptr, declaration.len, errorSlot(diag)));
    }

    /// Checks the whole interface and computes its hash.
    pub fn build(builder: *const InterfaceBuilder, diag: ?*Diagnostics) Error!Interface {
        var handle: ?*c.fidius_host_interface_t = null;
        try check(c.fidius_host_interface_builder_build(builder.handle, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_interface_t, handle) };
    }
};

/// Computes the fidius interface hash of required-method signatures, as
/// `#[plugin_interface]` does. `allocator` holds the signature list for the
/// library during the call.
pub fn signaturesHash(allocator: Allocator, signatures: []const []const u8, diag: ?*Diagnostics) AllocError!u64 {
    const strs = try strArray(allocator, signatures);
    defer allocator.free(strs);
    var hash: u64 = 0;
    try check(c.fidius_host_signatures_hash(strs.ptr, strs.len, &hash, errorSlot(diag)));
    return hash;
}

/// Compiles a WebAssembly component ahead of time for this library: the
/// `.cwasm` a package may carry next to its component, in `allocator`'s
/// memory.
pub fn precompileComponent(allocator: Allocator, component: []const u8, diag: ?*Diagnostics) AllocError![]u8 {
    var cwasm: c.fidius_host_bytes_t = .{ .data = null, .len = 0, .owner = null };
    try check(c.fidius_host_precompile_component(component.ptr, component.len, &cwasm, errorSlot(diag)));
    return takeBytes(allocator, &cwasm);
}

// ---------------------------------------------------------------------------
// Load options
// ---------------------------------------------------------------------------

/// Options of a load: the interface the plugin must match, and per-load
/// overrides of the host's WASM limits, Python deadline, egress policy,
/// isolation and restart policy.
/// Loading only reads them, so one `LoadOptions` may serve many loads.
pub const LoadOptions = struct {
    handle: *c.fidius_host_load_options_t,

    pub fn init() Error!LoadOptions {
        return .{ .handle = try notNull(c.fidius_host_load_options_t, c.fidius_host_load_options_new()) };
    }

    pub fn deinit(options: *LoadOptions) void {
        c.fidius_host_load_options_free(options.handle);
        options.* = undefined;
    }

    /// Sets the interface the plugin must match (required for WASM and
    /// Python plugins); null removes it. The options keep their own
    /// reference.
    pub fn setInterface(options: *LoadOptions, interface: ?*const Interface, diag: ?*Diagnostics) Error!void {
        const handle = if (interface) |i| i.handle else null;
        try check(c.fidius_host_load_options_set_interface(options.handle, handle, errorSlot(diag)));
    }

    /// Overrides the host's WASM call deadline; 0 means no deadline.
    pub fn setWasmDeadlineMs(options: *LoadOptions, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_wasm_deadline_ms(options.handle, milliseconds, errorSlot(diag)));
    }

    /// Overrides the host's Python deadline (each call, and the import at
    /// load); 0 means no deadline.
    pub fn setPythonDeadlineMs(options: *LoadOptions, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_python_deadline_ms(options.handle, milliseconds, errorSlot(diag)));
    }

    /// Overrides the host's isolation (`HostBuilder.setIsolation`) for
    /// plugins loaded with these options.
    pub fn setIsolation(options: *LoadOptions, isolation: Isolation, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_isolation(options.handle, @backingInt(isolation), errorSlot(diag)));
    }

    /// Overrides the host's restart policy (`HostBuilder.setRestartPolicy`)
    /// for isolated plugins loaded with these options. Errors:
    /// `error.InvalidArgument` for `window_ms` 0 with restarts allowed.
    pub fn setRestartPolicy(options: *LoadOptions, max_restarts: u32, window_ms: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_restart_policy(options.handle, max_restarts, window_ms, errorSlot(diag)));
    }

    /// Overrides the host's cap on a WASM guest's memory, in bytes.
    pub fn setWasmMemoryLimit(options: *LoadOptions, bytes: usize, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_wasm_memory_limit(options.handle, bytes, errorSlot(diag)));
    }

    /// Overrides whether every WASM call runs on a fresh instance.
    pub fn setWasmFreshInstancePerCall(options: *LoadOptions, fresh: bool, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_wasm_fresh_instance_per_call(options.handle, fresh, errorSlot(diag)));
    }

    /// Uses `policy` instead of the host's egress policy; null removes it.
    pub fn setEgressPolicy(options: *LoadOptions, policy: ?*const EgressPolicy, diag: ?*Diagnostics) Error!void {
        const handle = if (policy) |p| p.handle else null;
        try check(c.fidius_host_load_options_set_egress_policy(options.handle, handle, errorSlot(diag)));
    }

    /// The configuration the plugin is constructed with, as bincode of the
    /// interface's config type (copied; checked against the type when the
    /// interface declares it).
    pub fn setConfig(options: *LoadOptions, config: []const u8, diag: ?*Diagnostics) Error!void {
        const ptr = if (config.len == 0) null else config.ptr;
        try check(c.fidius_host_load_options_set_config(options.handle, ptr, config.len, errorSlot(diag)));
    }

    /// The configuration as JSON text, e.g. `{"factor": 3}`.
    pub fn setConfigJson(options: *LoadOptions, json: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_set_config_json(options.handle, json.ptr, json.len, errorSlot(diag)));
    }

    /// Loads without a configuration again.
    pub fn clearConfig(options: *LoadOptions, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_clear_config(options.handle, errorSlot(diag)));
    }

    /// Adds host functions the plugin may call: one binding per host
    /// interface name, a later one replacing an earlier one of the same
    /// name. The options keep their own reference. A native library gets
    /// it bound at load (see `Binding` for the once-per-library rule and
    /// `error.HostAlreadyBound`); an isolated one (`Isolation.isolated`) is
    /// bound in its own worker, whose calls to the host run the handler in
    /// the host, on the thread waiting for the plugin call, with that
    /// call's context. Python plugins cannot call host functions (loading
    /// one with a binding is `error.Unsupported`). Bindings a plugin does
    /// not import are ignored.
    pub fn addBinding(options: *LoadOptions, binding: *const Binding, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_load_options_add_binding(options.handle, binding.handle, errorSlot(diag)));
    }
};

// ---------------------------------------------------------------------------
// Host and its builder
// ---------------------------------------------------------------------------

/// The options of a host. `build` consumes it (also on failure); `deinit`
/// frees one that was not built, and does nothing after `build`.
pub const HostBuilder = struct {
    handle: ?*c.fidius_host_builder_t,

    /// A builder with defaults: no search paths, strict policy, no
    /// signatures required, a 64 MiB output limit.
    pub fn init() Error!HostBuilder {
        return .{ .handle = try notNull(c.fidius_host_builder_t, c.fidius_host_builder_new()) };
    }

    pub fn deinit(builder: *HostBuilder) void {
        c.fidius_host_builder_free(builder.handle);
        builder.handle = null;
    }

    /// Builds the host, consuming the builder whether it succeeds or not.
    pub fn build(builder: *HostBuilder, diag: ?*Diagnostics) Error!Host {
        const consumed = builder.handle;
        builder.handle = null;
        var host: ?*c.fidius_host_t = null;
        try check(c.fidius_host_builder_build(consumed, &host, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_t, host) };
    }

    /// Adds a directory to scan for plugins (scanned in the order added).
    pub fn addSearchPath(builder: *HostBuilder, path: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_add_search_path(builder.handle, path.ptr, path.len, errorSlot(diag)));
    }

    pub fn setLoadPolicy(builder: *HostBuilder, policy: LoadPolicy, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_load_policy(builder.handle, @backingInt(policy), errorSlot(diag)));
    }

    /// Requires a valid detached signature (`<file>.sig`) for every library
    /// and package; needs at least one trusted key.
    pub fn setRequireSignature(builder: *HostBuilder, required: bool, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_require_signature(builder.handle, required, errorSlot(diag)));
    }

    /// Trusts an Ed25519 public key given as its raw 32 bytes.
    pub fn addTrustedKey(builder: *HostBuilder, key: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_add_trusted_key(builder.handle, key.ptr, key.len, errorSlot(diag)));
    }

    /// Trusts the public key in a `NAME.public` file of `fidius keygen`.
    pub fn addTrustedKeyFile(builder: *HostBuilder, path: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_add_trusted_key_file(builder.handle, path.ptr, path.len, errorSlot(diag)));
    }

    /// Only accepts plugins whose interface hash is `hash`.
    pub fn setInterfaceHash(builder: *HostBuilder, hash: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_interface_hash(builder.handle, hash, errorSlot(diag)));
    }

    /// Only accepts plugins with this buffer strategy.
    pub fn setBufferStrategy(builder: *HostBuilder, strategy: BufferStrategy, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_buffer_strategy(builder.handle, @backingInt(strategy), errorSlot(diag)));
    }

    /// The default deadline of each WASM call (default: the call deadline);
    /// 0 means none. A call past it fails with `error.Timeout`.
    pub fn setWasmDeadlineMs(builder: *HostBuilder, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_wasm_deadline_ms(builder.handle, milliseconds, errorSlot(diag)));
    }

    /// The default deadline of each call in every runtime that can stop one
    /// (default 10 000 ms): WASM calls, Python calls and imports; 0 means
    /// none. `setWasmDeadlineMs` and `setPythonDeadlineMs` override it,
    /// whatever the order. Native (cdylib) calls in-process have no
    /// deadline; isolated ones (`setIsolation`) have this one, and past it
    /// their worker is killed (`error.Timeout`).
    pub fn setCallDeadlineMs(builder: *HostBuilder, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_call_deadline_ms(builder.handle, milliseconds, errorSlot(diag)));
    }

    /// The default deadline of each Python call and of a Python plugin's
    /// import at load (default: the call deadline); 0 means none. Past it
    /// the call or load fails with `error.Timeout` and the plugin stays
    /// usable. Code blocked inside C sees the deadline only when that C
    /// call returns; `time.sleep` is cut at the deadline.
    pub fn setPythonDeadlineMs(builder: *HostBuilder, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_python_deadline_ms(builder.handle, milliseconds, errorSlot(diag)));
    }

    /// The largest library file the host reads, in bytes (default 512 MiB;
    /// 0 fails with `error.InvalidArgument`). A larger one fails with `error.FileTooLarge`,
    /// read no further than the limit.
    pub fn setMaxLibrarySize(builder: *HostBuilder, bytes: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_max_library_size(builder.handle, bytes, errorSlot(diag)));
    }

    /// The largest package (WASM or Python), all its files together, in
    /// bytes (default 512 MiB; 0 fails with `error.InvalidArgument`). A larger one fails with
    /// `error.FileTooLarge`, read no further than the limit.
    pub fn setMaxPackageSize(builder: *HostBuilder, bytes: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_max_package_size(builder.handle, bytes, errorSlot(diag)));
    }

    /// The default cap on a WASM guest's memory, in bytes (default 256 MiB).
    /// Growing past it fails the call with `error.MemoryLimit`.
    pub fn setWasmMemoryLimit(builder: *HostBuilder, bytes: usize, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_wasm_memory_limit(builder.handle, bytes, errorSlot(diag)));
    }

    /// Refuses packages asking for `capability`: exact ("stdout") or a
    /// prefix ("fs", "env", "http").
    pub fn addDeniedCapability(builder: *HostBuilder, capability: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_add_denied_capability(builder.handle, capability.ptr, capability.len, errorSlot(diag)));
    }

    /// Whether a precompiled `.cwasm` not covered by a verified signature
    /// may be loaded (default false). It is native code: trust it first.
    pub fn setAllowUnsignedPrecompiled(builder: *HostBuilder, allow: bool, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_allow_unsigned_precompiled(builder.handle, allow, errorSlot(diag)));
    }

    /// Keeps compiled WASM components in directory `dir`, at most
    /// `max_bytes` of them (0: 256 MiB), so that later processes load a
    /// component without compiling it. The directory (created, mode 0700,
    /// when missing) and its key file must belong to this user and be
    /// writable by nobody else (error.InvalidArgument otherwise). An entry
    /// that fails its check is compiled again, never run.
    pub fn setWasmCompileCache(builder: *HostBuilder, dir: []const u8, max_bytes: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_wasm_compile_cache(builder.handle, dir.ptr, dir.len, max_bytes, errorSlot(diag)));
    }

    /// Whether every WASM call runs on a fresh instance (no state between
    /// calls, parallel calls) instead of one persistent instance per plugin.
    pub fn setWasmFreshInstancePerCall(builder: *HostBuilder, fresh: bool, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_wasm_fresh_instance_per_call(builder.handle, fresh, errorSlot(diag)));
    }

    /// Takes WASM instances from a pool of `slots` preallocated slots (0,
    /// the default: no pool): instantiation about twice as fast, for fresh
    /// instances per call. At most `slots` instances live at once (one per
    /// persistent plugin, one per running fresh call); none free is
    /// `error.InstancePoolExhausted`. Each slot reserves address space (not
    /// memory) for a 4 GiB linear memory.
    pub fn setWasmInstancePool(builder: *HostBuilder, slots: u32, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_wasm_instance_pool(builder.handle, slots, errorSlot(diag)));
    }

    /// The host's egress policy; null removes it. Without one, WASM
    /// packages that may send HTTP fail to load with `error.NoEgressPolicy`.
    pub fn setEgressPolicy(builder: *HostBuilder, policy: ?*const EgressPolicy, diag: ?*Diagnostics) Error!void {
        const handle = if (policy) |p| p.handle else null;
        try check(c.fidius_host_builder_set_egress_policy(builder.handle, handle, errorSlot(diag)));
    }

    /// The largest output one call may return (default 64 MiB).
    pub fn setMaxOutputSize(builder: *HostBuilder, bytes: usize, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_max_output_size(builder.handle, bytes, errorSlot(diag)));
    }

    /// Where native and Python plugins run by default (default
    /// `.in_process`); `LoadOptions.setIsolation` overrides it per load.
    /// An isolated plugin is loaded by its worker with this host's settings
    /// (signatures included: the worker maps exactly the bytes it
    /// verified); loading by name probes each candidate library in a
    /// worker, so one whose loading crashes is a skipped file. Each call
    /// and the load have the call deadline (the Python deadline for Python
    /// plugins). See `Isolation` and docs/isolation.md.
    pub fn setIsolation(builder: *HostBuilder, isolation: Isolation, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_isolation(builder.handle, @backingInt(isolation), errorSlot(diag)));
    }

    /// Where unsigned libraries are opened to list their plugins: by
    /// `Host.discover`, and by `Host.load` (by name) to find the library
    /// that holds the plugin, which is then loaded as `setIsolation` says.
    /// `.in_process` (the default) maps them in this process: a library
    /// whose initialisers crash or hang takes the host with it.
    /// `.isolated` opens them in a worker (`setWorkerPath`) kept for the
    /// whole scan: a library that takes its worker down is a skipped entry
    /// (`.worker_lost` naming the signal, or `.timeout` past the call
    /// deadline), the next one gets a new worker, and discovery maps no
    /// unsigned library in the host. It costs a worker start per scan and
    /// a round trip per library. With signatures required only verified
    /// bytes are mapped, in-process, and this setting is not used. See
    /// docs/isolation.md.
    pub fn setDiscoveryIsolation(builder: *HostBuilder, isolation: Isolation, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_discovery_isolation(builder.handle, @backingInt(isolation), errorSlot(diag)));
    }

    /// The worker executable of isolated plugins. Default: the
    /// `fidius-host-worker` next to the shared library, else in
    /// `../libexec` from there (where `make install` puts it). The path is
    /// used as given when a worker starts: a missing or unrunnable file
    /// makes isolated loads fail with `error.WorkerUnavailable`. Errors:
    /// `error.InvalidArgument` (empty, with a NUL byte, or over 4096 bytes),
    /// `error.InvalidUtf8`.
    pub fn setWorkerPath(builder: *HostBuilder, path: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_worker_path(builder.handle, path.ptr, path.len, errorSlot(diag)));
    }

    /// Caps each worker's address space at `bytes` (RLIMIT_AS; 0, the
    /// default: no cap). A plugin allocating past it usually aborts its
    /// worker: the call fails with `error.WorkerLost`, the message naming
    /// the cap. The cap counts the whole worker (this library, Python when
    /// loaded): allow 256 MiB or more.
    pub fn setWorkerMemoryLimit(builder: *HostBuilder, bytes: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_worker_memory_limit(builder.handle, bytes, errorSlot(diag)));
    }

    /// Caps each worker's CPU time at `seconds` (RLIMIT_CPU; 0, the
    /// default: no cap): the kernel kills a worker that used it (SIGXCPU)
    /// and the call fails with `error.WorkerLost`. Unlike the call deadline
    /// it counts across calls, for the worker's life.
    pub fn setWorkerCpuLimit(builder: *HostBuilder, seconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_worker_cpu_limit(builder.handle, seconds, errorSlot(diag)));
    }

    /// How each worker confines itself (default: not at all; see
    /// `WorkerHardening` for each part), e.g. `.all`. Each part needs a
    /// kernel feature (seccomp filters; Landlock: Linux 5.13, its signal
    /// scope 6.12): a worker that cannot apply a part it was asked for
    /// refuses the load with `error.Unsupported` naming it rather than run
    /// without it. Discovery and load-by-name probe workers apply the first
    /// two parts; the third confines the worker of each loaded plugin. Not
    /// covered: files the worker had open before (its standard output and
    /// error), UNIX sockets by path, other processes' memory as the user's
    /// permissions allow (ptrace, /proc, unless `confine_filesystem` is
    /// on). Errors: `error.InvalidArgument` for bits the library does not
    /// know ("unknown bits").
    pub fn setWorkerHardening(builder: *HostBuilder, hardening: WorkerHardening, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_worker_hardening(builder.handle, @bitCast(hardening), errorSlot(diag)));
    }

    /// What an isolated plugin's next call does after its worker was lost:
    /// start a new worker if fewer than `max_restarts` were started for
    /// that handle in the last `window_ms` milliseconds, else fail with
    /// `error.WorkerLost` (naming how the last worker ended) without
    /// starting one. `max_restarts` 0: never restart. Default: 5 restarts
    /// a minute; `LoadOptions.setRestartPolicy` overrides it per load.
    /// Errors: `error.InvalidArgument` for `window_ms` 0 with restarts
    /// allowed.
    pub fn setRestartPolicy(builder: *HostBuilder, max_restarts: u32, window_ms: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_builder_set_restart_policy(builder.handle, max_restarts, window_ms, errorSlot(diag)));
    }
};

/// A plugin host: finds, verifies and loads plugins from its search paths.
pub const Host = struct {
    handle: *c.fidius_host_t,

    pub fn deinit(host: *Host) void {
        c.fidius_host_free(host.handle);
        host.* = undefined;
    }

    /// Scans the search paths: every valid plugin, and every skipped file
    /// with the reason.
    pub fn discover(host: Host, diag: ?*Diagnostics) Error!Discovery {
        var handle: ?*c.fidius_host_discovery_t = null;
        try check(c.fidius_host_discover(host.handle, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_discovery_t, handle) };
    }

    /// Loads the plugin called `name` from the first library or package in
    /// the search paths that has it.
    pub fn load(host: Host, name: []const u8, options: ?*const LoadOptions, diag: ?*Diagnostics) Error!Plugin {
        var handle: ?*c.fidius_host_plugin_t = null;
        const options_handle = if (options) |o| o.handle else null;
        try check(c.fidius_host_load(host.handle, name.ptr, name.len, options_handle, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_plugin_t, handle) };
    }

    /// Loads a plugin from the library file or package directory `path`
    /// (which need not be in a search path). `name` selects the plugin;
    /// null loads the only plugin of a single-plugin library.
    pub fn loadPath(host: Host, path: []const u8, name: ?[]const u8, options: ?*const LoadOptions, diag: ?*Diagnostics) Error!Plugin {
        var handle: ?*c.fidius_host_plugin_t = null;
        const options_handle = if (options) |o| o.handle else null;
        const name_ptr = if (name) |n| n.ptr else null;
        const name_len = if (name) |n| n.len else 0;
        try check(c.fidius_host_load_path(host.handle, path.ptr, path.len, name_ptr, name_len, options_handle, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_plugin_t, handle) };
    }

    /// Checks the signature of a library file (`<file>.sig`) or a package
    /// directory (`package.sig`) against the host's trusted keys, without
    /// loading, mapping or running anything: an install-time check,
    /// whether or not the host requires signatures. Fails with
    /// `error.SignatureRequired` when there is no signature file,
    /// `error.SignatureInvalid` when it is malformed, the file was tampered
    /// with or an untrusted key signed it, and `error.InvalidArgument` when
    /// the host has no trusted key.
    pub fn verifyPath(host: Host, path: []const u8, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_verify_path(host.handle, path.ptr, path.len, errorSlot(diag)));
    }

    /// Unpacks the `.fid` archive `archive` into `dest` (created when
    /// missing); returns the package's directory, `dest/{name}-{version}`
    /// (which must not exist yet), in `allocator`'s memory. The archive is
    /// checked whole first and, when the host requires signatures, its
    /// `package.sig` verified before anything is written.
    pub fn unpackArchive(host: Host, allocator: Allocator, archive: []const u8, dest: []const u8, diag: ?*Diagnostics) (Error || Allocator.Error)![]u8 {
        var dir: [*c]u8 = null;
        try check(c.fidius_host_unpack_archive(host.handle, archive.ptr, archive.len, dest.ptr, dest.len, &dir, errorSlot(diag)));
        return takeString(allocator, dir, std.mem.len(dir));
    }
};

// ---------------------------------------------------------------------------
// Discovery and plugin facts
// ---------------------------------------------------------------------------

/// Facts about one plugin. Borrowed from the `Discovery` or `Plugin` it
/// came from, and valid as long as that is.
pub const PluginInfo = struct {
    handle: *const c.fidius_host_plugin_info_t,

    pub fn name(info: PluginInfo) [:0]const u8 {
        return borrowedString(c.fidius_host_plugin_info_name(info.handle));
    }

    /// The interface (trait) name.
    pub fn interfaceName(info: PluginInfo) [:0]const u8 {
        return borrowedString(c.fidius_host_plugin_info_interface_name(info.handle));
    }

    /// The file (or package directory) the plugin came from.
    pub fn path(info: PluginInfo) [:0]const u8 {
        return borrowedString(c.fidius_host_plugin_info_path(info.handle));
    }

    pub fn interfaceHash(info: PluginInfo) u64 {
        return c.fidius_host_plugin_info_interface_hash(info.handle);
    }

    pub fn interfaceVersion(info: PluginInfo) u32 {
        return c.fidius_host_plugin_info_interface_version(info.handle);
    }

    /// Bit k set: the k-th optional method of the interface is implemented.
    pub fn capabilities(info: PluginInfo) u64 {
        return c.fidius_host_plugin_info_capabilities(info.handle);
    }

    pub fn bufferStrategy(info: PluginInfo) BufferStrategy {
        return @fromBackingInt(c.fidius_host_plugin_info_buffer_strategy(info.handle));
    }

    pub fn runtime(info: PluginInfo) Runtime {
        return @fromBackingInt(c.fidius_host_plugin_info_runtime(info.handle));
    }
};

/// A file or search path discovery passed over, and why.
pub const Skipped = struct {
    path: [:0]const u8,
    status: Status,
    message: [:0]const u8,
};

/// What `Host.discover` found. Infos and strings borrowed from it stay
/// valid until `deinit`.
pub const Discovery = struct {
    handle: *c.fidius_host_discovery_t,

    pub fn deinit(discovery: *Discovery) void {
        c.fidius_host_discovery_free(discovery.handle);
        discovery.* = undefined;
    }

    pub fn pluginCount(discovery: Discovery) usize {
        return c.fidius_host_discovery_plugin_count(discovery.handle);
    }

    /// Plugin `index` in scan order, or null when out of range.
    pub fn plugin(discovery: Discovery, index: usize) ?PluginInfo {
        const info = c.fidius_host_discovery_plugin(discovery.handle, index) orelse return null;
        return .{ .handle = info };
    }

    pub fn skippedCount(discovery: Discovery) usize {
        return c.fidius_host_discovery_skipped_count(discovery.handle);
    }

    /// Skipped entry `index`, or null when out of range.
    pub fn skipped(discovery: Discovery, index: usize) ?Skipped {
        const path = optionalString(c.fidius_host_discovery_skipped_path(discovery.handle, index)) orelse return null;
        return .{
            .path = path,
            .status = @fromBackingInt(c.fidius_host_discovery_skipped_status(discovery.handle, index)),
            .message = borrowedString(c.fidius_host_discovery_skipped_message(discovery.handle, index)),
        };
    }
};

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

/// A cancellation signal for calls (`Plugin.callCancellable`,
/// `Plugin.callJsonCancellable`). Owned by the caller: `deinit` it once,
/// after every call it was given to has returned and no thread will
/// `cancel` it any more. The calls only borrow it.
///
/// Thread-safe: one token may be given to any number of calls on any
/// threads at once, and `cancel` and `isCancelled` may be called from any
/// thread, also while those calls run. Cancelling is final: a cancelled
/// token stays cancelled, so make a new token per request.
///
///     var token = try fidius.CancelToken.init(null);
///     defer token.deinit(); // after the call returned and the canceller is done
///     // on another thread: token.cancel();
///     const json = try plugin.callJsonCancellable(allocator, "work", "[]", null, &token, null);
pub const CancelToken = struct {
    handle: *c.fidius_host_cancel_token_t,

    /// A new token, not cancelled.
    pub fn init(diag: ?*Diagnostics) Error!CancelToken {
        var handle: ?*c.fidius_host_cancel_token_t = null;
        try check(c.fidius_host_cancel_token_new(&handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_cancel_token_t, handle) };
    }

    /// Frees the token. It must not be in use: no call given it may still
    /// be running, and no thread may cancel it (or ask `isCancelled`) any
    /// more.
    pub fn deinit(token: *CancelToken) void {
        c.fidius_host_cancel_token_free(token.handle);
        token.* = undefined;
    }

    /// Cancels: every call running with this token is stopped, and every
    /// call started with it later fails with `error.Cancelled` before it
    /// reaches the plugin. A WASM guest is interrupted at its next epoch
    /// check or host wait (its instance is discarded); an isolated
    /// plugin's worker is killed (the next call starts a new one, which the
    /// restart policy does not count); in-process Python gets an exception
    /// in the thread running it. A call that completed first keeps its
    /// result.
    ///
    /// Returns once every running call was told to stop, without waiting
    /// for them to end. Calling it again does nothing more. Any thread, at
    /// any time before `deinit`, concurrently with the calls and with other
    /// cancels (not from a signal handler).
    pub fn cancel(token: CancelToken) void {
        // Fails only for a pointer that is no live token, which a
        // `CancelToken` before its `deinit` never holds.
        const status = c.fidius_host_cancel_token_cancel(token.handle);
        std.debug.assert(status == c.FIDIUS_HOST_STATUS_OK);
    }

    /// Whether the token was cancelled. Any thread.
    pub fn isCancelled(token: CancelToken) bool {
        return c.fidius_host_cancel_token_is_cancelled(token.handle);
    }
};

// ---------------------------------------------------------------------------
// Plugins
// ---------------------------------------------------------------------------

/// An outbound HTTP request or socket a plugin's egress policy denied, in
/// the memory of the allocator given to `Plugin.deniedRequest`.
pub const DeniedRequest = struct {
    /// "GET", "POST", ... or, for a socket, "TCP", "UDP" or "DNS".
    method: []u8,
    /// scheme://authority/path?query, or for a socket "tcp://ip:port",
    /// "udp://ip:port" or "dns://name".
    url: []u8,
    /// Why it was denied, e.g. "denied by the egress policy".
    reason: []u8,

    pub fn deinit(request: DeniedRequest, allocator: Allocator) void {
        allocator.free(request.method);
        allocator.free(request.url);
        allocator.free(request.reason);
    }
};

/// A host interface a plugin calls, as its library declares it.
pub const HostImport = struct {
    name: [:0]const u8,
    version: u32,
    hash: u64,
};

/// The use figures of an isolated plugin handle (`Plugin.workerUsage`):
/// counts since it was loaded.
pub const WorkerUsage = struct {
    /// Calls sent to a worker.
    calls: u64,
    /// Calls that failed, whatever the reason (plugin errors included).
    errors: u64,
    /// Calls that passed the call deadline (their worker was killed).
    timeouts: u64,
    /// Workers started after the first.
    restarts: u64,
    /// The process id of the running worker; 0 while none runs (lost, and
    /// not restarted yet).
    pid: i32,
    /// CPU time (user and system) of every worker the handle had, in
    /// microseconds: the ended ones' final figures and the running one's
    /// so far.
    cpu_time_us: u64,
    /// The largest peak resident memory of those workers, in bytes.
    peak_memory_bytes: u64,
};

/// A loaded plugin with its own instance. Calls may come from any number
/// of threads at once (an isolated plugin's worker serves them one at a
/// time; make instances for parallel calls).
pub const Plugin = struct {
    handle: *c.fidius_host_plugin_t,

    /// Destroys the instance. No call on this plugin may be running.
    pub fn deinit(plugin: *Plugin) void {
        c.fidius_host_plugin_free(plugin.handle);
        plugin.* = undefined;
    }

    /// Calls method `method` (its index in declaration order) with raw
    /// input: the bincode-encoded argument tuple, or the bytes of a raw
    /// method. Returns the result payload in `allocator`'s memory.
    pub fn call(plugin: Plugin, allocator: Allocator, method: u32, input: []const u8, diag: ?*Diagnostics) AllocError![]u8 {
        var output: c.fidius_host_bytes_t = .{ .data = null, .len = 0, .owner = null };
        const input_ptr = if (input.len == 0) null else input.ptr;
        try check(c.fidius_host_plugin_call(plugin.handle, method, input_ptr, input.len, &output, errorSlot(diag)));
        return takeBytes(allocator, &output);
    }

    /// `call` with a context for the host functions the plugin calls
    /// during this call: a handler serving a call the plugin makes from
    /// this thread sees it as `HostCall.context` (calls from a thread the
    /// plugin started see null). The pointer is never dereferenced.
    pub fn callWithContext(plugin: Plugin, allocator: Allocator, method: u32, input: []const u8, context: ?*anyopaque, diag: ?*Diagnostics) AllocError![]u8 {
        var output: c.fidius_host_bytes_t = .{ .data = null, .len = 0, .owner = null };
        const input_ptr = if (input.len == 0) null else input.ptr;
        try check(c.fidius_host_plugin_call_with_context(plugin.handle, method, input_ptr, input.len, context, &output, errorSlot(diag)));
        return takeBytes(allocator, &output);
    }

    /// `callWithContext` that `cancel` stops, when cancelled from any
    /// thread while the call runs (`CancelToken.cancel`), with
    /// `error.Cancelled`; a token already cancelled fails it with
    /// `error.Cancelled` before anything runs. A null `cancel` is exactly
    /// `callWithContext`; `context` may be null. Both are borrowed for the
    /// call. Results in `allocator`'s memory, as `call`.
    ///
    /// WASM, isolated and in-process Python plugins can be stopped. An
    /// in-process native (cdylib) plugin cannot: any call given a token
    /// fails with `error.Unsupported` and nothing runs (load it isolated,
    /// or pass a null token).
    pub fn callCancellable(
        plugin: Plugin,
        allocator: Allocator,
        method: u32,
        input: []const u8,
        context: ?*anyopaque,
        cancel: ?*const CancelToken,
        diag: ?*Diagnostics,
    ) AllocError![]u8 {
        var output: c.fidius_host_bytes_t = .{ .data = null, .len = 0, .owner = null };
        const input_ptr = if (input.len == 0) null else input.ptr;
        const token = if (cancel) |t| t.handle else null;
        try check(c.fidius_host_plugin_call_cancellable(plugin.handle, method, input_ptr, input.len, context, token, &output, errorSlot(diag)));
        return takeBytes(allocator, &output);
    }

    /// Another instance of the plugin, constructed with `config` (bincode
    /// of the interface's config type): it shares the loaded code and
    /// nothing else, and may outlive `plugin`. Deinit it on its own.
    pub fn newInstance(plugin: Plugin, config: []const u8, diag: ?*Diagnostics) Error!Plugin {
        var handle: ?*c.fidius_host_plugin_t = null;
        const ptr = if (config.len == 0) null else config.ptr;
        try check(c.fidius_host_plugin_new_instance(plugin.handle, ptr, config.len, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_plugin_t, handle) };
    }

    /// `newInstance` with the configuration as JSON text.
    pub fn newInstanceJson(plugin: Plugin, config_json: []const u8, diag: ?*Diagnostics) Error!Plugin {
        var handle: ?*c.fidius_host_plugin_t = null;
        try check(c.fidius_host_plugin_new_instance_json(plugin.handle, config_json.ptr, config_json.len, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_plugin_t, handle) };
    }

    /// Calls the method called `method` with a JSON array of arguments,
    /// e.g. "[3, 7]". Needs an interface at load. Returns the result as
    /// JSON text ("null" for methods returning nothing) in `allocator`'s
    /// memory.
    pub fn callJson(plugin: Plugin, allocator: Allocator, method: []const u8, args_json: []const u8, diag: ?*Diagnostics) AllocError![]u8 {
        var json: [*c]u8 = null;
        var len: usize = 0;
        try check(c.fidius_host_plugin_call_json(plugin.handle, method.ptr, method.len, args_json.ptr, args_json.len, &json, &len, errorSlot(diag)));
        return takeString(allocator, json, len);
    }

    /// `callJson` with a context for the host functions the plugin calls
    /// during this call, as `callWithContext` describes.
    pub fn callJsonWithContext(plugin: Plugin, allocator: Allocator, method: []const u8, args_json: []const u8, context: ?*anyopaque, diag: ?*Diagnostics) AllocError![]u8 {
        var json: [*c]u8 = null;
        var len: usize = 0;
        try check(c.fidius_host_plugin_call_json_with_context(plugin.handle, method.ptr, method.len, args_json.ptr, args_json.len, context, &json, &len, errorSlot(diag)));
        return takeString(allocator, json, len);
    }

    /// `callJsonWithContext` that `cancel` stops, as `callCancellable`
    /// describes (`error.Cancelled`; `error.Unsupported` with a token for an
    /// in-process native plugin). `context` and `cancel` may be null.
    /// Returns the result as JSON text in `allocator`'s memory, as
    /// `callJson`.
    pub fn callJsonCancellable(
        plugin: Plugin,
        allocator: Allocator,
        method: []const u8,
        args_json: []const u8,
        context: ?*anyopaque,
        cancel: ?*const CancelToken,
        diag: ?*Diagnostics,
    ) AllocError![]u8 {
        var json: [*c]u8 = null;
        var len: usize = 0;
        const token = if (cancel) |t| t.handle else null;
        try check(c.fidius_host_plugin_call_json_cancellable(plugin.handle, method.ptr, method.len, args_json.ptr, args_json.len, context, token, &json, &len, errorSlot(diag)));
        return takeString(allocator, json, len);
    }

    /// `callJson` by method index (declaration order).
    pub fn callJsonIndex(plugin: Plugin, allocator: Allocator, method: u32, args_json: []const u8, diag: ?*Diagnostics) AllocError![]u8 {
        var json: [*c]u8 = null;
        var len: usize = 0;
        try check(c.fidius_host_plugin_call_json_index(plugin.handle, method, args_json.ptr, args_json.len, &json, &len, errorSlot(diag)));
        return takeString(allocator, json, len);
    }

    /// Starts a server-streaming (`-> Stream<T>`) or bidirectional call of
    /// method `method` (its index in declaration order): `args` is the
    /// bincode tuple of every argument but the `Stream<T>` one. `input`
    /// gives the items of a bidirectional method's `Stream<T>` argument
    /// (bincode of its item type), read lazily while the output is pulled;
    /// it must be null for a server stream. Needs an interface at load (it
    /// says which methods stream). Pull the items with `Stream.next`, and
    /// `deinit` the stream (before its end, that cancels it).
    ///
    /// `input` is consumed whatever happens: its `release` runs once, when
    /// the stream ends or is deinitialized, or before this function returns
    /// an error. Fails with `error.StreamMismatch` for a method that does
    /// not stream out, or an input missing (bidirectional) or given (server
    /// stream); nothing ran then. Otherwise the errors of `call`, the
    /// plugin failing to start the stream (`error.PluginError` with its
    /// code), and `error.Unsupported` for a runtime without streams and
    /// for an isolated plugin.
    ///
    ///     var stream = try plugin.callStream(0, &args, null, null);
    ///     defer stream.deinit();
    ///     while (try stream.next(null)) |item| use(item);
    pub fn callStream(plugin: Plugin, method: u32, args: []const u8, input: ?StreamInput, diag: ?*Diagnostics) Error!Stream {
        var handle: ?*c.fidius_host_stream_t = null;
        const args_ptr = if (args.len == 0) null else args.ptr;
        const c_input: ?*const c.fidius_host_stream_input_t = if (input) |*i| &i.c_input else null;
        try check(c.fidius_host_plugin_call_stream(plugin.handle, method, args_ptr, args.len, c_input, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_stream_t, handle) };
    }

    /// `callStream` by method name, with JSON: `args_json` is the JSON array
    /// of every argument but the `Stream<T>` one (e.g. "[3, 7]" for
    /// `count(from, to)`, "[]" when there is none), and `input` gives JSON
    /// items. Pull the items as JSON with `Stream.nextJson` (or as bincode
    /// with `Stream.next`). Besides the errors of `callStream`:
    /// `error.UnknownMethod`, `error.InvalidJson`, `error.ArgumentMismatch`.
    pub fn callStreamJson(plugin: Plugin, method: []const u8, args_json: []const u8, input: ?StreamInput, diag: ?*Diagnostics) Error!Stream {
        var handle: ?*c.fidius_host_stream_t = null;
        const c_input: ?*const c.fidius_host_stream_input_t = if (input) |*i| &i.c_input else null;
        try check(c.fidius_host_plugin_call_stream_json(plugin.handle, method.ptr, method.len, args_json.ptr, args_json.len, c_input, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_stream_t, handle) };
    }

    /// Calls client-streaming method `method` (a `Stream<T>` argument, one
    /// result) by index: `args` is the bincode tuple of every argument but
    /// the `Stream<T>` one, `input` gives its items (bincode of the item
    /// type), asked for on this thread, during the call, exactly as far as
    /// the plugin reads them. Returns the bincode result in `allocator`'s
    /// memory, as `call` does.
    ///
    /// `input` is consumed: its `release` runs once before this function
    /// returns, whatever the outcome. Fails with `error.StreamInputFailed`
    /// when the producer returned an error or an item that is not a value
    /// of the item type (the plugin's result is discarded),
    /// `error.StreamMismatch` for a method without a `Stream<T>` argument
    /// or one that returns a stream (nothing ran), and otherwise as `call`.
    pub fn callClientStream(plugin: Plugin, allocator: Allocator, method: u32, args: []const u8, input: StreamInput, diag: ?*Diagnostics) AllocError![]u8 {
        var output: c.fidius_host_bytes_t = .{ .data = null, .len = 0, .owner = null };
        const args_ptr = if (args.len == 0) null else args.ptr;
        try check(c.fidius_host_plugin_call_client_stream(plugin.handle, method, args_ptr, args.len, &input.c_input, &output, errorSlot(diag)));
        return takeBytes(allocator, &output);
    }

    /// `callClientStream` by method name, with JSON: `args_json` is the
    /// JSON array of every argument but the `Stream<T>` one ("[]" for
    /// `sum(items)`, "[100]" for `checked_sum(limit, items)`), `input`
    /// gives JSON items, and the result is JSON text in `allocator`'s
    /// memory, as `callJson` returns it. Besides the errors of
    /// `callClientStream`: `error.UnknownMethod`, `error.InvalidJson`,
    /// `error.ArgumentMismatch`.
    pub fn callClientStreamJson(plugin: Plugin, allocator: Allocator, method: []const u8, args_json: []const u8, input: StreamInput, diag: ?*Diagnostics) AllocError![]u8 {
        var json: [*c]u8 = null;
        var len: usize = 0;
        try check(c.fidius_host_plugin_call_client_stream_json(plugin.handle, method.ptr, method.len, args_json.ptr, args_json.len, &input.c_input, &json, &len, errorSlot(diag)));
        return takeString(allocator, json, len);
    }

    /// The interface the plugin was loaded with (a new reference: deinit it).
    pub fn interface(plugin: Plugin, diag: ?*Diagnostics) Error!Interface {
        var handle: ?*c.fidius_host_interface_t = null;
        try check(c.fidius_host_plugin_interface(plugin.handle, &handle, errorSlot(diag)));
        return .{ .handle = try notNull(c.fidius_host_interface_t, handle) };
    }

    /// The plugin's facts, borrowed from the plugin.
    pub fn info(plugin: Plugin) PluginInfo {
        return .{ .handle = c.fidius_host_plugin_info(plugin.handle).? };
    }

    /// Number of methods; valid indices are below it.
    pub fn methodCount(plugin: Plugin) u32 {
        return c.fidius_host_plugin_method_count(plugin.handle);
    }

    /// Whether the `bit`-th optional method of the interface is implemented.
    pub fn hasCapability(plugin: Plugin, bit: u32) bool {
        return c.fidius_host_plugin_has_capability(plugin.handle, bit);
    }

    /// The use figures of an isolated plugin (`Isolation.isolated`):
    /// calls, errors, timeouts and restarts since it was loaded, the pid of
    /// its running worker (0 while none runs), and what its workers used. Fails with
    /// `error.Unsupported` for a plugin that runs in-process.
    pub fn workerUsage(plugin: Plugin, diag: ?*Diagnostics) Error!WorkerUsage {
        var usage: c.fidius_host_worker_usage_t = std.mem.zeroes(c.fidius_host_worker_usage_t);
        try check(c.fidius_host_plugin_worker_usage(plugin.handle, &usage, errorSlot(diag)));
        return .{
            .calls = usage.calls,
            .errors = usage.errors,
            .timeouts = usage.timeouts,
            .restarts = usage.restarts,
            .pid = usage.pid,
            .cpu_time_us = usage.cpu_time_us,
            .peak_memory_bytes = usage.peak_memory_bytes,
        };
    }

    /// The largest linear memory an instance of a WASM plugin (and of the
    /// instances made from it) reached since it was loaded, in bytes: to
    /// size the memory cap. Fails with `error.Unsupported` for other
    /// plugins (an isolated one reports its workers' peak memory in
    /// `workerUsage`).
    pub fn memoryHighWater(plugin: Plugin, diag: ?*Diagnostics) Error!u64 {
        var bytes: u64 = 0;
        try check(c.fidius_host_plugin_memory_high_water(plugin.handle, &bytes, errorSlot(diag)));
        return bytes;
    }

    /// Number of notes about the load that did not stop it (e.g. a
    /// precompiled `.cwasm` that was not used, and why).
    pub fn loadDiagnosticCount(plugin: Plugin) usize {
        return c.fidius_host_plugin_diagnostic_count(plugin.handle);
    }

    /// Load note `index`, or null when out of range.
    pub fn loadDiagnostic(plugin: Plugin, index: usize) ?[:0]const u8 {
        return optionalString(c.fidius_host_plugin_diagnostic(plugin.handle, index));
    }

    /// Number of recent outbound requests, sockets and lookups the egress
    /// policy denied (the most recent 256 are kept).
    pub fn deniedRequestCount(plugin: Plugin) usize {
        return c.fidius_host_plugin_denied_request_count(plugin.handle);
    }

    /// Denied request `index` (oldest first) with its reason, in
    /// `allocator`'s memory. The method and URL and the reason are read
    /// one after the other: when more than the 256 kept requests are being
    /// denied meanwhile, they may belong to different requests.
    pub fn deniedRequest(plugin: Plugin, allocator: Allocator, index: usize, diag: ?*Diagnostics) AllocError!DeniedRequest {
        var method: [*c]u8 = null;
        var url: [*c]u8 = null;
        try check(c.fidius_host_plugin_denied_request(plugin.handle, index, &method, &url, errorSlot(diag)));
        defer c.fidius_host_string_free(method);
        defer c.fidius_host_string_free(url);
        const method_copy = try allocator.dupe(u8, borrowedString(method));
        errdefer allocator.free(method_copy);
        const url_copy = try allocator.dupe(u8, borrowedString(url));
        errdefer allocator.free(url_copy);
        return .{
            .method = method_copy,
            .url = url_copy,
            .reason = try plugin.deniedRequestReason(allocator, index, diag),
        };
    }

    /// Why denied request `index` (oldest first) was denied, e.g. "denied
    /// by the egress policy", in `allocator`'s memory.
    pub fn deniedRequestReason(plugin: Plugin, allocator: Allocator, index: usize, diag: ?*Diagnostics) AllocError![]u8 {
        var reason: [*c]u8 = null;
        try check(c.fidius_host_plugin_denied_request_reason(plugin.handle, index, &reason, errorSlot(diag)));
        defer c.fidius_host_string_free(reason);
        return allocator.dupe(u8, borrowedString(reason));
    }

    pub fn traitMetadataCount(plugin: Plugin) usize {
        return c.fidius_host_plugin_trait_metadata_count(plugin.handle);
    }

    /// Trait-level metadata pair `index` (declaration order).
    pub fn traitMetadata(plugin: Plugin, index: usize, diag: ?*Diagnostics) Error!Metadata {
        var key: [*c]const u8 = null;
        var value: [*c]const u8 = null;
        try check(c.fidius_host_plugin_trait_metadata(plugin.handle, index, &key, &value, errorSlot(diag)));
        return .{ .key = borrowedString(key), .value = borrowedString(value) };
    }

    /// Number of host interfaces the plugin imports (`#[host_interface]`
    /// traits its library calls); 0 for WASM and Python plugins.
    pub fn hostImportCount(plugin: Plugin) usize {
        return c.fidius_host_plugin_host_import_count(plugin.handle);
    }

    /// Imported host interface `index`: name (borrowed, valid while the
    /// plugin lives), version and hash.
    pub fn hostImport(plugin: Plugin, index: usize, diag: ?*Diagnostics) Error!HostImport {
        var name: [*c]const u8 = null;
        var interface_version: u32 = 0;
        var interface_hash: u64 = 0;
        try check(c.fidius_host_plugin_host_import(plugin.handle, index, &name, &interface_version, &interface_hash, errorSlot(diag)));
        return .{ .name = borrowedString(name), .version = interface_version, .hash = interface_hash };
    }

    /// Number of metadata pairs of method `method`.
    pub fn methodMetadataCount(plugin: Plugin, method: u32, diag: ?*Diagnostics) Error!usize {
        var count: usize = 0;
        try check(c.fidius_host_plugin_method_metadata_count(plugin.handle, method, &count, errorSlot(diag)));
        return count;
    }

    /// Metadata pair `index` of method `method`.
    pub fn methodMetadata(plugin: Plugin, method: u32, index: usize, diag: ?*Diagnostics) Error!Metadata {
        var key: [*c]const u8 = null;
        var value: [*c]const u8 = null;
        try check(c.fidius_host_plugin_method_metadata(plugin.handle, method, index, &key, &value, errorSlot(diag)));
        return .{ .key = borrowedString(key), .value = borrowedString(value) };
    }
};

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// The output of a server-streaming or bidirectional call
/// (`Plugin.callStream`, `Plugin.callStreamJson`), pulled one item at a
/// time: the plugin makes each item when `next` asks, on the calling
/// thread, so nothing is produced ahead.
///
/// A stream is used by one thread at a time (a call while another thread
/// is inside one fails with `error.Misuse`) and may move between threads.
/// It may outlive its plugin handle and host: it keeps the plugin's code
/// loaded. `deinit` it in every case; before its end that cancels it (the
/// plugin's producer is torn down at once, not drained).
pub const Stream = struct {
    handle: *c.fidius_host_stream_t,

    /// Frees the stream; before its end, cancels it, and releases the input
    /// of a bidirectional stream (unread items stay unread). No other
    /// thread may be using it.
    pub fn deinit(stream: *Stream) void {
        c.fidius_host_stream_free(stream.handle);
        stream.* = undefined;
    }

    /// The next item, as bincode of the item type, or null at the end of
    /// the stream. The item is borrowed from the stream until its next
    /// call or `deinit`: copy what you keep. A bidirectional plugin reads
    /// its input (through the producer) as it needs, during this call.
    ///
    /// The end is no failure: null clears `diag`. An error is the one that
    /// ended the stream, as the plugin's runtime reports it:
    /// `error.PluginError` (code, message and details in `diag`; a Python
    /// generator's `PluginError`), `error.PluginPanic` (a native producer
    /// panicked), `error.PluginTrap` (a WASM guest trapped),
    /// `error.Timeout` (the call deadline of one item, or `setDeadline`),
    /// `error.MemoryLimit`, `error.OutputTooLarge`,
    /// `error.PluginSerialization`, `error.PluginProtocol`,
    /// `error.StreamInputFailed` (a bidirectional stream's producer
    /// failed); `error.Misuse` when another thread is using the stream.
    /// After the end or an error the stream is over: every later call
    /// answers the same.
    pub fn next(stream: *Stream, diag: ?*Diagnostics) Error!?[]const u8 {
        var item: [*c]const u8 = null;
        var len: usize = 0;
        const status = c.fidius_host_stream_next(stream.handle, &item, &len, errorSlot(diag));
        if (status == c.FIDIUS_HOST_STATUS_STREAM_END) {
            if (diag) |d| d.deinit();
            return null;
        }
        try check(status);
        if (len == 0) return &.{};
        return item[0..len];
    }

    /// `next` with the item as JSON text (NUL-terminated), borrowed from
    /// the stream until its next call or `deinit`; null at the end. Errors
    /// as `next`.
    pub fn nextJson(stream: *Stream, diag: ?*Diagnostics) Error!?[:0]const u8 {
        var json: [*c]const u8 = null;
        var len: usize = 0;
        const status = c.fidius_host_stream_next_json(stream.handle, &json, &len, errorSlot(diag));
        if (status == c.FIDIUS_HOST_STATUS_STREAM_END) {
            if (diag) |d| d.deinit();
            return null;
        }
        try check(status);
        if (json == null) return error.InternalPanic;
        const text: [*:0]const u8 = @ptrCast(json);
        return text[0..len :0];
    }

    /// Ends the stream with `error.Timeout` once `milliseconds` from now
    /// have passed (0 removes the deadline). A WASM or Python plugin busy
    /// making an item then is stopped; a native plugin is checked between
    /// items. The call deadline of each item still applies. Errors:
    /// `error.Misuse` when another thread is using the stream.
    pub fn setDeadline(stream: *Stream, milliseconds: u64, diag: ?*Diagnostics) Error!void {
        try check(c.fidius_host_stream_set_deadline(stream.handle, milliseconds, errorSlot(diag)));
    }

    /// How many items of its input a bidirectional stream's plugin has read
    /// so far; 0 for a server stream, and while another thread is using the
    /// stream.
    pub fn itemsRead(stream: *const Stream) u64 {
        return c.fidius_host_stream_items_read(stream.handle);
    }
};

/// What a `StreamInput` asks for the items of a `Stream<T>` argument.
pub fn Producer(comptime Context: type) type {
    return struct {
        /// The next item, or null at the end: bincode of the item type for
        /// the raw calls (`callStream`, `callClientStream`), JSON text for
        /// the `Json` ones. The bytes must stay valid until `next` is called
        /// again (or the input is released); they are copied before that.
        ///
        /// Called when the plugin reads its next item, never after the end
        /// it reported: during a client-stream call, or during
        /// `Stream.next` of a bidirectional stream, on that thread. It must
        /// not use the stream it feeds (`error.Misuse`).
        ///
        /// Any error fails the call (or the bidirectional stream) with
        /// `error.StreamInputFailed`: the plugin is told its input ended
        /// and its result is discarded. An error of `fidius.Error` is
        /// reported as its status (`error.Io` gives the message "the
        /// producer returned IO"); any other error as IO. Keep the error
        /// in the context if the caller needs it.
        next: fn (context: Context) anyerror!?[]const u8,
        /// Called once with the context when the input is no longer used:
        /// when the call returns, when a bidirectional stream ends or is
        /// deinitialized, and when the call fails before it starts. May be
        /// null.
        release: ?fn (context: Context) void = null,
    };
}

/// The items of a `Stream<T>` argument, handed to `Plugin.callClientStream`,
/// `Plugin.callClientStreamJson` or (bidirectional) `Plugin.callStream` and
/// `Plugin.callStreamJson`. Hand each input to exactly one call: the call
/// consumes it and releases it once, whatever the outcome (an input never
/// handed to a call is never released).
pub const StreamInput = struct {
    c_input: c.fidius_host_stream_input_t,

    /// An input that asks `producer.next(context)` for each item and calls
    /// `producer.release(context)` once when done.
    ///
    /// `Context` is a single-item pointer type (or `void`); `context` is
    /// handed to the producer unchanged.
    ///
    ///     const Lines = struct {
    ///         lines: std.mem.SplitIterator(u8, .scalar),
    ///         fn next(lines: *Lines) anyerror!?[]const u8 {
    ///             return lines.lines.next();
    ///         }
    ///     };
    ///     var lines: Lines = .{ .lines = std.mem.splitScalar(u8, "\"a\"\n\"b\"", '\n') };
    ///     const input = StreamInput.init(*Lines, &lines, .{ .next = Lines.next });
    pub fn init(comptime Context: type, context: Context, comptime producer: Producer(Context)) StreamInput {
        const Adapter = ContextAdapter(Context, "StreamInput.init");
        const Trampoline = struct {
            fn produceC(userdata: ?*anyopaque, item: [*c][*c]const u8, item_len: [*c]usize) callconv(.c) u32 {
                const next_item = producer.next(Adapter.toContext(userdata)) catch |err| return producerFailure(err);
                const bytes = next_item orelse return c.FIDIUS_HOST_STATUS_STREAM_END;
                item.* = bytes.ptr;
                item_len.* = bytes.len;
                return c.FIDIUS_HOST_STATUS_OK;
            }

            fn releaseC(userdata: ?*anyopaque) callconv(.c) void {
                producer.release.?(Adapter.toContext(userdata));
            }
        };
        return .{ .c_input = .{
            .produce = Trampoline.produceC,
            .userdata = Adapter.toUserdata(context),
            .free_userdata = if (producer.release != null) Trampoline.releaseC else null,
        } };
    }
};

/// The status a producer's error is reported with: its own for an error
/// of `Error`, IO for any other.
fn producerFailure(err: anyerror) u32 {
    inline for (status_errors) |entry| {
        if (err == entry[1]) return @backingInt(entry[0]);
    }
    return c.FIDIUS_HOST_STATUS_IO;
}

/// The items of a `Stream<T>` argument from a slice: each a bincode value
/// of the item type (raw calls) or JSON text (`Json` calls), handed out in
/// order. The slice and the `Items` must outlive the call, or the
/// bidirectional stream, they feed.
///
///     var words: fidius.Items = .{ .items = &.{ "\"hey\"", "\"you\"" } };
///     var stream = try plugin.callStreamJson("shout", "[\"!\"]", words.input(), null);
pub const Items = struct {
    items: []const []const u8,
    /// How many items the plugin has read so far.
    read: usize = 0,

    /// The input handing out `items.items` from `items.read` on.
    pub fn input(items: *Items) StreamInput {
        return StreamInput.init(*Items, items, .{ .next = next });
    }

    fn next(items: *Items) anyerror!?[]const u8 {
        if (items.read >= items.items.len) return null;
        defer items.read += 1;
        return items.items[items.read];
    }
};

// ---------------------------------------------------------------------------
// Unit tests of the tables above (the API tests are in tests/)
// ---------------------------------------------------------------------------

test "every status has exactly one error, and its name is the library's" {
    const fields = @typeInfo(Status).@"enum";
    inline for (fields.field_names, fields.field_values) |field_name, field_value| {
        const status: Status = @fromBackingInt(field_value);
        var expected_name: [64]u8 = undefined;
        try std.testing.expectEqualStrings(std.ascii.upperString(&expected_name, field_name), status.name());
        if (status == .ok or status == .stream_end) continue;
        const err = errorFromStatus(status);
        try std.testing.expect(err != error.UnknownStatus);
        try std.testing.expectEqual(status, statusFromError(err).?);
    }
    // Every error but UnknownStatus stands for a status.
    try std.testing.expectEqual(@typeInfo(Error).error_set.error_names.?.len - 1, status_errors.len);
    try std.testing.expectEqual(error.UnknownStatus, errorFromStatus(@fromBackingInt(123456)));
    try std.testing.expectEqual(null, statusFromError(error.UnknownStatus));
}

test "the end of a stream is no error, its failures are" {
    try std.testing.expectEqual(error.UnknownStatus, errorFromStatus(.stream_end));
    try std.testing.expectEqualStrings("STREAM_END", Status.stream_end.name());
    try std.testing.expectEqual(Status.stream_mismatch, statusFromError(error.StreamMismatch).?);
    try std.testing.expectEqual(Status.stream_input_failed, statusFromError(error.StreamInputFailed).?);
    try std.testing.expectEqual(@as(u32, c.FIDIUS_HOST_STATUS_IO), producerFailure(error.SomethingElse));
    try std.testing.expectEqual(@as(u32, c.FIDIUS_HOST_STATUS_MISUSE), producerFailure(error.Misuse));
}

test "the library is the version of the header" {
    try std.testing.expectEqualStrings(header_version_string, version());
    try std.testing.expectEqual(header_version_number, versionNumber());
}
