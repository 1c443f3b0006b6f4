package fidius

/*
#include "fidius_host.h"
*/
import "C"

import "strconv"

// Status is the code of a failure, as every fallible function of the C
// library returns it (0, StatusOK, is success). Values are grouped by area
// and never reused: 1–99 arguments and the host itself, 100–199 finding and
// validating a library, 200–299 signatures, 300–399 calls, 400–499
// interfaces.
type Status uint32

// String returns the status name the C library gives it, without prefix
// (e.g. "PLUGIN_NOT_FOUND"), or "UNKNOWN(n)" for a number that is no status.
func (s Status) String() string {
	name := StatusName(uint32(s))
	if name == "UNKNOWN" {
		return "UNKNOWN(" + strconv.FormatUint(uint64(s), 10) + ")"
	}
	return name
}

// StatusName returns the C library's name of a status code without prefix
// (e.g. "PLUGIN_NOT_FOUND"), or "UNKNOWN" for a number that is no status.
func StatusName(code uint32) string {
	enterC()
	return C.GoString(C.fidius_host_status_name(C.uint32_t(code)))
}

// The status codes of fidius_host.h, one constant per FIDIUS_HOST_STATUS_*
// value.
const (
	// StatusOK (OK): success.
	StatusOK Status = C.FIDIUS_HOST_STATUS_OK

	// StatusNullArgument (NULL_ARGUMENT): a required pointer argument was
	// NULL.
	StatusNullArgument Status = C.FIDIUS_HOST_STATUS_NULL_ARGUMENT

	// StatusInvalidArgument (INVALID_ARGUMENT): an argument was out of range
	// or malformed.
	StatusInvalidArgument Status = C.FIDIUS_HOST_STATUS_INVALID_ARGUMENT

	// StatusInvalidUTF8 (INVALID_UTF8): a text argument was not valid UTF-8.
	StatusInvalidUTF8 Status = C.FIDIUS_HOST_STATUS_INVALID_UTF8

	// StatusInternalPanic (INTERNAL_PANIC): the library itself panicked; this
	// is a bug in libfidius_host.
	StatusInternalPanic Status = C.FIDIUS_HOST_STATUS_INTERNAL_PANIC

	// StatusMisuse (MISUSE): a handle of the wrong type, or one already freed,
	// was passed.
	StatusMisuse Status = C.FIDIUS_HOST_STATUS_MISUSE

	// StatusUnsupported (UNSUPPORTED): the operation needs a feature this
	// build does not have, or one the plugin's runtime or isolation does not
	// serve (e.g. Plugin.WorkerUsage of an in-process plugin).
	StatusUnsupported Status = C.FIDIUS_HOST_STATUS_UNSUPPORTED

	// StatusIO (IO): reading a file or directory failed.
	StatusIO Status = C.FIDIUS_HOST_STATUS_IO

	// StatusNotARegularFile (NOT_A_REGULAR_FILE): the path names a
	// directory, FIFO, socket or device where a regular file is expected; it
	// was not read.
	StatusNotARegularFile Status = C.FIDIUS_HOST_STATUS_NOT_A_REGULAR_FILE

	// StatusFileTooLarge (FILE_TOO_LARGE): a file is larger than the limit
	// for its kind (Builder.MaxLibrarySize, Builder.MaxPackageSize); it was
	// not read past the limit.
	StatusFileTooLarge Status = C.FIDIUS_HOST_STATUS_FILE_TOO_LARGE

	// StatusStreamEnd (STREAM_END): not an error: a stream has no more
	// items. Stream.Next reports it as io.EOF, so no *Error carries it.
	StatusStreamEnd Status = C.FIDIUS_HOST_STATUS_STREAM_END

	// StatusFileNotFound (FILE_NOT_FOUND): the file does not exist.
	StatusFileNotFound Status = C.FIDIUS_HOST_STATUS_FILE_NOT_FOUND

	// StatusPluginNotFound (PLUGIN_NOT_FOUND): no plugin of that name was
	// found in the search paths.
	StatusPluginNotFound Status = C.FIDIUS_HOST_STATUS_PLUGIN_NOT_FOUND

	// StatusNotALibrary (NOT_A_LIBRARY): the file is too short or not a shared
	// library format this host knows.
	StatusNotALibrary Status = C.FIDIUS_HOST_STATUS_NOT_A_LIBRARY

	// StatusArchitectureMismatch (ARCHITECTURE_MISMATCH): the library is for
	// another OS, CPU, word size or byte order.
	StatusArchitectureMismatch Status = C.FIDIUS_HOST_STATUS_ARCHITECTURE_MISMATCH

	// StatusLibraryLoadFailed (LIBRARY_LOAD_FAILED): `dlopen` refused the
	// library.
	StatusLibraryLoadFailed Status = C.FIDIUS_HOST_STATUS_LIBRARY_LOAD_FAILED

	// StatusRegistryMissing (REGISTRY_MISSING): the library does not export
	// `fidius_get_registry`.
	StatusRegistryMissing Status = C.FIDIUS_HOST_STATUS_REGISTRY_MISSING

	// StatusInvalidRegistry (INVALID_REGISTRY): `fidius_get_registry` returned
	// NULL or a misaligned pointer.
	StatusInvalidRegistry Status = C.FIDIUS_HOST_STATUS_INVALID_REGISTRY

	// StatusInvalidMagic (INVALID_MAGIC): the registry does not start with the
	// fidius magic.
	StatusInvalidMagic Status = C.FIDIUS_HOST_STATUS_INVALID_MAGIC

	// StatusIncompatibleRegistryVersion (INCOMPATIBLE_REGISTRY_VERSION): the
	// registry layout version is not 1.
	StatusIncompatibleRegistryVersion Status = C.FIDIUS_HOST_STATUS_INCOMPATIBLE_REGISTRY_VERSION

	// StatusIncompatibleABIVersion (INCOMPATIBLE_ABI_VERSION): a descriptor's
	// `abi_version` is not 500 (fidius 0.5).
	StatusIncompatibleABIVersion Status = C.FIDIUS_HOST_STATUS_INCOMPATIBLE_ABI_VERSION

	// StatusInvalidDescriptorSize (INVALID_DESCRIPTOR_SIZE): a descriptor's
	// `descriptor_size` is smaller than the 0.5 layout.
	StatusInvalidDescriptorSize Status = C.FIDIUS_HOST_STATUS_INVALID_DESCRIPTOR_SIZE

	// StatusInvalidPluginPointer (INVALID_PLUGIN_POINTER): a pointer the
	// plugin handed over is NULL, misaligned or outside the library.
	StatusInvalidPluginPointer Status = C.FIDIUS_HOST_STATUS_INVALID_PLUGIN_POINTER

	// StatusInvalidPluginString (INVALID_PLUGIN_STRING): a name or metadata
	// string of the plugin is not UTF-8 (or not terminated).
	StatusInvalidPluginString Status = C.FIDIUS_HOST_STATUS_INVALID_PLUGIN_STRING

	// StatusInvalidPluginCount (INVALID_PLUGIN_COUNT): `plugin_count`,
	// `method_count` or a metadata count is not sane.
	StatusInvalidPluginCount Status = C.FIDIUS_HOST_STATUS_INVALID_PLUGIN_COUNT

	// StatusUnknownBufferStrategy (UNKNOWN_BUFFER_STRATEGY): `buffer_strategy`
	// is neither PluginAllocated (1) nor Arena (2).
	StatusUnknownBufferStrategy Status = C.FIDIUS_HOST_STATUS_UNKNOWN_BUFFER_STRATEGY

	// StatusInterfaceHashMismatch (INTERFACE_HASH_MISMATCH): the plugin's
	// interface hash differs from the expected one.
	StatusInterfaceHashMismatch Status = C.FIDIUS_HOST_STATUS_INTERFACE_HASH_MISMATCH

	// StatusBufferStrategyMismatch (BUFFER_STRATEGY_MISMATCH): the plugin's
	// buffer strategy differs from the expected one.
	StatusBufferStrategyMismatch Status = C.FIDIUS_HOST_STATUS_BUFFER_STRATEGY_MISMATCH

	// StatusConstructFailed (CONSTRUCT_FAILED): the plugin's `construct`
	// returned NULL.
	StatusConstructFailed Status = C.FIDIUS_HOST_STATUS_CONSTRUCT_FAILED

	// StatusDuplicatePlugin (DUPLICATE_PLUGIN): two plugins of one library
	// share a name.
	StatusDuplicatePlugin Status = C.FIDIUS_HOST_STATUS_DUPLICATE_PLUGIN

	// StatusAmbiguousPlugin (AMBIGUOUS_PLUGIN): the library holds several
	// plugins and no name was given.
	StatusAmbiguousPlugin Status = C.FIDIUS_HOST_STATUS_AMBIGUOUS_PLUGIN

	// StatusInterfaceVersionMismatch (INTERFACE_VERSION_MISMATCH): the
	// plugin's interface version differs from the expected interface's.
	StatusInterfaceVersionMismatch Status = C.FIDIUS_HOST_STATUS_INTERFACE_VERSION_MISMATCH

	// StatusMethodCountMismatch (METHOD_COUNT_MISMATCH): the plugin's method
	// count differs from the expected interface's.
	StatusMethodCountMismatch Status = C.FIDIUS_HOST_STATUS_METHOD_COUNT_MISMATCH

	// StatusInvalidManifest (INVALID_MANIFEST): a package's `package.toml` is
	// malformed, or names a file outside the package.
	StatusInvalidManifest Status = C.FIDIUS_HOST_STATUS_INVALID_MANIFEST

	// StatusInvalidCapability (INVALID_CAPABILITY): a package asks for a
	// capability that is unknown or refused (the whole filesystem, raw network
	// access).
	StatusInvalidCapability Status = C.FIDIUS_HOST_STATUS_INVALID_CAPABILITY

	// StatusCapabilityDenied (CAPABILITY_DENIED): a package asks for a
	// capability the host denies.
	StatusCapabilityDenied Status = C.FIDIUS_HOST_STATUS_CAPABILITY_DENIED

	// StatusInvalidComponent (INVALID_COMPONENT): a WASM component does not
	// compile, link or export what the interface needs.
	StatusInvalidComponent Status = C.FIDIUS_HOST_STATUS_INVALID_COMPONENT

	// StatusCapabilityMissing (CAPABILITY_MISSING): a WASM component imports a
	// capability (such as `wasi:http`) its package does not declare.
	StatusCapabilityMissing Status = C.FIDIUS_HOST_STATUS_CAPABILITY_MISSING

	// StatusNoEgressPolicy (NO_EGRESS_POLICY): a WASM component may send HTTP
	// requests but no egress policy is set (on the builder or the load
	// options): it is not loaded.
	StatusNoEgressPolicy Status = C.FIDIUS_HOST_STATUS_NO_EGRESS_POLICY

	// StatusInvalidPythonPlugin (INVALID_PYTHON_PLUGIN): a Python plugin fails
	// to import, or lacks `__interface_hash__` or a required method.
	StatusInvalidPythonPlugin Status = C.FIDIUS_HOST_STATUS_INVALID_PYTHON_PLUGIN

	// StatusConfigRequired (CONFIG_REQUIRED): the plugin is constructed with
	// a configuration and none was given (the interface declares a config
	// type, or a Python module has `__fidius_configure__` and no methods).
	StatusConfigRequired Status = C.FIDIUS_HOST_STATUS_CONFIG_REQUIRED

	// StatusConfigInvalid (CONFIG_INVALID): the configuration is not a value
	// of the interface's config type, or its form cannot reach the plugin's
	// runtime without that type.
	StatusConfigInvalid Status = C.FIDIUS_HOST_STATUS_CONFIG_INVALID

	// StatusConfigRejected (CONFIG_REJECTED): the plugin refused its
	// configuration; nothing was created.
	StatusConfigRejected Status = C.FIDIUS_HOST_STATUS_CONFIG_REJECTED

	// StatusHostAlreadyBound (HOST_ALREADY_BOUND): the library is already
	// mapped with other host functions bound for one of its host interfaces
	// (by an earlier load, in this host or another): fidius binds a host
	// interface once per mapped library.
	StatusHostAlreadyBound Status = C.FIDIUS_HOST_STATUS_HOST_ALREADY_BOUND

	// StatusHostBindFailed (HOST_BIND_FAILED): the plugin's library refused
	// the host functions offered to it; the message names fidius's reason.
	StatusHostBindFailed Status = C.FIDIUS_HOST_STATUS_HOST_BIND_FAILED

	// StatusWorkerUnavailable (WORKER_UNAVAILABLE): an isolated load could not
	// start its worker process: the fidius-host-worker executable is missing
	// or cannot run (the message names the path tried; see
	// Builder.WorkerPath).
	StatusWorkerUnavailable Status = C.FIDIUS_HOST_STATUS_WORKER_UNAVAILABLE

	// StatusSignatureRequired (SIGNATURE_REQUIRED): signatures are required
	// and the `.sig` file is missing.
	StatusSignatureRequired Status = C.FIDIUS_HOST_STATUS_SIGNATURE_REQUIRED

	// StatusSignatureInvalid (SIGNATURE_INVALID): the signature is malformed
	// or no trusted key verifies it.
	StatusSignatureInvalid Status = C.FIDIUS_HOST_STATUS_SIGNATURE_INVALID

	// StatusInvalidKey (INVALID_KEY): a trusted key (or key file) is not a
	// valid Ed25519 public key.
	StatusInvalidKey Status = C.FIDIUS_HOST_STATUS_INVALID_KEY

	// StatusMethodOutOfRange (METHOD_OUT_OF_RANGE): the method index is not
	// below the plugin's method count.
	StatusMethodOutOfRange Status = C.FIDIUS_HOST_STATUS_METHOD_OUT_OF_RANGE

	// StatusNotImplemented (NOT_IMPLEMENTED): the plugin does not implement
	// this (optional) method.
	StatusNotImplemented Status = C.FIDIUS_HOST_STATUS_NOT_IMPLEMENTED

	// StatusPluginError (PLUGIN_ERROR): the method returned an error; see the
	// plugin error fields.
	StatusPluginError Status = C.FIDIUS_HOST_STATUS_PLUGIN_ERROR

	// StatusPluginPanic (PLUGIN_PANIC): the method panicked inside the plugin.
	StatusPluginPanic Status = C.FIDIUS_HOST_STATUS_PLUGIN_PANIC

	// StatusPluginSerialization (PLUGIN_SERIALIZATION): the plugin could not
	// decode the input or encode its output.
	StatusPluginSerialization Status = C.FIDIUS_HOST_STATUS_PLUGIN_SERIALIZATION

	// StatusOutputTooLarge (OUTPUT_TOO_LARGE): the result is larger than the
	// host's output limit.
	StatusOutputTooLarge Status = C.FIDIUS_HOST_STATUS_OUTPUT_TOO_LARGE

	// StatusInputTooLarge (INPUT_TOO_LARGE): the input is larger than the ABI
	// allows (4 GiB - 1).
	StatusInputTooLarge Status = C.FIDIUS_HOST_STATUS_INPUT_TOO_LARGE

	// StatusPluginProtocol (PLUGIN_PROTOCOL): the plugin broke the call
	// protocol (bad status, buffer or payload).
	StatusPluginProtocol Status = C.FIDIUS_HOST_STATUS_PLUGIN_PROTOCOL

	// StatusInvalidJSON (INVALID_JSON): the JSON text of a call is not valid
	// JSON.
	StatusInvalidJSON Status = C.FIDIUS_HOST_STATUS_INVALID_JSON

	// StatusArgumentMismatch (ARGUMENT_MISMATCH): jSON arguments do not fit
	// the method: count, type or range.
	StatusArgumentMismatch Status = C.FIDIUS_HOST_STATUS_ARGUMENT_MISMATCH

	// StatusUnknownMethod (UNKNOWN_METHOD): the interface has no method of
	// that name.
	StatusUnknownMethod Status = C.FIDIUS_HOST_STATUS_UNKNOWN_METHOD

	// StatusNoInterface (NO_INTERFACE): the call needs an interface, and the
	// plugin was loaded without one.
	StatusNoInterface Status = C.FIDIUS_HOST_STATUS_NO_INTERFACE

	// StatusPluginTrap (PLUGIN_TRAP): a WASM guest trapped (panic,
	// `unreachable`, bad memory access); the next call runs on a fresh
	// instance.
	StatusPluginTrap Status = C.FIDIUS_HOST_STATUS_PLUGIN_TRAP

	// StatusTimeout (TIMEOUT): a WASM, Python or isolated call, or a Python
	// plugin's import at load, ran past its deadline and was stopped (an
	// isolated plugin's worker is killed).
	StatusTimeout Status = C.FIDIUS_HOST_STATUS_TIMEOUT

	// StatusMemoryLimit (MEMORY_LIMIT): a WASM guest tried to grow its memory
	// past the cap and was stopped.
	StatusMemoryLimit Status = C.FIDIUS_HOST_STATUS_MEMORY_LIMIT

	// StatusInstancePoolExhausted (INSTANCE_POOL_EXHAUSTED): every slot of
	// the host's WASM instance pool is in use; retry when another call or
	// plugin is done.
	StatusInstancePoolExhausted Status = C.FIDIUS_HOST_STATUS_INSTANCE_POOL_EXHAUSTED

	// StatusStreamMismatch (STREAM_MISMATCH): the call does not match how the
	// method streams: a unary call (Plugin.Call, Plugin.CallJSON) of a
	// streaming method, a stream call of a unary one, a client-stream call of
	// a method that returns a stream, or a bidirectional stream call without
	// the items its Stream<T> argument needs (or a server-streaming one with
	// them). Nothing was called.
	StatusStreamMismatch Status = C.FIDIUS_HOST_STATUS_STREAM_MISMATCH

	// StatusStreamInputFailed (STREAM_INPUT_FAILED): the items the host
	// supplied for a Stream<T> argument failed: the Items reported an error
	// or panicked, or gave an item that is not a value of the item type. The
	// plugin was told the input ended; its result (or the rest of its output
	// stream) was discarded.
	StatusStreamInputFailed Status = C.FIDIUS_HOST_STATUS_STREAM_INPUT_FAILED

	// StatusWorkerLost (WORKER_LOST): the worker process of an isolated plugin
	// died during the call (a crash, an abort, an exit, a kill from outside, a
	// cap it hit), or was lost earlier and the restart policy allows no new
	// one; the message says how it ended. The host is unaffected and no
	// output was delivered; the call is not retried.
	StatusWorkerLost Status = C.FIDIUS_HOST_STATUS_WORKER_LOST

	// StatusCancelled (CANCELLED): the call was cancelled (Plugin.CallContext
	// and Plugin.CallJSONContext, when their context is done): stopped while
	// it ran (the plugin is left as after a StatusTimeout of its runtime), or
	// refused before it started (nothing ran). No output was delivered.
	StatusCancelled Status = C.FIDIUS_HOST_STATUS_CANCELLED

	// StatusInvalidInterface (INVALID_INTERFACE): an interface (signature,
	// type declaration or file) is malformed, or uses a type that is neither
	// builtin nor declared.
	StatusInvalidInterface Status = C.FIDIUS_HOST_STATUS_INVALID_INTERFACE
)

// Sentinel errors, one per failure status. Each matches, with errors.Is,
// every *Error of the same status, whatever its message:
//
//	if errors.Is(err, fidius.ErrPluginNotFound) { ... }
var (
	// ErrNullArgument matches errors of status StatusNullArgument.
	ErrNullArgument = &Error{Status: StatusNullArgument}

	// ErrInvalidArgument matches errors of status StatusInvalidArgument.
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}

	// ErrInvalidUTF8 matches errors of status StatusInvalidUTF8.
	ErrInvalidUTF8 = &Error{Status: StatusInvalidUTF8}

	// ErrInternalPanic matches errors of status StatusInternalPanic.
	ErrInternalPanic = &Error{Status: StatusInternalPanic}

	// ErrMisuse matches errors of status StatusMisuse.
	ErrMisuse = &Error{Status: StatusMisuse}

	// ErrUnsupported matches errors of status StatusUnsupported.
	ErrUnsupported = &Error{Status: StatusUnsupported}

	// ErrIO matches errors of status StatusIO.
	ErrIO = &Error{Status: StatusIO}

	// ErrNotARegularFile matches errors of status StatusNotARegularFile.
	ErrNotARegularFile = &Error{Status: StatusNotARegularFile}

	// ErrFileTooLarge matches errors of status StatusFileTooLarge.
	ErrFileTooLarge = &Error{Status: StatusFileTooLarge}

	// ErrFileNotFound matches errors of status StatusFileNotFound.
	ErrFileNotFound = &Error{Status: StatusFileNotFound}

	// ErrPluginNotFound matches errors of status StatusPluginNotFound.
	ErrPluginNotFound = &Error{Status: StatusPluginNotFound}

	// ErrNotALibrary matches errors of status StatusNotALibrary.
	ErrNotALibrary = &Error{Status: StatusNotALibrary}

	// ErrArchitectureMismatch matches errors of status StatusArchitectureMismatch.
	ErrArchitectureMismatch = &Error{Status: StatusArchitectureMismatch}

	// ErrLibraryLoadFailed matches errors of status StatusLibraryLoadFailed.
	ErrLibraryLoadFailed = &Error{Status: StatusLibraryLoadFailed}

	// ErrRegistryMissing matches errors of status StatusRegistryMissing.
	ErrRegistryMissing = &Error{Status: StatusRegistryMissing}

	// ErrInvalidRegistry matches errors of status StatusInvalidRegistry.
	ErrInvalidRegistry = &Error{Status: StatusInvalidRegistry}

	// ErrInvalidMagic matches errors of status StatusInvalidMagic.
	ErrInvalidMagic = &Error{Status: StatusInvalidMagic}

	// ErrIncompatibleRegistryVersion matches errors of status StatusIncompatibleRegistryVersion.
	ErrIncompatibleRegistryVersion = &Error{Status: StatusIncompatibleRegistryVersion}

	// ErrIncompatibleABIVersion matches errors of status StatusIncompatibleABIVersion.
	ErrIncompatibleABIVersion = &Error{Status: StatusIncompatibleABIVersion}

	// ErrInvalidDescriptorSize matches errors of status StatusInvalidDescriptorSize.
	ErrInvalidDescriptorSize = &Error{Status: StatusInvalidDescriptorSize}

	// ErrInvalidPluginPointer matches errors of status StatusInvalidPluginPointer.
	ErrInvalidPluginPointer = &Error{Status: StatusInvalidPluginPointer}

	// ErrInvalidPluginString matches errors of status StatusInvalidPluginString.
	ErrInvalidPluginString = &Error{Status: StatusInvalidPluginString}

	// ErrInvalidPluginCount matches errors of status StatusInvalidPluginCount.
	ErrInvalidPluginCount = &Error{Status: StatusInvalidPluginCount}

	// ErrUnknownBufferStrategy matches errors of status StatusUnknownBufferStrategy.
	ErrUnknownBufferStrategy = &Error{Status: StatusUnknownBufferStrategy}

	// ErrInterfaceHashMismatch matches errors of status StatusInterfaceHashMismatch.
	ErrInterfaceHashMismatch = &Error{Status: StatusInterfaceHashMismatch}

	// ErrBufferStrategyMismatch matches errors of status StatusBufferStrategyMismatch.
	ErrBufferStrategyMismatch = &Error{Status: StatusBufferStrategyMismatch}

	// ErrConstructFailed matches errors of status StatusConstructFailed.
	ErrConstructFailed = &Error{Status: StatusConstructFailed}

	// ErrDuplicatePlugin matches errors of status StatusDuplicatePlugin.
	ErrDuplicatePlugin = &Error{Status: StatusDuplicatePlugin}

	// ErrAmbiguousPlugin matches errors of status StatusAmbiguousPlugin.
	ErrAmbiguousPlugin = &Error{Status: StatusAmbiguousPlugin}

	// ErrInterfaceVersionMismatch matches errors of status StatusInterfaceVersionMismatch.
	ErrInterfaceVersionMismatch = &Error{Status: StatusInterfaceVersionMismatch}

	// ErrMethodCountMismatch matches errors of status StatusMethodCountMismatch.
	ErrMethodCountMismatch = &Error{Status: StatusMethodCountMismatch}

	// ErrInvalidManifest matches errors of status StatusInvalidManifest.
	ErrInvalidManifest = &Error{Status: StatusInvalidManifest}

	// ErrInvalidCapability matches errors of status StatusInvalidCapability.
	ErrInvalidCapability = &Error{Status: StatusInvalidCapability}

	// ErrCapabilityDenied matches errors of status StatusCapabilityDenied.
	ErrCapabilityDenied = &Error{Status: StatusCapabilityDenied}

	// ErrInvalidComponent matches errors of status StatusInvalidComponent.
	ErrInvalidComponent = &Error{Status: StatusInvalidComponent}

	// ErrCapabilityMissing matches errors of status StatusCapabilityMissing.
	ErrCapabilityMissing = &Error{Status: StatusCapabilityMissing}

	// ErrNoEgressPolicy matches errors of status StatusNoEgressPolicy.
	ErrNoEgressPolicy = &Error{Status: StatusNoEgressPolicy}

	// ErrInvalidPythonPlugin matches errors of status StatusInvalidPythonPlugin.
	ErrInvalidPythonPlugin = &Error{Status: StatusInvalidPythonPlugin}
	// ErrConfigRequired matches errors of status StatusConfigRequired.
	ErrConfigRequired = &Error{Status: StatusConfigRequired}
	// ErrConfigInvalid matches errors of status StatusConfigInvalid.
	ErrConfigInvalid = &Error{Status: StatusConfigInvalid}
	// ErrConfigRejected matches errors of status StatusConfigRejected.
	ErrConfigRejected = &Error{Status: StatusConfigRejected}

	// ErrHostAlreadyBound matches errors of status StatusHostAlreadyBound.
	ErrHostAlreadyBound = &Error{Status: StatusHostAlreadyBound}

	// ErrHostBindFailed matches errors of status StatusHostBindFailed.
	ErrHostBindFailed = &Error{Status: StatusHostBindFailed}

	// ErrWorkerUnavailable matches errors of status StatusWorkerUnavailable.
	ErrWorkerUnavailable = &Error{Status: StatusWorkerUnavailable}

	// ErrSignatureRequired matches errors of status StatusSignatureRequired.
	ErrSignatureRequired = &Error{Status: StatusSignatureRequired}

	// ErrSignatureInvalid matches errors of status StatusSignatureInvalid.
	ErrSignatureInvalid = &Error{Status: StatusSignatureInvalid}

	// ErrInvalidKey matches errors of status StatusInvalidKey.
	ErrInvalidKey = &Error{Status: StatusInvalidKey}

	// ErrMethodOutOfRange matches errors of status StatusMethodOutOfRange.
	ErrMethodOutOfRange = &Error{Status: StatusMethodOutOfRange}

	// ErrNotImplemented matches errors of status StatusNotImplemented.
	ErrNotImplemented = &Error{Status: StatusNotImplemented}

	// ErrPluginError matches errors of status StatusPluginError.
	ErrPluginError = &Error{Status: StatusPluginError}

	// ErrPluginPanic matches errors of status StatusPluginPanic.
	ErrPluginPanic = &Error{Status: StatusPluginPanic}

	// ErrPluginSerialization matches errors of status StatusPluginSerialization.
	ErrPluginSerialization = &Error{Status: StatusPluginSerialization}

	// ErrOutputTooLarge matches errors of status StatusOutputTooLarge.
	ErrOutputTooLarge = &Error{Status: StatusOutputTooLarge}

	// ErrInputTooLarge matches errors of status StatusInputTooLarge.
	ErrInputTooLarge = &Error{Status: StatusInputTooLarge}

	// ErrPluginProtocol matches errors of status StatusPluginProtocol.
	ErrPluginProtocol = &Error{Status: StatusPluginProtocol}

	// ErrInvalidJSON matches errors of status StatusInvalidJSON.
	ErrInvalidJSON = &Error{Status: StatusInvalidJSON}

	// ErrArgumentMismatch matches errors of status StatusArgumentMismatch.
	ErrArgumentMismatch = &Error{Status: StatusArgumentMismatch}

	// ErrUnknownMethod matches errors of status StatusUnknownMethod.
	ErrUnknownMethod = &Error{Status: StatusUnknownMethod}

	// ErrNoInterface matches errors of status StatusNoInterface.
	ErrNoInterface = &Error{Status: StatusNoInterface}

	// ErrPluginTrap matches errors of status StatusPluginTrap.
	ErrPluginTrap = &Error{Status: StatusPluginTrap}

	// ErrTimeout matches errors of status StatusTimeout.
	ErrTimeout = &Error{Status: StatusTimeout}

	// ErrMemoryLimit matches errors of status StatusMemoryLimit.
	ErrMemoryLimit = &Error{Status: StatusMemoryLimit}

	// ErrInstancePoolExhausted matches errors of status
	// StatusInstancePoolExhausted.
	ErrInstancePoolExhausted = &Error{Status: StatusInstancePoolExhausted}

	// ErrStreamMismatch matches errors of status StatusStreamMismatch.
	ErrStreamMismatch = &Error{Status: StatusStreamMismatch}

	// ErrStreamInputFailed matches errors of status StatusStreamInputFailed.
	ErrStreamInputFailed = &Error{Status: StatusStreamInputFailed}

	// ErrWorkerLost matches errors of status StatusWorkerLost.
	ErrWorkerLost = &Error{Status: StatusWorkerLost}

	// ErrCancelled matches errors of status StatusCancelled.
	ErrCancelled = &Error{Status: StatusCancelled}

	// ErrInvalidInterface matches errors of status StatusInvalidInterface.
	ErrInvalidInterface = &Error{Status: StatusInvalidInterface}
)
