package fidius

/*
#include <stdlib.h>
#include "fidius_host.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Item is the type of one item of a Stream<T> argument: []byte for the raw
// calls (Plugin.CallClientStream, Plugin.CallStream), the bincode of the
// item type; string for the JSON calls (Plugin.CallClientStreamJSON,
// Plugin.CallStreamJSON), the item's JSON text.
type Item interface {
	[]byte | string
}

// Items gives the items of a method's Stream<T> argument: the input of a
// client-streaming call (Plugin.CallClientStream) or of a bidirectional
// stream (Plugin.CallStream). Make one with ItemsFromSeq, ItemsFromSeq2,
// ItemsFromChan or ItemsFromFunc.
//
// Items are pulled, never pushed: the plugin reads the next item when its
// code asks for it, and only then is the source asked for it — during the
// client-streaming call, or during the Stream.Next that needs it for a
// bidirectional stream. Nothing is read ahead or buffered, and what the
// plugin does not read is never asked for: the source is stopped as soon
// as the call ends, fails or its stream is closed (an iterator's loop then
// sees yield return false). Each item is copied before the next is asked
// for, so a source may reuse its buffer.
//
// The end of the source ends the input. A source that fails (an error from
// ItemsFromSeq2 or ItemsFromFunc) or panics (recovered: it never unwinds
// through the C library) fails the call, or the stream, with
// ErrStreamInputFailed, wrapping the source's error; so does an item that
// is not a value of the item type.
//
// Each call starts the source afresh (a new iteration of a sequence, or
// more of a channel or function), and the source is asked for items by one
// goroutine at a time. An Items holding a sequence or a function may be
// used by several calls at once when the sequence or function allows it.
// A source runs while the call (or the Next) it feeds holds the plugin:
// it must not close that Plugin (Close would wait for the call forever);
// using the Stream it feeds gives ErrMisuse. The zero Items gives no items.
type Items[T Item] struct {
	// open starts reading the source for one call. next gives the next item
	// (ok false at the end, a non-nil err when the source failed); stop,
	// which may be nil, ends the reading early or not.
	open func() (next func() (item T, ok bool, err error), stop func())
}

// ItemsFromSeq gives the items of seq, in order, until it ends. seq runs
// as the plugin reads (each item asked for resumes it, through iter.Pull
// in a goroutine of its own), and is stopped — its yield returns false —
// when the input is no longer used, whether or not the plugin read to the
// end. A panic in seq fails the input.
//
//	sum, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq(slices.Values([]string{"1", "2", "39"})))
func ItemsFromSeq[T Item](seq iter.Seq[T]) *Items[T] {
	return ItemsFromSeq2(func(yield func(T, error) bool) {
		for item := range seq {
			if !yield(item, nil) {
				return
			}
		}
	})
}

// ItemsFromSeq2 is ItemsFromSeq for a sequence that may fail: a pair with
// a non-nil error (its item ignored) fails the input with
// ErrStreamInputFailed wrapping that error, and seq is stopped.
func ItemsFromSeq2[T Item](seq iter.Seq2[T, error]) *Items[T] {
	return &Items[T]{open: func() (func() (T, bool, error), func()) {
		return pullAside(seq)
	}}
}

// ItemsFromChan gives the items received from ch, until ch is closed: a
// channel-fed client stream, which other goroutines may feed as the plugin
// reads. Each item the plugin reads is one receive, which waits until an
// item is sent (or ch closed): a nil channel never ends. Items the plugin
// does not read stay in the channel.
func ItemsFromChan[T Item](ch <-chan T) *Items[T] {
	return &Items[T]{open: func() (func() (T, bool, error), func()) {
		return func() (T, bool, error) {
			item, ok := <-ch
			return item, ok, nil
		}, nil
	}}
}

// ItemsFromFunc gives the items next returns, one per call, until it
// returns io.EOF (itself, not wrapped); any other error fails the input
// with ErrStreamInputFailed wrapping it. next is called once for each item
// the plugin reads, on the goroutine calling the plugin (or pulling the
// bidirectional stream): it must not call the stream it feeds.
func ItemsFromFunc[T Item](next func() (T, error)) *Items[T] {
	return &Items[T]{open: func() (func() (T, bool, error), func()) {
		return func() (T, bool, error) {
			item, err := next()
			if err == io.EOF {
				var none T
				return none, false, nil
			}
			return item, err == nil, err
		}, nil
	}}
}

// pullAside pulls seq with iter.Pull2 in a goroutine of its own, and
// returns the functions that ask it for the next item and stop it.
//
// The pull cannot run on the goroutine that calls the plugin: items are
// asked for from a cgo callback, whose goroutine is locked to its OS
// thread, and the runtime refuses (with a fatal error) to resume a
// coroutine from another thread-lock state, or another thread, than the
// one that created it — a bidirectional stream's items are asked for by
// every Next, from whatever thread runs it. The goroutine starts with the
// call, pulls seq only when asked, and ends when stopped.
func pullAside[T Item](seq iter.Seq2[T, error]) (next func() (T, bool, error), stop func()) {
	type pulled struct {
		item T
		ok   bool
		err  error
	}
	asks := make(chan struct{})
	answers := make(chan pulled)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pull, stopPull := iter.Pull2(seq)
		defer func() {
			// A panic as seq unwinds after its last yield has nobody to
			// fail any more: the input is over.
			defer func() { _ = recover() }()
			stopPull()
		}()
		for range asks {
			var answer pulled
			func() {
				defer func() {
					if v := recover(); v != nil {
						answer = pulled{err: panicked(v)}
					}
				}()
				answer.item, answer.err, answer.ok = pull()
			}()
			answers <- answer
		}
	}()
	next = func() (T, bool, error) {
		asks <- struct{}{}
		answer := <-answers
		return answer.item, answer.ok, answer.err
	}
	stop = func() {
		close(asks)
		<-done
	}
	return next, stop
}

// panicked is the error of a source that panicked with v.
func panicked(v any) error {
	return &itemsPanic{value: v}
}

// itemsPanic is the failure of a source that panicked: the producer
// answers StatusInternalPanic for it, as a host function's panic does.
type itemsPanic struct{ value any }

func (p *itemsPanic) Error() string {
	return fmt.Sprintf("the stream items panicked: %v", p.value)
}

// Unwrap returns the panic value when it is an error.
func (p *itemsPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

// liveStreamInputs counts inputs handed to the C library and not yet
// released by it, so tests can check that each one is.
var liveStreamInputs atomic.Int64

// streamInput is one call's reading of an Items: what the cgo.Handle the C
// library holds as the producer's userdata refers to.
type streamInput struct {
	// next copies the next item into the C buffer (ok false at the end).
	next func() (size int, ok bool, err error)
	// stop ends the reading; nil once stopped, or when there is nothing to
	// stop.
	stop func()

	// busy is set while the source runs, so that the stream it feeds can
	// refuse to be used from it (it would wait for itself).
	busy atomic.Bool

	mu sync.Mutex
	// buf holds the last item given to the library (C memory: the library
	// reads it after the producer returns); capacity is its size.
	buf      unsafe.Pointer
	capacity int
	// failure is the source's error, once it failed.
	failure error
}

// openInput starts reading items for one call: the input, and the
// cgo.Handle to pass to the C library as the producer's userdata, which
// the library releases (fidiusGoStreamRelease) whatever the call's
// outcome. Nil items give no input and handle 0.
func openInput[T Item](items *Items[T]) (*streamInput, C.uintptr_t) {
	if items == nil {
		return nil, 0
	}
	in := &streamInput{}
	pull := func() (item T, ok bool, err error) { return } // the zero Items: none
	if items.open != nil {
		pull, in.stop = items.open()
	}
	in.next = func() (int, bool, error) {
		item, ok, err := pull()
		if err != nil || !ok {
			return 0, false, err
		}
		copy(in.fill(len(item)), item)
		return len(item), true, nil
	}
	liveStreamInputs.Add(1)
	return in, C.uintptr_t(cgo.NewHandle(in))
}

// fill returns room for an item of size bytes in the C buffer, growing it
// when needed. The buffer is never NULL, even for an empty item.
func (in *streamInput) fill(size int) []byte {
	if in.buf == nil || size > in.capacity {
		C.free(in.buf)
		in.capacity = max(size, 2*in.capacity, 64)
		in.buf = C.malloc(C.size_t(in.capacity))
	}
	return unsafe.Slice((*byte)(in.buf), size)
}

// produce is the producer callback: the next item, as the C library's
// fidius_host_item_producer_fn returns it.
func (in *streamInput) produce(item **C.uint8_t, itemLen *C.size_t) (status C.uint32_t) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.busy.Store(true)
	defer in.busy.Store(false)
	defer func() {
		// A Go panic must not unwind through the C library.
		if v := recover(); v != nil {
			in.failure = panicked(v)
			status = producerStatus(in.failure)
		}
	}()
	size, ok, err := in.next()
	switch {
	case err != nil:
		in.failure = err
		return producerStatus(err)
	case !ok:
		return C.FIDIUS_HOST_STATUS_STREAM_END
	}
	*item = (*C.uint8_t)(in.buf)
	*itemLen = C.size_t(size)
	return C.FIDIUS_HOST_STATUS_OK
}

// producerStatus is the status a producer answers for a source's error:
// StatusInternalPanic for a panic, an *Error's own failure status,
// StatusInvalidArgument for any other error. The library's
// STREAM_INPUT_FAILED message names it.
func producerStatus(err error) C.uint32_t {
	var panicErr *itemsPanic
	if errors.As(err, &panicErr) {
		return C.FIDIUS_HOST_STATUS_INTERNAL_PANIC
	}
	var ferr *Error
	if errors.As(err, &ferr) && ferr.Status != StatusOK && ferr.Status != StatusStreamEnd {
		return C.uint32_t(ferr.Status)
	}
	return C.uint32_t(StatusInvalidArgument)
}

// release ends the input: the source is stopped, the buffer freed. The C
// library calls it once, when it no longer uses the input.
func (in *streamInput) release() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stop != nil {
		in.stop()
		in.stop = nil
	}
	C.free(in.buf)
	in.buf, in.capacity = nil, 0
}

// wrap adds the source's failure to err, a call's error: an *Error of
// StatusStreamInputFailed gets it as its cause (Unwrap) and in its
// message. Other errors, and a nil in, leave err as it is.
func (in *streamInput) wrap(err error) error {
	var ferr *Error
	if in == nil || !errors.As(err, &ferr) || ferr.Status != StatusStreamInputFailed || ferr.cause != nil {
		return err
	}
	in.mu.Lock()
	cause := in.failure
	in.mu.Unlock()
	if cause != nil {
		ferr.cause = cause
		ferr.Message += ": " + cause.Error()
	}
	return err
}
