package fidius

/*
#include <stdint.h>
#include "fidius_host.h"

// Defined in egress_export.go (//export).
extern int32_t fidiusGoEgressDecide(void *userdata, fidius_host_http_request_t *request);
extern void fidiusGoEgressRelease(void *userdata);

// The callback with the exact signature the library calls (cgo exports
// take no const parameters).
static int32_t fidius_go_egress_decide(void *userdata, const fidius_host_http_request_t *request) {
	return fidiusGoEgressDecide(userdata, (fidius_host_http_request_t *)request);
}

// Makes a callback policy whose userdata is a runtime/cgo.Handle: an
// integer, so no Go pointer is ever stored in C memory.
static fidius_host_status fidius_go_egress_policy(uintptr_t handle, fidius_host_egress_policy_t **out,
                                                    fidius_host_error_t **err) {
	return fidius_host_egress_policy_new_callback(fidius_go_egress_decide, (void *)handle, fidiusGoEgressRelease, out, err);
}
*/
import "C"

import (
	"runtime/cgo"
	"strconv"
	"strings"
	"sync/atomic"
)

// EgressPolicy decides which outbound HTTP requests WASM plugins with the
// http capability may send: a Go function (NewEgressPolicy) or a host[:port]
// allow-list (NewEgressAllowList). Set it with Builder.EgressPolicy or
// LoadOptions.EgressPolicy.
//
// An EgressPolicy is safe for concurrent use. Builders, load options and
// plugins using it keep their own reference, so it may be closed as soon as
// it is set.
type EgressPolicy struct {
	h guarded[*C.fidius_host_egress_policy_t]
}

func freeEgressPolicy(ptr *C.fidius_host_egress_policy_t) { C.fidius_host_egress_policy_free(ptr) }

// HTTPRequest is an outbound request as an egress callback sees it. It is a
// copy: the callback may keep it.
type HTTPRequest struct {
	// Plugin is the name of the plugin sending the request.
	Plugin string
	// Method is "GET", "POST", ...
	Method string
	// Scheme is "http" or "https".
	Scheme string
	// Authority is "host", "host:port" or "[ipv6]:port", as the guest wrote
	// it.
	Authority string
	// Host is the host alone: lowercase, IPv6 without brackets.
	Host string
	// Port is the port, explicit or the scheme's default (80, 443).
	Port uint16
	// PathWithQuery is the path and query, "/" at least.
	PathWithQuery string
	// Headers are the request's headers in the order sent.
	Headers []HTTPHeader
}

// HTTPHeader is one header of an HTTPRequest.
type HTTPHeader struct {
	// Name is the lowercase header name.
	Name string
	// Value is the value as sent (not necessarily UTF-8).
	Value string
}

// Header returns the value of the first header called name (compared
// case-insensitively), and whether there is one.
func (r *HTTPRequest) Header(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// URL returns scheme://authority/path?query.
func (r *HTTPRequest) URL() string {
	return r.Scheme + "://" + r.Authority + r.PathWithQuery
}

// egressCallback is what the cgo.Handle of a callback policy holds.
type egressCallback func(*HTTPRequest) bool

// liveEgressCallbacks counts callback handles not yet released by the C
// library, so tests can check that every one is.
var liveEgressCallbacks atomic.Int64

// NewEgressPolicy returns a policy that asks allow about every request:
// true sends it, false denies it (the guest gets an HTTP-request-denied
// error, and Plugin.DeniedRequests lists it).
//
// allow runs on the goroutine that called the plugin, during that call, and
// may run on several goroutines at once: it must be safe for concurrent
// use, and must not call or close the plugin whose request it decides. A
// panic in allow is recovered and denies the request. The function is
// released once the policy and every builder, host, load and plugin using it
// are gone.
func NewEgressPolicy(allow func(*HTTPRequest) bool) (*EgressPolicy, error) {
	if allow == nil {
		return nil, &Error{Status: StatusNullArgument, Message: "the egress callback is nil"}
	}
	handle := cgo.NewHandle(egressCallback(allow))
	liveEgressCallbacks.Add(1)
	var policy *C.fidius_host_egress_policy_t
	var cerr *C.fidius_host_error_t
	enterC()
	// On failure the library has already released the handle (through
	// fidiusGoEgressRelease), so there is nothing to undo here.
	if err := takeError(C.fidius_go_egress_policy(C.uintptr_t(handle), &policy, &cerr), cerr); err != nil {
		return nil, err
	}
	return newEgressPolicy(policy), nil
}

// NewEgressAllowList returns a policy that allows requests whose host and
// port match one of patterns, and denies every other: "example.com" (any
// port), "example.com:8080", "*.example.com" (subdomains, not example.com
// itself), "127.0.0.1:9000", "[::1]:9000". Names are compared
// case-insensitively, and as names (no DNS). No patterns deny everything.
func NewEgressAllowList(patterns ...string) (*EgressPolicy, error) {
	for _, p := range patterns {
		// No host name has a NUL byte: such a pattern could never match.
		if strings.IndexByte(p, 0) >= 0 {
			return nil, &Error{Status: StatusInvalidArgument, Message: "egress pattern " + strconv.Quote(p) + " contains a NUL byte"}
		}
	}
	array, unpin := strArray(patterns)
	defer unpin()
	var policy *C.fidius_host_egress_policy_t
	var cerr *C.fidius_host_error_t
	enterC()
	status := C.fidius_host_egress_policy_new_allow_list(array, C.size_t(len(patterns)), &policy, &cerr)
	if err := takeError(status, cerr); err != nil {
		return nil, err
	}
	return newEgressPolicy(policy), nil
}

func newEgressPolicy(ptr *C.fidius_host_egress_policy_t) *EgressPolicy {
	p := &EgressPolicy{}
	own(p, &p.h, ptr, freeEgressPolicy)
	return p
}

// Close frees this handle on the policy. It is idempotent, a no-op on a nil
// *EgressPolicy, and returns nil (it implements io.Closer); builders,
// hosts, load options and plugins using the policy keep it alive.
func (p *EgressPolicy) Close() error {
	if p == nil {
		return nil
	}
	return p.h.close(freeEgressPolicy)
}
