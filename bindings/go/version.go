package fidius

/*
#include "fidius_host.h"
*/
import "C"

// HeaderVersion is the version of the fidius_host.h this package was
// compiled against; Version is the one of the library loaded at run time.
const HeaderVersion = C.FIDIUS_HOST_VERSION_STRING

// Version returns the version of the loaded libfidius_host, e.g. "0.1.0".
func Version() string {
	enterC()
	return C.GoString(C.fidius_host_version())
}

// VersionNumber returns the loaded library's version as
// MAJOR*10000 + MINOR*100 + PATCH.
func VersionNumber() uint32 {
	enterC()
	return uint32(C.fidius_host_version_number())
}

// Feature is an optional runtime a library may be built with; a Feature
// value is a set of them (combine with |).
type Feature uint32

const (
	// FeatureWasm: WebAssembly component plugins.
	FeatureWasm Feature = C.FIDIUS_HOST_FEATURE_WASM
	// FeaturePython: Python plugins, with CPython embedded.
	FeaturePython Feature = C.FIDIUS_HOST_FEATURE_PYTHON
)

// HeaderFeatures are the runtimes of the build fidius_host.h was generated
// for; Features answers for the library loaded at run time.
const HeaderFeatures = Feature(C.FIDIUS_HOST_BUILT_WITH_WASM*C.FIDIUS_HOST_FEATURE_WASM |
	C.FIDIUS_HOST_BUILT_WITH_PYTHON*C.FIDIUS_HOST_FEATURE_PYTHON)

// Features returns the runtimes the loaded library was built with. A
// library without one fails loads of its plugins with StatusUnsupported.
func Features() Feature {
	enterC()
	return Feature(C.fidius_host_features())
}

// Has reports whether every feature of want is in f.
func (f Feature) Has(want Feature) bool {
	return f&want == want
}

// String lists the features, e.g. "wasm|python", or "none".
func (f Feature) String() string {
	return flagNames(f, []flagName[Feature]{{FeatureWasm, "wasm"}, {FeaturePython, "python"}}, "none")
}

// SignaturesHash computes the fidius interface hash of the signature
// strings of an interface's required methods, exactly as
// #[plugin_interface] does (canonical spelling, sorted, FNV-1a 64). Any
// spacing is accepted. To hash an interface with optional methods and
// flags, build an Interface and use Interface.Hash.
func SignaturesHash(signatures ...string) (uint64, error) {
	array, unpin := strArray(signatures)
	defer unpin()
	var hash C.uint64_t
	var cerr *C.fidius_host_error_t
	enterC()
	if err := takeError(C.fidius_host_signatures_hash(array, C.size_t(len(signatures)), &hash, &cerr), cerr); err != nil {
		return 0, err
	}
	return uint64(hash), nil
}

// PrecompileComponent compiles a WebAssembly component ahead of time for
// this library (same wasmtime version and settings): the .cwasm a package
// may carry next to its component. A .cwasm is native code: hosts load one
// only when a verified package signature covers it, or when allowed with
// Builder.AllowUnsignedPrecompiled.
func PrecompileComponent(component []byte) ([]byte, error) {
	data, n := bytesArg(component)
	var out C.fidius_host_bytes_t
	var cerr *C.fidius_host_error_t
	enterC()
	if err := takeError(C.fidius_host_precompile_component(data, n, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}
