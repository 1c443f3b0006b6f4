package fidius

/*
#include <stdint.h>
#include <stdlib.h>
#include "fidius_host.h"

// Defined in hostfunc_export.go (//export). The userdata and the call
// context are runtime/cgo.Handles, integers: they reach Go as uintptr_t,
// never as pointers (the Go runtime refuses such values in pointer
// variables).
extern uint32_t fidiusGoHostRaw(uintptr_t userdata, uintptr_t call_context, uint32_t method, uint8_t *args,
                                size_t args_len, uint8_t **result, size_t *result_len,
                                fidius_host_callback_error_t *error);
extern uint32_t fidiusGoHostJSON(uintptr_t userdata, uintptr_t call_context, uint32_t method, char *args_json,
                                 size_t args_json_len, char **result_json, size_t *result_json_len,
                                 fidius_host_callback_error_t *error);
extern void fidiusGoHostRelease(uintptr_t userdata);

// The callbacks with the exact signatures the library calls (cgo exports
// take no const parameters).
static uint32_t fidius_go_host_raw(void *userdata, void *call_context, uint32_t method, const uint8_t *args,
                                   size_t args_len, uint8_t **result, size_t *result_len,
                                   fidius_host_callback_error_t *error) {
	return fidiusGoHostRaw((uintptr_t)userdata, (uintptr_t)call_context, method, (uint8_t *)args, args_len, result,
	                       result_len, error);
}

static uint32_t fidius_go_host_json(void *userdata, void *call_context, uint32_t method, const char *args_json,
                                    size_t args_json_len, char **result_json, size_t *result_json_len,
                                    fidius_host_callback_error_t *error) {
	return fidiusGoHostJSON((uintptr_t)userdata, (uintptr_t)call_context, method, (char *)args_json, args_json_len,
	                        result_json, result_json_len, error);
}

static void fidius_go_host_release(void *userdata) {
	fidiusGoHostRelease((uintptr_t)userdata);
}

// Results are allocated with malloc (C.CBytes, C.CString).
static void fidius_go_host_free_result(void *userdata, void *result, size_t result_len) {
	(void)userdata;
	(void)result_len;
	free(result);
}

// Make bindings whose userdata is a runtime/cgo.Handle: an integer, so no
// Go pointer is ever stored in C memory.
static fidius_host_status fidius_go_binding_raw(const fidius_host_interface_t *iface, uintptr_t handle,
                                                fidius_host_binding_t **out, fidius_host_error_t **err) {
	return fidius_host_binding_new_raw(iface, fidius_go_host_raw, fidius_go_host_free_result, (void *)handle,
	                                   fidius_go_host_release, out, err);
}

static fidius_host_status fidius_go_binding_json(const fidius_host_interface_t *iface, uintptr_t handle,
                                                 fidius_host_binding_t **out, fidius_host_error_t **err) {
	return fidius_host_binding_new_json(iface, fidius_go_host_json, fidius_go_host_free_result, (void *)handle,
	                                    fidius_go_host_release, out, err);
}
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"strings"
	"sync/atomic"
)

// HostCall is one call of a plugin to a host function, as the Go function
// of a Binding sees it.
type HostCall struct {
	// Context is the context of the plugin call this host call serves: the
	// ctx of Plugin.CallWithContext, Plugin.CallJSONWithContext,
	// Plugin.CallContext or Plugin.CallJSONContext when the plugin calls back from the goroutine (OS thread) that called it, and
	// context.Background() otherwise: for calls without a context, and for
	// calls from threads the plugin started itself (no native code can tell
	// which call started a thread). Never nil.
	Context context.Context
	// Method is the index of the host function in the host interface's
	// declaration order.
	Method uint32
	// Name is the name of the host function (e.g. "charge").
	Name string
	// Args is the bincode of the argument tuple as the plugin sent it (raw
	// bindings only; nil for JSON bindings, which get the arguments as
	// JSON text). It is a copy: the function may keep it.
	Args []byte
}

// HostFunc serves the host functions of a raw binding (NewRawBinding): it
// gets the bincode of the arguments in call.Args and returns the bincode
// of the return value (of the T of a Result<T, PluginError>; nil for a
// function returning nothing), at most 64 MiB.
//
// An error it returns fails the host call, as Binding describes.
type HostFunc func(call HostCall) ([]byte, error)

// JSONHostFunc serves the host functions of a JSON binding
// (NewJSONBinding): it gets the arguments as a JSON array, one element per
// argument (e.g. `["alice",250]`), and returns the JSON text of the return
// value ("null", or "", for a function returning nothing). The library
// checks the result against the function's return type: a result that does
// not fit fails the host call, naming what did not fit.
//
// An error it returns fails the host call, as Binding describes.
type JSONHostFunc func(call HostCall, argsJSON string) (string, error)

// PluginError is the error a host function returns to the plugin as its
// own PluginError (a host function declared `-> Result<T, PluginError>`):
// the plugin sees the code, message and details, and may handle them or
// return them, in which case the caller of the plugin gets an *Error of
// StatusPluginError with PluginCode, PluginMessage and PluginDetails.
type PluginError struct {
	// Code is the error code, e.g. "NO_FUNDS".
	Code string
	// Message is the human-readable explanation.
	Message string
	// Details is JSON text with more information, e.g. `{"short":250}`,
	// or "" for none. Details that are not JSON fail the host call.
	Details string
}

// Error returns "CODE: message".
func (e *PluginError) Error() string {
	return e.Code + ": " + e.Message
}

// Binding binds Go functions to a host interface (a #[host_interface]
// trait a plugin imports, described by an Interface: its name, version and
// hash must be those the plugin was built against), so that plugins loaded
// with it (LoadOptions.Bindings) can call their host. Make one with
// NewRawBinding or NewJSONBinding.
//
// # Calls
//
// The Go function runs on the goroutine that called the plugin, during
// that call, or on a thread the plugin started (native plugins), and may
// run on several goroutines and threads at once: it must be safe for
// concurrent use. It may call other plugins, and the same plugin (a native
// plugin serves such a call like any other; a WASM plugin with a
// persistent instance refuses it with StatusMisuse, as its instance is
// busy), but must not close the plugin whose call it serves (Close would
// wait for that call forever), nor call runtime.Goexit (t.FailNow in a
// test) from a thread the plugin started.
//
// What it returns:
//   - nil error: the result is the host function's return value.
//   - a *PluginError (anywhere in the error's chain, as errors.As finds
//     it): the plugin gets it as the PluginError of a host function
//     returning Result<T, PluginError>. An *Error of StatusPluginError (a
//     plugin the function called failed) is passed on the same way, with
//     its PluginCode, PluginMessage and PluginDetails.
//   - any other error: the host could not answer, and the plugin's host
//     call fails with a host failure naming the error's text. The status
//     reported is the error's own for an *Error, StatusInvalidArgument
//     otherwise.
//   - a panic is recovered (it never crashes the process or unwinds through
//     the C library) and fails the host call with StatusInternalPanic and
//     the panic value in the message.
//
// # Lifetime
//
// A Binding is safe for concurrent use. Load options and plugins using it
// keep their own reference, so it may be closed as soon as it is set; the
// Go function is released when the Binding and everything holding it are
// gone. A native library keeps its binding until it is unmapped: once per
// mapped library in the whole process, until every plugin handle of it is
// closed, loading it with another Binding for the same host interface fails
// with StatusHostAlreadyBound (use the same Binding, or wait for the
// handles to be closed). A native plugin that starts a thread keeps its
// library mapped, and so its binding, until the OS thread that called it
// exits. WASM plugins hold their bindings per plugin handle.
type Binding struct {
	h guarded[*C.fidius_host_binding_t]
}

func freeBinding(ptr *C.fidius_host_binding_t) { C.fidius_host_binding_free(ptr) }

// hostFunctions is what the cgo.Handle of a binding holds: one of raw and
// json, and the names of the interface's methods.
type hostFunctions struct {
	raw   HostFunc
	json  JSONHostFunc
	names []string
}

// name returns the name of method number method, or "" when out of range.
func (f *hostFunctions) name(method uint32) string {
	if int64(method) < int64(len(f.names)) {
		return f.names[method]
	}
	return ""
}

// liveHostFunctions counts binding handles not yet released by the C
// library, so tests can check that every one is.
var liveHostFunctions atomic.Int64

// NewRawBinding binds fn to the host functions of hostInterface, with
// arguments and results in bincode (see HostFunc). The interface may be
// closed once the binding is made.
func NewRawBinding(hostInterface *Interface, fn HostFunc) (*Binding, error) {
	if fn == nil {
		return nil, &Error{Status: StatusNullArgument, Message: "the host function is nil"}
	}
	return newBinding(hostInterface, &hostFunctions{raw: fn}, func(iface *C.fidius_host_interface_t, handle C.uintptr_t,
		out **C.fidius_host_binding_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_binding_raw(iface, handle, out, cerr)
	})
}

// NewJSONBinding binds fn to the host functions of hostInterface, with
// arguments and results as JSON text (see JSONHostFunc): the library
// decodes the plugin's arguments, and encodes fn's results, with the
// interface's types (docs/interfaces.md gives each type's JSON form).
func NewJSONBinding(hostInterface *Interface, fn JSONHostFunc) (*Binding, error) {
	if fn == nil {
		return nil, &Error{Status: StatusNullArgument, Message: "the host function is nil"}
	}
	return newBinding(hostInterface, &hostFunctions{json: fn}, func(iface *C.fidius_host_interface_t, handle C.uintptr_t,
		out **C.fidius_host_binding_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_binding_json(iface, handle, out, cerr)
	})
}

func newBinding(hostInterface *Interface, functions *hostFunctions, create func(*C.fidius_host_interface_t, C.uintptr_t,
	**C.fidius_host_binding_t, **C.fidius_host_error_t) C.fidius_host_status) (*Binding, error) {
	if hostInterface == nil {
		return nil, &Error{Status: StatusNullArgument, Message: "the host interface is nil"}
	}
	// Read before acquiring: Methods takes the interface's lock itself.
	for _, m := range hostInterface.Methods() {
		name, _, _ := strings.Cut(m.Signature, ":")
		functions.names = append(functions.names, name)
	}
	iface := hostInterface.h.acquire()
	defer hostInterface.h.release()
	if iface == nil {
		return nil, closedError("interface")
	}
	handle := cgo.NewHandle(functions)
	liveHostFunctions.Add(1)
	var binding *C.fidius_host_binding_t
	var cerr *C.fidius_host_error_t
	// On failure the library has already released the handle (through
	// fidiusGoHostRelease), so there is nothing to undo here.
	if err := takeError(create(iface, C.uintptr_t(handle), &binding, &cerr), cerr); err != nil {
		return nil, err
	}
	b := &Binding{}
	own(b, &b.h, binding, freeBinding)
	return b, nil
}

// Close frees this handle on the binding. It is idempotent, a no-op on a
// nil *Binding, and returns nil (it implements io.Closer); load options,
// libraries and plugins using the binding keep it alive.
func (b *Binding) Close() error {
	if b == nil {
		return nil
	}
	return b.h.close(freeBinding)
}

// AddBinding appends b to o.Bindings and returns o, for chaining.
func (o *LoadOptions) AddBinding(b *Binding) *LoadOptions {
	o.Bindings = append(o.Bindings, b)
	return o
}
