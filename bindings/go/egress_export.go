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
// into Go memory, asks rules.HTTP (which may edit headers through the
// request's edits until it returns) and answers ALLOW or DENY.
//
//export fidiusGoEgressHTTP
func fidiusGoEgressHTTP(userdata C.uintptr_t, request *C.fidius_host_http_request_t) C.int32_t {
	rules := cgo.Handle(userdata).Value().(*EgressRules)
	if rules.HTTP == nil {
		return C.FIDIUS_HOST_EGRESS_DECISION_DENY
	}
	r := copyRequest(request)
	if request.edits != nil {
		r.edits = &headerEdits{ptr: request.edits}
		// The C edits are gone once this returns: a request the rule kept
		// (or a goroutine still editing) gets an error, never the handle.
		defer r.edits.end()
	}
	return decideEgress(func() bool { return rules.HTTP(r) })
}

// fidiusGoEgressResponse is the response callback of NewEgressRules
// policies with a Response rule: it copies the request (as sent, without
// edits) and the response head into Go memory and answers rules.Response's
// directive, FORWARD when it panics.
//
//export fidiusGoEgressResponse
func fidiusGoEgressResponse(userdata C.uintptr_t, request *C.fidius_host_http_request_t,
	response *C.fidius_host_http_response_t) (directive C.int32_t) {
	rules := cgo.Handle(userdata).Value().(*EgressRules)
	if rules.Response == nil {
		return C.FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD
	}
	defer func() {
		// A Go panic must not unwind through the C library.
		if recover() != nil {
			directive = C.FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD
		}
	}()
	head := &HTTPResponse{
		Status:         int(response.status),
		Headers:        copyHeaders(response.headers, response.header_count),
		RetryAvailable: bool(response.retry_available),
	}
	if rules.Response(copyRequest(request), head) == ResponseRetryOnce {
		return C.FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE
	}
	return C.FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD
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

// copyRequest copies a request borrowed for the callback into Go memory
// (not its edits, which fidiusGoEgressHTTP attaches).
func copyRequest(r *C.fidius_host_http_request_t) *HTTPRequest {
	return &HTTPRequest{
		Plugin:        C.GoString(r.plugin),
		Method:        C.GoString(r.method),
		Scheme:        C.GoString(r.scheme),
		Authority:     C.GoString(r.authority),
		Host:          C.GoString(r.host),
		Port:          uint16(r.port),
		PathWithQuery: C.GoString(r.path_with_query),
		Headers:       copyHeaders(r.headers, r.header_count),
	}
}

// copyHeaders copies count headers borrowed for the callback into Go
// memory; none give nil.
func copyHeaders(h *C.fidius_host_http_header_t, count C.size_t) []HTTPHeader {
	if count == 0 || h == nil {
		return nil
	}
	borrowed := unsafe.Slice(h, int(count))
	headers := make([]HTTPHeader, len(borrowed))
	for i, header := range borrowed {
		headers[i] = HTTPHeader{Name: C.GoString(header.name), Value: C.GoString(header.value)}
	}
	return headers
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
