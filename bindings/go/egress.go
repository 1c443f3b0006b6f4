package fidius

/*
#include <stdbool.h>
#include <stdint.h>
#include "fidius_host.h"

// Defined in egress_export.go (//export). The userdata is a
// runtime/cgo.Handle, an integer: it reaches Go as uintptr_t, never as a
// pointer (the Go runtime refuses such values in pointer variables).
extern int32_t fidiusGoEgressHTTP(uintptr_t userdata, fidius_host_http_request_t *request);
extern int32_t fidiusGoEgressSocket(uintptr_t userdata, fidius_host_socket_target_t *target);
extern int32_t fidiusGoEgressDNS(uintptr_t userdata, char *plugin, char *name);
extern void fidiusGoEgressRelease(uintptr_t userdata);

// The callbacks with the exact signatures the library calls (cgo exports
// take no const parameters).
static int32_t fidius_go_egress_http(void *userdata, const fidius_host_http_request_t *request) {
	return fidiusGoEgressHTTP((uintptr_t)userdata, (fidius_host_http_request_t *)request);
}

static int32_t fidius_go_egress_socket(void *userdata, const fidius_host_socket_target_t *target) {
	return fidiusGoEgressSocket((uintptr_t)userdata, (fidius_host_socket_target_t *)target);
}

static int32_t fidius_go_egress_dns(void *userdata, const char *plugin, const char *name) {
	return fidiusGoEgressDNS((uintptr_t)userdata, (char *)plugin, (char *)name);
}

static void fidius_go_egress_release(void *userdata) {
	fidiusGoEgressRelease((uintptr_t)userdata);
}

// Make callback policies whose userdata is a runtime/cgo.Handle: an
// integer, so no Go pointer is ever stored in C memory.
static fidius_host_status fidius_go_egress_policy(uintptr_t handle, fidius_host_egress_policy_t **out,
                                                    fidius_host_error_t **err) {
	return fidius_host_egress_policy_new_callback(fidius_go_egress_http, (void *)handle, fidius_go_egress_release, out,
	                                              err);
}

// Only the callbacks whose Go function is set are given: a NULL one denies
// all of its kind.
static fidius_host_status fidius_go_egress_rules(uintptr_t handle, bool http, bool socket, bool dns,
                                                   fidius_host_egress_policy_t **out, fidius_host_error_t **err) {
	fidius_host_egress_callbacks_t callbacks = {
		http ? fidius_go_egress_http : NULL,
		socket ? fidius_go_egress_socket : NULL,
		dns ? fidius_go_egress_dns : NULL,
	};
	return fidius_host_egress_policy_new_callbacks(&callbacks, (void *)handle, fidius_go_egress_release, out, err);
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
// http capability may send, and which sockets (TCP connects, UDP datagrams)
// and name lookups plugins with the tcp or udp capability may make: Go
// functions (NewEgressPolicy for HTTP alone, NewEgressRules for all three)
// or a host[:port] allow-list (NewEgressAllowList). Set it with
// Builder.EgressPolicy or LoadOptions.EgressPolicy.
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

// SocketProtocol is the transport of a SocketTarget.
type SocketProtocol int

const (
	// TCP is an outbound TCP connection.
	TCP SocketProtocol = C.FIDIUS_HOST_SOCKET_PROTOCOL_TCP
	// UDP is an outbound UDP datagram.
	UDP SocketProtocol = C.FIDIUS_HOST_SOCKET_PROTOCOL_UDP
)

// String returns "TCP", "UDP", or "SocketProtocol(n)" for another value.
func (p SocketProtocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	}
	return "SocketProtocol(" + strconv.Itoa(int(p)) + ")"
}

// SocketTarget is a socket a guest would open, as a socket rule sees it. It
// is a copy: the rule may keep it.
type SocketTarget struct {
	// Plugin is the name of the plugin opening it.
	Plugin string
	// Protocol is TCP or UDP.
	Protocol SocketProtocol
	// Host is the host name the guest dialed, when a lookup of it (which
	// the DNS rule allowed) gave Address; "" when the guest dialed an
	// address.
	Host string
	// Address is the address: "127.0.0.1", "::1" (an IPv4-mapped IPv6
	// address as its IPv4 form).
	Address string
	// Port is the port. Port 0 asks about a lookup's answer: may this
	// address reach the guest at all?
	Port uint16
	// Special is whether the address is special (loopback, private,
	// link-local, shared, multicast, unspecified, broadcast): allow it only
	// if you mean that very address. For a special address reached by name
	// the rule is asked twice, with Host the name, then with Host "" (is
	// this very address allowed?); both must allow.
	Special bool
}

// EgressRules are the Go functions of a NewEgressRules policy. A nil
// function denies all of its kind.
type EgressRules struct {
	// HTTP decides each outbound HTTP request: true sends it.
	HTTP func(*HTTPRequest) bool
	// Socket decides each socket target (a TCP connect, a UDP datagram) of
	// guests that declare tcp or udp: true lets it through.
	Socket func(*SocketTarget) bool
	// DNS decides each name lookup of such a guest: plugin is the plugin's
	// name, name the name looked up (lowercase, no trailing dot); true
	// looks it up. Nil: no name is looked up (guests dial addresses).
	DNS func(plugin, name string) bool
}

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
	return newCallbackPolicy(&EgressRules{HTTP: allow}, func(handle C.uintptr_t, out **C.fidius_host_egress_policy_t,
		cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_egress_policy(handle, out, cerr)
	})
}

// NewEgressRules returns a policy that asks rules.HTTP about every HTTP
// request, rules.Socket about every socket target (a TCP connect, a UDP
// datagram) of guests that declare tcp or udp, and rules.DNS about every
// name such a guest looks up. A nil function denies all of its kind; a
// denied request or socket fails in the guest and Plugin.DeniedRequests
// lists it. A lookup's answers in special ranges reach the guest only when
// rules.Socket allows that address (asked with Port 0), and each answer is
// pinned to the name: a later connect to it is asked with that name as
// SocketTarget.Host.
//
// The functions run as the function of NewEgressPolicy does: on the
// goroutine that called the plugin, during that call, possibly on several
// goroutines at once; they must be safe for concurrent use and must not
// call or close the plugin whose traffic they decide. A panic in one is
// recovered and denies. They are released once the policy and every
// builder, host, load and plugin using it are gone.
func NewEgressRules(rules EgressRules) (*EgressPolicy, error) {
	http, socket, dns := C.bool(rules.HTTP != nil), C.bool(rules.Socket != nil), C.bool(rules.DNS != nil)
	return newCallbackPolicy(&rules, func(handle C.uintptr_t, out **C.fidius_host_egress_policy_t,
		cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_egress_rules(handle, http, socket, dns, out, cerr)
	})
}

// newCallbackPolicy makes a callback policy with create, whose userdata is
// a cgo.Handle of rules.
func newCallbackPolicy(rules *EgressRules, create func(C.uintptr_t, **C.fidius_host_egress_policy_t,
	**C.fidius_host_error_t) C.fidius_host_status) (*EgressPolicy, error) {
	handle := cgo.NewHandle(rules) // what fidiusGoEgressHTTP and the others get
	liveEgressCallbacks.Add(1)
	var policy *C.fidius_host_egress_policy_t
	var cerr *C.fidius_host_error_t
	enterC()
	// On failure the library has already released the handle (through
	// fidiusGoEgressRelease), so there is nothing to undo here.
	if err := takeError(create(C.uintptr_t(handle), &policy, &cerr), cerr); err != nil {
		return nil, err
	}
	return newEgressPolicy(policy), nil
}

// NewEgressAllowList returns a policy that allows requests whose host and
// port match one of patterns, and denies every other: "example.com" (any
// port), "example.com:8080", "*.example.com" (subdomains, not example.com
// itself), "127.0.0.1:9000", "[::1]:9000". Names are compared
// case-insensitively, and as names (a pattern does not follow DNS). No
// patterns deny everything.
//
// For guests that open sockets: a name is looked up only when a pattern
// names it; a socket target (TCP connect, UDP datagram) matches by the name
// its lookup gave it, or by its address and port; a special address
// (loopback, private, ...) is reached, and handed out by a lookup, only
// when a pattern names that address.
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
