package fidius

/*
#include <stdlib.h>
#include "fidius_host.h"
*/
import "C"

import "unsafe"

// HeaderVersion is the version of the fidius_host.h this package was
// compiled against; Version is the one of the library loaded at run time.
const HeaderVersion = C.FIDIUS_HOST_VERSION_STRING

// Version returns the version of the loaded libfidius_host, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.fidius_host_version())
}

// VersionNumber returns the loaded library's version as
// MAJOR*10000 + MINOR*100 + PATCH.
func VersionNumber() uint32 {
	return uint32(C.fidius_host_version_number())
}

// SignaturesHash computes the fidius interface hash of the signature
// strings of an interface's required methods, exactly as
// #[plugin_interface] does (canonical spelling, sorted, FNV-1a 64). Any
// spacing is accepted. To hash an interface with optional methods and
// flags, build an Interface and use Interface.Hash.
func SignaturesHash(signatures ...string) (uint64, error) {
	var array *C.fidius_host_str_t
	if len(signatures) > 0 {
		// The array holds pointers, so it and the text live in C memory.
		array = (*C.fidius_host_str_t)(C.malloc(C.size_t(len(signatures)) * C.size_t(unsafe.Sizeof(C.fidius_host_str_t{}))))
		defer C.free(unsafe.Pointer(array))
		items := unsafe.Slice(array, len(signatures))
		for i, s := range signatures {
			items[i].data = (*C.char)(C.CBytes([]byte(s)))
			items[i].len = C.size_t(len(s))
			defer C.free(unsafe.Pointer(items[i].data))
		}
	}
	var hash C.uint64_t
	var cerr *C.fidius_host_error_t
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
	if err := takeError(C.fidius_host_precompile_component(data, n, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}
