package fidius

// The C side of callback egress policies. This file holds only the
// //export functions (cgo allows no C definitions next to them).

/*
#include "fidius_host.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// fidiusGoEgressDecide is the C callback of every NewEgressPolicy policy:
// userdata is the cgo.Handle of the Go function. It copies the request into
// Go memory, asks the function and answers ALLOW or DENY.
//
//export fidiusGoEgressDecide
func fidiusGoEgressDecide(userdata unsafe.Pointer, request *C.fidius_host_http_request_t) C.int32_t {
	allow := cgo.Handle(uintptr(userdata)).Value().(egressCallback)
	if askEgressCallback(allow, copyRequest(request)) {
		return C.FIDIUS_HOST_EGRESS_DECISION_ALLOW
	}
	return C.FIDIUS_HOST_EGRESS_DECISION_DENY
}

// fidiusGoEgressRelease is the free_userdata of every NewEgressPolicy
// policy: the library calls it once, when nothing uses the policy any more.
//
//export fidiusGoEgressRelease
func fidiusGoEgressRelease(userdata unsafe.Pointer) {
	cgo.Handle(uintptr(userdata)).Delete()
	liveEgressCallbacks.Add(-1)
}

// askEgressCallback calls allow, denying the request if it panics: a Go
// panic must not unwind through the C library.
func askEgressCallback(allow egressCallback, request *HTTPRequest) (allowed bool) {
	defer func() {
		if recover() != nil {
			allowed = false
		}
	}()
	return allow(request)
}

// copyRequest copies a request borrowed for the callback into Go memory.
func copyRequest(r *C.fidius_host_http_request_t) *HTTPRequest {
	request := &HTTPRequest{
		Plugin:        C.GoString(r.plugin),
		Method:        C.GoString(r.method),
		Scheme:        C.GoString(r.scheme),
		Authority:     C.GoString(r.authority),
		Host:          C.GoString(r.host),
		Port:          uint16(r.port),
		PathWithQuery: C.GoString(r.path_with_query),
	}
	if r.header_count > 0 {
		headers := unsafe.Slice(r.headers, int(r.header_count))
		request.Headers = make([]HTTPHeader, len(headers))
		for i, h := range headers {
			request.Headers[i] = HTTPHeader{Name: C.GoString(h.name), Value: C.GoString(h.value)}
		}
	}
	return request
}
