package fidius

// The C side of callback egress policies. This file holds only the
// //export functions and what they use (cgo allows no C definitions next
// to them).

/*
#include <stdint.h>
#include "fidius_host.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// fidiusGoEgressHTTP is the HTTP callback of every callback policy:
// userdata is the cgo.Handle of its *EgressRules. It copies the request
// into Go memory, asks rules.HTTP and answers ALLOW or DENY.
//
//export fidiusGoEgressHTTP
func fidiusGoEgressHTTP(userdata C.uintptr_t, request *C.fidius_host_http_request_t) C.int32_t {
	rules := cgo.Handle(userdata).Value().(*EgressRules)
	return decideEgress(func() bool { return rules.HTTP != nil && rules.HTTP(copyRequest(request)) })
}

// fidiusGoEgressSocket is the socket callback of NewEgressRules policies,
// as fidiusGoEgressHTTP with rules.Socket.
//
//export fidiusGoEgressSocket
func fidiusGoEgressSocket(userdata C.uintptr_t, target *C.fidius_host_socket_target_t) C.int32_t {
	rules := cgo.Handle(userdata).Value().(*EgressRules)
	return decideEgress(func() bool { return rules.Socket != nil && rules.Socket(copySocketTarget(target)) })
}

// fidiusGoEgressDNS is the DNS callback of NewEgressRules policies, as
// fidiusGoEgressHTTP with rules.DNS.
//
//export fidiusGoEgressDNS
func fidiusGoEgressDNS(userdata C.uintptr_t, plugin, name *C.char) C.int32_t {
	rules := cgo.Handle(userdata).Value().(*EgressRules)
	return decideEgress(func() bool { return rules.DNS != nil && rules.DNS(C.GoString(plugin), C.GoString(name)) })
}

// fidiusGoEgressRelease is the free_userdata of every callback policy: the
// library calls it once, when nothing uses the policy any more.
//
//export fidiusGoEgressRelease
func fidiusGoEgressRelease(userdata C.uintptr_t) {
	cgo.Handle(userdata).Delete()
	liveEgressCallbacks.Add(-1)
}

// decideEgress answers ALLOW when allow returns true, DENY otherwise,
// also when it panics: a Go panic must not unwind through the C library.
func decideEgress(allow func() bool) (decision C.int32_t) {
	defer func() {
		if recover() != nil {
			decision = C.FIDIUS_HOST_EGRESS_DECISION_DENY
		}
	}()
	if allow() {
		return C.FIDIUS_HOST_EGRESS_DECISION_ALLOW
	}
	return C.FIDIUS_HOST_EGRESS_DECISION_DENY
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

// copySocketTarget copies a target borrowed for the callback into Go
// memory; a NULL host becomes "".
func copySocketTarget(t *C.fidius_host_socket_target_t) *SocketTarget {
	return &SocketTarget{
		Plugin:   C.GoString(t.plugin),
		Protocol: SocketProtocol(t.protocol),
		Host:     C.GoString(t.host), // "" for NULL
		Address:  C.GoString(t.address),
		Port:     uint16(t.port),
		Special:  bool(t.special),
	}
}
