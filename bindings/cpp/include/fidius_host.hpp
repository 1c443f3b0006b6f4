/*
 * fidius_host.hpp - the C++17 face of libfidius_host.
 *
 * A header-only wrapper over the C API in fidius_host.h. Everything lives
 * in namespace `fidius`:
 *
 *   fidius::Host host = fidius::Builder().add_search_path("plugins").build();
 *   fidius::LoadOptions options;
 *   options.set_interface(fidius::Interface::from_file("calculator.toml"));
 *   fidius::Plugin calc = host.load("BasicCalculator", options);
 *   std::string sum = calc.call_json("add", "[3, 7]");          // "10"
 *
 * Streaming methods (`Stream<T>` results and arguments) have their own
 * calls: Plugin::call_stream / call_stream_json return a fidius::Stream to
 * pull (or range-for over), Plugin::call_client_stream / _json read the
 * items of a `Stream<T>` argument from a producer or a range:
 *
 *   for (const std::string &n : plugin.call_stream_json("count", "[3, 7]").json_items()) ...
 *   std::string total = plugin.call_client_stream_json("sum", "[]", {"1", "2", "39"});  // "42"
 *
 * Native and Python plugins may run isolated, each handle in a worker
 * process of its own (see docs/isolation.md): a crash of the plugin throws
 * Status::WorkerLost from the call in flight, and the next call restarts
 * the worker as the restart policy allows; Plugin::worker_usage counts it:
 *
 *   fidius::Host host = fidius::Builder().set_isolation(fidius::Isolation::Isolated)
 *                           .set_restart_policy(5, std::chrono::minutes(1)).build();
 *
 * Builder::set_discovery_isolation(Isolation::Isolated) opens the libraries
 * that discovery (and a load by name) scans in a worker too: one whose
 * initialisers crash or hang is a skipped entry, not the end of the host.
 * Builder::set_worker_hardening makes each worker confine itself too (no
 * new privileges, no network, no file outside the plugin's own):
 *
 *   builder.set_worker_hardening(fidius::WorkerHardening::DenyNetwork |
 *                                fidius::WorkerHardening::ConfineFilesystem);
 *
 * A call given a fidius::CancelToken stops when the token is cancelled,
 * from any thread, and throws Status::Cancelled: a WASM guest is
 * interrupted, an isolated plugin's worker killed (the next call starts a
 * new one), in-process Python gets an exception. In-process native code
 * cannot be stopped: its calls with a token throw Status::Unsupported.
 *
 *   fidius::CancelToken cancel;   // cancel.cancel() from another thread stops the call
 *   std::string out = plugin.call_json("crunch", "[42]", cancel);
 *
 * CONVENTIONS
 *   - Every C handle has one move-only class (Builder, Host, Plugin,
 *     Interface, InterfaceBuilder, LoadOptions, EgressPolicy, Binding,
 *     Stream, CancelToken) holding a std::unique_ptr whose deleter is the handle's C
 *     free function: the rule of zero, no class declares a copy, move or
 *     destructor. Moving leaves the source empty (`!obj`,
 *     `obj.get() == nullptr`). Using an empty object throws fidius::Error
 *     with Status::NullArgument; destroying or assigning to it is always
 *     fine.
 *   - Facts are returned as plain values: PluginInfo, Discovery,
 *     SkippedEntry, MetadataEntry, DeniedRequest, WorkerUsage. They stay
 *     valid after every handle is gone.
 *   - Failures throw fidius::Error (fidius::PluginError for a plugin's own
 *     `Err(PluginError)`), carrying the status, the library's message and
 *     what the library says about it: the plugin's code, message and
 *     details, the values of a mismatch, the index of a method out of
 *     range. No status of the C API is ever ignored. Host functions (the
 *     callback of a Binding) throw fidius::HostError to return an error
 *     to the plugin, and a stream's item producer throws to fail its
 *     input (Status::StreamInputFailed); no exception ever crosses into
 *     the library. The end of a stream (Status::StreamEnd) is not an
 *     error: Stream::next() returns std::nullopt.
 *   - Text inputs are std::string_view and are passed with their length,
 *     so they need no terminating NUL. Byte inputs are fidius::bytes_view.
 *     Text and JSON outputs are std::string. Byte outputs are fidius::Bytes,
 *     which owns the library's buffer without copying it and releases it
 *     when destroyed (Bytes::to_vector() copies); only a stream's raw
 *     items are borrowed (bytes_view), until its next pull.
 *
 * THREADS
 *   As in C: Host, Plugin and Interface may be used from any number of
 *   threads at once (their methods are const; an isolated plugin serves
 *   its calls one at a time: make instances to run them in parallel);
 *   Builder, InterfaceBuilder, LoadOptions, EgressPolicy and Stream by one
 *   thread at a time (a Stream may move between threads); a Binding's
 *   handle is shareable, and so is a CancelToken: any number of calls on
 *   any threads may use it while any thread cancels it.
 *   Item producers run on the thread that called the plugin or pulls the
 *   stream they feed. Egress callbacks and rules and host functions
 *   may run on several threads at once and must be thread-safe; response
 *   rules (and HTTP rules asked about a retry) run on the library's I/O
 *   threads.
 */
#ifndef FIDIUS_HOST_HPP
#define FIDIUS_HOST_HPP

#include "fidius_host.h"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace fidius {

// ---------------------------------------------------------------------------
// Status codes and enumerations
// ---------------------------------------------------------------------------

/// Every status code of the C API (`FIDIUS_HOST_STATUS_*`), same values.
enum class Status : std::uint32_t {
    Ok = FIDIUS_HOST_STATUS_OK,
    NullArgument = FIDIUS_HOST_STATUS_NULL_ARGUMENT,
    InvalidArgument = FIDIUS_HOST_STATUS_INVALID_ARGUMENT,
    InvalidUtf8 = FIDIUS_HOST_STATUS_INVALID_UTF8,
    InternalPanic = FIDIUS_HOST_STATUS_INTERNAL_PANIC,
    Misuse = FIDIUS_HOST_STATUS_MISUSE,
    Unsupported = FIDIUS_HOST_STATUS_UNSUPPORTED,
    Io = FIDIUS_HOST_STATUS_IO,
    NotARegularFile = FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE,
    FileTooLarge = FIDIUS_HOST_STATUS_FILE_TOO_LARGE,
    /// Not an error: a stream has no more items. Stream::next() answers it
    /// with std::nullopt, and an item producer with std::nullopt gives it;
    /// no fidius::Error carries it.
    StreamEnd = FIDIUS_HOST_STATUS_STREAM_END,
    FileNotFound = FIDIUS_HOST_STATUS_FILE_NOT_FOUND,
    PluginNotFound = FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND,
    NotALibrary = FIDIUS_HOST_STATUS_NOT_A_LIBRARY,
    ArchitectureMismatch = FIDIUS_HOST_STATUS_ARCHITECTURE_MISMATCH,
    LibraryLoadFailed = FIDIUS_HOST_STATUS_LIBRARY_LOAD_FAILED,
    RegistryMissing = FIDIUS_HOST_STATUS_REGISTRY_MISSING,
    InvalidRegistry = FIDIUS_HOST_STATUS_INVALID_REGISTRY,
    InvalidMagic = FIDIUS_HOST_STATUS_INVALID_MAGIC,
    IncompatibleRegistryVersion = FIDIUS_HOST_STATUS_INCOMPATIBLE_REGISTRY_VERSION,
    IncompatibleAbiVersion = FIDIUS_HOST_STATUS_INCOMPATIBLE_ABI_VERSION,
    InvalidDescriptorSize = FIDIUS_HOST_STATUS_INVALID_DESCRIPTOR_SIZE,
    InvalidPluginPointer = FIDIUS_HOST_STATUS_INVALID_PLUGIN_POINTER,
    InvalidPluginString = FIDIUS_HOST_STATUS_INVALID_PLUGIN_STRING,
    InvalidPluginCount = FIDIUS_HOST_STATUS_INVALID_PLUGIN_COUNT,
    UnknownBufferStrategy = FIDIUS_HOST_STATUS_UNKNOWN_BUFFER_STRATEGY,
    InterfaceHashMismatch = FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH,
    BufferStrategyMismatch = FIDIUS_HOST_STATUS_BUFFER_STRATEGY_MISMATCH,
    ConstructFailed = FIDIUS_HOST_STATUS_CONSTRUCT_FAILED,
    DuplicatePlugin = FIDIUS_HOST_STATUS_DUPLICATE_PLUGIN,
    AmbiguousPlugin = FIDIUS_HOST_STATUS_AMBIGUOUS_PLUGIN,
    InterfaceVersionMismatch = FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH,
    MethodCountMismatch = FIDIUS_HOST_STATUS_METHOD_COUNT_MISMATCH,
    InvalidManifest = FIDIUS_HOST_STATUS_INVALID_MANIFEST,
    InvalidCapability = FIDIUS_HOST_STATUS_INVALID_CAPABILITY,
    CapabilityDenied = FIDIUS_HOST_STATUS_CAPABILITY_DENIED,
    InvalidComponent = FIDIUS_HOST_STATUS_INVALID_COMPONENT,
    CapabilityMissing = FIDIUS_HOST_STATUS_CAPABILITY_MISSING,
    NoEgressPolicy = FIDIUS_HOST_STATUS_NO_EGRESS_POLICY,
    InvalidPythonPlugin = FIDIUS_HOST_STATUS_INVALID_PYTHON_PLUGIN,
    ConfigRequired = FIDIUS_HOST_STATUS_CONFIG_REQUIRED,
    ConfigInvalid = FIDIUS_HOST_STATUS_CONFIG_INVALID,
    ConfigRejected = FIDIUS_HOST_STATUS_CONFIG_REJECTED,
    HostAlreadyBound = FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND,
    HostBindFailed = FIDIUS_HOST_STATUS_HOST_BIND_FAILED,
    /// An isolated load could not start its worker process: the
    /// `fidius-host-worker` executable is missing or cannot run (the
    /// message names the path tried).
    WorkerUnavailable = FIDIUS_HOST_STATUS_WORKER_UNAVAILABLE,
    SignatureRequired = FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED,
    SignatureInvalid = FIDIUS_HOST_STATUS_SIGNATURE_INVALID,
    InvalidKey = FIDIUS_HOST_STATUS_INVALID_KEY,
    MethodOutOfRange = FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE,
    NotImplemented = FIDIUS_HOST_STATUS_NOT_IMPLEMENTED,
    PluginError = FIDIUS_HOST_STATUS_PLUGIN_ERROR,
    PluginPanic = FIDIUS_HOST_STATUS_PLUGIN_PANIC,
    PluginSerialization = FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION,
    OutputTooLarge = FIDIUS_HOST_STATUS_OUTPUT_TOO_LARGE,
    InputTooLarge = FIDIUS_HOST_STATUS_INPUT_TOO_LARGE,
    PluginProtocol = FIDIUS_HOST_STATUS_PLUGIN_PROTOCOL,
    InvalidJson = FIDIUS_HOST_STATUS_INVALID_JSON,
    ArgumentMismatch = FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH,
    UnknownMethod = FIDIUS_HOST_STATUS_UNKNOWN_METHOD,
    NoInterface = FIDIUS_HOST_STATUS_NO_INTERFACE,
    PluginTrap = FIDIUS_HOST_STATUS_PLUGIN_TRAP,
    Timeout = FIDIUS_HOST_STATUS_TIMEOUT,
    MemoryLimit = FIDIUS_HOST_STATUS_MEMORY_LIMIT,
    InstancePoolExhausted = FIDIUS_HOST_STATUS_INSTANCE_POOL_EXHAUSTED,
    /// The call does not match how the method streams (a unary call of a
    /// streaming method, a stream call of a unary one, a client-stream call
    /// of a method that returns a stream, a bidirectional call without an
    /// input); nothing was called.
    StreamMismatch = FIDIUS_HOST_STATUS_STREAM_MISMATCH,
    /// The items given for a `Stream<T>` argument failed: the producer threw,
    /// or gave an item that is not a value of the item type. The plugin was
    /// told the input ended; its result was discarded.
    StreamInputFailed = FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED,
    /// The worker process of an isolated plugin died during the call (a
    /// crash, an abort, an exit, a kill from outside, a cap it hit); the
    /// message says how it ended. No output was delivered; what the next
    /// call sees is up to the restart policy.
    WorkerLost = FIDIUS_HOST_STATUS_WORKER_LOST,
    /// The call was cancelled through its fidius::CancelToken: refused
    /// before it started (nothing ran), or stopped while it ran (the plugin
    /// is left as after a Status::Timeout of its runtime). No output was
    /// delivered.
    Cancelled = FIDIUS_HOST_STATUS_CANCELLED,
    InvalidInterface = FIDIUS_HOST_STATUS_INVALID_INTERFACE,
};

/// The C name of a status without prefix, e.g. "PLUGIN_NOT_FOUND";
/// "UNKNOWN" for a value that is no status.
inline std::string_view status_name(Status status) {
    return fidius_host_status_name(static_cast<std::uint32_t>(status));
}

/// Prints the status name (so test frameworks and logs show it readably).
inline std::ostream &operator<<(std::ostream &out, Status status) { return out << status_name(status); }

/// What a library with some invalid plugin descriptors does.
enum class LoadPolicy : std::uint32_t {
    Strict = FIDIUS_HOST_LOAD_POLICY_STRICT,    ///< one invalid descriptor rejects the library
    Lenient = FIDIUS_HOST_LOAD_POLICY_LENIENT,  ///< invalid descriptors are skipped one by one
};

/// Where native and Python plugins run (Builder::set_isolation,
/// LoadOptions::set_isolation). WASM plugins are sandboxed in-process and
/// ignore it.
enum class Isolation : std::uint32_t {
    /// In the host process (the default): the fastest calls; a crash, abort
    /// or exit in the plugin ends the host.
    InProcess = FIDIUS_HOST_ISOLATION_IN_PROCESS,
    /// Each plugin handle in a worker process of its own
    /// (`fidius-host-worker`): a fault in the plugin ends the worker and the
    /// call throws Status::WorkerLost; a call past its deadline kills the
    /// worker (Status::Timeout); the worker may be capped in memory and CPU
    /// time. Host functions run in the host, with the call's context;
    /// streams are served item by item, each a round trip to the worker.
    Isolated = FIDIUS_HOST_ISOLATION_ISOLATED,
};

/// What each worker of isolated plugins does to confine itself
/// (Builder::set_worker_hardening); combine with `|`, test with has_flag().
/// A part the kernel cannot apply makes the load throw
/// Status::Unsupported, naming it, rather than run without it.
enum class WorkerHardening : std::uint32_t {
    /// No hardening (the default): the worker runs as the host's user, with
    /// its files and its network.
    None = 0,
    /// `PR_SET_NO_NEW_PRIVS`: nothing the worker executes gains privileges
    /// (set-user-ID programs, file capabilities). Implied by the others.
    NoNewPrivileges = FIDIUS_HOST_WORKER_HARDENING_NO_NEW_PRIVILEGES,
    /// A seccomp filter, from before the plugin is read: a socket or socket
    /// pair of any family, and io_uring, fail with EACCES.
    DenyNetwork = FIDIUS_HOST_WORKER_HARDENING_DENY_NETWORK,
    /// Landlock, once the plugin is loaded: files are readable only beneath
    /// the plugin's own path (and, for Python, the interpreter's modules),
    /// nothing is written, created or removed, and no process outside the
    /// worker is signalled. A plugin that started a thread while it loaded
    /// cannot be confined (Status::Unsupported).
    ConfineFilesystem = FIDIUS_HOST_WORKER_HARDENING_CONFINE_FILESYSTEM,
};

constexpr WorkerHardening operator|(WorkerHardening a, WorkerHardening b) noexcept {
    return static_cast<WorkerHardening>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr WorkerHardening operator&(WorkerHardening a, WorkerHardening b) noexcept {
    return static_cast<WorkerHardening>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
/// Whether every bit of `part` is set in `flags`.
constexpr bool has_flag(WorkerHardening flags, WorkerHardening part) noexcept { return (flags & part) == part; }

/// How plugin outputs travel (fidius `BufferStrategyKind`).
enum class BufferStrategy : std::uint32_t {
    PluginAllocated = FIDIUS_HOST_BUFFER_STRATEGY_PLUGIN_ALLOCATED,
    Arena = FIDIUS_HOST_BUFFER_STRATEGY_ARENA,
};

/// Which runtime executes a plugin.
enum class Runtime : std::uint32_t {
    Cdylib = FIDIUS_HOST_RUNTIME_CDYLIB,
    Python = FIDIUS_HOST_RUNTIME_PYTHON,
    Wasm = FIDIUS_HOST_RUNTIME_WASM,
};

/// Flags of an interface method; combine with `|`, test with has_flag().
enum class MethodFlags : std::uint32_t {
    None = 0,
    Optional = FIDIUS_HOST_METHOD_FLAG_OPTIONAL,    ///< `#[optional]`: not hashed, may be missing
    Raw = FIDIUS_HOST_METHOD_FLAG_RAW,              ///< `#[wire(raw)]`: bytes travel unencoded
    Streaming = FIDIUS_HOST_METHOD_FLAG_STREAMING,  ///< returns `Stream<T>`
};

constexpr MethodFlags operator|(MethodFlags a, MethodFlags b) noexcept {
    return static_cast<MethodFlags>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr MethodFlags operator&(MethodFlags a, MethodFlags b) noexcept {
    return static_cast<MethodFlags>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
/// Whether every bit of `flag` is set in `flags`.
constexpr bool has_flag(MethodFlags flags, MethodFlags flag) noexcept { return (flags & flag) == flag; }

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// The values a host expected and found when a plugin did not match it
/// (Error::mismatch()).
struct Mismatch {
    /// What the host expected: an interface hash, interface version, method
    /// count or BufferStrategy number.
    std::uint64_t expected = 0;
    /// What the plugin has.
    std::uint64_t found = 0;
};

/// A method index past a plugin's methods (Error::method_out_of_range()).
struct MethodOutOfRange {
    std::uint32_t index = 0;  ///< the index a call asked for
    std::uint32_t count = 0;  ///< the plugin's number of methods
};

/// What the library says about a failure besides its message.
struct ErrorDetails {
    /// The plugin's own error code, message and details (JSON); set for
    /// Status::PluginError, and for Status::ConfigRejected when a Python
    /// plugin's `__fidius_configure__` raised (the message and details when
    /// the plugin gave them).
    std::optional<std::string> plugin_code;
    std::optional<std::string> plugin_message;
    std::optional<std::string> plugin_details;
    /// For Status::InterfaceHashMismatch, InterfaceVersionMismatch,
    /// MethodCountMismatch and BufferStrategyMismatch.
    std::optional<Mismatch> mismatch;
    /// For Status::MethodOutOfRange.
    std::optional<MethodOutOfRange> method_out_of_range;
};

/// A failure of the library: its status, its message (naming the file or
/// plugin and what was expected versus found) and its details: for
/// Status::PluginError the error the plugin itself returned, for a
/// mismatch the two values, for a method out of range its index and the
/// method count. what() is "STATUS_NAME: message".
class Error : public std::runtime_error {
public:
    Error(Status status, std::string message, ErrorDetails details = {})
        : std::runtime_error(std::string(status_name(status)) + ": " + message),
          status_(status),
          message_(std::move(message)),
          details_(std::move(details)) {}

    Status status() const noexcept { return status_; }
    /// The library's message, without the status name.
    const std::string &message() const noexcept { return message_; }
    /// The plugin's own error code (e.g. "DIV_ZERO"); set for plugin errors only.
    const std::optional<std::string> &plugin_code() const noexcept { return details_.plugin_code; }
    /// The plugin's own error message, when it gave one.
    const std::optional<std::string> &plugin_message() const noexcept { return details_.plugin_message; }
    /// The plugin's error details as JSON text, when it gave any.
    const std::optional<std::string> &plugin_details() const noexcept { return details_.plugin_details; }
    /// What the host expected and what the plugin has, for the
    /// *Mismatch statuses of a load.
    const std::optional<Mismatch> &mismatch() const noexcept { return details_.mismatch; }
    /// The index a call asked for and the plugin's method count, for
    /// Status::MethodOutOfRange.
    const std::optional<MethodOutOfRange> &method_out_of_range() const noexcept {
        return details_.method_out_of_range;
    }
    const ErrorDetails &details() const noexcept { return details_; }

private:
    Status status_;
    std::string message_;
    ErrorDetails details_;
};

/// A method returned `Err(PluginError)` (Status::PluginError); the plugin's
/// code, message and details are on the Error base.
class PluginError : public Error {
public:
    using Error::Error;
};

/// What a host function (the callback of a fidius::Binding) throws to
/// return `Err(PluginError)` to the plugin calling it: the plugin receives
/// `code`, `message` and `details_json` (JSON text, or none) as its
/// PluginError. Code and message must be UTF-8 and details valid JSON, or
/// the plugin gets a host failure naming the problem instead. Any other
/// exception a host function throws is a host failure for the plugin (see
/// Binding). what() is "CODE: message".
class HostError : public std::runtime_error {
public:
    HostError(std::string code, std::string message, std::optional<std::string> details_json = std::nullopt)
        : std::runtime_error(code + ": " + message),
          code_(std::move(code)),
          message_(std::move(message)),
          details_(std::move(details_json)) {}

    /// The error code the plugin sees, e.g. "NO_FUNDS".
    const std::string &code() const noexcept { return code_; }
    /// The message the plugin sees, without the code.
    const std::string &message() const noexcept { return message_; }
    /// The details as JSON text, if any.
    const std::optional<std::string> &details() const noexcept { return details_; }

private:
    std::string code_;
    std::string message_;
    std::optional<std::string> details_;
};

namespace detail {

/// A C string that may be NULL, as an optional copy.
inline std::optional<std::string> optional_text(const char *text) {
    if (text == nullptr) return std::nullopt;
    return std::string(text);
}

/// A C string that may be NULL, as a copy ("" for NULL).
inline std::string text_or_empty(const char *text) { return text == nullptr ? std::string() : std::string(text); }

/// A string_view's bytes for a C (pointer, length) pair. A default
/// string_view has a NULL data pointer, which the C API reads as a missing
/// argument; an empty string must stay an empty string.
inline const char *data_of(std::string_view text) noexcept { return text.data() == nullptr ? "" : text.data(); }

/// The deleter of a C handle: calls its one free function.
template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T *handle) const noexcept {
        Free(handle);
    }
};

/// Owning pointer to a C handle, freed with `Free`. Moving it leaves NULL.
template <typename T, auto Free>
using Handle = std::unique_ptr<T, Deleter<Free>>;

/// A string the library handed out (JSON, interface text, a denied
/// request's method, URL or reason).
using OwnedString = Handle<char, fidius_host_string_free>;

/// Throws the C error of a failed call as fidius::Error (PluginError for
/// plugin errors), with every detail the error object carries; `addendum`,
/// when not empty, is appended to the library's message (what the binding
/// knows besides, e.g. what a producer threw).
[[noreturn]] inline void throw_error(fidius_host_status status, const fidius_host_error_t *error,
                                     std::string_view addendum = {}) {
    const Status code = static_cast<Status>(status);
    std::string message = error != nullptr ? text_or_empty(fidius_host_error_message(error))
                                           : std::string("the call failed without an error object");
    message += addendum;
    ErrorDetails details;
    details.plugin_code = optional_text(fidius_host_error_plugin_code(error));
    details.plugin_message = optional_text(fidius_host_error_plugin_message(error));
    details.plugin_details = optional_text(fidius_host_error_plugin_details(error));
    Mismatch mismatch;
    if (fidius_host_error_mismatch(error, &mismatch.expected, &mismatch.found)) details.mismatch = mismatch;
    MethodOutOfRange out_of_range;
    if (fidius_host_error_method_out_of_range(error, &out_of_range.index, &out_of_range.count))
        details.method_out_of_range = out_of_range;
    if (code == Status::PluginError) throw PluginError(code, std::move(message), std::move(details));
    throw Error(code, std::move(message), std::move(details));
}

/// Calls the fallible C function `function` with `args` and an error
/// out-parameter, and throws its failure. The error object is freed
/// whatever happens; the status is always looked at.
template <typename... Params, typename... Args>
void invoke(fidius_host_status (*function)(Params...), Args &&...args) {
    fidius_host_error_t *raw_error = nullptr;
    const fidius_host_status status = function(std::forward<Args>(args)..., &raw_error);
    const Handle<fidius_host_error_t, fidius_host_error_free> error(raw_error);
    if (status != FIDIUS_HOST_STATUS_OK) throw_error(status, error.get());
}

/// Throws Status::NullArgument when a wrapper is used after being moved
/// from (or was never given a handle).
inline void require(const void *handle, const char *what) {
    if (handle == nullptr)
        throw Error(Status::NullArgument, std::string("the fidius::") + what + " is empty (moved from or never set)");
}

/// Fails with a NULL handle out of a `_new` constructor, which the C API
/// returns only on an internal failure.
template <typename T>
T *require_new(T *handle, const char *what) {
    if (handle == nullptr)
        throw Error(Status::InternalPanic, std::string("could not create a fidius::") + what);
    return handle;
}

/// A std::chrono duration as the C API's unsigned milliseconds.
inline std::uint64_t milliseconds_of(std::chrono::milliseconds duration, const char *what) {
    if (duration.count() < 0) throw Error(Status::InvalidArgument, std::string(what) + " must not be negative");
    return static_cast<std::uint64_t>(duration.count());
}

/// A std::chrono duration as the C API's unsigned seconds.
inline std::uint64_t seconds_of(std::chrono::seconds duration, const char *what) {
    if (duration.count() < 0) throw Error(Status::InvalidArgument, std::string(what) + " must not be negative");
    return static_cast<std::uint64_t>(duration.count());
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------

/// A borrowed run of bytes (pointer + size), the input of raw calls. It
/// does not own the bytes: keep them alive while the view is used.
class bytes_view {
public:
    constexpr bytes_view() noexcept = default;
    constexpr bytes_view(const std::uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}
    bytes_view(const std::vector<std::uint8_t> &bytes) noexcept : data_(bytes.data()), size_(bytes.size()) {}
    template <std::size_t N>
    constexpr bytes_view(const std::array<std::uint8_t, N> &bytes) noexcept : data_(bytes.data()), size_(N) {}
    /// The bytes of a text, e.g. for a raw method that takes text.
    explicit bytes_view(std::string_view text) noexcept
        : data_(reinterpret_cast<const std::uint8_t *>(text.data())), size_(text.size()) {}

    constexpr const std::uint8_t *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const std::uint8_t *begin() const noexcept { return data_; }
    constexpr const std::uint8_t *end() const noexcept { return data_ + size_; }
    constexpr std::uint8_t operator[](std::size_t index) const noexcept { return data_[index]; }

private:
    const std::uint8_t *data_ = nullptr;
    std::size_t size_ = 0;
};

/// Whether two runs of bytes are equal.
inline bool operator==(bytes_view a, bytes_view b) noexcept {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}
inline bool operator!=(bytes_view a, bytes_view b) noexcept { return !(a == b); }

namespace detail {
/// An empty view's pointer may be null; a few C functions read that as a
/// missing argument rather than as no bytes.
inline const std::uint8_t *bytes_of(bytes_view bytes) noexcept {
    static const std::uint8_t none = 0;
    return bytes.data() == nullptr ? &none : bytes.data();
}
}  // namespace detail

/// Bytes the library handed out (a call's result, a precompiled
/// component): it owns the library's fidius_host_bytes_t, which its deleter
/// releases with fidius_host_bytes_free, and gives access to the bytes in
/// place, without copying them. Move-only; a moved-from Bytes is empty. The
/// bytes stay valid after the plugin and host they came from are gone.
class Bytes {
public:
    /// No bytes.
    Bytes() noexcept = default;
    /// Takes ownership of bytes the library handed out (`bytes` is left
    /// empty). If holding them fails (no memory), they are released and
    /// the exception propagates.
    explicit Bytes(fidius_host_bytes_t &bytes) : bytes_(hold(bytes)) {}

    const std::uint8_t *data() const noexcept { return bytes_ ? bytes_->data : nullptr; }
    std::size_t size() const noexcept { return bytes_ ? bytes_->len : 0; }
    bool empty() const noexcept { return size() == 0; }
    const std::uint8_t *begin() const noexcept { return data(); }
    const std::uint8_t *end() const noexcept { return data() + size(); }
    std::uint8_t operator[](std::size_t index) const noexcept { return data()[index]; }

    /// A view of the bytes, valid while this object holds them.
    bytes_view view() const noexcept { return bytes_view(data(), size()); }
    operator bytes_view() const noexcept { return view(); }
    /// A copy of the bytes.
    std::vector<std::uint8_t> to_vector() const { return std::vector<std::uint8_t>(begin(), end()); }
    /// A copy of the bytes as text (e.g. the result of a raw method that returns text).
    std::string to_string() const { return std::string(begin(), end()); }

    /// Gives up ownership of the C bytes (release them with
    /// fidius_host_bytes_free); this object is empty afterwards.
    fidius_host_bytes_t release() noexcept {
        fidius_host_bytes_t bytes{nullptr, 0, nullptr};
        if (bytes_) std::swap(bytes, *bytes_);
        bytes_.reset();
        return bytes;
    }

private:
    struct Free {
        void operator()(fidius_host_bytes_t *bytes) const noexcept {
            fidius_host_bytes_free(bytes);
            delete bytes;
        }
    };

    // Empty bytes need no holder.
    static fidius_host_bytes_t *hold(fidius_host_bytes_t &bytes) {
        fidius_host_bytes_t taken = bytes;
        bytes = fidius_host_bytes_t{nullptr, 0, nullptr};
        if (taken.data == nullptr && taken.len == 0) {
            fidius_host_bytes_free(&taken);
            return nullptr;
        }
        try {
            return new fidius_host_bytes_t(taken);
        } catch (...) {
            fidius_host_bytes_free(&taken);
            throw;
        }
    }

    std::unique_ptr<fidius_host_bytes_t, Free> bytes_;
};

// ---------------------------------------------------------------------------
// Plain values
// ---------------------------------------------------------------------------

/// Facts about one plugin, as discovery reports them and a loaded plugin
/// has them. A copy: valid after every handle is gone.
struct PluginInfo {
    std::string name;            ///< the plugin's name, e.g. "BasicCalculator"
    std::string interface_name;  ///< the interface (trait) name
    std::string path;            ///< the library file or package directory
    std::uint64_t interface_hash = 0;
    std::uint32_t interface_version = 0;
    std::uint64_t capabilities = 0;  ///< bit k: the k-th optional method is implemented
    BufferStrategy buffer_strategy{};
    Runtime runtime{};

    /// Whether the `bit`-th optional method is implemented.
    bool has_capability(std::uint32_t bit) const noexcept { return bit < 64 && ((capabilities >> bit) & 1u) != 0; }

    /// Copies a borrowed C info.
    static PluginInfo from_c(const fidius_host_plugin_info_t *info) {
        PluginInfo result;
        result.name = detail::text_or_empty(fidius_host_plugin_info_name(info));
        result.interface_name = detail::text_or_empty(fidius_host_plugin_info_interface_name(info));
        result.path = detail::text_or_empty(fidius_host_plugin_info_path(info));
        result.interface_hash = fidius_host_plugin_info_interface_hash(info);
        result.interface_version = fidius_host_plugin_info_interface_version(info);
        result.capabilities = fidius_host_plugin_info_capabilities(info);
        result.buffer_strategy = static_cast<BufferStrategy>(fidius_host_plugin_info_buffer_strategy(info));
        result.runtime = static_cast<Runtime>(fidius_host_plugin_info_runtime(info));
        return result;
    }
};

/// A search path, file or descriptor discovery skipped, and why.
struct SkippedEntry {
    std::string path;
    Status status = Status::Ok;
    std::string message;  ///< names the file and the problem
};

/// What Host::discover found: every valid plugin and every skipped entry.
struct Discovery {
    std::vector<PluginInfo> plugins;
    std::vector<SkippedEntry> skipped;
};

/// The use figures of an isolated plugin handle (Plugin::worker_usage):
/// counts since it was loaded, and its running worker.
struct WorkerUsage {
    std::uint64_t calls = 0;     ///< calls sent to a worker
    std::uint64_t errors = 0;    ///< calls that failed, whatever the reason (plugin errors included)
    std::uint64_t timeouts = 0;  ///< calls that passed the deadline (their worker was killed)
    std::uint64_t restarts = 0;  ///< workers started after the first
    std::int32_t pid = 0;        ///< the running worker's process id; 0 while none runs (lost, not restarted yet)
    /// CPU time (user and system) of every worker the handle had: the
    /// ended ones' final figures and the running one's so far.
    std::chrono::microseconds cpu_time{0};
    std::uint64_t peak_memory_bytes = 0;  ///< the largest peak resident memory of those workers
};

/// One metadata pair of a plugin (trait-level or of one method).
struct MetadataEntry {
    std::string key;
    std::string value;
};

/// An outbound HTTP request, socket or name lookup the plugin's egress
/// policy denied.
struct DeniedRequest {
    std::string method;  ///< "GET", "POST", ...; "TCP", "UDP" or "DNS" for sockets and lookups
    std::string url;     ///< scheme://authority/path?query; "tcp://ip:port", "udp://ip:port", "dns://name"
    std::string reason;  ///< why it was denied, e.g. "denied by the egress policy"
};

/// One header of an outbound request or of a response; valid during the
/// egress callback or rule only.
struct HttpHeader {
    std::string_view name;   ///< lowercase
    std::string_view value;  ///< the bytes as sent, not necessarily UTF-8
};

class EgressPolicy;

namespace detail {

/// A C string that may be NULL, as a view ("" for NULL), borrowed like it.
inline std::string_view view_of(const char *text) noexcept {
    return text == nullptr ? std::string_view() : std::string_view(text);
}

/// Views `count` C headers (borrowed like them).
inline std::vector<HttpHeader> headers_of(const fidius_host_http_header_t *headers, std::size_t count) {
    std::vector<HttpHeader> result;
    if (headers == nullptr) return result;
    result.reserve(count);
    for (std::size_t i = 0; i < count; i++)
        result.push_back(HttpHeader{view_of(headers[i].name), view_of(headers[i].value)});
    return result;
}

/// The value of the first header called `name`, if any.
inline std::optional<std::string_view> find_header(const std::vector<HttpHeader> &headers, std::string_view name) {
    for (const HttpHeader &h : headers)
        if (h.name == name) return h.value;
    return std::nullopt;
}

/// The header edits of the HTTP rule (or callback) running on this thread,
/// NULL when none is: HttpRequest::set_header reaches the library's edits
/// only while the rule it was given to runs, so a request view kept past
/// its rule cannot write to edits that are gone.
inline thread_local fidius_host_header_edits_t *running_edits = nullptr;

/// Makes `edits` this thread's running edits for its lifetime (restoring
/// the previous ones after: a rule may call another plugin whose rule runs
/// on the same thread).
class RunningEdits {
public:
    explicit RunningEdits(fidius_host_header_edits_t *edits) noexcept : previous_(running_edits) {
        running_edits = edits;
    }
    RunningEdits(const RunningEdits &) = delete;
    RunningEdits &operator=(const RunningEdits &) = delete;
    ~RunningEdits() { running_edits = previous_; }

private:
    fidius_host_header_edits_t *previous_;
};

}  // namespace detail

/// An outbound request as an egress callback or rule sees it. Every view
/// borrows from the library and is valid during the callback only: copy
/// what you keep.
struct HttpRequest {
    std::string_view plugin;     ///< the name of the plugin sending it
    std::string_view method;     ///< "GET", "POST", ...
    std::string_view scheme;     ///< "http" or "https"
    std::string_view authority;  ///< as the guest wrote it: host, host:port or [ipv6]:port
    std::string_view host;       ///< lowercase, IPv6 without brackets
    std::uint16_t port = 0;      ///< explicit, or the scheme's default
    std::string_view path_with_query;
    /// The headers: as the guest gave them for the HTTP rule (edits do not
    /// show here), as sent (edits applied) for the response rule.
    std::vector<HttpHeader> headers;

    /// The value of the first header called `name` (lowercase), if any.
    std::optional<std::string_view> header(std::string_view name) const { return detail::find_header(headers, name); }

    /// Sends the request with header `name` (case-insensitive) set to
    /// `value` (bytes, not necessarily UTF-8), replacing every value the
    /// guest gave it: a credential, a trace id. Only the HTTP rule (or
    /// EgressPolicy::callback) deciding on this request may call it, on its
    /// own thread, before it returns; edits apply in call order when the
    /// rule allows the request and are dropped when it denies. A retry
    /// asks the rule again, starting over from the guest's request. const:
    /// it edits the request to be sent, not this view.
    ///
    /// Throws fidius::Error: Status::Misuse outside that rule (a response
    /// rule's request, a view kept past its rule); Status::InvalidArgument
    /// for a NUL byte, a name that is not an HTTP token or that the library
    /// frames or routes the request with ("host", "content-length",
    /// "transfer-encoding", "connection", ...; the message names it), a
    /// value with a control character, or more than 64 edits for one
    /// request; Status::InvalidUtf8 for a name that is not UTF-8. An error
    /// leaves the edits made before it.
    void set_header(std::string_view name, std::string_view value) const { edit_header(name, &value); }

    /// Sends the request without header `name` (case-insensitive), as
    /// set_header does: same rule, same errors.
    void remove_header(std::string_view name) const { edit_header(name, nullptr); }

    /// Views a C request (borrowed for the callback). The view is
    /// read-only: its set_header and remove_header throw Status::Misuse;
    /// the rules of EgressPolicy get views that can edit.
    static HttpRequest from_c(const fidius_host_http_request_t &request) {
        HttpRequest result;
        result.plugin = detail::view_of(request.plugin);
        result.method = detail::view_of(request.method);
        result.scheme = detail::view_of(request.scheme);
        result.authority = detail::view_of(request.authority);
        result.host = detail::view_of(request.host);
        result.port = request.port;
        result.path_with_query = detail::view_of(request.path_with_query);
        result.headers = detail::headers_of(request.headers, request.header_count);
        return result;
    }

private:
    friend class EgressPolicy;

    void edit_header(std::string_view name, const std::string_view *value) const {
        if (edits_ == nullptr)
            throw Error(Status::Misuse,
                        "headers can be set only by the HTTP rule deciding on a request (a response rule sees the "
                        "request as sent)");
        if (edits_ != detail::running_edits)
            throw Error(Status::Misuse, "headers can be set only while the HTTP rule given this request runs, "
                                        "on its thread");
        // The C API reads NUL-terminated strings: a NUL byte would cut them short.
        if (name.find('\0') != std::string_view::npos)
            throw Error(Status::InvalidArgument, "a header name contains a NUL character");
        if (value != nullptr && value->find('\0') != std::string_view::npos)
            throw Error(Status::InvalidArgument,
                        "the value of header '" + std::string(name) + "' contains a NUL character");
        const std::string c_name(name);
        if (value == nullptr) {
            detail::invoke(fidius_host_header_edits_set, edits_, c_name.c_str(), static_cast<const char *>(nullptr));
        } else {
            const std::string c_value(*value);
            detail::invoke(fidius_host_header_edits_set, edits_, c_name.c_str(), c_value.c_str());
        }
    }

    /// The library's edits of the request an HTTP rule decides on; NULL
    /// for every other view.
    fidius_host_header_edits_t *edits_ = nullptr;
};

/// The head of a response to a request the HTTP rule allowed, as a
/// response rule sees it (never the body). Every view borrows from the
/// library and is valid during the rule only: copy what you keep.
struct HttpResponse {
    std::uint16_t status = 0;  ///< the status code, e.g. 200, 401
    /// The response's headers (names lowercase).
    std::vector<HttpHeader> headers;
    /// Whether answering ResponseDirective::RetryOnce sends the request
    /// again: false for the response to a retry, and when the request's
    /// body was not kept whole (over 64 KiB, trailers, or still being
    /// written when the response came).
    bool retry_available = false;

    /// The value of the first header called `name` (lowercase), if any.
    std::optional<std::string_view> header(std::string_view name) const { return detail::find_header(headers, name); }

    /// Views a C response (borrowed for the callback).
    static HttpResponse from_c(const fidius_host_http_response_t &response) {
        HttpResponse result;
        result.status = response.status;
        result.headers = detail::headers_of(response.headers, response.header_count);
        result.retry_available = response.retry_available;
        return result;
    }
};

/// What a response rule answers (`FIDIUS_HOST_RESPONSE_DIRECTIVE_*`).
enum class ResponseDirective : std::int32_t {
    /// The guest gets the response.
    Forward = FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD,
    /// The response is dropped; the request, as the guest made it, goes to
    /// the HTTP rule again (which may set a fresh credential) and, if
    /// allowed, is sent once more with the same body. The guest gets the
    /// second response, whatever it is; if the HTTP rule denies the retry,
    /// the guest gets an HTTP-request-denied error. Ignored (forwards) when
    /// HttpResponse::retry_available is false.
    RetryOnce = FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE,
};

/// The transport of a socket target (`FIDIUS_HOST_SOCKET_PROTOCOL_*`).
enum class SocketProtocol : std::uint32_t {
    Tcp = FIDIUS_HOST_SOCKET_PROTOCOL_TCP,  ///< an outbound TCP connection
    Udp = FIDIUS_HOST_SOCKET_PROTOCOL_UDP,  ///< an outbound UDP datagram
};

/// A socket a guest would open, as a socket rule sees it. Every view
/// borrows from the library and is valid during the rule only: copy what
/// you keep.
struct SocketTarget {
    std::string_view plugin;  ///< the name of the plugin opening it
    SocketProtocol protocol = SocketProtocol::Tcp;
    /// The host name the guest dialed, when a lookup of it (which the DNS
    /// rule allowed) gave this address; none when the guest dialed an
    /// address.
    std::optional<std::string_view> host;
    /// "127.0.0.1", "::1" (an IPv4-mapped IPv6 address in its IPv4 form).
    std::string_view address;
    /// The port; 0 asks about a lookup's answer (may this address reach the
    /// guest at all?).
    std::uint16_t port = 0;
    /// Whether the address is special (loopback, private, link-local,
    /// shared, multicast, unspecified, broadcast): allow it only if you mean
    /// that very address. A special address reached by name is asked about
    /// twice, with the name and then without (this very address); both
    /// must allow.
    bool special = false;

    /// Views a C target (borrowed for the rule).
    static SocketTarget from_c(const fidius_host_socket_target_t &target) {
        auto view = [](const char *text) { return text == nullptr ? std::string_view() : std::string_view(text); };
        SocketTarget result;
        result.plugin = view(target.plugin);
        result.protocol = static_cast<SocketProtocol>(target.protocol);
        if (target.host != nullptr) result.host = std::string_view(target.host);
        result.address = view(target.address);
        result.port = target.port;
        result.special = target.special;
        return result;
    }
};

/// The rules of a policy made by EgressPolicy::rules: one per kind of
/// egress, each answering true to allow, and an optional response rule.
/// An empty rule denies everything of its kind. The rules run on the
/// thread that called the plugin, during the call (the response rule, and
/// the HTTP rule asked about a retry, on one of the library's I/O threads
/// while the call waits), possibly on several threads at once: they must
/// be thread-safe and must not call into the plugin. An exception a rule
/// throws denies (forwards, for the response rule); it never reaches the
/// library.
struct EgressRules {
    /// Decides each outbound HTTP request; may set and remove headers on a
    /// request it allows (HttpRequest::set_header, remove_header).
    std::function<bool(const HttpRequest &)> http;
    /// Decides each socket target (a TCP connect, a UDP datagram) of guests
    /// that declare `tcp` or `udp`.
    std::function<bool(const SocketTarget &)> socket;
    /// Decides each name lookup of such a guest: `name` is lowercase, with
    /// no trailing dot. Without it guests can only dial addresses.
    std::function<bool(std::string_view plugin, std::string_view name)> dns;
    /// Sees the head of each response to a request the HTTP rule allowed,
    /// before the guest does, with the request as it was sent (with the
    /// headers the HTTP rule set; its set_header throws), and answers
    /// ResponseDirective::RetryOnce to have the request asked about again
    /// and sent once more (e.g. after a 401, with a fresh credential), or
    /// ResponseDirective::Forward. Runs on one of the library's I/O threads;
    /// the call's deadline covers both sends, not the rules. An exception
    /// it throws forwards. Empty (the default): responses go to the guest
    /// unobserved, and request bodies are not kept for a retry.
    std::function<ResponseDirective(const HttpRequest &, const HttpResponse &)> response;
};

// ---------------------------------------------------------------------------
// Egress policies
// ---------------------------------------------------------------------------

/// Which outbound HTTP requests WASM plugins with the `http` capability may
/// send, and which sockets (and name lookups) plugins with `tcp` or `udp`
/// may open: a callback deciding each request, rules deciding each request,
/// socket and lookup, or a host[:port] allow-list.
/// Set on a Builder (host-wide) or LoadOptions (one load); those keep their
/// own reference, so the policy object may be destroyed right after.
class EgressPolicy {
public:
    /// Answers true to send the request, false to deny it. Runs on the
    /// thread that called the plugin, possibly on several threads at once:
    /// it must be thread-safe and must not call back into the same plugin.
    /// An exception it throws denies the request (it never reaches the
    /// library). It may set and remove headers on a request it allows
    /// (HttpRequest::set_header, remove_header).
    using Callback = std::function<bool(const HttpRequest &)>;

    /// An empty policy object (no handle).
    EgressPolicy() noexcept = default;
    /// Takes ownership of a C policy handle.
    explicit EgressPolicy(fidius_host_egress_policy_t *policy) noexcept : handle_(policy) {}

    /// A policy that asks `callback` about every request. The callback is
    /// kept (on the heap) until the policy and every builder, host, load
    /// options and plugin using it are gone.
    static EgressPolicy callback(Callback callback) {
        if (!callback) throw Error(Status::NullArgument, "the egress callback is empty");
        auto userdata = std::make_unique<Callback>(std::move(callback));
        fidius_host_egress_policy_t *policy = nullptr;
        // The library owns the callback from here on: it calls
        // release_callback exactly once, when the last user is gone (or at
        // once if creating the policy fails).
        detail::invoke(fidius_host_egress_policy_new_callback, &EgressPolicy::decide, userdata.release(),
                       &EgressPolicy::release_callback, &policy);
        return EgressPolicy(policy);
    }

    /// A policy that asks `rules.http` about every HTTP request,
    /// `rules.socket` about every socket target and `rules.dns` about every
    /// name lookup; an empty rule denies all of its kind. `rules.response`,
    /// when set, sees the head of every response to an allowed request and
    /// may have the request sent once more. A lookup's answers
    /// in special ranges reach the guest only when the socket rule allows
    /// that address (asked with port 0), and a later connect to such an
    /// answer is asked with the name as SocketTarget::host. The rules are
    /// kept (on the heap) until the policy and every builder, host, load
    /// options and plugin using it are gone.
    static EgressPolicy rules(EgressRules rules) {
        fidius_host_egress_callbacks_t callbacks{};
        callbacks.http = rules.http ? &EgressPolicy::decide_http : nullptr;
        callbacks.socket = rules.socket ? &EgressPolicy::decide_socket : nullptr;
        callbacks.dns = rules.dns ? &EgressPolicy::decide_dns : nullptr;
        callbacks.response = rules.response ? &EgressPolicy::observe_response : nullptr;
        auto userdata = std::make_unique<EgressRules>(std::move(rules));
        fidius_host_egress_policy_t *policy = nullptr;
        // The library owns the rules from here on: it calls release_rules
        // exactly once, when the last user is gone (or at once if creating
        // the policy fails).
        detail::invoke(fidius_host_egress_policy_new_callbacks, &callbacks, userdata.release(),
                       &EgressPolicy::release_rules, &policy);
        return EgressPolicy(policy);
    }

    /// A policy that allows requests whose host and port match one of
    /// `patterns`: "example.com" (any port), "example.com:8080",
    /// "*.example.com" (subdomains only), "127.0.0.1:9000", "[::1]:9000".
    /// No patterns denies everything. Each pattern is passed with its
    /// length. For guests that open sockets, a name is looked up only when
    /// a pattern names it; a socket target matches by the name its lookup
    /// gave it, or by its address and port; a special address (loopback,
    /// private, ...) is reached only when a pattern names that address.
    static EgressPolicy allow_list(const std::vector<std::string_view> &patterns) {
        std::vector<fidius_host_str_t> c_patterns;
        c_patterns.reserve(patterns.size());
        for (std::string_view pattern : patterns) {
            // No host name has a NUL byte: such a pattern could never match.
            if (pattern.find('\0') != std::string_view::npos)
                throw Error(Status::InvalidArgument, "an egress pattern contains a NUL character");
            c_patterns.push_back(fidius_host_str_t{detail::data_of(pattern), pattern.size()});
        }
        fidius_host_egress_policy_t *policy = nullptr;
        detail::invoke(fidius_host_egress_policy_new_allow_list, c_patterns.empty() ? nullptr : c_patterns.data(),
                       c_patterns.size(), &policy);
        return EgressPolicy(policy);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_egress_policy_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_egress_policy_free).
    fidius_host_egress_policy_t *release() noexcept { return handle_.release(); }

private:
    // The C trampoline: exceptions must not cross into the library, so any
    // exception (or a missing request) denies.
    static std::int32_t decide(void *userdata, const fidius_host_http_request_t *request) noexcept {
        try {
            const auto *callback = static_cast<const Callback *>(userdata);
            if (callback == nullptr || request == nullptr) return FIDIUS_HOST_EGRESS_DECISION_DENY;
            const detail::RunningEdits running(request->edits);
            return (*callback)(editable_view(*request)) ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                        : FIDIUS_HOST_EGRESS_DECISION_DENY;
        } catch (...) {
            return FIDIUS_HOST_EGRESS_DECISION_DENY;
        }
    }

    static void release_callback(void *userdata) noexcept { delete static_cast<Callback *>(userdata); }

    // The view an HTTP callback or rule gets: it can set headers through
    // the request's edits while the rule runs (see detail::RunningEdits).
    static HttpRequest editable_view(const fidius_host_http_request_t &request) {
        HttpRequest view = HttpRequest::from_c(request);
        view.edits_ = request.edits;
        return view;
    }

    // The trampolines of EgressPolicy::rules; like decide, any exception
    // (or a missing argument) denies.
    static std::int32_t decide_http(void *userdata, const fidius_host_http_request_t *request) noexcept {
        try {
            const auto *rules = static_cast<const EgressRules *>(userdata);
            if (rules == nullptr || !rules->http || request == nullptr) return FIDIUS_HOST_EGRESS_DECISION_DENY;
            const detail::RunningEdits running(request->edits);
            return rules->http(editable_view(*request)) ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                        : FIDIUS_HOST_EGRESS_DECISION_DENY;
        } catch (...) {
            return FIDIUS_HOST_EGRESS_DECISION_DENY;
        }
    }

    static std::int32_t decide_socket(void *userdata, const fidius_host_socket_target_t *target) noexcept {
        try {
            const auto *rules = static_cast<const EgressRules *>(userdata);
            if (rules == nullptr || !rules->socket || target == nullptr) return FIDIUS_HOST_EGRESS_DECISION_DENY;
            return rules->socket(SocketTarget::from_c(*target)) ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                                : FIDIUS_HOST_EGRESS_DECISION_DENY;
        } catch (...) {
            return FIDIUS_HOST_EGRESS_DECISION_DENY;
        }
    }

    static std::int32_t decide_dns(void *userdata, const char *plugin, const char *name) noexcept {
        try {
            const auto *rules = static_cast<const EgressRules *>(userdata);
            if (rules == nullptr || !rules->dns || plugin == nullptr || name == nullptr)
                return FIDIUS_HOST_EGRESS_DECISION_DENY;
            return rules->dns(std::string_view(plugin), std::string_view(name)) ? FIDIUS_HOST_EGRESS_DECISION_ALLOW
                                                                                : FIDIUS_HOST_EGRESS_DECISION_DENY;
        } catch (...) {
            return FIDIUS_HOST_EGRESS_DECISION_DENY;
        }
    }

    // The response rule's trampoline: any exception (or a missing
    // argument) forwards the response. The request it shows cannot be
    // edited (a response rule's request has no edits).
    static std::int32_t observe_response(void *userdata, const fidius_host_http_request_t *request,
                                         const fidius_host_http_response_t *response) noexcept {
        try {
            const auto *rules = static_cast<const EgressRules *>(userdata);
            if (rules == nullptr || !rules->response || request == nullptr || response == nullptr)
                return FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD;
            return static_cast<std::int32_t>(
                rules->response(HttpRequest::from_c(*request), HttpResponse::from_c(*response)));
        } catch (...) {
            return FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD;
        }
    }

    static void release_rules(void *userdata) noexcept { delete static_cast<EgressRules *>(userdata); }

    detail::Handle<fidius_host_egress_policy_t, fidius_host_egress_policy_free> handle_;
};

// ---------------------------------------------------------------------------
// Interfaces
// ---------------------------------------------------------------------------

/// A validated, immutable interface: name, version, methods and types. It
/// is checked against a plugin at load and enables JSON calls. Plugins and
/// load options keep their own reference, so it may be destroyed after.
class Interface {
public:
    /// An empty interface object (no handle).
    Interface() noexcept = default;
    /// Takes ownership of a C interface handle.
    explicit Interface(fidius_host_interface_t *interface_handle) noexcept : handle_(interface_handle) {}

    /// Reads an interface file (TOML).
    static Interface from_file(std::string_view path) {
        fidius_host_interface_t *result = nullptr;
        detail::invoke(fidius_host_interface_new_from_file, detail::data_of(path), path.size(), &result);
        return Interface(result);
    }

    /// Parses interface-file text.
    static Interface from_toml(std::string_view toml) {
        fidius_host_interface_t *result = nullptr;
        detail::invoke(fidius_host_interface_new_from_toml, detail::data_of(toml), toml.size(), &result);
        return Interface(result);
    }

    /// The interface as interface-file text.
    std::string to_toml() const {
        char *raw_toml = nullptr;
        detail::invoke(fidius_host_interface_to_toml, handle_.get(), &raw_toml);
        const detail::OwnedString toml(raw_toml);
        return detail::text_or_empty(toml.get());
    }

    std::string name() const {
        detail::require(get(), "Interface");
        return detail::text_or_empty(fidius_host_interface_name(get()));
    }
    std::uint32_t version() const {
        detail::require(get(), "Interface");
        return fidius_host_interface_version(get());
    }
    /// The hash of the required methods, as `#[plugin_interface]` computes it.
    std::uint64_t hash() const {
        detail::require(get(), "Interface");
        return fidius_host_interface_hash(get());
    }
    /// The WASM component export name, if one was given.
    std::optional<std::string> wasm_export() const {
        detail::require(get(), "Interface");
        return detail::optional_text(fidius_host_interface_wasm_export(get()));
    }
    /// The type plugins of the interface are configured with, if it declares one.
    std::optional<std::string> config_type() const {
        detail::require(get(), "Interface");
        return detail::optional_text(fidius_host_interface_config_type(get()));
    }
    std::uint32_t method_count() const {
        detail::require(get(), "Interface");
        return fidius_host_interface_method_count(get());
    }
    /// The canonical signature of method `index` (what the hash sees).
    std::string method_signature(std::uint32_t index) const {
        detail::require(get(), "Interface");
        const char *signature = fidius_host_interface_method_signature(get(), index);
        if (signature == nullptr)
            throw Error(Status::MethodOutOfRange, "interface '" + name() + "' has no method " + std::to_string(index));
        return signature;
    }
    /// The flags of method `index` (MethodFlags::None when out of range).
    MethodFlags method_flags(std::uint32_t index) const {
        detail::require(get(), "Interface");
        return static_cast<MethodFlags>(fidius_host_interface_method_flags(get(), index));
    }
    /// The index of the method called `name`.
    std::uint32_t method_index(std::string_view method_name) const {
        std::uint32_t index = 0;
        detail::invoke(fidius_host_interface_method_index, get(), detail::data_of(method_name), method_name.size(),
                       &index);
        return index;
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_interface_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_interface_free).
    fidius_host_interface_t *release() noexcept { return handle_.release(); }

private:
    detail::Handle<fidius_host_interface_t, fidius_host_interface_free> handle_;
};

/// Collects an interface's name, version, methods and types; build() may
/// be called any number of times.
class InterfaceBuilder {
public:
    /// An empty builder object (no handle).
    InterfaceBuilder() noexcept = default;
    /// Starts an interface called `name` (the Rust trait name) at `version`.
    InterfaceBuilder(std::string_view name, std::uint32_t version) {
        fidius_host_interface_builder_t *builder = nullptr;
        detail::invoke(fidius_host_interface_builder_new, detail::data_of(name), name.size(), version, &builder);
        handle_.reset(builder);
    }
    /// Takes ownership of a C interface builder handle.
    explicit InterfaceBuilder(fidius_host_interface_builder_t *builder) noexcept : handle_(builder) {}

    /// Sets the WASM component export name, e.g. "fidius:calculator/calculator@0.1.0".
    InterfaceBuilder &set_wasm_export(std::string_view export_name) {
        detail::invoke(fidius_host_interface_builder_set_wasm_export, handle_.get(), detail::data_of(export_name),
                       export_name.size());
        return *this;
    }
    /// Declares the type plugins are constructed with (`config = C`), e.g.
    /// "ScaleConfig" (declared with add_type) or "Vec<String>"; the hash
    /// does not change.
    InterfaceBuilder &set_config_type(std::string_view type_name) {
        detail::invoke(fidius_host_interface_builder_set_config_type, handle_.get(), detail::data_of(type_name),
                       type_name.size());
        return *this;
    }
    /// Adds the next method (declaration order = vtable order) from its
    /// fidius signature, e.g. "add:i64,i64->i64" or "ping:->".
    InterfaceBuilder &add_method(std::string_view signature, MethodFlags flags = MethodFlags::None) {
        detail::invoke(fidius_host_interface_builder_add_method, handle_.get(), detail::data_of(signature),
                       signature.size(), static_cast<std::uint32_t>(flags));
        return *this;
    }
    /// Declares a struct or enum in Rust syntax, e.g. "struct Point { x: f64, y: f64 }".
    InterfaceBuilder &add_type(std::string_view declaration) {
        detail::invoke(fidius_host_interface_builder_add_type, handle_.get(), detail::data_of(declaration),
                       declaration.size());
        return *this;
    }
    /// Checks the whole interface and computes its hash. The builder stays usable.
    Interface build() const {
        fidius_host_interface_t *result = nullptr;
        detail::invoke(fidius_host_interface_builder_build, handle_.get(), &result);
        return Interface(result);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_interface_builder_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_interface_builder_free).
    fidius_host_interface_builder_t *release() noexcept { return handle_.release(); }

private:
    detail::Handle<fidius_host_interface_builder_t, fidius_host_interface_builder_free> handle_;
};

// ---------------------------------------------------------------------------
// Host functions
// ---------------------------------------------------------------------------

/// One call of a host function, as a Binding's callback sees it.
struct HostCall {
    /// The method of the host interface (declaration order).
    std::uint32_t method = 0;
    /// The context of the plugin call this serves
    /// (Plugin::call_with_context, Plugin::call_json_with_context);
    /// nullptr when there is none, and for calls from a thread the plugin
    /// started. Never dereferenced by the library.
    void *context = nullptr;
    /// Raw bindings: the bincode of the argument tuple, borrowed for the
    /// call (copy what you keep). Empty for JSON bindings, whose callback
    /// gets the arguments as JSON text.
    bytes_view args;
};

/// Host functions for one host interface (a `#[host_interface]` trait the
/// plugin's library imports, described by an Interface, e.g. read from the
/// interface file the generator wrote): a C++ callable serving every method
/// of it, bound to plugins with LoadOptions::add_binding. Load options, and
/// every library and plugin it was bound to, keep their own reference, so
/// the Binding object may be destroyed right after it is added; the
/// callable (and whatever it captured) is destroyed exactly once, when the
/// last of them is gone.
///
/// The callable runs on the thread the plugin calls from (the thread that
/// called the plugin, or a thread the plugin started), possibly on several
/// threads at once: it must be thread-safe. Its outcome:
///   - a return: the method's value (for `Result<T, PluginError>`, the T).
///   - a fidius::HostError: the plugin's call of it returns that error
///     (`Err(PluginError)` with its code, message and details).
///   - any other exception: a host failure for the plugin, whose message
///     names the exception's what(). Exceptions never reach the library.
///
/// A native library is bound once while it is mapped: until every plugin
/// handle of it is freed, loading it with another binding of the same
/// interface throws Status::HostAlreadyBound.
class Binding {
public:
    /// Serves the host interface with bincode: gets the argument tuple in
    /// HostCall::args and returns the bincode of the result (empty for a
    /// method that returns nothing).
    using RawCallback = std::function<std::vector<std::uint8_t>(const HostCall &)>;
    /// Serves the host interface with JSON: gets the JSON array of the
    /// arguments (e.g. `["alice",250]`) and returns the JSON text of the
    /// result ("null", or "", for a method that returns nothing). The
    /// library checks the result against the method's return type.
    using JsonCallback = std::function<std::string(const HostCall &, std::string_view args_json)>;

    /// An empty binding object (no handle).
    Binding() noexcept = default;
    /// Takes ownership of a C binding handle.
    explicit Binding(fidius_host_binding_t *binding) noexcept : handle_(binding) {}

    /// Binds `host_interface` to `callback`, which gets and returns bincode.
    static Binding raw(const Interface &host_interface, RawCallback callback) {
        if (!callback) throw Error(Status::NullArgument, "the host function callback is empty");
        detail::require(host_interface.get(), "Interface");
        auto userdata = std::make_unique<RawCallback>(std::move(callback));
        fidius_host_binding_t *binding = nullptr;
        // The library owns the callback from here on: it calls
        // release<RawCallback> exactly once, when the last user is gone (or
        // at once if creating the binding fails).
        detail::invoke(fidius_host_binding_new_raw, host_interface.get(), &Binding::serve_raw,
                       &Binding::release_result<std::uint8_t>, userdata.release(), &Binding::release<RawCallback>,
                       &binding);
        return Binding(binding);
    }

    /// Binds `host_interface` to `callback`, which gets and returns JSON.
    static Binding json(const Interface &host_interface, JsonCallback callback) {
        if (!callback) throw Error(Status::NullArgument, "the host function callback is empty");
        detail::require(host_interface.get(), "Interface");
        auto userdata = std::make_unique<JsonCallback>(std::move(callback));
        fidius_host_binding_t *binding = nullptr;
        detail::invoke(fidius_host_binding_new_json, host_interface.get(), &Binding::serve_json,
                       &Binding::release_result<char>, userdata.release(), &Binding::release<JsonCallback>, &binding);
        return Binding(binding);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_binding_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_binding_free).
    fidius_host_binding_t *release() noexcept { return handle_.release(); }

private:
    // The C trampolines. Nothing may unwind into the library: every
    // exception becomes a status, with the error set for the plugin.
    static std::uint32_t serve_raw(void *userdata, void *call_context, std::uint32_t method, const std::uint8_t *args,
                                   std::size_t args_len, std::uint8_t **result, std::size_t *result_len,
                                   fidius_host_callback_error_t *error) noexcept {
        try {
            const auto &callback = *static_cast<const RawCallback *>(userdata);
            const std::vector<std::uint8_t> value = callback(HostCall{method, call_context, bytes_view(args, args_len)});
            *result = copy_out<std::uint8_t>(value.data(), value.size());
            *result_len = value.size();
            return FIDIUS_HOST_STATUS_OK;
        } catch (...) {
            return report_exception(error);
        }
    }

    static std::uint32_t serve_json(void *userdata, void *call_context, std::uint32_t method, const char *args_json,
                                    std::size_t args_json_len, char **result_json, std::size_t *result_json_len,
                                    fidius_host_callback_error_t *error) noexcept {
        try {
            const auto &callback = *static_cast<const JsonCallback *>(userdata);
            const std::string value =
                callback(HostCall{method, call_context, bytes_view()}, std::string_view(args_json, args_json_len));
            // Empty text is left NULL, which the library reads as null; any
            // other result carries its length, so it needs no NUL.
            *result_json = copy_out<char>(value.data(), value.size());
            *result_json_len = value.size();
            return FIDIUS_HOST_STATUS_OK;
        } catch (...) {
            return report_exception(error);
        }
    }

    // A heap copy of a result for the library, released by release_result
    // once it is copied; NULL for no bytes.
    template <typename T>
    static T *copy_out(const T *data, std::size_t size) {
        if (size == 0) return nullptr;
        T *copy = new T[size];
        std::memcpy(copy, data, size);
        return copy;
    }

    template <typename T>
    static void release_result(void *, void *result, std::size_t) noexcept {
        delete[] static_cast<T *>(result);
    }

    template <typename Callback>
    static void release(void *userdata) noexcept {
        delete static_cast<Callback *>(userdata);
    }

    // Turns the exception being handled into the callback's status: a
    // HostError is the host function's error (PLUGIN_ERROR), anything else a
    // host failure (INTERNAL_PANIC, as for a panicking Rust host function)
    // whose message names the exception's what(). Should even that fail (no
    // memory), the status alone reaches the plugin.
    static std::uint32_t report_exception(fidius_host_callback_error_t *error) noexcept {
        try {
            try {
                throw;
            } catch (const HostError &host_error) {
                return report_host_error(error, host_error);
            } catch (const std::exception &exception) {
                const std::string message = std::string("the host function threw: ") + exception.what();
                return report_failure(error, FIDIUS_HOST_STATUS_INTERNAL_PANIC, message.c_str());
            } catch (...) {
                return report_failure(error, FIDIUS_HOST_STATUS_INTERNAL_PANIC,
                                      "the host function threw an exception that is not a std::exception");
            }
        } catch (...) {
            return FIDIUS_HOST_STATUS_INTERNAL_PANIC;
        }
    }

    static std::uint32_t report_host_error(fidius_host_callback_error_t *error, const HostError &host_error) {
        fidius_host_error_t *raw_error = nullptr;
        const fidius_host_status status = fidius_host_callback_error_set(
            error, host_error.code().c_str(), host_error.message().c_str(),
            host_error.details() ? host_error.details()->c_str() : nullptr, &raw_error);
        const detail::Handle<fidius_host_error_t, fidius_host_error_free> set_error(raw_error);
        if (status == FIDIUS_HOST_STATUS_OK) return FIDIUS_HOST_STATUS_PLUGIN_ERROR;
        // Not UTF-8, or details that are not JSON: a host failure with that
        // status, saying why.
        const std::string message = "the host function threw fidius::HostError that could not be passed on: " +
                                    detail::text_or_empty(fidius_host_error_message(set_error.get()));
        return report_failure(error, status, message.c_str());
    }

    static std::uint32_t report_failure(fidius_host_callback_error_t *error, std::uint32_t status,
                                        const char *message) noexcept {
        if (fidius_host_callback_error_set(error, "HOST_EXCEPTION", message, nullptr, nullptr) != FIDIUS_HOST_STATUS_OK &&
            fidius_host_callback_error_set(error, "HOST_EXCEPTION",
                                           "the host function threw an exception whose text is not UTF-8", nullptr,
                                           nullptr) != FIDIUS_HOST_STATUS_OK) {
            // Nothing more can be said: the status alone reaches the plugin.
        }
        return status;
    }

    detail::Handle<fidius_host_binding_t, fidius_host_binding_free> handle_;
};

// ---------------------------------------------------------------------------
// Load options
// ---------------------------------------------------------------------------

/// Options of one load: the interface the plugin must match (required for
/// WASM and Python plugins) and per-load overrides of the host's WASM
/// limits, Python deadline, egress policy, isolation and restart policy. Loading only reads them, so
/// one LoadOptions may serve many loads.
class LoadOptions {
public:
    /// New options with defaults (no interface).
    LoadOptions() : handle_(detail::require_new(fidius_host_load_options_new(), "LoadOptions")) {}
    /// Takes ownership of a C load options handle (NULL gives an empty object).
    explicit LoadOptions(fidius_host_load_options_t *options) noexcept : handle_(options) {}

    /// The interface the plugin must match; enables JSON calls.
    LoadOptions &set_interface(const Interface &interface_to_match) {
        detail::require(interface_to_match.get(), "Interface");
        return apply_interface(interface_to_match.get());
    }
    /// Removes a previously set interface.
    LoadOptions &clear_interface() { return apply_interface(nullptr); }

    /// Overrides the host's WASM call deadline; zero means no deadline.
    LoadOptions &set_wasm_deadline(std::chrono::milliseconds deadline) {
        const std::uint64_t milliseconds = detail::milliseconds_of(deadline, "the WASM deadline");
        detail::invoke(fidius_host_load_options_set_wasm_deadline_ms, handle_.get(), milliseconds);
        return *this;
    }
    /// Overrides the host's Python deadline (each call, and the import at
    /// load); zero means no deadline.
    LoadOptions &set_python_deadline(std::chrono::milliseconds deadline) {
        const std::uint64_t milliseconds = detail::milliseconds_of(deadline, "the Python deadline");
        detail::invoke(fidius_host_load_options_set_python_deadline_ms, handle_.get(), milliseconds);
        return *this;
    }
    /// Overrides the host's cap on a WASM guest's linear memory, in bytes.
    LoadOptions &set_wasm_memory_limit(std::size_t bytes) {
        detail::invoke(fidius_host_load_options_set_wasm_memory_limit, handle_.get(), bytes);
        return *this;
    }
    /// Overrides the host's choice of a fresh WASM instance per call.
    LoadOptions &set_wasm_fresh_instance_per_call(bool fresh) {
        detail::invoke(fidius_host_load_options_set_wasm_fresh_instance_per_call, handle_.get(), fresh);
        return *this;
    }
    /// Overrides the host's isolation (Builder::set_isolation) for plugins
    /// loaded with these options.
    LoadOptions &set_isolation(Isolation isolation) {
        detail::invoke(fidius_host_load_options_set_isolation, handle_.get(), static_cast<std::uint32_t>(isolation));
        return *this;
    }
    /// Overrides the host's restart policy (Builder::set_restart_policy)
    /// for isolated plugins loaded with these options.
    LoadOptions &set_restart_policy(std::uint32_t max_restarts, std::chrono::milliseconds window) {
        const std::uint64_t milliseconds = detail::milliseconds_of(window, "the restart window");
        detail::invoke(fidius_host_load_options_set_restart_policy, handle_.get(), max_restarts, milliseconds);
        return *this;
    }
    /// Uses `policy` for plugins loaded with these options instead of the host's.
    LoadOptions &set_egress_policy(const EgressPolicy &policy) {
        detail::require(policy.get(), "EgressPolicy");
        return apply_egress_policy(policy.get());
    }
    /// Removes the options' own policy: the host's applies again.
    LoadOptions &clear_egress_policy() { return apply_egress_policy(nullptr); }

    /// Adds host functions the plugin may call: one binding per host
    /// interface name, a later one replacing an earlier one of the same
    /// name. The options keep their own reference. At load, a native library
    /// gets the binding if its interface, version and hash are those it was
    /// built against (Status::InterfaceVersionMismatch,
    /// Status::InterfaceHashMismatch otherwise); while the library is mapped
    /// with another binding of that interface the load throws
    /// Status::HostAlreadyBound (an isolated plugin's library is bound in
    /// its own worker, so this does not arise). Bindings a plugin does not
    /// import are ignored; Python plugins cannot have any
    /// (Status::Unsupported).
    LoadOptions &add_binding(const Binding &binding) {
        detail::require(binding.get(), "Binding");
        detail::invoke(fidius_host_load_options_add_binding, handle_.get(), binding.get());
        return *this;
    }

    /// The configuration the plugin is constructed with, as bincode of the
    /// interface's config type (copied); checked against the type when the
    /// interface declares it.
    LoadOptions &set_config(bytes_view config) {
        detail::invoke(fidius_host_load_options_set_config, handle_.get(), config.data(), config.size());
        return *this;
    }
    /// The configuration as JSON text, e.g. R"({"factor": 3})".
    LoadOptions &set_config_json(std::string_view json) {
        detail::invoke(fidius_host_load_options_set_config_json, handle_.get(), detail::data_of(json), json.size());
        return *this;
    }
    /// Loads without a configuration again.
    LoadOptions &clear_config() {
        detail::invoke(fidius_host_load_options_clear_config, handle_.get());
        return *this;
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_load_options_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_load_options_free).
    fidius_host_load_options_t *release() noexcept { return handle_.release(); }

private:
    LoadOptions &apply_interface(const fidius_host_interface_t *interface_handle) {
        detail::invoke(fidius_host_load_options_set_interface, handle_.get(), interface_handle);
        return *this;
    }
    LoadOptions &apply_egress_policy(const fidius_host_egress_policy_t *policy) {
        detail::invoke(fidius_host_load_options_set_egress_policy, handle_.get(), policy);
        return *this;
    }

    detail::Handle<fidius_host_load_options_t, fidius_host_load_options_free> handle_;
};

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// Gives the items of the `Stream<T>` argument of a raw streaming call
/// (Plugin::call_client_stream, or Plugin::call_stream of a bidirectional
/// method): each call returns the bincode of the next item, or
/// std::nullopt at the end of the input.
///
/// It is called when the plugin reads its next item — during a
/// client-stream call, or while Stream::next pulls a bidirectional stream —
/// on that thread, never after the call or stream ends: the input is read
/// exactly as far as the plugin reads it. The item it returns is copied
/// before it is called again. An exception it throws fails the input (it
/// never reaches the library): the call, or the stream's pull, throws
/// Status::StreamInputFailed, whose message ends with the exception's
/// what(). The producer, and whatever it captured, is destroyed exactly
/// once, when the input is done: when the call returns, when a
/// bidirectional stream ends or is destroyed, or when the call fails before
/// it starts.
using ItemProducer = std::function<std::optional<std::vector<std::uint8_t>>()>;

/// Like ItemProducer, for the JSON calls (Plugin::call_client_stream_json,
/// Plugin::call_stream_json): each item is the JSON text of a value of the
/// item type, e.g. "42" or "\"word\"".
using JsonItemProducer = std::function<std::optional<std::string>()>;

namespace detail {

/// What the producer of a `Stream<T>` argument threw, shared by the input
/// the library owns and the call or stream that reports the failure: the
/// library itself only learns that the producer failed.
struct ProducerFailure {
    std::string what;  ///< empty while nothing was thrown
};

/// What a call failing with STREAM_INPUT_FAILED adds to the library's
/// message: the exception the producer threw, if it threw one.
inline std::string producer_note(const ProducerFailure *failure) {
    if (failure == nullptr || failure->what.empty()) return std::string();
    return " (the producer threw: " + failure->what + ")";
}

/// Like invoke, for a call fed by an input whose producer may have thrown:
/// a STREAM_INPUT_FAILED error says what it threw.
template <typename... Params, typename... Args>
void invoke_fed(const ProducerFailure &failure, fidius_host_status (*function)(Params...), Args &&...args) {
    fidius_host_error_t *raw_error = nullptr;
    const fidius_host_status status = function(std::forward<Args>(args)..., &raw_error);
    const Handle<fidius_host_error_t, fidius_host_error_free> error(raw_error);
    if (status == FIDIUS_HOST_STATUS_OK) return;
    throw_error(status, error.get(), status == FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED ? producer_note(&failure) : "");
}

/// The items of a `Stream<T>` argument behind a fidius_host_stream_input_t.
/// `Next` is a callable giving the next item as a view (valid until it is
/// called again), or std::nullopt at the end.
template <typename Next>
class Input {
public:
    Input(Next next, std::shared_ptr<ProducerFailure> failure)
        : next_(std::move(next)), failure_(std::move(failure)) {}

    /// The C input of `next`. The library owns it from the call it is given
    /// to on and calls release exactly once: when the input is done, or at
    /// once when the call fails before it starts. Nothing between this and
    /// that call may throw.
    static fidius_host_stream_input_t make(Next next, std::shared_ptr<ProducerFailure> failure) {
        auto input = std::make_unique<Input>(std::move(next), std::move(failure));
        return fidius_host_stream_input_t{&Input::produce, input.release(), &Input::release};
    }

private:
    // The C trampoline: nothing may unwind into the library, so an
    // exception becomes a failure status (noted for the error thrown then).
    static std::uint32_t produce(void *userdata, const std::uint8_t **item, std::size_t *item_len) noexcept {
        auto *input = static_cast<Input *>(userdata);
        if (input == nullptr || item == nullptr || item_len == nullptr) return FIDIUS_HOST_STATUS_NULL_ARGUMENT;
        try {
            const std::optional<bytes_view> next = input->next_();
            if (!next) return FIDIUS_HOST_STATUS_STREAM_END;
            *item = bytes_of(*next);
            *item_len = next->size();
            return FIDIUS_HOST_STATUS_OK;
        } catch (...) {
            return input->note_exception();
        }
    }

    // Notes the exception being handled and returns the status the library
    // is told (and names in its message): a fidius::Error's own status, and
    // INTERNAL_PANIC for any other exception, as for a host function.
    std::uint32_t note_exception() noexcept {
        std::uint32_t status = FIDIUS_HOST_STATUS_INTERNAL_PANIC;
        try {
            try {
                throw;
            } catch (const Error &error) {
                if (error.status() != Status::Ok && error.status() != Status::StreamEnd)
                    status = static_cast<std::uint32_t>(error.status());
                failure_->what = error.what();
            } catch (const std::exception &exception) {
                failure_->what = exception.what();
            } catch (...) {
                failure_->what = "an exception that is not a std::exception";
            }
        } catch (...) {
            // No memory to say what it was: the status alone tells.
        }
        return status;
    }

    static void release(void *userdata) noexcept { delete static_cast<Input *>(userdata); }

    Next next_;
    std::shared_ptr<ProducerFailure> failure_;
};

inline bytes_view item_bytes(const std::string &json) noexcept { return bytes_view(std::string_view(json)); }
inline bytes_view item_bytes(const std::vector<std::uint8_t> &bincode) noexcept { return bytes_view(bincode); }
inline bytes_view item_bytes(std::string_view json) noexcept { return bytes_view(json); }
inline bytes_view item_bytes(bytes_view bincode) noexcept { return bincode; }

/// The C input of a user's producer (ItemProducer, JsonItemProducer),
/// keeping each item it returns until it is called again.
template <typename Item>
fidius_host_stream_input_t producer_input(std::function<std::optional<Item>()> producer,
                                          const std::shared_ptr<ProducerFailure> &failure) {
    if (!producer) throw Error(Status::NullArgument, "the item producer is empty");
    auto next = [producer = std::move(producer),
                 current = std::optional<Item>()]() mutable -> std::optional<bytes_view> {
        current = producer();
        if (!current) return std::nullopt;
        return item_bytes(*current);
    };
    return Input<decltype(next)>::make(std::move(next), failure);
}

/// The C input of the items of a range the caller keeps alive during the
/// call: each item is viewed in place (or, when the range makes its items
/// as it goes, kept until the next one).
template <typename View, typename Iterator>
fidius_host_stream_input_t range_input(Iterator at, Iterator end, const std::shared_ptr<ProducerFailure> &failure) {
    using Reference = decltype(*at);
    using Made = std::conditional_t<std::is_lvalue_reference_v<Reference>, View, std::decay_t<Reference>>;
    auto next = [at, end, current = std::optional<Made>()]() mutable -> std::optional<bytes_view> {
        if (at == end) return std::nullopt;
        if constexpr (std::is_lvalue_reference_v<Reference>) {
            const View item = *at;
            ++at;
            return item_bytes(item);
        } else {
            current.emplace(*at);
            ++at;
            return item_bytes(static_cast<View>(*current));
        }
    };
    return Input<decltype(next)>::make(std::move(next), failure);
}

/// Whether `Range` can be read with std::begin and std::end and its items
/// convert to `View` (std::string_view for JSON items, bytes_view for raw
/// ones). Text and byte buffers themselves are not ranges of items.
template <typename Range, typename View, typename = void>
struct is_item_range : std::false_type {};
template <typename Range, typename View>
struct is_item_range<Range, View,
                     std::void_t<decltype(std::begin(std::declval<const Range &>()) !=
                                          std::end(std::declval<const Range &>()))>>
    : std::is_convertible<decltype(*std::begin(std::declval<const Range &>())), View> {};
template <typename Range, typename View>
constexpr bool is_item_range_v = is_item_range<Range, View>::value;

}  // namespace detail

/// The output of a server-streaming or bidirectional call
/// (Plugin::call_stream, Plugin::call_stream_json): its items, pulled one
/// at a time. Each pull has the plugin make the next item then, on the
/// pulling thread; nothing is produced ahead. Either pull works on either
/// kind of call: next() gives the bincode of the item type, next_json() its
/// JSON text.
///
///   fidius::Stream numbers = plugin.call_stream_json("count", "[3, 7]");
///   for (const std::string &n : numbers.json_items()) std::cout << n << "\n";  // 3 4 5 6
///   for (fidius::bytes_view item : plugin.call_stream(kBlobs, args)) use(item);
///
/// The end is std::nullopt from next() and next_json(), and the end of a
/// range-for (StreamEnd is never thrown). An error that ended the stream
/// (Status::PluginError with the plugin's code, PluginPanic, PluginTrap,
/// Timeout, StreamInputFailed, ...) is thrown as fidius::Error by the pull
/// that meets it, and by every later pull: it is sticky.
///
/// Destroying a stream before its end cancels it — as do cancel() and
/// assigning over it: the plugin's producer is torn down at once, not
/// drained, and a bidirectional stream's input is released, unread items
/// and all. A `break` out of a range-for over a temporary stream
/// (`for (auto item : plugin.call_stream(...))`,
/// `plugin.call_stream_json(...).json_items()`) therefore cancels it.
///
/// Move-only; a moved-from Stream is empty (pulling it throws
/// Status::NullArgument). A stream may outlive its plugin and host. It is
/// used by one thread at a time and may move between threads: a pull while
/// another thread is inside one throws Status::Misuse.
class Stream {
    // The input iterator of a stream's items: raw (bytes_view, borrowed
    // from the stream until the next pull) or JSON (std::string). Making it
    // pulls the first item; incrementing it pulls the next one and, at the
    // end of the stream, makes it equal to the end iterator (a
    // default-constructed one). A pull that fails throws the stream's error.
    template <bool Json>
    class basic_iterator {
        // A copy of the item before an increment, for `*it++`.
        using owned_type = std::conditional_t<Json, std::string, std::vector<std::uint8_t>>;

    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = std::conditional_t<Json, std::string, bytes_view>;
        using difference_type = std::ptrdiff_t;
        using pointer = const value_type *;
        using reference = const value_type &;

        /// What the postfix increment returns: the item before it, kept.
        class previous_item {
        public:
            value_type operator*() const { return value_type(item_); }

        private:
            friend class basic_iterator;
            explicit previous_item(owned_type item) : item_(std::move(item)) {}
            owned_type item_;
        };

        /// The end iterator.
        basic_iterator() noexcept = default;

        /// The current item: raw items are borrowed from the stream until
        /// the next pull.
        reference operator*() const noexcept { return item_; }
        pointer operator->() const noexcept { return &item_; }

        /// Pulls the next item; at the end of the stream this becomes the
        /// end iterator. Throws fidius::Error when the stream failed.
        basic_iterator &operator++() {
            pull();
            return *this;
        }
        /// Pulls the next item and returns (a copy of) the current one.
        previous_item operator++(int) {
            previous_item previous{owned_type(item_.begin(), item_.end())};
            pull();
            return previous;
        }

        /// Iterators are equal when both are at the end, or both pull the
        /// same stream (an input range has one position).
        friend bool operator==(const basic_iterator &a, const basic_iterator &b) noexcept {
            return a.stream_ == b.stream_;
        }
        friend bool operator!=(const basic_iterator &a, const basic_iterator &b) noexcept { return !(a == b); }

    private:
        friend class Stream;

        explicit basic_iterator(Stream &stream) : stream_(&stream) { pull(); }

        void pull() {
            if (stream_ == nullptr) throw Error(Status::Misuse, "the end iterator of a stream was incremented");
            if constexpr (Json) {
                if (std::optional<std::string> next = stream_->next_json()) {
                    item_ = std::move(*next);
                    return;
                }
            } else {
                if (const std::optional<bytes_view> next = stream_->next()) {
                    item_ = *next;
                    return;
                }
            }
            stream_ = nullptr;
            item_ = value_type();
        }

        Stream *stream_ = nullptr;
        value_type item_{};
    };

public:
    /// An input iterator over the raw items (bincode of the item type, as
    /// bytes_view borrowed until the next pull).
    using iterator = basic_iterator<false>;
    /// An input iterator over the JSON items (std::string).
    using json_iterator = basic_iterator<true>;
    class JsonItems;

    /// An empty stream object (no handle).
    Stream() noexcept = default;
    /// Takes ownership of a C stream handle.
    explicit Stream(fidius_host_stream_t *stream) noexcept : handle_(stream) {}

    /// Pulls the next item as the bincode of the item type; std::nullopt at
    /// the end of the stream (and at every later pull). The bytes are
    /// borrowed from the stream: valid until its next pull (next,
    /// next_json, an iterator's increment), cancel() or destruction — copy
    /// them (bytes_view::begin/end) to keep them. Throws fidius::Error with
    /// the error that ended the stream, now and at every later pull.
    std::optional<bytes_view> next() {
        detail::require(get(), "Stream");
        const std::uint8_t *item = nullptr;
        std::size_t length = 0;
        fidius_host_error_t *raw_error = nullptr;
        const fidius_host_status status = fidius_host_stream_next(handle_.get(), &item, &length, &raw_error);
        const detail::Handle<fidius_host_error_t, fidius_host_error_free> error(raw_error);
        if (status == FIDIUS_HOST_STATUS_STREAM_END) return std::nullopt;
        if (status != FIDIUS_HOST_STATUS_OK) fail(status, error.get());
        return bytes_view(item, length);
    }

    /// Pulls the next item as JSON text (a copy); std::nullopt at the end.
    /// Throws as next() does.
    std::optional<std::string> next_json() {
        detail::require(get(), "Stream");
        const char *json = nullptr;
        std::size_t length = 0;
        fidius_host_error_t *raw_error = nullptr;
        const fidius_host_status status = fidius_host_stream_next_json(handle_.get(), &json, &length, &raw_error);
        const detail::Handle<fidius_host_error_t, fidius_host_error_free> error(raw_error);
        if (status == FIDIUS_HOST_STATUS_STREAM_END) return std::nullopt;
        if (status != FIDIUS_HOST_STATUS_OK) fail(status, error.get());
        return json == nullptr ? std::string() : std::string(json, length);
    }

    /// Ends the stream with Status::Timeout once `timeout` from now has
    /// passed; zero removes the deadline. A WASM or Python plugin busy
    /// making an item then is stopped; a native one is checked between
    /// items. The call deadline of each item still applies.
    void set_deadline(std::chrono::milliseconds timeout) {
        detail::require(get(), "Stream");
        const std::uint64_t milliseconds = detail::milliseconds_of(timeout, "the stream deadline");
        detail::invoke(fidius_host_stream_set_deadline, handle_.get(), milliseconds);
    }

    /// How many items of its input a bidirectional stream's plugin has read
    /// so far; 0 for a server stream and an empty object.
    std::uint64_t items_read() const noexcept { return fidius_host_stream_items_read(handle_.get()); }

    /// Cancels the stream now, if it has not ended (see the class), and
    /// frees it: this object is empty afterwards.
    void cancel() noexcept {
        handle_.reset();
        input_failure_.reset();
    }

    /// The raw items, for a range-for: `for (fidius::bytes_view item :
    /// stream)`. begin() pulls the first item not pulled yet.
    iterator begin() { return iterator(*this); }
    iterator end() noexcept { return iterator(); }

    /// The JSON items, for a range-for: `for (const std::string &item :
    /// stream.json_items())`. From a stream object the range pulls that
    /// stream; from a temporary one (`plugin.call_stream_json(...)
    /// .json_items()`) it owns the stream, which leaving the loop early
    /// then cancels.
    JsonItems json_items() &;
    JsonItems json_items() &&;

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    fidius_host_stream_t *get() noexcept { return handle_.get(); }
    const fidius_host_stream_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_stream_free).
    fidius_host_stream_t *release() noexcept {
        input_failure_.reset();
        return handle_.release();
    }

private:
    friend class Plugin;

    Stream(fidius_host_stream_t *stream, std::shared_ptr<detail::ProducerFailure> input_failure) noexcept
        : handle_(stream), input_failure_(std::move(input_failure)) {}

    json_iterator json_begin() { return json_iterator(*this); }

    // Throws the error that ended the stream; a failed input says what its
    // producer threw.
    [[noreturn]] void fail(fidius_host_status status, const fidius_host_error_t *error) const {
        detail::throw_error(status, error,
                            status == FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED ? detail::producer_note(input_failure_.get())
                                                                             : std::string());
    }

    detail::Handle<fidius_host_stream_t, fidius_host_stream_free> handle_;
    // What a bidirectional stream's producer threw, if it did (shared with
    // the input the library owns); none for a server stream.
    std::shared_ptr<detail::ProducerFailure> input_failure_;
};

/// The JSON items of a stream as a range (Stream::json_items()): an input
/// range, read once.
class Stream::JsonItems {
public:
    /// Pulls the first JSON item not pulled yet.
    json_iterator begin() { return target().json_begin(); }
    json_iterator end() noexcept { return json_iterator(); }

private:
    friend class Stream;

    explicit JsonItems(Stream *borrowed) noexcept : borrowed_(borrowed) {}
    explicit JsonItems(Stream &&owned) noexcept : owned_(std::move(owned)) {}

    Stream &target() noexcept { return borrowed_ != nullptr ? *borrowed_ : owned_; }

    Stream *borrowed_ = nullptr;  // the stream of an lvalue
    Stream owned_;                // the stream of an rvalue, moved here
};

inline Stream::JsonItems Stream::json_items() & { return JsonItems(this); }
inline Stream::JsonItems Stream::json_items() && { return JsonItems(std::move(*this)); }

// ---------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------

/// A cancellation signal for calls (`fidius_host_cancel_token_t`): give it
/// to the cancellable calls of a Plugin (call, call_json,
/// call_with_context, call_json_with_context with a CancelToken argument)
/// and cancel() it, from any thread, to stop them. A stopped call throws
/// fidius::Error with Status::Cancelled, unless it had completed first
/// (then it returns its result). How a running call stops depends on its
/// runtime:
///   - WASM: the guest is interrupted at its next epoch check or wait in
///     the host (a sleep, a blocking read); its instance is discarded, the
///     next call gets a fresh one.
///   - Isolated plugins: the worker process is killed; the next call starts
///     a new worker, which the restart policy does not count.
///   - In-process Python: an exception is raised in the thread running the
///     plugin, as a deadline does (code blocked in C sees it when that C
///     call returns).
///   - In-process native (cdylib) code cannot be stopped: every call given
///     a token throws Status::Unsupported without calling the plugin (a
///     cancelled token too). Load such a plugin isolated to cancel its
///     calls, or call it without a token.
/// Cancelling is final: a cancelled token stays cancelled, and every call
/// started with it afterwards throws Status::Cancelled before it reaches
/// the plugin. Make a new token per request.
///
/// Ownership and threads: the token is owned by this object and borrowed
/// by the calls it is given to. One token may be given to any number of
/// calls on any threads at once, and cancel() and cancelled() may be called
/// from any thread at any time while the object lives. Destroy it (or
/// assign over it) only after every call using it has returned and no
/// thread will cancel it any more: share it by reference with a lifetime
/// that covers them (e.g. declare it before the thread that cancels it,
/// and join that thread first), or in a std::shared_ptr. Move-only; a
/// moved-from token is empty: cancel() does nothing, cancelled() is false,
/// and giving it to a call throws Status::NullArgument.
class CancelToken {
public:
    /// A new token, not cancelled.
    CancelToken() : handle_(make()) {}
    /// Takes ownership of a C token (NULL gives an empty object).
    explicit CancelToken(fidius_host_cancel_token_t *token) noexcept : handle_(token) {}

    /// Cancels: every call running with this token is told to stop, and
    /// every call started with it later throws Status::Cancelled before it
    /// runs. Returns without waiting for the running calls to end; calling
    /// it again does nothing more. Thread-safe: any thread, concurrently
    /// with the calls using the token and with other cancels (not from a
    /// signal handler). Does nothing on an empty token.
    void cancel() const noexcept {
        if (!handle_) return;
        // OK, or MISUSE for a pointer that is not a live token, which a
        // token this object holds always is: nothing to report.
        const fidius_host_status status = fidius_host_cancel_token_cancel(handle_.get());
        static_cast<void>(status);
    }

    /// Whether cancel() was called (false for an empty token). Thread-safe.
    bool cancelled() const noexcept { return fidius_host_cancel_token_is_cancelled(handle_.get()); }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_cancel_token_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C token (free it with
    /// fidius_host_cancel_token_free, once no call uses it).
    fidius_host_cancel_token_t *release() noexcept { return handle_.release(); }

private:
    static fidius_host_cancel_token_t *make() {
        fidius_host_cancel_token_t *token = nullptr;
        detail::invoke(fidius_host_cancel_token_new, &token);
        return detail::require_new(token, "CancelToken");
    }

    detail::Handle<fidius_host_cancel_token_t, fidius_host_cancel_token_free> handle_;
};

// ---------------------------------------------------------------------------
// Plugins
// ---------------------------------------------------------------------------

/// A host interface a plugin calls, as its library declares it.
struct HostImport {
    std::string name;
    std::uint32_t version = 0;
    std::uint64_t hash = 0;
};

/// A loaded plugin with its own instance. Calls may come from any number of
/// threads at once. It stays valid after its Host is destroyed.
class Plugin {
public:
    /// An empty plugin object (no handle).
    Plugin() noexcept = default;
    /// Takes ownership of a C plugin handle.
    explicit Plugin(fidius_host_plugin_t *plugin) noexcept : handle_(plugin) {}

    /// Calls method `method` (its declaration index) with raw input: the
    /// bincode-encoded argument tuple, or the bytes of a `#[wire(raw)]`
    /// method. Returns the result payload the same way, in the library's
    /// own buffer (no copy is made); it stays valid after the plugin is
    /// destroyed.
    Bytes call(std::uint32_t method, bytes_view input = {}) const {
        fidius_host_bytes_t output{nullptr, 0, nullptr};
        detail::invoke(fidius_host_plugin_call, handle_.get(), method, input.data(), input.size(), &output);
        return Bytes(output);
    }

    /// Like call, with a context for the host functions the plugin calls
    /// during this call: a Binding's callback serving it on this thread
    /// gets `context` as HostCall::context (calls from a thread the plugin
    /// started get nullptr). The pointer is never dereferenced.
    Bytes call_with_context(std::uint32_t method, bytes_view input, void *context) const {
        fidius_host_bytes_t output{nullptr, 0, nullptr};
        detail::invoke(fidius_host_plugin_call_with_context, handle_.get(), method, input.data(), input.size(), context,
                       &output);
        return Bytes(output);
    }

    /// Like call, stopped when `cancel` is cancelled (CancelToken::cancel,
    /// from any thread), as CancelToken describes per runtime; `cancel` is
    /// borrowed for the call. Throws, besides the errors of call:
    /// Status::Cancelled when the token was cancelled before the call
    /// started (nothing reached the plugin) or while it ran (no output is
    /// delivered); Status::Unsupported for a native plugin loaded
    /// in-process, which cannot be stopped (nothing is called);
    /// Status::NullArgument for an empty token.
    Bytes call(std::uint32_t method, bytes_view input, const CancelToken &cancel) const {
        return call_with_context(method, input, nullptr, cancel);
    }

    /// Like call_with_context, stopped when `cancel` is cancelled, as the
    /// cancellable call describes.
    Bytes call_with_context(std::uint32_t method, bytes_view input, void *context, const CancelToken &cancel) const {
        detail::require(cancel.get(), "CancelToken");
        fidius_host_bytes_t output{nullptr, 0, nullptr};
        detail::invoke(fidius_host_plugin_call_cancellable, handle_.get(), method, input.data(), input.size(), context,
                       cancel.get(), &output);
        return Bytes(output);
    }

    /// Another instance of the plugin, constructed with `config` (bincode of
    /// the interface's config type): it shares the loaded code and nothing
    /// else, and outlives this object if need be. A refused or malformed
    /// configuration throws Error (Status::ConfigRejected,
    /// Status::ConfigInvalid, ...) and creates nothing.
    Plugin new_instance(bytes_view config) const {
        fidius_host_plugin_t *instance = nullptr;
        detail::invoke(fidius_host_plugin_new_instance, handle_.get(), config.data(), config.size(), &instance);
        return Plugin(instance);
    }
    /// Like new_instance, with the configuration as JSON text.
    Plugin new_instance_json(std::string_view config_json) const {
        fidius_host_plugin_t *instance = nullptr;
        detail::invoke(fidius_host_plugin_new_instance_json, handle_.get(), detail::data_of(config_json),
                       config_json.size(), &instance);
        return Plugin(instance);
    }

    /// Calls the method called `method` with a JSON array of arguments,
    /// e.g. "[3, 7]"; returns the JSON result ("null" for no value). Needs
    /// a plugin loaded with an interface.
    std::string call_json(std::string_view method, std::string_view args_json) const {
        char *raw_json = nullptr;
        std::size_t length = 0;
        detail::invoke(fidius_host_plugin_call_json, handle_.get(), detail::data_of(method), method.size(),
                       detail::data_of(args_json), args_json.size(), &raw_json, &length);
        const detail::OwnedString json(raw_json);
        return json ? std::string(json.get(), length) : std::string();
    }

    /// Like call_json, with a context for the host functions the plugin
    /// calls during this call, as call_with_context describes.
    std::string call_json_with_context(std::string_view method, std::string_view args_json, void *context) const {
        char *raw_json = nullptr;
        std::size_t length = 0;
        detail::invoke(fidius_host_plugin_call_json_with_context, handle_.get(), detail::data_of(method),
                       method.size(), detail::data_of(args_json), args_json.size(), context, &raw_json, &length);
        const detail::OwnedString json(raw_json);
        return json ? std::string(json.get(), length) : std::string();
    }

    /// Like call_json, stopped when `cancel` is cancelled (CancelToken::cancel,
    /// from any thread), as CancelToken describes per runtime; `cancel` is
    /// borrowed for the call. Throws, besides the errors of call_json:
    /// Status::Cancelled when the token was cancelled before the call
    /// started (nothing reached the plugin) or while it ran (no output is
    /// delivered); Status::Unsupported for a native plugin loaded
    /// in-process, which cannot be stopped (nothing is called);
    /// Status::NullArgument for an empty token.
    std::string call_json(std::string_view method, std::string_view args_json, const CancelToken &cancel) const {
        return call_json_with_context(method, args_json, nullptr, cancel);
    }

    /// Like call_json_with_context, stopped when `cancel` is cancelled, as
    /// the cancellable call_json describes.
    std::string call_json_with_context(std::string_view method, std::string_view args_json, void *context,
                                       const CancelToken &cancel) const {
        detail::require(cancel.get(), "CancelToken");
        char *raw_json = nullptr;
        std::size_t length = 0;
        detail::invoke(fidius_host_plugin_call_json_cancellable, handle_.get(), detail::data_of(method),
                       method.size(), detail::data_of(args_json), args_json.size(), context, cancel.get(), &raw_json,
                       &length);
        const detail::OwnedString json(raw_json);
        return json ? std::string(json.get(), length) : std::string();
    }

    /// Like call_json, by method index (declaration order).
    std::string call_json_index(std::uint32_t method, std::string_view args_json) const {
        char *raw_json = nullptr;
        std::size_t length = 0;
        detail::invoke(fidius_host_plugin_call_json_index, handle_.get(), method, detail::data_of(args_json),
                       args_json.size(), &raw_json, &length);
        const detail::OwnedString json(raw_json);
        return json ? std::string(json.get(), length) : std::string();
    }

    /// Starts a server-streaming call of method `method` (declaration
    /// index; a method returning `Stream<T>`) with `args`, the bincode
    /// tuple of its arguments. The plugin must have been loaded with an
    /// interface (it says which methods stream). The plugin has started the
    /// stream when this returns; its items are made as they are pulled.
    /// Throws Status::StreamMismatch when the method does not stream out,
    /// or is bidirectional (give it an input), with nothing run; and the
    /// errors of call() when the plugin fails to start the stream
    /// (fidius::PluginError for its own error).
    Stream call_stream(std::uint32_t method, bytes_view args = {}) const {
        fidius_host_stream_t *stream = nullptr;
        detail::invoke(fidius_host_plugin_call_stream, handle_.get(), method, args.data(), args.size(),
                       static_cast<const fidius_host_stream_input_t *>(nullptr), &stream);
        return Stream(stream);
    }

    /// Starts a bidirectional call of method `method`: `args` is the
    /// bincode tuple of every argument but the `Stream<T>` one, whose items
    /// `input` gives (bincode of T; see ItemProducer). The input is read
    /// lazily, as the plugin asks for it while the stream is pulled
    /// (Stream::items_read tells how far), and released when the stream
    /// ends or is destroyed. Throws as the call_stream above;
    /// Status::StreamMismatch also for a server-streaming method, and
    /// Status::NullArgument for an empty producer. On every failure the
    /// producer is released.
    Stream call_stream(std::uint32_t method, bytes_view args, ItemProducer input) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input = detail::producer_input(std::move(input), failure);
        fidius_host_stream_t *stream = nullptr;
        detail::invoke_fed(*failure, fidius_host_plugin_call_stream, handle_.get(), method, args.data(), args.size(),
                           &c_input, &stream);
        return Stream(stream, std::move(failure));
    }

    /// Like call_stream, by method name with a JSON array of every argument
    /// (e.g. "[3, 7]"). The stream is pulled as JSON (Stream::next_json,
    /// Stream::json_items) or as bincode (Stream::next). Also throws
    /// Status::UnknownMethod, InvalidJson and ArgumentMismatch.
    Stream call_stream_json(std::string_view method, std::string_view args_json) const {
        fidius_host_stream_t *stream = nullptr;
        detail::invoke(fidius_host_plugin_call_stream_json, handle_.get(), detail::data_of(method), method.size(),
                       detail::data_of(args_json), args_json.size(),
                       static_cast<const fidius_host_stream_input_t *>(nullptr), &stream);
        return Stream(stream);
    }

    /// Like the bidirectional call_stream, by method name with JSON: a JSON
    /// array of every argument but the `Stream<T>` one (e.g. `["!"]`), and
    /// an input that gives JSON items (see JsonItemProducer).
    Stream call_stream_json(std::string_view method, std::string_view args_json, JsonItemProducer input) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input = detail::producer_input(std::move(input), failure);
        fidius_host_stream_t *stream = nullptr;
        detail::invoke_fed(*failure, fidius_host_plugin_call_stream_json, handle_.get(), detail::data_of(method),
                           method.size(), detail::data_of(args_json), args_json.size(), &c_input, &stream);
        return Stream(stream, std::move(failure));
    }

    /// A client-streaming call of method `method` (a `Stream<T>` argument,
    /// one result): `args` is the bincode tuple of every argument but the
    /// `Stream<T>` one, `input` gives its items (bincode of T; see
    /// ItemProducer), read during the call on this thread, as far as the
    /// plugin reads them. Returns the result as call() does; the producer
    /// is released before this returns, whatever the outcome. Throws the
    /// errors of call(), and Status::StreamMismatch (the method has no
    /// `Stream<T>` argument or returns a stream; nothing ran),
    /// Status::StreamInputFailed (the producer threw — the message ends
    /// with its what() — or gave an item that is not a value of T; the
    /// plugin's result was discarded), Status::NullArgument (an empty
    /// producer).
    Bytes call_client_stream(std::uint32_t method, bytes_view args, ItemProducer input) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input = detail::producer_input(std::move(input), failure);
        return client_stream(method, args, c_input, *failure);
    }

    /// Like call_client_stream, with the items of a range (a container of
    /// std::vector<std::uint8_t>, bytes_view, Bytes, ...) the call reads in
    /// place, in order: each the bincode of one item.
    template <typename Range, std::enable_if_t<detail::is_item_range_v<Range, bytes_view>, int> = 0>
    Bytes call_client_stream(std::uint32_t method, bytes_view args, const Range &items) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input =
            detail::range_input<bytes_view>(std::begin(items), std::end(items), failure);
        return client_stream(method, args, c_input, *failure);
    }
    Bytes call_client_stream(std::uint32_t method, bytes_view args, std::initializer_list<bytes_view> items) const {
        return call_client_stream<std::initializer_list<bytes_view>>(method, args, items);
    }

    /// Like call_client_stream, by method name with JSON: `args_json` is a
    /// JSON array of every argument but the `Stream<T>` one ("[]" when
    /// there is none), `input` gives JSON items (see JsonItemProducer), and
    /// the result is JSON text, as call_json returns it. Also throws
    /// Status::UnknownMethod, InvalidJson and ArgumentMismatch.
    std::string call_client_stream_json(std::string_view method, std::string_view args_json,
                                        JsonItemProducer input) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input = detail::producer_input(std::move(input), failure);
        return client_stream_json(method, args_json, c_input, *failure);
    }

    /// Like call_client_stream_json, with the items of a range (a container
    /// of std::string, std::string_view, const char *, ...) the call reads
    /// in place, in order: each the JSON text of one item, e.g.
    /// `plugin.call_client_stream_json("sum", "[]", {"1", "2", "39"})`.
    template <typename Range, std::enable_if_t<detail::is_item_range_v<Range, std::string_view>, int> = 0>
    std::string call_client_stream_json(std::string_view method, std::string_view args_json,
                                        const Range &items) const {
        detail::require(get(), "Plugin");
        auto failure = std::make_shared<detail::ProducerFailure>();
        const fidius_host_stream_input_t c_input =
            detail::range_input<std::string_view>(std::begin(items), std::end(items), failure);
        return client_stream_json(method, args_json, c_input, *failure);
    }
    std::string call_client_stream_json(std::string_view method, std::string_view args_json,
                                        std::initializer_list<std::string_view> items) const {
        return call_client_stream_json<std::initializer_list<std::string_view>>(method, args_json, items);
    }

    /// The plugin's facts (name, interface, hash, runtime, ...).
    PluginInfo info() const {
        detail::require(get(), "Plugin");
        return PluginInfo::from_c(fidius_host_plugin_info(get()));
    }

    /// Number of methods; valid indices are below it.
    std::uint32_t method_count() const {
        detail::require(get(), "Plugin");
        return fidius_host_plugin_method_count(get());
    }

    /// Whether the `bit`-th optional method of the interface is implemented.
    bool has_capability(std::uint32_t bit) const {
        detail::require(get(), "Plugin");
        return fidius_host_plugin_has_capability(get(), bit);
    }

    /// The trait-level metadata pairs, in declaration order.
    std::vector<MetadataEntry> trait_metadata() const {
        detail::require(get(), "Plugin");
        std::vector<MetadataEntry> entries;
        const std::size_t count = fidius_host_plugin_trait_metadata_count(get());
        for (std::size_t i = 0; i < count; i++) {
            const char *key = nullptr;
            const char *value = nullptr;
            detail::invoke(fidius_host_plugin_trait_metadata, get(), i, &key, &value);
            entries.push_back(MetadataEntry{detail::text_or_empty(key), detail::text_or_empty(value)});
        }
        return entries;
    }

    /// The host interfaces the plugin imports (`#[host_interface]` traits
    /// its library calls); empty for WASM and Python plugins.
    std::vector<HostImport> host_imports() const {
        detail::require(get(), "Plugin");
        std::vector<HostImport> imports;
        const std::size_t count = fidius_host_plugin_host_import_count(get());
        for (std::size_t i = 0; i < count; i++) {
            const char *name = nullptr;
            std::uint32_t version = 0;
            std::uint64_t hash = 0;
            detail::invoke(fidius_host_plugin_host_import, get(), i, &name, &version, &hash);
            imports.push_back(HostImport{detail::text_or_empty(name), version, hash});
        }
        return imports;
    }

    /// The metadata pairs of method `method`.
    std::vector<MetadataEntry> method_metadata(std::uint32_t method) const {
        std::size_t count = 0;
        detail::invoke(fidius_host_plugin_method_metadata_count, get(), method, &count);
        std::vector<MetadataEntry> entries;
        for (std::size_t i = 0; i < count; i++) {
            const char *key = nullptr;
            const char *value = nullptr;
            detail::invoke(fidius_host_plugin_method_metadata, get(), method, i, &key, &value);
            entries.push_back(MetadataEntry{detail::text_or_empty(key), detail::text_or_empty(value)});
        }
        return entries;
    }

    /// Notes about the load that did not stop it (e.g. a precompiled
    /// component that was not used, and why).
    std::vector<std::string> diagnostics() const {
        detail::require(get(), "Plugin");
        std::vector<std::string> notes;
        const std::size_t count = fidius_host_plugin_diagnostic_count(get());
        for (std::size_t i = 0; i < count; i++)
            notes.push_back(detail::text_or_empty(fidius_host_plugin_diagnostic(get(), i)));
        return notes;
    }

    /// Recent outbound HTTP requests, sockets and name lookups its egress
    /// policy denied, oldest first, with the reason of each (the library
    /// keeps the most recent 256).
    std::vector<DeniedRequest> denied_requests() const {
        detail::require(get(), "Plugin");
        std::vector<DeniedRequest> requests;
        const std::size_t count = fidius_host_plugin_denied_request_count(get());
        for (std::size_t i = 0; i < count; i++) {
            char *raw_method = nullptr;
            char *raw_url = nullptr;
            detail::invoke(fidius_host_plugin_denied_request, get(), i, &raw_method, &raw_url);
            const detail::OwnedString method(raw_method);
            const detail::OwnedString url(raw_url);
            char *raw_reason = nullptr;
            detail::invoke(fidius_host_plugin_denied_request_reason, get(), i, &raw_reason);
            const detail::OwnedString reason(raw_reason);
            requests.push_back(DeniedRequest{detail::text_or_empty(method.get()), detail::text_or_empty(url.get()),
                                             detail::text_or_empty(reason.get())});
        }
        return requests;
    }

    /// The use figures of an isolated plugin: its calls, errors, timeouts
    /// and restarts, its running worker's pid (0 while none runs), and
    /// what its workers used. Throws Status::Unsupported for a plugin that
    /// runs in-process.
    WorkerUsage worker_usage() const {
        fidius_host_worker_usage_t usage{};
        detail::invoke(fidius_host_plugin_worker_usage, get(), &usage);
        WorkerUsage result;
        result.calls = usage.calls;
        result.errors = usage.errors;
        result.timeouts = usage.timeouts;
        result.restarts = usage.restarts;
        result.pid = usage.pid;
        result.cpu_time = std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usage.cpu_time_us));
        result.peak_memory_bytes = usage.peak_memory_bytes;
        return result;
    }

    /// The largest linear memory an instance of a WASM plugin (and of the
    /// instances made from it) reached since it was loaded, in bytes: to
    /// size the memory cap. Throws Status::Unsupported for other plugins
    /// (an isolated one reports its workers' peak memory in worker_usage).
    std::uint64_t memory_high_water() const {
        std::uint64_t bytes = 0;
        detail::invoke(fidius_host_plugin_memory_high_water, get(), &bytes);
        return bytes;
    }

    /// The interface the plugin was loaded with (Status::NoInterface if none).
    Interface loaded_interface() const {
        fidius_host_interface_t *result = nullptr;
        detail::invoke(fidius_host_plugin_interface, get(), &result);
        return Interface(result);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_plugin_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_plugin_free).
    fidius_host_plugin_t *release() noexcept { return handle_.release(); }

private:
    // The client-stream calls, given their C input (which the library
    // releases whatever happens); nothing before the C call may throw.
    Bytes client_stream(std::uint32_t method, bytes_view args, const fidius_host_stream_input_t &input,
                        const detail::ProducerFailure &failure) const {
        fidius_host_bytes_t output{nullptr, 0, nullptr};
        detail::invoke_fed(failure, fidius_host_plugin_call_client_stream, handle_.get(), method, args.data(),
                           args.size(), &input, &output);
        return Bytes(output);
    }

    std::string client_stream_json(std::string_view method, std::string_view args_json,
                                   const fidius_host_stream_input_t &input,
                                   const detail::ProducerFailure &failure) const {
        char *raw_json = nullptr;
        std::size_t length = 0;
        detail::invoke_fed(failure, fidius_host_plugin_call_client_stream_json, handle_.get(),
                           detail::data_of(method), method.size(), detail::data_of(args_json), args_json.size(),
                           &input, &raw_json, &length);
        const detail::OwnedString json(raw_json);
        return json ? std::string(json.get(), length) : std::string();
    }

    detail::Handle<fidius_host_plugin_t, fidius_host_plugin_free> handle_;
};

// ---------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------

/// A plugin host: scans its search paths and loads plugins. Plugins and
/// discovery results stay valid after the host is destroyed.
class Host {
public:
    /// An empty host object (no handle); hosts come from Builder::build.
    Host() noexcept = default;
    /// Takes ownership of a C host handle.
    explicit Host(fidius_host_t *host) noexcept : handle_(host) {}

    /// Scans the search paths: every valid plugin, and every skipped
    /// entry with the reason. Unusable files never fail the scan.
    Discovery discover() const {
        fidius_host_discovery_t *raw = nullptr;
        detail::invoke(fidius_host_discover, get(), &raw);
        // Copy everything out, then free the C result (also if copying throws).
        detail::Handle<fidius_host_discovery_t, fidius_host_discovery_free> found(raw);
        Discovery result;
        const std::size_t plugin_count = fidius_host_discovery_plugin_count(raw);
        for (std::size_t i = 0; i < plugin_count; i++)
            result.plugins.push_back(PluginInfo::from_c(fidius_host_discovery_plugin(raw, i)));
        const std::size_t skipped_count = fidius_host_discovery_skipped_count(raw);
        for (std::size_t i = 0; i < skipped_count; i++) {
            SkippedEntry entry;
            entry.path = detail::text_or_empty(fidius_host_discovery_skipped_path(raw, i));
            entry.status = static_cast<Status>(fidius_host_discovery_skipped_status(raw, i));
            entry.message = detail::text_or_empty(fidius_host_discovery_skipped_message(raw, i));
            result.skipped.push_back(std::move(entry));
        }
        return result;
    }

    /// Loads the plugin called `name` from the first library in the search
    /// paths that has it.
    Plugin load(std::string_view name) const { return load_named(name, nullptr); }
    Plugin load(std::string_view name, const LoadOptions &options) const {
        detail::require(options.get(), "LoadOptions");
        return load_named(name, options.get());
    }

    /// Loads the only plugin of the library file (or package directory) at
    /// `path`, which need not be in a search path.
    Plugin load_path(std::string_view path) const { return load_from(path, nullptr, nullptr); }
    Plugin load_path(std::string_view path, const LoadOptions &options) const {
        detail::require(options.get(), "LoadOptions");
        return load_from(path, nullptr, options.get());
    }
    /// Loads the plugin called `name` from the library file at `path`.
    Plugin load_path(std::string_view path, std::string_view name) const { return load_from(path, &name, nullptr); }
    Plugin load_path(std::string_view path, std::string_view name, const LoadOptions &options) const {
        detail::require(options.get(), "LoadOptions");
        return load_from(path, &name, options.get());
    }

    /// Checks the signature of a library file (`<file>.sig`) or a package
    /// directory (`package.sig`) against the host's trusted keys, without
    /// loading, mapping or running anything: an install-time check,
    /// whether or not the host requires signatures. Returns when a trusted
    /// key verifies it; throws Status::SignatureRequired when there is no
    /// signature file, Status::SignatureInvalid when it is malformed, the
    /// file was tampered with or an untrusted key signed it, and
    /// Status::InvalidArgument when the host has no trusted key.
    void verify_path(std::string_view path) const {
        detail::invoke(fidius_host_verify_path, get(), detail::data_of(path), path.size());
    }

    /// Unpacks the `.fid` archive `archive` into `dest` (created when
    /// missing) and returns the package's directory, `dest/{name}-{version}`,
    /// which must not exist yet. The archive is checked whole first and,
    /// when the host requires signatures, its `package.sig` verified before
    /// anything is written; a failure throws and leaves nothing in `dest`.
    std::string unpack_archive(std::string_view archive, std::string_view dest) const {
        char *raw_dir = nullptr;
        detail::invoke(fidius_host_unpack_archive, get(), detail::data_of(archive), archive.size(), detail::data_of(dest),
                       dest.size(), &raw_dir);
        const detail::OwnedString dir(raw_dir);
        return detail::text_or_empty(dir.get());
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_free).
    fidius_host_t *release() noexcept { return handle_.release(); }

private:
    Plugin load_named(std::string_view name, const fidius_host_load_options_t *options) const {
        fidius_host_plugin_t *plugin = nullptr;
        detail::invoke(fidius_host_load, get(), detail::data_of(name), name.size(), options, &plugin);
        return Plugin(plugin);
    }

    Plugin load_from(std::string_view path, const std::string_view *name,
                     const fidius_host_load_options_t *options) const {
        fidius_host_plugin_t *plugin = nullptr;
        detail::invoke(fidius_host_load_path, get(), detail::data_of(path), path.size(),
                       name == nullptr ? nullptr : detail::data_of(*name), name == nullptr ? 0 : name->size(), options,
                       &plugin);
        return Plugin(plugin);
    }

    detail::Handle<fidius_host_t, fidius_host_free> handle_;
};

/// Options for a host; build() turns them into a Host. Setters return the
/// builder, so they chain:
///
///   fidius::Host host = fidius::Builder().add_search_path("plugins").build();
class Builder {
public:
    /// A new builder with defaults: no search paths, Strict policy, no
    /// signatures required, a 64 MiB output limit, plugins in-process.
    Builder() : handle_(detail::require_new(fidius_host_builder_new(), "Builder")) {}
    /// Takes ownership of a C builder handle (NULL gives an empty object).
    explicit Builder(fidius_host_builder_t *builder) noexcept : handle_(builder) {}

    /// Adds a directory to scan for plugins (scanned in the order added).
    Builder &add_search_path(std::string_view path) {
        detail::invoke(fidius_host_builder_add_search_path, handle_.get(), detail::data_of(path), path.size());
        return *this;
    }
    Builder &set_load_policy(LoadPolicy policy) {
        detail::invoke(fidius_host_builder_set_load_policy, handle_.get(), static_cast<std::uint32_t>(policy));
        return *this;
    }
    /// Requires a valid detached signature (`<file>.sig`) for every library.
    Builder &set_require_signature(bool required) {
        detail::invoke(fidius_host_builder_set_require_signature, handle_.get(), required);
        return *this;
    }
    /// Trusts an Ed25519 public key given as its raw 32 bytes.
    Builder &add_trusted_key(bytes_view key) {
        detail::invoke(fidius_host_builder_add_trusted_key, handle_.get(), detail::bytes_of(key), key.size());
        return *this;
    }
    /// Trusts the public key in a `NAME.public` file written by `fidius keygen`.
    Builder &add_trusted_key_file(std::string_view path) {
        detail::invoke(fidius_host_builder_add_trusted_key_file, handle_.get(), detail::data_of(path), path.size());
        return *this;
    }
    /// Only accepts plugins whose interface hash is `hash`.
    Builder &set_interface_hash(std::uint64_t hash) {
        detail::invoke(fidius_host_builder_set_interface_hash, handle_.get(), hash);
        return *this;
    }
    /// Only accepts plugins with this buffer strategy.
    Builder &set_buffer_strategy(BufferStrategy strategy) {
        detail::invoke(fidius_host_builder_set_buffer_strategy, handle_.get(), static_cast<std::uint32_t>(strategy));
        return *this;
    }
    /// The largest output one call may return (default 64 MiB).
    Builder &set_max_output_size(std::size_t bytes) {
        detail::invoke(fidius_host_builder_set_max_output_size, handle_.get(), bytes);
        return *this;
    }
    /// The default deadline of each WASM call (default: the call
    /// deadline); zero means none.
    Builder &set_wasm_deadline(std::chrono::milliseconds deadline) {
        const std::uint64_t milliseconds = detail::milliseconds_of(deadline, "the WASM deadline");
        detail::invoke(fidius_host_builder_set_wasm_deadline_ms, handle_.get(), milliseconds);
        return *this;
    }
    /// The default deadline of each call in every runtime that can stop one
    /// (default 10 s): WASM calls, Python calls and imports; zero means
    /// none. set_wasm_deadline and set_python_deadline override it,
    /// whatever the order. Native (cdylib) calls have no deadline
    /// in-process; isolated ones have this one (past it the worker is
    /// killed: Status::Timeout).
    Builder &set_call_deadline(std::chrono::milliseconds deadline) {
        const std::uint64_t milliseconds = detail::milliseconds_of(deadline, "the call deadline");
        detail::invoke(fidius_host_builder_set_call_deadline_ms, handle_.get(), milliseconds);
        return *this;
    }
    /// The default deadline of each Python call and of a Python plugin's
    /// import at load (default: the call deadline); zero means none. Past
    /// it the call or load throws Status::Timeout and the plugin stays
    /// usable. Code blocked inside C sees the deadline only when that C
    /// call returns; `time.sleep` is cut at the deadline.
    Builder &set_python_deadline(std::chrono::milliseconds deadline) {
        const std::uint64_t milliseconds = detail::milliseconds_of(deadline, "the Python deadline");
        detail::invoke(fidius_host_builder_set_python_deadline_ms, handle_.get(), milliseconds);
        return *this;
    }
    /// The largest library file the host reads, in bytes (default 512 MiB;
    /// 0 throws Status::InvalidArgument). A larger one throws Status::FileTooLarge, read no
    /// further than the limit.
    Builder &set_max_library_size(std::uint64_t bytes) {
        detail::invoke(fidius_host_builder_set_max_library_size, handle_.get(), bytes);
        return *this;
    }
    /// The largest package (WASM or Python), all its files together, in
    /// bytes (default 512 MiB; 0 throws Status::InvalidArgument). A larger one throws
    /// Status::FileTooLarge, read no further than the limit.
    Builder &set_max_package_size(std::uint64_t bytes) {
        detail::invoke(fidius_host_builder_set_max_package_size, handle_.get(), bytes);
        return *this;
    }
    /// The default cap on a WASM guest's linear memory, in bytes (default 256 MiB).
    Builder &set_wasm_memory_limit(std::size_t bytes) {
        detail::invoke(fidius_host_builder_set_wasm_memory_limit, handle_.get(), bytes);
        return *this;
    }
    /// Refuses packages asking for `capability`: exact ("stdout") or a
    /// prefix ("fs", "env", "http").
    Builder &add_denied_capability(std::string_view capability) {
        detail::invoke(fidius_host_builder_add_denied_capability, handle_.get(), detail::data_of(capability),
                       capability.size());
        return *this;
    }
    /// Whether a precompiled `.cwasm` no verified signature covers may be
    /// loaded (default false). It is native code: allow only trusted files.
    Builder &set_allow_unsigned_precompiled(bool allow) {
        detail::invoke(fidius_host_builder_set_allow_unsigned_precompiled, handle_.get(), allow);
        return *this;
    }
    /// Keeps compiled WASM components in directory `dir`, at most
    /// `max_bytes` of them (0: 256 MiB), so that later processes load a
    /// component without compiling it. The directory (created, mode 0700,
    /// when missing) and its key file must belong to this user and be
    /// writable by nobody else (Status::InvalidArgument otherwise). An entry
    /// that fails its check is compiled again, never run.
    Builder &set_wasm_compile_cache(std::string_view dir, std::uint64_t max_bytes = 0) {
        detail::invoke(fidius_host_builder_set_wasm_compile_cache, handle_.get(), detail::data_of(dir), dir.size(),
                       max_bytes);
        return *this;
    }
    /// Whether every WASM call runs on a fresh instance (default false).
    Builder &set_wasm_fresh_instance_per_call(bool fresh) {
        detail::invoke(fidius_host_builder_set_wasm_fresh_instance_per_call, handle_.get(), fresh);
        return *this;
    }
    /// Takes WASM instances from a pool of `slots` preallocated slots (0,
    /// the default: no pool): instantiation about twice as fast, for fresh
    /// instances per call. At most `slots` instances live at once; a load
    /// or call finding none free throws Status::InstancePoolExhausted.
    Builder &set_wasm_instance_pool(std::uint32_t slots) {
        detail::invoke(fidius_host_builder_set_wasm_instance_pool, handle_.get(), slots);
        return *this;
    }
    /// Where native and Python plugins run by default (default
    /// Isolation::InProcess); LoadOptions::set_isolation overrides it. An
    /// isolated plugin is loaded by its worker with this host's settings
    /// (signatures included) and answers as an in-process one, but: a
    /// crash, abort, exit or kill of its worker throws Status::WorkerLost
    /// from the call in flight and loses the plugin's state, the next call
    /// restarting the worker as the restart policy allows; each call (and
    /// the load) has the call deadline (the Python deadline for Python
    /// plugins), past which the worker is killed (Status::Timeout); a load
    /// by name probes each candidate library in a worker. Host functions
    /// run in this process, on the thread that made the call into the
    /// plugin, with its context (none for a thread the plugin started), one
    /// at a time per plugin. Each call costs a round trip to the worker
    /// (under 10 µs).
    Builder &set_isolation(Isolation isolation) {
        detail::invoke(fidius_host_builder_set_isolation, handle_.get(), static_cast<std::uint32_t>(isolation));
        return *this;
    }
    /// Where unsigned libraries are opened to list their plugins: by
    /// Host::discover, and by Host::load (by name) to find the library that
    /// holds the plugin, which is then loaded as set_isolation says.
    /// Isolation::InProcess (the default) maps them in this process: a
    /// library whose initialisers crash or hang takes the host with it.
    /// Isolation::Isolated opens them in a worker (set_worker_path) kept
    /// for the whole scan: a library that takes its worker down is a
    /// skipped entry (Status::WorkerLost naming the signal, or
    /// Status::Timeout past the call deadline), the next one gets a new
    /// worker, and discovery maps no unsigned library in the host. It costs
    /// a worker start per scan and a round trip per library. With
    /// signatures required only verified bytes are mapped, in-process, and
    /// this setting is not used. An unknown value throws
    /// Status::InvalidArgument.
    Builder &set_discovery_isolation(Isolation isolation) {
        detail::invoke(fidius_host_builder_set_discovery_isolation, handle_.get(),
                       static_cast<std::uint32_t>(isolation));
        return *this;
    }
    /// The worker executable of isolated plugins. Default: the
    /// `fidius-host-worker` next to the shared library (or the program the
    /// static library is linked into), else in `../libexec` from there. A
    /// missing or unrunnable file makes isolated loads throw
    /// Status::WorkerUnavailable; an empty path throws
    /// Status::InvalidArgument.
    Builder &set_worker_path(std::string_view path) {
        detail::invoke(fidius_host_builder_set_worker_path, handle_.get(), detail::data_of(path), path.size());
        return *this;
    }
    /// Caps each worker's address space at `bytes` (RLIMIT_AS; 0, the
    /// default: no cap). A plugin allocating past it usually ends its
    /// worker: Status::WorkerLost, naming the cap. The cap counts the whole
    /// worker (this library, Python when loaded): allow 256 MiB or more.
    Builder &set_worker_memory_limit(std::uint64_t bytes) {
        detail::invoke(fidius_host_builder_set_worker_memory_limit, handle_.get(), bytes);
        return *this;
    }
    /// Caps each worker's CPU time (RLIMIT_CPU; zero, the default: no
    /// cap): the kernel kills a worker that used it up (SIGXCPU), and the
    /// call throws Status::WorkerLost. Unlike the call deadline it counts
    /// across calls, for the worker's life.
    Builder &set_worker_cpu_limit(std::chrono::seconds limit) {
        const std::uint64_t seconds = detail::seconds_of(limit, "the worker CPU limit");
        detail::invoke(fidius_host_builder_set_worker_cpu_limit, handle_.get(), seconds);
        return *this;
    }
    /// Makes each worker confine itself too (WorkerHardening parts combined
    /// with `|`; WorkerHardening::None, the default: no hardening), e.g.
    /// `WorkerHardening::DenyNetwork | WorkerHardening::ConfineFilesystem`.
    /// What the plugin tries past it fails as the system's refusal (EACCES,
    /// EPERM), and the worker goes on serving. Discovery and load-by-name
    /// probe workers apply NoNewPrivileges and DenyNetwork; the worker of
    /// each loaded plugin applies all it was given. A part the kernel cannot
    /// apply (seccomp filters; Landlock: Linux 5.13, its signal scope 6.12)
    /// makes the load throw Status::Unsupported naming it. Not covered:
    /// files the worker had open before (its standard output and error),
    /// UNIX sockets by path, and, without ConfineFilesystem, other
    /// processes' memory as the user's permissions allow. Unknown bits throw
    /// Status::InvalidArgument.
    Builder &set_worker_hardening(WorkerHardening flags) {
        detail::invoke(fidius_host_builder_set_worker_hardening, handle_.get(), static_cast<std::uint32_t>(flags));
        return *this;
    }
    /// What an isolated plugin's next call does after its worker was lost:
    /// start a new one if fewer than `max_restarts` were started for that
    /// handle within the last `window`, else throw Status::WorkerLost
    /// (naming how the last worker ended) without starting one.
    /// `max_restarts` 0: never restart. Default: 5 restarts a minute. A zero
    /// (or negative) window with restarts allowed throws
    /// Status::InvalidArgument. LoadOptions::set_restart_policy overrides it.
    Builder &set_restart_policy(std::uint32_t max_restarts, std::chrono::milliseconds window) {
        const std::uint64_t milliseconds = detail::milliseconds_of(window, "the restart window");
        detail::invoke(fidius_host_builder_set_restart_policy, handle_.get(), max_restarts, milliseconds);
        return *this;
    }
    /// The host's egress policy (load options may set their own).
    Builder &set_egress_policy(const EgressPolicy &policy) {
        detail::require(policy.get(), "EgressPolicy");
        return apply_egress_policy(policy.get());
    }
    /// Removes the host's egress policy.
    Builder &clear_egress_policy() { return apply_egress_policy(nullptr); }

    /// Builds the host. Consumes the builder, whether it succeeds or fails:
    /// afterwards this object is empty.
    Host build() {
        fidius_host_t *host = nullptr;
        detail::invoke(fidius_host_builder_build, handle_.release(), &host);
        return Host(host);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    const fidius_host_builder_t *get() const noexcept { return handle_.get(); }
    /// Gives up ownership of the C handle (free it with fidius_host_builder_free).
    fidius_host_builder_t *release() noexcept { return handle_.release(); }

private:
    Builder &apply_egress_policy(const fidius_host_egress_policy_t *policy) {
        detail::invoke(fidius_host_builder_set_egress_policy, handle_.get(), policy);
        return *this;
    }

    detail::Handle<fidius_host_builder_t, fidius_host_builder_free> handle_;
};

// ---------------------------------------------------------------------------
// Free functions
// ---------------------------------------------------------------------------

/// The library version, e.g. "0.1.0" (compare with FIDIUS_HOST_VERSION_STRING).
inline std::string version() { return fidius_host_version(); }

/// The library version as MAJOR * 10000 + MINOR * 100 + PATCH.
inline std::uint32_t version_number() { return fidius_host_version_number(); }

/// The optional runtimes a library may be built with.
enum class Feature : std::uint32_t {
    Wasm = FIDIUS_HOST_FEATURE_WASM,      ///< WebAssembly component plugins
    Python = FIDIUS_HOST_FEATURE_PYTHON,  ///< Python plugins (CPython embedded)
};

/// The runtimes the loaded library was built with, as Feature bits
/// (FIDIUS_HOST_BUILT_WITH_* say the same of the build the header is for).
inline std::uint32_t features() noexcept { return fidius_host_features(); }

/// Whether the loaded library was built with `feature`; without it, loads
/// of its plugins throw Status::Unsupported.
inline bool has_feature(Feature feature) noexcept {
    return (features() & static_cast<std::uint32_t>(feature)) != 0;
}

/// The fidius interface hash of the signatures of an interface's required
/// methods, exactly as `#[plugin_interface]` computes it.
inline std::uint64_t signatures_hash(const std::vector<std::string_view> &signatures) {
    std::vector<fidius_host_str_t> c_signatures;
    c_signatures.reserve(signatures.size());
    for (std::string_view signature : signatures)
        c_signatures.push_back(fidius_host_str_t{detail::data_of(signature), signature.size()});
    std::uint64_t hash = 0;
    detail::invoke(fidius_host_signatures_hash, c_signatures.empty() ? nullptr : c_signatures.data(),
                   c_signatures.size(), &hash);
    return hash;
}

/// Compiles a WebAssembly component ahead of time for this library: the
/// `.cwasm` a package may carry next to its component.
inline Bytes precompile_component(bytes_view component) {
    fidius_host_bytes_t cwasm{nullptr, 0, nullptr};
    detail::invoke(fidius_host_precompile_component, detail::bytes_of(component), component.size(), &cwasm);
    return Bytes(cwasm);
}

}  // namespace fidius

#endif  // FIDIUS_HOST_HPP
