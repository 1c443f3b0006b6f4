package fidius

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "fidius_host.h"

// Defined in egress_export.go (//export). The userdata is a
// runtime/cgo.Handle, an integer: it reaches Go as uintptr_t, never as a
// pointer (the Go runtime refuses such values in pointer variables).
extern int32_t fidiusGoEgressHTTP(uintptr_t userdata, fidius_host_http_request_t *request);
extern int32_t fidiusGoEgressSocket(uintptr_t userdata, fidius_host_socket_target_t *target);
extern int32_t fidiusGoEgressDNS(uintptr_t userdata, char *plugin, char *name);
extern int32_t fidiusGoEgressResponse(uintptr_t userdata, fidius_host_http_request_t *request,
                                      fidius_host_http_response_t *response);
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

static int32_t fidius_go_egress_response(void *userdata, const fidius_host_http_request_t *request,
                                         const fidius_host_http_response_t *response) {
	return fidiusGoEgressResponse((uintptr_t)userdata, (fidius_host_http_request_t *)request,
	                              (fidius_host_http_response_t *)response);
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
// all of its kind (a NULL response callback leaves responses unobserved).
static fidius_host_status fidius_go_egress_rules(uintptr_t handle, bool http, bool socket, bool dns, bool response,
                                                   fidius_host_egress_policy_t **out, fidius_host_error_t **err) {
	fidius_host_egress_callbacks_t callbacks = {
		.http = http ? fidius_go_egress_http : NULL,
		.socket = socket ? fidius_go_egress_socket : NULL,
		.dns = dns ? fidius_go_egress_dns : NULL,
		.response = response ? fidius_go_egress_response : NULL,
	};
	return fidius_host_egress_policy_new_callbacks(&callbacks, (void *)handle, fidius_go_egress_release, out, err);
}
*/
import "C"

import (
	"runtime/cgo"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
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

// HTTPRequest is an outbound request as an egress callback sees it. Its
// fields are a copy: the callback may keep it. The HTTP rule deciding it
// may also set and remove headers of the request it allows, with SetHeader
// and RemoveHeader, until it returns.
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
	// Headers are the request's headers in the order sent. An HTTP rule
	// sees the guest's headers (SetHeader and RemoveHeader do not change
	// them); a Response hook sees the headers sent, with the HTTP rule's
	// edits.
	Headers []HTTPHeader

	// edits is where SetHeader and RemoveHeader go: nil unless an HTTP rule
	// is deciding the request.
	edits *headerEdits
}

// headerEdits is the C library's edits handle of a request while its HTTP
// rule runs. The mutex serializes calls on the handle (the library does not
// allow concurrent ones) and keeps the handle from being used once the
// rule returned, when it no longer exists.
type headerEdits struct {
	mu  sync.Mutex
	ptr *C.fidius_host_header_edits_t // nil once the rule returned
}

// end marks the edits as gone: the HTTP rule returned. It waits for a
// SetHeader or RemoveHeader running on another goroutine.
func (e *headerEdits) end() {
	e.mu.Lock()
	e.ptr = nil
	e.mu.Unlock()
}

// SetHeader sets header name (case-insensitive) of the request to value
// (bytes, not necessarily UTF-8), replacing every value the guest gave it.
// Only the function deciding the request (EgressRules.HTTP, or the
// function of NewEgressPolicy) may call it, from its own goroutine or
// another, and only until it returns; the edits are applied
// in call order when the rule allows the request, and ignored when it
// denies it. When a Response hook has the request retried, the rule is
// asked again about the guest's request and sets headers afresh (a new
// credential, say).
//
// It returns an *Error: StatusMisuse after the rule returned, or for a
// request shown to a Response hook (which sees the request as sent);
// StatusInvalidArgument for a name or value with a NUL byte, a name that
// is not an HTTP token or that the library frames or routes the request
// with (host, content-length, transfer-encoding, connection, keep-alive,
// proxy-connection, upgrade, te, trailer, http2-settings), a value with a
// control character, or more than 64 edits of one request;
// StatusInvalidUTF8 for a name that is not UTF-8. A failed edit leaves the
// edits made before it.
func (r *HTTPRequest) SetHeader(name, value string) error {
	if strings.IndexByte(value, 0) >= 0 {
		return &Error{Status: StatusInvalidArgument, Message: "the value of header " + strconv.Quote(name) + " contains a NUL byte"}
	}
	return r.editHeader(name, &value)
}

// RemoveHeader removes header name (case-insensitive) from the request,
// every value the guest gave it. It may be called as SetHeader, and fails
// as SetHeader does.
func (r *HTTPRequest) RemoveHeader(name string) error {
	return r.editHeader(name, nil)
}

// editHeader sets header name to *value, or removes it for a nil value.
func (r *HTTPRequest) editHeader(name string, value *string) error {
	if strings.IndexByte(name, 0) >= 0 {
		return &Error{Status: StatusInvalidArgument, Message: "header name " + strconv.Quote(name) + " contains a NUL byte"}
	}
	if r.edits == nil {
		return &Error{Status: StatusMisuse, Message: "header " + strconv.Quote(name) + " cannot be edited: only the HTTP rule deciding a request may edit its headers (a response hook sees the request as sent)"}
	}
	cName := C.CString(name)
	defer C.free(unsafe.Pointer(cName))
	var cValue *C.char
	if value != nil {
		cValue = C.CString(*value)
		defer C.free(unsafe.Pointer(cValue))
	}
	r.edits.mu.Lock()
	defer r.edits.mu.Unlock()
	if r.edits.ptr == nil {
		return &Error{Status: StatusMisuse, Message: "header " + strconv.Quote(name) + " cannot be edited: the HTTP rule deciding the request has returned"}
	}
	var cerr *C.fidius_host_error_t
	enterC()
	return takeError(C.fidius_host_header_edits_set(r.edits.ptr, cName, cValue, &cerr), cerr)
}

// HTTPHeader is one header of an HTTPRequest or HTTPResponse.
type HTTPHeader struct {
	// Name is the lowercase header name.
	Name string
	// Value is the value as sent (not necessarily UTF-8).
	Value string
}

// Header returns the value of the first header called name (compared
// case-insensitively), and whether there is one.
func (r *HTTPRequest) Header(name string) (string, bool) {
	return findHeader(r.Headers, name)
}

// findHeader returns the value of the first of headers called name
// (compared case-insensitively), and whether there is one.
func findHeader(headers []HTTPHeader, name string) (string, bool) {
	for _, h := range headers {
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

// HTTPResponse is the head of a response to an allowed request, as a
// Response hook sees it (never the body). It is a copy: the hook may keep
// it.
type HTTPResponse struct {
	// Status is the status code.
	Status int
	// Headers are the response's headers in the order received.
	Headers []HTTPHeader
	// RetryAvailable is whether answering ResponseRetryOnce sends the
	// request again: false for the response to a retry, and when the
	// request's body was not kept whole (over 64 KiB, trailers, or still
	// being written when the response came).
	RetryAvailable bool
}

// Header returns the value of the first header called name (compared
// case-insensitively), and whether there is one.
func (r *HTTPResponse) Header(name string) (string, bool) {
	return findHeader(r.Headers, name)
}

// ResponseDirective is what a Response hook answers.
type ResponseDirective int32

const (
	// ResponseForward gives the guest the response.
	ResponseForward ResponseDirective = C.FIDIUS_HOST_RESPONSE_DIRECTIVE_FORWARD
	// ResponseRetryOnce drops the response; the request, as the guest made
	// it, goes to the HTTP rule again (which may set a fresh credential)
	// and, if allowed, is sent once more with the same body. The guest gets
	// the second response, whatever it is; if the HTTP rule denies the
	// retry, the guest gets an HTTP-request-denied error (and
	// Plugin.DeniedRequests lists it). Ignored (the response is forwarded)
	// when HTTPResponse.RetryAvailable is false.
	ResponseRetryOnce ResponseDirective = C.FIDIUS_HOST_RESPONSE_DIRECTIVE_RETRY_ONCE
)

// String returns "Forward", "RetryOnce" or "ResponseDirective(n)".
func (d ResponseDirective) String() string {
	switch d {
	case ResponseForward:
		return "Forward"
	case ResponseRetryOnce:
		return "RetryOnce"
	}
	return "ResponseDirective(" + strconv.Itoa(int(d)) + ")"
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
// function denies all of its kind (a nil Response leaves responses
// unobserved).
type EgressRules struct {
	// HTTP decides each outbound HTTP request: true sends it, with the
	// headers it set through the request's SetHeader and RemoveHeader
	// (which work only until HTTP returns).
	HTTP func(*HTTPRequest) bool
	// Socket decides each socket target (a TCP connect, a UDP datagram) of
	// guests that declare tcp or udp: true lets it through.
	Socket func(*SocketTarget) bool
	// DNS decides each name lookup of such a guest: plugin is the plugin's
	// name, name the name looked up (lowercase, no trailing dot); true
	// looks it up. Nil: no name is looked up (guests dial addresses).
	DNS func(plugin, name string) bool
	// Response, when set, sees the head (status, headers; never the body)
	// of each response to a request HTTP allowed, before the guest does,
	// with the request as it was sent (with the headers HTTP set; its
	// SetHeader and RemoveHeader fail). It answers ResponseForward to give
	// the guest the response, or ResponseRetryOnce to have the request
	// asked about again (HTTP runs again and may set a fresh credential)
	// and sent once more. A panic in Response is recovered and forwards.
	//
	// Response runs on one of the library's I/O threads (not the goroutine
	// that called the plugin) while that call waits for its response; so
	// does the HTTP rule of a retry. It may run on several threads at once
	// and must not call into the plugin. The call's deadline covers both
	// sends, not the functions themselves. Nil: responses go to the guest
	// unobserved (and request bodies are not kept for a retry).
	Response func(*HTTPRequest, *HTTPResponse) ResponseDirective
}

// liveEgressCallbacks counts callback handles not yet released by the C
// library, so tests can check that every one is.
var liveEgressCallbacks atomic.Int64

// NewEgressPolicy returns a policy that asks allow about every request:
// true sends it, false denies it (the guest gets an HTTP-request-denied
// error, and Plugin.DeniedRequests lists it).
//
// allow may set and remove headers of the request it allows, with
// HTTPRequest.SetHeader and RemoveHeader, until it returns.
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
// name such a guest looks up, and shows rules.Response (if set) the head
// of every response to an allowed request, which may have it retried once.
// A nil function denies all of its kind; a denied request or socket fails
// in the guest and Plugin.DeniedRequests lists it. A lookup's answers in special ranges reach the guest only when
// rules.Socket allows that address (asked with Port 0), and each answer is
// pinned to the name: a later connect to it is asked with that name as
// SocketTarget.Host.
//
// The functions run as the function of NewEgressPolicy does: on the
// goroutine that called the plugin, during that call, possibly on several
// goroutines at once; they must be safe for concurrent use and must not
// call or close the plugin whose traffic they decide. Response, and the
// HTTP rule of a retry it asks for, run on a library I/O thread instead
// (see EgressRules.Response). A panic in one is recovered and denies (for
// Response: forwards). They are released once the policy and every
// builder, host, load and plugin using it are gone.
func NewEgressRules(rules EgressRules) (*EgressPolicy, error) {
	http, socket, dns := C.bool(rules.HTTP != nil), C.bool(rules.Socket != nil), C.bool(rules.DNS != nil)
	response := C.bool(rules.Response != nil)
	return newCallbackPolicy(&rules, func(handle C.uintptr_t, out **C.fidius_host_egress_policy_t,
		cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_egress_rules(handle, http, socket, dns, response, out, cerr)
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
