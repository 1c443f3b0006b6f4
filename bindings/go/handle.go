package fidius

/*
#include <stdint.h>
#include "fidius_host.h"
*/
import "C"

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// guarded owns one C handle, of pointer type P (e.g.
// *C.fidius_host_plugin_t; the C structs themselves are incomplete types,
// which cannot be type arguments).
//
// Methods using the handle hold the read lock for the whole C call, so any
// number of goroutines may use a shareable handle at once, while close takes
// the write lock and therefore waits for running calls: a handle is never
// freed under a call (which the C library forbids). After close the pointer
// is nil and methods report a closed handle instead of touching freed memory.
//
// A runtime cleanup frees the handle if its Go owner becomes unreachable
// without Close; Close stops that cleanup so the handle is freed once.
type guarded[P comparable] struct {
	mu      sync.RWMutex
	ptr     P // the zero value (nil) once closed
	cleanup runtime.Cleanup
}

// own makes g the owner of ptr, freed with free when owner is garbage
// collected without having been closed. owner must be the struct that
// embeds g; free must not refer to owner (or it would never be collected).
func own[O any, P comparable](owner *O, g *guarded[P], ptr P, free func(P)) {
	g.ptr = ptr
	g.cleanup = runtime.AddCleanup(owner, free, ptr)
}

// acquire read-locks the handle and returns it (nil once closed). Every
// acquire must be paired with release, typically deferred: the deferred
// release also keeps the owner, and so the handle, alive until the C call
// using it has returned.
func (g *guarded[P]) acquire() P {
	g.mu.RLock()
	enterC()
	return g.ptr
}

// release ends what acquire started.
func (g *guarded[P]) release() {
	g.mu.RUnlock()
}

// take removes the handle from g without freeing it (the caller becomes its
// owner), or returns nil if it was already closed or taken.
func (g *guarded[P]) take() P {
	g.mu.Lock()
	defer g.mu.Unlock()
	var none P
	ptr := g.ptr
	if ptr != none {
		g.cleanup.Stop()
		g.ptr = none
	}
	return ptr
}

// close frees the handle once; later calls do nothing. It never fails: it
// returns nil so that each Close can satisfy io.Closer.
func (g *guarded[P]) close(free func(P)) error {
	var none P
	if ptr := g.take(); ptr != none {
		free(ptr)
	}
	return nil
}

// Stand-ins for empty inputs: the C API treats a NULL pointer as a missing
// argument for some parameters, so an empty string or byte slice is passed
// as a valid pointer with length 0 instead.
var (
	emptyText  C.char
	emptyBytes C.uint8_t
)

// text returns s as a (pointer, length) pair of a C text argument. The
// pointer is into s itself: allowed by the cgo rules because the C library
// only reads it, for the duration of the one call it is passed to, and the
// bytes contain no Go pointers.
func text(s string) (*C.char, C.size_t) {
	if len(s) == 0 {
		return &emptyText, 0
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// bytesArg returns b as a (pointer, length) pair of a C byte argument,
// borrowed for one call like text.
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return &emptyBytes, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// takeBytes copies a byte output of the library into Go memory and
// releases it.
func takeBytes(out *C.fidius_host_bytes_t) []byte {
	defer C.fidius_host_bytes_free(out)
	if out.len == 0 {
		return []byte{}
	}
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(out.data)), int(out.len))...)
}

// takeString copies a string the library handed over (n bytes at s, or up
// to the NUL when n is negative) into Go memory and releases it.
func takeString(s *C.char, n int) string {
	if s == nil {
		return ""
	}
	defer C.fidius_host_string_free(s)
	if n < 0 {
		return C.GoString(s)
	}
	return strings.Clone(unsafe.String((*byte)(unsafe.Pointer(s)), n))
}

// strArray returns strs as an array of fidius_host_str_t for one C call,
// and the function that ends the loan. The array and the text stay in Go
// memory: the text is pinned while the C library reads it, as the cgo rules
// require of Go pointers stored in memory passed to C. No strings give a
// nil array.
func strArray(strs []string) (*C.fidius_host_str_t, func()) {
	if len(strs) == 0 {
		return nil, func() {}
	}
	var pinner runtime.Pinner
	items := make([]C.fidius_host_str_t, len(strs))
	for i, s := range strs {
		if len(s) > 0 {
			data := unsafe.StringData(s)
			pinner.Pin(data)
			items[i].data = (*C.char)(unsafe.Pointer(data))
			items[i].len = C.size_t(len(s))
		}
	}
	return &items[0], pinner.Unpin
}

// sizeT converts a byte count for C. A count a size_t cannot hold (on a
// 32-bit target) is an error, never silently truncated.
func sizeT(n uint64, what string) (C.size_t, error) {
	if n > uint64(^uint(0)) {
		return 0, &Error{Status: StatusInvalidArgument, Message: what + " of " + strconv.FormatUint(n, 10) + " bytes does not fit this platform's size_t"}
	}
	return C.size_t(n), nil
}
