package fidius

/*
#include <stdint.h>
#include "fidius_host.h"

// Defined in stream_export.go (//export). The userdata is a
// runtime/cgo.Handle, an integer: it reaches Go as uintptr_t, never as a
// pointer (the Go runtime refuses such values in pointer variables).
extern uint32_t fidiusGoStreamProduce(uintptr_t userdata, uint8_t **item, size_t *item_len);
extern void fidiusGoStreamRelease(uintptr_t userdata);

// The callbacks with the exact signatures the library calls (cgo exports
// take no const parameters).
static uint32_t fidius_go_stream_produce(void *userdata, const uint8_t **item, size_t *item_len) {
	return fidiusGoStreamProduce((uintptr_t)userdata, (uint8_t **)item, item_len);
}

static void fidius_go_stream_release(void *userdata) {
	fidiusGoStreamRelease((uintptr_t)userdata);
}

// The input of a call whose items come from Go: `handle` is the
// runtime/cgo.Handle of its producer, or 0 for no input (NULL). The struct
// is read during the call only.
static const fidius_host_stream_input_t *fidius_go_input(uintptr_t handle, fidius_host_stream_input_t *input) {
	if (handle == 0) return NULL;
	input->produce = fidius_go_stream_produce;
	input->userdata = (void *)handle;
	input->free_userdata = fidius_go_stream_release;
	return input;
}

static fidius_host_status fidius_go_call_stream(const fidius_host_plugin_t *plugin, uint32_t method,
                                                const uint8_t *args, size_t args_len, uintptr_t handle,
                                                fidius_host_stream_t **stream_out, fidius_host_error_t **err) {
	fidius_host_stream_input_t input;
	return fidius_host_plugin_call_stream(plugin, method, args, args_len, fidius_go_input(handle, &input),
	                                      stream_out, err);
}

static fidius_host_status fidius_go_call_stream_json(const fidius_host_plugin_t *plugin, const char *method,
                                                     size_t method_len, const char *args_json, size_t args_len,
                                                     uintptr_t handle, fidius_host_stream_t **stream_out,
                                                     fidius_host_error_t **err) {
	fidius_host_stream_input_t input;
	return fidius_host_plugin_call_stream_json(plugin, method, method_len, args_json, args_len,
	                                           fidius_go_input(handle, &input), stream_out, err);
}

static fidius_host_status fidius_go_call_client_stream(const fidius_host_plugin_t *plugin, uint32_t method,
                                                       const uint8_t *args, size_t args_len, uintptr_t handle,
                                                       fidius_host_bytes_t *output, fidius_host_error_t **err) {
	fidius_host_stream_input_t input;
	return fidius_host_plugin_call_client_stream(plugin, method, args, args_len, fidius_go_input(handle, &input),
	                                             output, err);
}

static fidius_host_status fidius_go_call_client_stream_json(const fidius_host_plugin_t *plugin, const char *method,
                                                            size_t method_len, const char *args_json,
                                                            size_t args_len, uintptr_t handle, char **json_out,
                                                            size_t *json_len_out, fidius_host_error_t **err) {
	fidius_host_stream_input_t input;
	return fidius_host_plugin_call_client_stream_json(plugin, method, method_len, args_json, args_len,
	                                                  fidius_go_input(handle, &input), json_out, json_len_out, err);
}
*/
import "C"

import (
	"io"
	"iter"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// CallStream starts a server-streaming (`-> Stream<T>`) or bidirectional
// call of method number method (its index in the interface's declaration
// order): args is the bincode of the tuple of every argument but the
// Stream<T> one. The items of a bidirectional method's Stream<T> argument
// come from input (bincode of the item type), read as Stream.Next needs
// them; input must be nil for a server-streaming method.
//
// The plugin must have been loaded with an interface, which says which
// methods stream (StatusNoInterface otherwise). A method that does not
// stream out, or whose Stream<T> argument is missing its input or given
// one it does not take, is StatusStreamMismatch; nothing ran. The other
// errors are those of Call, from the plugin starting the stream. Whatever
// the outcome, input is released (stopped) when the call or the stream no
// longer needs it.
//
// The caller owns the Stream: pull it to its end, or Close it.
func (p *Plugin) CallStream(method uint32, args []byte, input *Items[[]byte]) (*Stream, error) {
	return p.callStream(func(ptr *C.fidius_host_plugin_t) (*streamInput, C.fidius_host_status, *C.fidius_host_stream_t, *C.fidius_host_error_t) {
		in, handle := openInput(input)
		data, n := bytesArg(args)
		var stream *C.fidius_host_stream_t
		var cerr *C.fidius_host_error_t
		status := C.fidius_go_call_stream(ptr, C.uint32_t(method), data, n, handle, &stream, &cerr)
		return in, status, stream, cerr
	})
}

// CallStreamJSON is CallStream by method name, with JSON: argsJSON is a
// JSON array of every argument but the Stream<T> one (e.g. "[3, 7]" for
// count(from, to), `["!"]` for shout(words: Stream<String>, suffix)), and
// input gives the JSON text of each item of a bidirectional method's
// Stream<T> argument (nil for a server-streaming method). Pull the stream
// with Stream.NextJSON or Stream.AllJSON (or Next and All, for bincode).
//
// Besides the errors of CallStream: StatusUnknownMethod,
// StatusInvalidJSON, StatusArgumentMismatch.
func (p *Plugin) CallStreamJSON(method string, argsJSON string, input *Items[string]) (*Stream, error) {
	return p.callStream(func(ptr *C.fidius_host_plugin_t) (*streamInput, C.fidius_host_status, *C.fidius_host_stream_t, *C.fidius_host_error_t) {
		in, handle := openInput(input)
		m, mn := text(method)
		args, argsLen := text(argsJSON)
		var stream *C.fidius_host_stream_t
		var cerr *C.fidius_host_error_t
		status := C.fidius_go_call_stream_json(ptr, m, mn, args, argsLen, handle, &stream, &cerr)
		return in, status, stream, cerr
	})
}

// callStream runs one C stream call function on the plugin's handle and
// wraps the stream it made.
func (p *Plugin) callStream(call func(*C.fidius_host_plugin_t) (*streamInput, C.fidius_host_status,
	*C.fidius_host_stream_t, *C.fidius_host_error_t)) (*Stream, error) {
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	in, status, stream, cerr := call(ptr)
	if err := takeError(status, cerr); err != nil {
		return nil, in.wrap(err)
	}
	return newStream(stream, in), nil
}

// CallClientStream calls a client-streaming method (one with a Stream<T>
// argument and a single result) by its index: args is the bincode of the
// tuple of every argument but the Stream<T> one, items gives that
// argument's items (bincode of the item type), read on this goroutine as
// far as the plugin reads them, during the call. It returns the result as
// Call does.
//
// Besides the errors of Call: StatusStreamMismatch (the method has no
// Stream<T> argument, or returns a stream; nothing ran),
// StatusStreamInputFailed (items failed or gave an item that is not a
// value of the item type: the error wraps the failure of items, and the
// plugin's result was discarded), StatusNullArgument for nil items. items
// is stopped before CallClientStream returns, whatever the outcome.
func (p *Plugin) CallClientStream(method uint32, args []byte, items *Items[[]byte]) ([]byte, error) {
	if items == nil {
		return nil, &Error{Status: StatusNullArgument, Message: "the items of the Stream<T> argument are nil"}
	}
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return nil, closedError("plugin")
	}
	in, handle := openInput(items)
	data, n := bytesArg(args)
	var out C.fidius_host_bytes_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_go_call_client_stream(ptr, C.uint32_t(method), data, n, handle, &out, &cerr), cerr); err != nil {
		return nil, in.wrap(err)
	}
	return takeBytes(&out), nil
}

// CallClientStreamJSON is CallClientStream by method name, with JSON:
// argsJSON is a JSON array of every argument but the Stream<T> one ("[]"
// for sum(items: Stream<u64>), "[100]" for checked_sum(limit, items)),
// items gives the JSON text of each item, and the result is JSON text as
// CallJSON returns it.
//
//	sum, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq(slices.Values([]string{"1", "2", "39"}))) // "42"
//
// Besides the errors of CallClientStream: StatusUnknownMethod,
// StatusInvalidJSON, StatusArgumentMismatch.
func (p *Plugin) CallClientStreamJSON(method string, argsJSON string, items *Items[string]) (string, error) {
	if items == nil {
		return "", &Error{Status: StatusNullArgument, Message: "the items of the Stream<T> argument are nil"}
	}
	ptr := p.h.acquire()
	defer p.h.release()
	if ptr == nil {
		return "", closedError("plugin")
	}
	in, handle := openInput(items)
	m, mn := text(method)
	args, argsLen := text(argsJSON)
	var out *C.char
	var outLen C.size_t
	var cerr *C.fidius_host_error_t
	status := C.fidius_go_call_client_stream_json(ptr, m, mn, args, argsLen, handle, &out, &outLen, &cerr)
	if err := takeError(status, cerr); err != nil {
		return "", in.wrap(err)
	}
	return takeString(out, int(outLen)), nil
}

// Stream is the output of a server-streaming or bidirectional call
// (Plugin.CallStream, Plugin.CallStreamJSON): its items, pulled one at a
// time with Next (bincode of the item type) or NextJSON (JSON text), or
// ranged over with All or AllJSON.
//
// # Pulling
//
// A stream is pulled, never pushed: the plugin makes an item when Next
// asks for it, on the goroutine calling Next, and a bidirectional plugin
// reads its input Items as it needs them, during that Next (shout reads
// one word per word it answers). Nothing is made ahead of time. After the
// last item Next returns io.EOF; after a failure (the plugin's error,
// panic or trap, a timeout, or StatusStreamInputFailed when the input
// failed) it returns that error. Either way the stream is over: every
// later Next answers the same.
//
// # Goroutines
//
// A Stream is used by one goroutine at a time: it may move between
// goroutines, and calls from several goroutines at once are serialized
// (each Next waits for the one running). Its own input Items, which run
// inside Next, must not use it: Next, NextJSON and SetDeadline called from
// them fail with ErrMisuse instead of waiting forever for themselves, and
// ItemsRead returns 0. A host function (Binding) serving a Next must not
// call Next either.
//
// # Cancellation
//
// Close before the end cancels the stream: the plugin's producer is torn
// down at once (a native iterator dropped, a Python generator closed, a
// WASM stream resource dropped), not drained, and the input Items of a
// bidirectional stream stopped. All and AllJSON close the stream when
// their loop ends, break included. A Stream that becomes unreachable
// without Close is closed by a runtime cleanup. A stream does not need its
// Plugin (or Host) to stay open: it keeps the plugin's code loaded.
type Stream struct {
	mu      sync.Mutex
	ptr     *C.fidius_host_stream_t // nil once freed
	cleanup runtime.Cleanup
	// closing is set by Close: the stream is freed by Close, or, when
	// another goroutine holds mu, by the holder as it lets go.
	closing atomic.Bool
	// read is ItemsRead once the stream is freed.
	read uint64
	// input feeds a bidirectional stream, or is nil.
	input *streamInput
}

func freeStream(ptr *C.fidius_host_stream_t) { C.fidius_host_stream_free(ptr) }

// newStream wraps a stream handle the caller owns, fed by input (or nil).
func newStream(ptr *C.fidius_host_stream_t, input *streamInput) *Stream {
	s := &Stream{ptr: ptr, input: input}
	s.cleanup = runtime.AddCleanup(s, freeStream, ptr)
	return s
}

// lock takes the stream for one call and returns its handle; unlock ends
// the call. It fails with ErrMisuse when called from the stream's own
// input, and with a closed error once the stream is closed.
func (s *Stream) lock() (*C.fidius_host_stream_t, error) {
	if s.input != nil && s.input.busy.Load() {
		return nil, &Error{Status: StatusMisuse, Message: "the stream is in use: it was called from the input Items it is pulling"}
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.free()
	}
	if s.ptr == nil {
		s.unlock()
		return nil, closedError("stream")
	}
	enterC()
	return s.ptr, nil
}

// unlock lets the stream go, freeing it if Close was called meanwhile
// (whoever holds the stream last frees it).
func (s *Stream) unlock() {
	s.mu.Unlock()
	if s.closing.Load() && s.mu.TryLock() {
		s.free()
		s.mu.Unlock()
	}
}

// free frees the handle once (mu held), which cancels the stream if it has
// not ended and releases its input.
func (s *Stream) free() {
	if s.ptr == nil {
		return
	}
	s.cleanup.Stop()
	s.read = uint64(C.fidius_host_stream_items_read(s.ptr))
	C.fidius_host_stream_free(s.ptr)
	s.ptr = nil
}

// result turns the status of a pull into Next's error: nil for an item,
// io.EOF at the end, else an *Error (wrapping the input's failure for
// StatusStreamInputFailed).
func (s *Stream) result(status C.fidius_host_status, cerr *C.fidius_host_error_t) error {
	if status == C.FIDIUS_HOST_STATUS_STREAM_END {
		C.fidius_host_error_free(cerr)
		return io.EOF
	}
	return s.input.wrap(takeError(status, cerr))
}

// Next pulls the next item, the bincode of the item type, copied into Go
// memory (an empty item is an empty, non-nil slice). At the end of the
// stream it returns nil, io.EOF; after a failure nil and the *Error that
// ended the stream, again at every later call. A closed stream gives
// ErrMisuse.
func (s *Stream) Next() ([]byte, error) {
	ptr, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	var item *C.uint8_t
	var n C.size_t
	var cerr *C.fidius_host_error_t
	if err := s.result(C.fidius_host_stream_next(ptr, &item, &n, &cerr), cerr); err != nil {
		return nil, err
	}
	return append([]byte{}, unsafe.Slice((*byte)(unsafe.Pointer(item)), int(n))...), nil
}

// NextJSON is Next with the item as JSON text (e.g. "3", `"HEY!"`),
// whichever call started the stream: "", io.EOF at the end.
func (s *Stream) NextJSON() (string, error) {
	ptr, err := s.lock()
	if err != nil {
		return "", err
	}
	defer s.unlock()
	var item *C.char
	var n C.size_t
	var cerr *C.fidius_host_error_t
	if err := s.result(C.fidius_host_stream_next_json(ptr, &item, &n, &cerr), cerr); err != nil {
		return "", err
	}
	return strings.Clone(unsafe.String((*byte)(unsafe.Pointer(item)), int(n))), nil
}

// All returns an iterator over the remaining items, as Next gives them: one
// (item, nil) pair per item, then, if the stream failed, one (nil, err)
// pair; the end of the stream (io.EOF) ends the loop without a pair. The
// stream is closed when the loop ends, however it ends: breaking out of it
// cancels the stream.
//
//	for item, err := range stream.All() {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (s *Stream) All() iter.Seq2[[]byte, error] {
	return all(s, s.Next)
}

// AllJSON is All with the items as JSON text, as NextJSON gives them.
func (s *Stream) AllJSON() iter.Seq2[string, error] {
	return all(s, s.NextJSON)
}

// all ranges over the items next pulls from s, and closes s at the end.
func all[T any](s *Stream, next func() (T, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		defer s.Close()
		for {
			item, err := next()
			if err == io.EOF {
				return
			}
			if !yield(item, err) || err != nil {
				return
			}
		}
	}
}

// SetDeadline ends the stream with StatusTimeout once d has passed from
// now; 0 (or NoDeadline) removes the deadline. A WASM or Python plugin busy
// making an item then is stopped; a native plugin is checked between
// items. The deadline of each item's call (Builder.CallDeadline and the
// others) still applies. Millisecond resolution; shorter positive
// durations count as one millisecond.
func (s *Stream) SetDeadline(d time.Duration) error {
	ptr, err := s.lock()
	if err != nil {
		return err
	}
	defer s.unlock()
	var cerr *C.fidius_host_error_t
	return takeError(C.fidius_host_stream_set_deadline(ptr, C.uint64_t(deadlineMillis(d)), &cerr), cerr)
}

// ItemsRead returns how many items of its input a bidirectional stream's
// plugin has read so far (after Close, as many as it had read then); 0 for
// a server stream, and when called from the stream's own input Items.
func (s *Stream) ItemsRead() uint64 {
	if s.input != nil && s.input.busy.Load() {
		return 0
	}
	s.mu.Lock()
	defer s.unlock()
	if s.ptr == nil {
		return s.read
	}
	enterC()
	return uint64(C.fidius_host_stream_items_read(s.ptr))
}

// Close cancels the stream if it has not ended — the plugin's producer is
// torn down, not drained, and the input Items of a bidirectional stream
// stopped — and frees it. Later calls of Next give ErrMisuse.
//
// Close never waits: when another goroutine is inside Next (or the stream's
// own input Items call Close), the stream is cancelled as soon as that Next
// returns. Close is idempotent, a no-op on a nil *Stream, and returns nil
// (it implements io.Closer).
func (s *Stream) Close() error {
	if s == nil {
		return nil
	}
	s.closing.Store(true)
	if s.mu.TryLock() {
		s.free()
		s.mu.Unlock()
	}
	return nil
}
