package fidius

/*
#include <stdint.h>
#include "fidius_host.h"

// The context of a call is a runtime/cgo.Handle: an integer, passed as the
// pointer the library never dereferences.
static fidius_host_status fidius_go_call_with_context(const fidius_host_plugin_t *plugin, uint32_t method,
                                                      const uint8_t *input, size_t input_len, uintptr_t context,
                                                      fidius_host_bytes_t *output, fidius_host_error_t **err) {
	return fidius_host_plugin_call_with_context(plugin, method, input, input_len, (void *)context, output, err);
}

static fidius_host_status fidius_go_call_json_with_context(const fidius_host_plugin_t *plugin, const char *method,
                                                           size_t method_len, const char *args_json, size_t args_len,
                                                           uintptr_t context, char **json_out, size_t *json_len_out,
                                                           fidius_host_error_t **err) {
	return fidius_host_plugin_call_json_with_context(plugin, method, method_len, args_json, args_len, (void *)context,
	                                                 json_out, json_len_out, err);
}

static fidius_host_status fidius_go_call_cancellable(const fidius_host_plugin_t *plugin, uint32_t method,
                                                     const uint8_t *input, size_t input_len, uintptr_t context,
                                                     const fidius_host_cancel_token_t *cancel,
                                                     fidius_host_bytes_t *output, fidius_host_error_t **err) {
	return fidius_host_plugin_call_cancellable(plugin, method, input, input_len, (void *)context, cancel, output, err);
}

static fidius_host_status fidius_go_call_json_cancellable(const fidius_host_plugin_t *plugin, const char *method,
                                                          size_t method_len, const char *args_json, size_t args_len,
                                                          uintptr_t context, const fidius_host_cancel_token_t *cancel,
                                                          char **json_out, size_t *json_len_out,
                                                          fidius_host_error_t **err) {
	return fidius_host_plugin_call_json_cancellable(plugin, method, method_len, args_json, args_len, (void *)context,
	                                                cancel, json_out, json_len_out, err);
}
*/
import "C"

import (
	"context"
	"runtime/cgo"
	"time"
)

// Plugin is a loaded plugin with its own instance. Make one with Host.Load
// or Host.LoadPath.
//
// A Plugin is safe for concurrent use: calls may come from any number of
// goroutines at once. cdylib plugins run them concurrently on their one
// instance; a WASM plugin serializes them on its instance (unless it runs a
// fresh instance per call); Python plugins run one at a time under the GIL;
// an isolated plugin's worker serves them one at a time (make instances for
// parallel calls). Close waits for running calls, then frees the plugin.
type Plugin struct {
	h    guarded[*C.fidius_host_plugin_t]
	info PluginInfo
}

func freePlugin(ptr *C.fidius_host_plugin_t) { C.fidius_host_plugin_free(ptr) }

// newPlugin wraps a plugin handle the caller owns.
func newPlugin(ptr *C.fidius_host_plugin_t) *Plugin {
	// The info never changes for the life of the handle, so it is copied once.
	p := &Plugin{info: readInfo(C.fidius_host_plugin_info(ptr))}
	own(p, &p.h, ptr, freePlugin)
	return p
}

// Close destroys the plugin's instance, after waiting for calls running on
// other goroutines, and unmaps its library when no other plugin uses it. It
// is idempotent. It must not be called from an egress callback or a host
// function (Binding) of a call on this plugin (that call holds the plugin
// and Close would wait forever).
// It is a no-op on a nil *Plugin and returns nil (it implements io.Closer).
func (p *Plugin) Close() error {
	if p == nil {
		return nil
	}
	return p.h.close(freePlugin)
}

// Info returns the plugin's facts: name, interface, hash, runtime, ... It
// stays available after Close.
func (p *Plugin) Info() PluginInfo {
	return p.info
}

// Call calls method number method (its index in the interface's
// declaration order) with input, the bincode encoding of the argument
// tuple, or the bytes themselves for a raw (#[wire(raw)]) method. It
// returns the result payload the same way: bincode of the return value, or
// raw bytes.
//
// For an Err(PluginError) result the error has StatusPluginError and the
// plugin's code, message and details; a panic is StatusPluginPanic and the
// plugin stays usable.
func (p *Plugin) Call(method uint32, input []byte) ([]byte, error) {
	return p.call(input, func(ptr *C.fidius_host_plugin_t, data *C.uint8_t, n C.size_t,
		out *C.fidius_host_bytes_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_plugin_call(ptr, C.uint32_t(method), data, n, out, cerr)
	})
}

// CallWithContext is Call with a context for the host functions the plugin
// calls during this call (see Binding): each one that the plugin calls from
// this goroutine while the call runs gets ctx as HostCall.Context, so it
// knows which request it serves, even when several calls run at once.
// Host functions called from threads the plugin started get
// context.Background() instead. A nil ctx is a call without a context
// (Call): host functions called during a Call inside a host function see
// the context of the call that host function serves.
//
// ctx only reaches the host functions: its cancellation or deadline does
// not stop the call (host functions may check ctx.Err() and return an
// error; WASM and Python calls have deadlines of their own). CallContext
// passes ctx the same way and is stopped by it too.
func (p *Plugin) CallWithContext(ctx context.Context, method uint32, input []byte) ([]byte, error) {
	if ctx == nil {
		return p.Call(method, input)
	}
	handle := cgo.NewHandle(ctx)
	defer handle.Delete()
	return p.call(input, func(ptr *C.fidius_host_plugin_t, data *C.uint8_t, n C.size_t,
		out *C.fidius_host_bytes_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_go_call_with_context(ptr, C.uint32_t(method), data, n, C.uintptr_t(handle), out, cerr)
	})
}

// CallContext is CallWithContext whose ctx also stops the call: ctx
// reaches the host functions the plugin calls as CallWithContext
// describes, and when ctx is cancelled or its deadline passes while the
// call runs, the call is stopped and fails with StatusCancelled:
//
//   - a WASM guest is interrupted (within about a millisecond of guest
//     code, or in a wait in the host such as a sleep); its instance is
//     discarded and the next call gets a fresh one;
//   - an isolated plugin's worker process is killed; the next call starts
//     a new worker (the plugin's state is lost), which the restart policy
//     does not count;
//   - an in-process Python plugin gets an exception raised in the thread
//     running it, as at its deadline (code blocked in C sees it when that
//     code returns).
//
// The error of a stopped call is an *Error of StatusCancelled (errors.Is
// matches ErrCancelled) that wraps ctx.Err(): errors.Is(err,
// context.Canceled) or errors.Is(err, context.DeadlineExceeded) holds as
// well. A ctx already done fails the same way without calling the plugin.
// A call that completed before the cancellation reached it returns its
// result.
//
// An in-process native (cdylib) plugin cannot be stopped once its code
// runs: given a ctx that can be cancelled (ctx.Done() is not nil), the
// call fails with StatusUnsupported and nothing is called. Load it
// isolated (Builder.Isolation, LoadOptions.Isolation) to cancel its calls;
// use CallWithContext to pass a context without cancellation. A ctx that
// can never be cancelled (context.Background(), context.TODO()) is a
// CallWithContext, for every plugin.
//
// While the call runs, a goroutine waits for ctx to be done; it ends
// before CallContext returns. A nil ctx is a Call.
func (p *Plugin) CallContext(ctx context.Context, method uint32, input []byte) ([]byte, error) {
	if ctx == nil {
		return p.Call(method, input)
	}
	var result []byte
	err := callCancellable(ctx, func(callContext C.uintptr_t, token *C.fidius_host_cancel_token_t) error {
		var err error
		result, err = p.call(input, func(ptr *C.fidius_host_plugin_t, data *C.uint8_t, n C.size_t,
			out *C.fidius_host_bytes_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
			return C.fidius_go_call_cancellable(ptr, C.uint32_t(method), data, n, callContext, token, out, cerr)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// callCancellable runs call with the cgo.Handle of ctx (the call context
// of host functions) and a cancel token that is cancelled when ctx is done:
// NULL when ctx can never be done. A ctx already done fails with
// StatusCancelled without running call. The token is freed after call
// returns and the goroutine watching ctx has ended, so that nothing uses it
// afterwards. A StatusCancelled error of call wraps ctx.Err().
func callCancellable(ctx context.Context, call func(C.uintptr_t, *C.fidius_host_cancel_token_t) error) error {
	if err := ctx.Err(); err != nil {
		return &Error{Status: StatusCancelled, Message: "the context was done before the call: " + err.Error(), cause: err}
	}
	handle := cgo.NewHandle(ctx)
	defer handle.Delete()
	done := ctx.Done()
	if done == nil {
		return call(C.uintptr_t(handle), nil)
	}

	var token *C.fidius_host_cancel_token_t
	var cerr *C.fidius_host_error_t
	enterC()
	if err := takeError(C.fidius_host_cancel_token_new(&token, &cerr), cerr); err != nil {
		return err
	}
	stop := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			// OK for a live token, which this one is until exited is closed.
			C.fidius_host_cancel_token_cancel(token)
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-exited // the goroutine no longer uses the token
		C.fidius_host_cancel_token_free(token)
	}()

	err := call(C.uintptr_t(handle), token)
	// Only the goroutine cancels the token, after done was closed: ctx.Err()
	// is then set.
	if ferr, ok := err.(*Error); ok && ferr.Status == StatusCancelled && ferr.cause == nil {
		ferr.cause = ctx.Err()
	}
	return err
}

// call runs one C raw call function and copies its result.
func (p *Plugin) call(input []byte, call func(*C.fidius_host_plugin_t, *C.uint8_t, C.size_t, *C.fidius_host_bytes_t,
	**C.fidius_host_error_t) C.fidius_host_status) ([]byte, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	data, n := bytesArg(input)
	var out C.fidius_host_bytes_t
	var cerr *C.fidius_host_error_t
	if err := takeError(call(ptr, data, n, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// NewInstance creates another instance of the plugin, constructed with
// config (bincode of the interface's config type): a new Plugin that shares
// the loaded code (library, component or module) and nothing else. Its
// state is its own (an isolated plugin's instance gets a worker of its
// own), and it stays usable after p is closed. A configuration
// the plugin refuses is StatusConfigRejected (for Python, with the
// exception's code, message and details); one that is not of the declared
// type is StatusConfigInvalid. Either way nothing is created.
func (p *Plugin) NewInstance(config []byte) (*Plugin, error) {
	return p.newInstance(func(ptr *C.fidius_host_plugin_t, out **C.fidius_host_plugin_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		data, n := bytesArg(config)
		return C.fidius_host_plugin_new_instance(ptr, data, n, out, cerr)
	})
}

// NewInstanceJSON is NewInstance with the configuration as JSON text,
// checked against and encoded with the interface's config type.
func (p *Plugin) NewInstanceJSON(configJSON string) (*Plugin, error) {
	return p.newInstance(func(ptr *C.fidius_host_plugin_t, out **C.fidius_host_plugin_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(configJSON)
		return C.fidius_host_plugin_new_instance_json(ptr, s, n, out, cerr)
	})
}

func (p *Plugin) newInstance(create func(*C.fidius_host_plugin_t, **C.fidius_host_plugin_t, **C.fidius_host_error_t) C.fidius_host_status) (*Plugin, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	var instance *C.fidius_host_plugin_t
	var cerr *C.fidius_host_error_t
	enterC()
	if err := takeError(create(ptr, &instance, &cerr), cerr); err != nil {
		return nil, err
	}
	return newPlugin(instance), nil
}

// CallJSON calls the method called method with JSON arguments: argsJSON is
// a JSON array with one element per argument, e.g. "[3, 7]". It returns the
// result as JSON text ("null" for methods returning nothing). The plugin
// must have been loaded with an interface (LoadOptions.Interface), whose
// types guide the encoding; otherwise the error is StatusNoInterface.
func (p *Plugin) CallJSON(method string, argsJSON string) (string, error) {
	return p.callJSON(func(ptr *C.fidius_host_plugin_t, args *C.char, argsLen C.size_t,
		out **C.char, outLen *C.size_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		m, mn := text(method)
		return C.fidius_host_plugin_call_json(ptr, m, mn, args, argsLen, out, outLen, cerr)
	}, argsJSON)
}

// CallJSONWithContext is CallJSON with a context for the host functions
// the plugin calls during this call, as CallWithContext describes; the
// context does not stop the call (CallJSONContext does).
func (p *Plugin) CallJSONWithContext(ctx context.Context, method string, argsJSON string) (string, error) {
	if ctx == nil {
		return p.CallJSON(method, argsJSON)
	}
	handle := cgo.NewHandle(ctx)
	defer handle.Delete()
	return p.callJSON(func(ptr *C.fidius_host_plugin_t, args *C.char, argsLen C.size_t,
		out **C.char, outLen *C.size_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		m, mn := text(method)
		return C.fidius_go_call_json_with_context(ptr, m, mn, args, argsLen, C.uintptr_t(handle), out, outLen, cerr)
	}, argsJSON)
}

// CallJSONContext is CallJSONWithContext whose ctx also stops the call,
// as CallContext describes: a call stopped because ctx was cancelled or
// its deadline passed (or started with ctx already done) fails with
// StatusCancelled, wrapping ctx.Err(); an in-process native plugin given a
// ctx that can be cancelled fails with StatusUnsupported, nothing called
// (load it isolated to cancel its calls; use CallJSONWithContext to pass a
// context without cancellation). A nil ctx is a CallJSON.
func (p *Plugin) CallJSONContext(ctx context.Context, method string, argsJSON string) (string, error) {
	if ctx == nil {
		return p.CallJSON(method, argsJSON)
	}
	var result string
	err := callCancellable(ctx, func(callContext C.uintptr_t, token *C.fidius_host_cancel_token_t) error {
		var err error
		result, err = p.callJSON(func(ptr *C.fidius_host_plugin_t, args *C.char, argsLen C.size_t,
			out **C.char, outLen *C.size_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
			m, mn := text(method)
			return C.fidius_go_call_json_cancellable(ptr, m, mn, args, argsLen, callContext, token, out, outLen, cerr)
		}, argsJSON)
		return err
	})
	if err != nil {
		return "", err
	}
	return result, nil
}

// CallJSONIndex is CallJSON with the method given by its index in the
// interface's declaration order.
func (p *Plugin) CallJSONIndex(method uint32, argsJSON string) (string, error) {
	return p.callJSON(func(ptr *C.fidius_host_plugin_t, args *C.char, argsLen C.size_t,
		out **C.char, outLen *C.size_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_plugin_call_json_index(ptr, C.uint32_t(method), args, argsLen, out, outLen, cerr)
	}, argsJSON)
}

// callJSON runs one C JSON call function and copies its result.
func (p *Plugin) callJSON(call func(*C.fidius_host_plugin_t, *C.char, C.size_t, **C.char, *C.size_t,
	**C.fidius_host_error_t) C.fidius_host_status, argsJSON string) (string, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return "", closedError("plugin")
	}
	args, argsLen := text(argsJSON)
	var out *C.char
	var outLen C.size_t
	var cerr *C.fidius_host_error_t
	if err := takeError(call(ptr, args, argsLen, &out, &outLen, &cerr), cerr); err != nil {
		return "", err
	}
	return takeString(out, int(outLen)), nil
}

// MethodCount returns the number of methods (valid indices are below it),
// or 0 once closed.
func (p *Plugin) MethodCount() uint32 {
	ptr := p.h.acquire()
	defer p.h.release()
	return uint32(C.fidius_host_plugin_method_count(ptr)) // 0 for NULL
}

// HasCapability reports whether capability bit bit is set: the bit-th
// optional method of the interface (counting optional methods only, from
// 0) is implemented. False for bit >= 64 and once closed.
func (p *Plugin) HasCapability(bit uint32) bool {
	ptr := p.h.acquire()
	defer p.h.release()
	return bool(C.fidius_host_plugin_has_capability(ptr, C.uint32_t(bit))) // false for NULL
}

// TraitMetadata returns the plugin's trait-level metadata pairs, in
// declaration order.
func (p *Plugin) TraitMetadata() ([]Metadata, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	count := C.fidius_host_plugin_trait_metadata_count(ptr)
	pairs := make([]Metadata, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		var key, value *C.char
		var cerr *C.fidius_host_error_t
		if err := takeError(C.fidius_host_plugin_trait_metadata(ptr, i, &key, &value, &cerr), cerr); err != nil {
			return nil, err
		}
		pairs = append(pairs, Metadata{Key: C.GoString(key), Value: C.GoString(value)})
	}
	return pairs, nil
}

// MethodMetadata returns the metadata pairs of method number method, in
// declaration order; StatusMethodOutOfRange for a bad index.
func (p *Plugin) MethodMetadata(method uint32) ([]Metadata, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	var count C.size_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_plugin_method_metadata_count(ptr, C.uint32_t(method), &count, &cerr), cerr); err != nil {
		return nil, err
	}
	pairs := make([]Metadata, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		var key, value *C.char
		status := C.fidius_host_plugin_method_metadata(ptr, C.uint32_t(method), i, &key, &value, &cerr)
		if err := takeError(status, cerr); err != nil {
			return nil, err
		}
		pairs = append(pairs, Metadata{Key: C.GoString(key), Value: C.GoString(value)})
	}
	return pairs, nil
}

// Diagnostics returns the notes about the load that did not stop it (e.g.
// a precompiled .cwasm that was not used, and why); empty for most plugins
// and once closed.
func (p *Plugin) Diagnostics() []string {
	ptr := p.h.acquire()
	defer p.h.release()
	count := C.fidius_host_plugin_diagnostic_count(ptr) // 0 for NULL
	notes := make([]string, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		notes = append(notes, C.GoString(C.fidius_host_plugin_diagnostic(ptr, i)))
	}
	return notes
}

// WorkerUsage returns the use figures of an isolated plugin (see
// Builder.Isolation): its calls, failed calls, timeouts and restarts since
// it was loaded, and the process id of its running worker (0 while none
// runs). A plugin that runs in-process has no worker: StatusUnsupported.
func (p *Plugin) WorkerUsage() (WorkerUsage, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return WorkerUsage{}, closedError("plugin")
	}
	var usage C.fidius_host_worker_usage_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_plugin_worker_usage(ptr, &usage, &cerr), cerr); err != nil {
		return WorkerUsage{}, err
	}
	return WorkerUsage{
		Calls:    uint64(usage.calls),
		Errors:   uint64(usage.errors),
		Timeouts: uint64(usage.timeouts),
		Restarts: uint64(usage.restarts),
		Pid:      int(usage.pid),
		// Microseconds: an int64 of nanoseconds holds 292 years.
		CPUTime:    time.Duration(usage.cpu_time_us) * time.Microsecond,
		PeakMemory: uint64(usage.peak_memory_bytes),
	}, nil
}

// MemoryHighWater returns the largest linear memory an instance of a WASM
// plugin (and of the instances made from it) reached since it was loaded,
// in bytes: compare it with the memory cap to size the cap. Other plugins
// have no linear memory of their own: StatusUnsupported (an isolated
// plugin reports its workers' peak memory in WorkerUsage).
func (p *Plugin) MemoryHighWater() (uint64, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return 0, closedError("plugin")
	}
	var bytes C.uint64_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_plugin_memory_high_water(ptr, &bytes, &cerr), cerr); err != nil {
		return 0, err
	}
	return uint64(bytes), nil
}

// HostImport is a host interface a plugin calls (a #[host_interface] trait
// its library imports): name, version and hash as the plugin was built
// against them.
type HostImport struct {
	Name    string
	Version uint32
	Hash    uint64
}

// HostImports returns the host interfaces the plugin imports, in its
// library's order: known for cdylib plugins before anything is bound, empty
// for WASM and Python plugins (and once closed).
func (p *Plugin) HostImports() ([]HostImport, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	count := C.fidius_host_plugin_host_import_count(ptr) // 0 for NULL
	imports := make([]HostImport, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		var name *C.char
		var version C.uint32_t
		var hash C.uint64_t
		var cerr *C.fidius_host_error_t
		if err := takeError(C.fidius_host_plugin_host_import(ptr, i, &name, &version, &hash, &cerr), cerr); err != nil {
			return nil, err
		}
		imports = append(imports, HostImport{Name: C.GoString(name), Version: uint32(version), Hash: uint64(hash)})
	}
	return imports, nil
}

// DeniedRequests returns the recent outbound HTTP requests, sockets and
// name lookups of the plugin that its egress policy denied, oldest first
// (the library keeps the most recent 256).
func (p *Plugin) DeniedRequests() ([]DeniedRequest, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	count := C.fidius_host_plugin_denied_request_count(ptr)
	requests := make([]DeniedRequest, 0, int(count))
	for i := C.size_t(0); i < count; i++ {
		var method, url, reason *C.char
		var cerr *C.fidius_host_error_t
		if err := takeError(C.fidius_host_plugin_denied_request(ptr, i, &method, &url, &cerr), cerr); err != nil {
			return nil, err
		}
		request := DeniedRequest{Method: takeString(method, -1), URL: takeString(url, -1)}
		var reasonErr *C.fidius_host_error_t
		if err := takeError(C.fidius_host_plugin_denied_request_reason(ptr, i, &reason, &reasonErr), reasonErr); err != nil {
			return nil, err
		}
		request.Reason = takeString(reason, -1)
		requests = append(requests, request)
	}
	return requests, nil
}

// Interface returns the interface the plugin was loaded with, as a new
// handle the caller closes; StatusNoInterface when it was loaded without
// one.
func (p *Plugin) Interface() (*Interface, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	var iface *C.fidius_host_interface_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_plugin_interface(ptr, &iface, &cerr), cerr); err != nil {
		return nil, err
	}
	return newInterface(iface), nil
}
