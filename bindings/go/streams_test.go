package fidius_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// Method indices of the Streamer interface (interfaces/streamer.toml).
const (
	methodCount         uint32 = iota // count(from u64, to u64) -> Stream<u64>
	methodBlobs                       // blobs(count u32, size u32) -> Stream<Vec<u8>>
	methodFailAfter                   // fail_after(good u32) -> Stream<u32>
	methodLiveProducers               // live_producers() -> u32
	methodSum                         // sum(items: Stream<u64>) -> u64
	methodCheckedSum                  // checked_sum(limit i64, items: Stream<i64>) -> Result<i64, PluginError>
	methodShout                       // shout(words: Stream<String>, suffix String) -> Stream<String>
)

// The same Streamer plugin in each runtime.
var streamers = []struct {
	runtime fidius.Runtime
	path    string
}{
	{fidius.RuntimeCdylib, "streams/libstream_plugin.so"},
	{fidius.RuntimeWasm, "wasm/stream"},
	{fidius.RuntimePython, "python/stream"},
}

// forEachStreamer runs test as a subtest per runtime, with the Streamer of
// that runtime loaded with its interface, and checks that every stream
// input the test gave the library was released.
func forEachStreamer(t *testing.T, test func(t *testing.T, p *fidius.Plugin, runtime fidius.Runtime)) {
	t.Helper()
	host := newHost(t, nil)
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "streamer.toml")}
	for _, streamer := range streamers {
		t.Run(streamer.runtime.String(), func(t *testing.T) {
			p := loadPath(t, host, streamer.path, "", options)
			if got := p.Info().Runtime; got != streamer.runtime {
				t.Fatalf("%s is a %v plugin, want %v", streamer.path, got, streamer.runtime)
			}
			before := fidius.LiveStreamInputs()
			test(t, p, streamer.runtime)
			if live := fidius.LiveStreamInputs(); live != before {
				t.Errorf("%d stream inputs not released", live-before)
			}
		})
	}
}

// startJSON starts a JSON stream call, closed when the test ends.
func startJSON(t testing.TB, p *fidius.Plugin, method, args string, input *fidius.Items[string]) *fidius.Stream {
	t.Helper()
	s, err := p.CallStreamJSON(method, args, input)
	if err != nil {
		t.Fatalf("%s(%s): %v", method, args, err)
	}
	closeAtEnd(t, s)
	return s
}

// nextJSONIs checks that the next item of s is want.
func nextJSONIs(t testing.TB, s *fidius.Stream, want string) {
	t.Helper()
	got, err := s.NextJSON()
	if err != nil || got != want {
		t.Fatalf("NextJSON() = %q, %v; want %q", got, err, want)
	}
}

// wantEnd checks that s has ended: io.EOF from NextJSON and from Next.
func wantEnd(t testing.TB, s *fidius.Stream) {
	t.Helper()
	if got, err := s.NextJSON(); got != "" || err != io.EOF {
		t.Fatalf("NextJSON() at the end = %q, %v; want io.EOF", got, err)
	}
	if got, err := s.Next(); got != nil || err != io.EOF {
		t.Fatalf("Next() at the end = %v, %v; want io.EOF", got, err)
	}
}

// liveProducers is how many producers the plugin has started and not
// dropped.
func liveProducers(t testing.TB, p *fidius.Plugin) int {
	t.Helper()
	out, err := p.CallJSON("live_producers", "[]")
	if err != nil {
		t.Fatalf("live_producers: %v", err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("live_producers = %q", out)
	}
	return n
}

// u64s is the bincode of a tuple of u64: each little-endian.
func u64s(values ...uint64) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint64(out, v)
	}
	return out
}

// u32s is the bincode of a tuple of u32.
func u32s(values ...uint32) []byte {
	var out []byte
	for _, v := range values {
		out = binary.LittleEndian.AppendUint32(out, v)
	}
	return out
}

// source is a sequence of items that records how far it was pulled.
type source[T fidius.Item] struct {
	items   []T
	yielded int  // items handed out
	ended   bool // ran past its last item: the end was read
	stopped bool // a yield returned false: stopped before its end
}

func newSource[T fidius.Item](items ...T) *source[T] {
	return &source[T]{items: items}
}

func (s *source[T]) all(yield func(T) bool) {
	for _, item := range s.items {
		s.yielded++
		if !yield(item) {
			s.stopped = true
			return
		}
	}
	s.ended = true
}

// counted gives items through ItemsFromFunc, counting its calls in asked.
func counted[T fidius.Item](items []T, asked *int) *fidius.Items[T] {
	return fidius.ItemsFromFunc(func() (T, error) {
		*asked++
		if *asked > len(items) {
			var none T
			return none, io.EOF
		}
		return items[*asked-1], nil
	})
}

// Server streams to their end, raw and JSON, pulled and ranged over.
func TestStreamCount(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		s := startJSON(t, p, "count", "[3, 7]", nil)
		for _, want := range []string{"3", "4", "5", "6"} {
			nextJSONIs(t, s, want)
		}
		wantEnd(t, s)
		wantEnd(t, s) // the end is answered again
		if n := s.ItemsRead(); n != 0 {
			t.Errorf("a server stream read %d items", n)
		}

		// Raw: bincode arguments and items (u64s).
		raw, err := p.CallStream(methodCount, u64s(10, 12), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for item, err := range raw.All() {
			if err != nil || len(item) != 8 {
				t.Fatalf("count(10, 12) item %v, %v", item, err)
			}
			got = append(got, binary.LittleEndian.Uint64(item))
		}
		if !slices.Equal(got, []uint64{10, 11}) {
			t.Errorf("count(10, 12) = %v", got)
		}
		// All closed it.
		_, err = raw.Next()
		wantError(t, err, fidius.ErrMisuse, "closed")

		// A raw call pulled as JSON, a JSON call pulled raw.
		s, err = p.CallStream(methodCount, u64s(0, 2), nil)
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for item, err := range s.AllJSON() {
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, item)
		}
		if !slices.Equal(texts, []string{"0", "1"}) {
			t.Errorf("count(0, 2) as JSON = %q", texts)
		}
		s = startJSON(t, p, "count", "[5, 6]", nil)
		if item, err := s.Next(); err != nil || !bytes.Equal(item, u64s(5)) {
			t.Errorf("count(5, 6) raw = %v, %v", item, err)
		}
		wantEnd(t, s)
		// An empty stream.
		wantEnd(t, startJSON(t, p, "count", "[7, 7]", nil))
	})
}

// Items far larger than the library's first buffers.
func TestStreamBlobs(t *testing.T) {
	const count, size = 3, 70000
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		s, err := p.CallStream(methodBlobs, u32s(count, size), nil)
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, s)
		for i := range count {
			item, err := s.Next()
			if err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
			// bincode Vec<u8>: a u64 length, then the bytes.
			if len(item) != 8+size || binary.LittleEndian.Uint64(item) != size {
				t.Fatalf("item %d is %d bytes, length prefix %d", i, len(item), binary.LittleEndian.Uint64(item))
			}
			if want := bytes.Repeat([]byte{byte(i % 251)}, size); !bytes.Equal(item[8:], want) {
				t.Fatalf("item %d has bytes other than %d", i, i%251)
			}
		}
		wantEnd(t, s)
	})
}

// A stream that fails after two items: the error of its runtime, answered
// again at every later pull.
func TestStreamFailsMidway(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, runtime fidius.Runtime) {
		want := map[fidius.Runtime]error{
			fidius.RuntimeCdylib: fidius.ErrPluginPanic,
			fidius.RuntimeWasm:   fidius.ErrPluginTrap,
			fidius.RuntimePython: fidius.ErrPluginError,
		}[runtime]
		s := startJSON(t, p, "fail_after", "[2]", nil)
		nextJSONIs(t, s, "0")
		nextJSONIs(t, s, "1")
		for range 2 {
			_, err := s.NextJSON()
			ferr := wantError(t, err, want, "")
			if runtime == fidius.RuntimePython && (ferr.PluginCode != "TOO_FAR" || !strings.Contains(ferr.PluginDetails, `"good"`)) {
				t.Errorf("python failure: %+v", ferr)
			}
			_, err = s.Next()
			wantError(t, err, want, "")
		}

		// Ranged over: the items, then the error once.
		var items []string
		var failures []error
		for item, err := range startJSON(t, p, "fail_after", "[2]", nil).AllJSON() {
			if err != nil {
				failures = append(failures, err)
				continue
			}
			items = append(items, item)
		}
		if !slices.Equal(items, []string{"0", "1"}) || len(failures) != 1 || !errors.Is(failures[0], want) {
			t.Errorf("ranged: %q, %v", items, failures)
		}
	})
}

// Breaking out of a loop over an endless stream cancels it: the plugin's
// producer is torn down at once.
func TestStreamBreakCancels(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, runtime fidius.Runtime) {
		// WASM streams run in an instance of their own: the plugin's
		// instance cannot count them.
		counts := runtime != fidius.RuntimeWasm
		s := startJSON(t, p, "count", "[0, 18446744073709551615]", nil)
		n := 0
		for item, err := range s.AllJSON() {
			if err != nil || item != strconv.Itoa(n) {
				t.Fatalf("item %d = %q, %v", n, item, err)
			}
			if n++; n == 3 {
				if live := liveProducers(t, p); counts && live != 1 {
					t.Errorf("%d live producers while streaming, want 1", live)
				}
				break
			}
		}
		if live := liveProducers(t, p); counts && live != 0 {
			t.Errorf("%d live producers after break, want 0", live)
		}
		_, err := s.NextJSON()
		wantError(t, err, fidius.ErrMisuse, "closed")

		// Close, as break: at once, idempotent.
		s = startJSON(t, p, "count", "[0, 18446744073709551615]", nil)
		nextJSONIs(t, s, "0")
		for range 2 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if live := liveProducers(t, p); counts && live != 0 {
			t.Errorf("%d live producers after Close, want 0", live)
		}
		if err := s.SetDeadline(time.Second); !errors.Is(err, fidius.ErrMisuse) {
			t.Errorf("SetDeadline after Close: %v", err)
		}
	})
	if err := (*fidius.Stream)(nil).Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
}

// A whole-stream deadline ends an endless stream with a timeout.
func TestStreamDeadline(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		s := startJSON(t, p, "count", "[0, 18446744073709551615]", nil)
		if err := s.SetDeadline(time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var err error
		for err == nil && time.Since(start) < time.Minute {
			_, err = s.Next()
		}
		wantError(t, err, fidius.ErrTimeout, "")
	})
}

// A stream outlives its plugin handle.
func TestStreamOutlivesPlugin(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		s := startJSON(t, p, "count", "[1, 3]", nil)
		p.Close()
		nextJSONIs(t, s, "1")
		nextJSONIs(t, s, "2")
		wantEnd(t, s)
		if _, err := p.CallStreamJSON("count", "[1, 3]", nil); !errors.Is(err, fidius.ErrMisuse) {
			t.Errorf("a stream call of a closed plugin: %v", err)
		}
	})
}

// Client streams from an iterator: read lazily, exactly as far as the
// plugin reads, the source stopped when the call ends.
func TestClientStreamFromSeq(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		src := newSource("1", "2", "39")
		sum, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq(src.all))
		if err != nil || sum != "42" {
			t.Fatalf("sum(1, 2, 39) = %q, %v", sum, err)
		}
		if src.yielded != 3 || !src.ended || src.stopped {
			t.Errorf("source: %d items yielded, ended %v, stopped %v; want 3, the end read", src.yielded, src.ended, src.stopped)
		}

		// Three items and the end: four asks.
		asked := 0
		sum, err = p.CallClientStreamJSON("sum", "[]", counted([]string{"1", "2", "39"}, &asked))
		if err != nil || sum != "42" || asked != 4 {
			t.Errorf("sum = %q, %v after %d asks; want 42 after 4", sum, err, asked)
		}

		// Raw: bincode items and result.
		items := fidius.ItemsFromSeq(slices.Values([][]byte{u64s(7), u64s(8)}))
		out, err := p.CallClientStream(methodSum, nil, items)
		if err != nil || !bytes.Equal(out, u64s(15)) {
			t.Errorf("raw sum(7, 8) = %v, %v", out, err)
		}
		// The same Items again: a fresh pass over the sequence.
		out, err = p.CallClientStream(methodSum, nil, items)
		if err != nil || !bytes.Equal(out, u64s(15)) {
			t.Errorf("raw sum(7, 8) again = %v, %v", out, err)
		}
	})
}

// Client streams fed by a channel: empty, and fed by another goroutine as
// the plugin reads.
func TestClientStreamFromChan(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		empty := make(chan string)
		close(empty)
		sum, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromChan(empty))
		if err != nil || sum != "0" {
			t.Errorf("sum of nothing = %q, %v", sum, err)
		}

		numbers := make(chan string) // unbuffered: each item handed over as read
		go func() {
			defer close(numbers)
			for i := 1; i <= 100; i++ {
				numbers <- strconv.Itoa(i)
			}
		}()
		sum, err = p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromChan(numbers))
		if err != nil || sum != "5050" {
			t.Errorf("sum(1..100) = %q, %v", sum, err)
		}
		sum, err = p.CallClientStreamJSON("sum", "[]", &fidius.Items[string]{})
		if err != nil || sum != "0" {
			t.Errorf("sum of the zero Items = %q, %v", sum, err)
		}

		raw := make(chan []byte, 3)
		raw <- u64s(1)
		raw <- u64s(2)
		raw <- u64s(3)
		close(raw)
		out, err := p.CallClientStream(methodSum, nil, fidius.ItemsFromChan(raw))
		if err != nil || !bytes.Equal(out, u64s(6)) {
			t.Errorf("raw sum(1, 2, 3) = %v, %v", out, err)
		}
	})
}

// A plugin that stops reading at a bad item: the items after it are never
// asked for, and the source is stopped.
func TestClientStreamStopsEarly(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		src := newSource("5", "6", "-1", "7", "8")
		_, err := p.CallClientStreamJSON("checked_sum", "[100]", fidius.ItemsFromSeq(src.all))
		ferr := wantError(t, err, fidius.ErrPluginError, "")
		if ferr.PluginCode != "NEGATIVE" || !strings.Contains(ferr.PluginMessage, "item 2") {
			t.Errorf("checked_sum error: %+v", ferr)
		}
		if src.yielded != 3 || !src.stopped || src.ended {
			t.Errorf("source: %d items yielded, stopped %v, ended %v; want 3, stopped", src.yielded, src.stopped, src.ended)
		}

		_, err = p.CallClientStreamJSON("checked_sum", "[10]", fidius.ItemsFromSeq(slices.Values([]string{"5", "6"})))
		if ferr := wantError(t, err, fidius.ErrPluginError, ""); ferr.PluginCode != "OVER_LIMIT" {
			t.Errorf("checked_sum over the limit: %+v", ferr)
		}
		out, err := p.CallClientStream(methodCheckedSum, i64s(100), fidius.ItemsFromSeq(slices.Values([][]byte{i64s(1), i64s(40)})))
		// Result<i64, PluginError>: the Ok value's bincode.
		if err != nil || decodeI64(t, out) != 41 {
			t.Errorf("raw checked_sum = %v, %v", out, err)
		}
	})
}

// Items that fail: a bad item, an error, a panic. The call fails with
// ErrStreamInputFailed, wrapping the source's error.
func TestClientStreamInputFails(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		src := newSource("1", `"two"`, "3")
		_, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq(src.all))
		wantError(t, err, fidius.ErrStreamInputFailed, "item 1")
		if src.yielded != 2 || !src.stopped {
			t.Errorf("source: %d items yielded, stopped %v; want 2, stopped", src.yielded, src.stopped)
		}
		_, err = p.CallClientStream(methodSum, nil, fidius.ItemsFromSeq(slices.Values([][]byte{{1, 2, 3}})))
		wantError(t, err, fidius.ErrStreamInputFailed, "item 0")

		// An iterator yielding an error.
		errDisk := errors.New("the disk is gone")
		failing := func(yield func(string, error) bool) {
			if yield("1", nil) {
				yield("", errDisk)
			}
		}
		_, err = p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq2(failing))
		wantError(t, err, fidius.ErrStreamInputFailed, "the disk is gone")
		if !errors.Is(err, errDisk) {
			t.Errorf("%v does not wrap the source's error", err)
		}
		// A function returning an *Error: the status is named, and matched.
		_, err = p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromFunc(func() (string, error) {
			return "", fidius.ErrTimeout
		}))
		wantError(t, err, fidius.ErrStreamInputFailed, "TIMEOUT")
		if !errors.Is(err, fidius.ErrTimeout) {
			t.Errorf("%v does not wrap ErrTimeout", err)
		}

		// Panics, in a sequence and in a function, are recovered.
		panicking := func(yield func(string) bool) {
			yield("1")
			panic("no more numbers")
		}
		_, err = p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromSeq(panicking))
		wantError(t, err, fidius.ErrStreamInputFailed, "INTERNAL_PANIC: the stream items panicked: no more numbers")
		_, err = p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromFunc(func() (string, error) {
			panic(errDisk)
		}))
		wantError(t, err, fidius.ErrStreamInputFailed, "INTERNAL_PANIC: the stream items panicked: the disk is gone")
		if !errors.Is(err, errDisk) {
			t.Errorf("%v does not wrap the panic's error", err)
		}

		_, err = p.CallClientStreamJSON("sum", "[]", nil)
		wantError(t, err, fidius.ErrNullArgument, "nil")
		_, err = p.CallClientStream(methodSum, nil, nil)
		wantError(t, err, fidius.ErrNullArgument, "nil")
	})
}

// A bidirectional stream reads one input item per output item, as it is
// pulled.
func TestBidirectionalStream(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		src := newSource(`"hey"`, `"you"`, `"there"`)
		s := startJSON(t, p, "shout", `["!"]`, fidius.ItemsFromSeq(src.all))
		for i, want := range []string{`"HEY!"`, `"YOU!"`, `"THERE!"`} {
			nextJSONIs(t, s, want)
			if src.yielded != i+1 || s.ItemsRead() != uint64(i+1) {
				t.Fatalf("after %d outputs: %d inputs yielded, %d read", i+1, src.yielded, s.ItemsRead())
			}
		}
		wantEnd(t, s)
		if !src.ended || s.ItemsRead() != 3 {
			t.Errorf("at the end: ended %v, %d read", src.ended, s.ItemsRead())
		}
		s.Close()
		if s.ItemsRead() != 3 {
			t.Errorf("after Close: %d read", s.ItemsRead())
		}

		// Raw: (suffix) as bincode, String items.
		words := fidius.ItemsFromSeq(slices.Values([][]byte{bincodeString("go"), bincodeString("")}))
		raw, err := p.CallStream(methodShout, bincodeString("?"), words)
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for item, err := range raw.All() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, item)
		}
		if len(got) != 2 || !bytes.Equal(got[0], bincodeString("GO?")) || !bytes.Equal(got[1], bincodeString("?")) {
			t.Errorf("raw shout = %q", got)
		}

		// Cancelled with input left: the rest is never read.
		src = newSource(`"hey"`, `"you"`, `"there"`)
		s = startJSON(t, p, "shout", `["?"]`, fidius.ItemsFromSeq(src.all))
		nextJSONIs(t, s, `"HEY?"`)
		s.Close()
		if src.yielded != 1 || !src.stopped {
			t.Errorf("cancelled: %d inputs yielded, stopped %v", src.yielded, src.stopped)
		}

		// Fed by a channel, and failing input.
		ch := make(chan string, 1)
		s = startJSON(t, p, "shout", `[""]`, fidius.ItemsFromChan(ch))
		ch <- `"a"`
		nextJSONIs(t, s, `"A"`)
		ch <- `"b"`
		nextJSONIs(t, s, `"B"`)
		close(ch)
		wantEnd(t, s)
		errGone := errors.New("gone")
		s = startJSON(t, p, "shout", `[""]`, fidius.ItemsFromSeq2(func(yield func(string, error) bool) {
			_ = yield(`"a"`, nil) && yield("", errGone)
		}))
		nextJSONIs(t, s, `"A"`)
		for range 2 {
			_, err = s.NextJSON()
			wantError(t, err, fidius.ErrStreamInputFailed, "gone")
			if !errors.Is(err, errGone) {
				t.Errorf("%v does not wrap the input's error", err)
			}
		}
	})
}

// The input of a bidirectional stream runs inside Next: using the stream
// from it is refused instead of waiting for itself, and Close from it
// takes effect when that Next returns.
func TestBidirectionalStreamReentry(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		var s *fidius.Stream
		var nextErr, deadlineErr error
		var read uint64 = 99
		asked := 0
		s = startJSON(t, p, "shout", `["!"]`, fidius.ItemsFromFunc(func() (string, error) {
			asked++
			switch asked {
			case 1:
				_, nextErr = s.NextJSON()
				deadlineErr = s.SetDeadline(time.Second)
				read = s.ItemsRead()
			case 2:
				s.Close()
			}
			return `"x"`, nil
		}))
		nextJSONIs(t, s, `"X!"`)
		wantError(t, nextErr, fidius.ErrMisuse, "in use")
		wantError(t, deadlineErr, fidius.ErrMisuse, "in use")
		if read != 0 {
			t.Errorf("ItemsRead from the input = %d", read)
		}
		nextJSONIs(t, s, `"X!"`) // the Next running when the input closed the stream
		_, err := s.NextJSON()
		wantError(t, err, fidius.ErrMisuse, "closed")
		if asked != 2 {
			t.Errorf("the input was asked %d times, want 2", asked)
		}
	})
}

// A stream moves between goroutines and OS threads, its input following.
func TestStreamAcrossGoroutines(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		const n = 20
		words := make([]string, n)
		for i := range words {
			words[i] = strconv.Quote("w" + strconv.Itoa(i))
		}
		s := startJSON(t, p, "shout", `["."]`, fidius.ItemsFromSeq(slices.Values(words)))
		for i := range n {
			done := make(chan struct{})
			go func() {
				defer close(done)
				runtime.LockOSThread() // a thread of its own, never the last one
				defer runtime.UnlockOSThread()
				if got, err := s.NextJSON(); err != nil || got != strconv.Quote("W"+strconv.Itoa(i)+".") {
					t.Errorf("item %d = %q, %v", i, got, err)
				}
			}()
			<-done
		}
		wantEnd(t, s)

		// Goroutines pulling one stream at once are served one at a time:
		// each item once, in order.
		const total = 200
		s = startJSON(t, p, "count", "[0, "+strconv.Itoa(total)+"]", nil)
		var mu sync.Mutex
		var got []int
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				last := -1
				for {
					item, err := s.NextJSON()
					if err == io.EOF {
						return
					}
					v, convErr := strconv.Atoi(item)
					if err != nil || convErr != nil || v <= last {
						t.Errorf("item %q, %v after %d", item, err, last)
						return
					}
					last = v
					mu.Lock()
					got = append(got, v)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(got)
		if len(got) != total || slices.Compact(got)[total-1] != total-1 {
			t.Errorf("got %d items, want each of 0..%d once", len(got), total-1)
		}
	})
}

// Calls that do not match how a method streams; nothing runs, and inputs
// are released.
func TestStreamMismatch(t *testing.T) {
	forEachStreamer(t, func(t *testing.T, p *fidius.Plugin, _ fidius.Runtime) {
		_, err := p.CallJSON("count", "[0, 1]")
		wantError(t, err, fidius.ErrStreamMismatch, "")
		_, err = p.Call(methodCount, u64s(0, 1))
		wantError(t, err, fidius.ErrStreamMismatch, "")
		_, err = p.CallStreamJSON("live_producers", "[]", nil)
		wantError(t, err, fidius.ErrStreamMismatch, "'live_producers'")
		_, err = p.CallStream(methodLiveProducers, nil, nil)
		wantError(t, err, fidius.ErrStreamMismatch, "")

		src := newSource("1")
		_, err = p.CallStreamJSON("count", "[0, 1]", fidius.ItemsFromSeq(src.all))
		wantError(t, err, fidius.ErrStreamMismatch, "")
		_, err = p.CallClientStreamJSON("count", "[0, 1]", fidius.ItemsFromSeq(src.all))
		wantError(t, err, fidius.ErrStreamMismatch, "")
		_, err = p.CallClientStreamJSON("shout", `["!"]`, fidius.ItemsFromSeq(src.all))
		wantError(t, err, fidius.ErrStreamMismatch, "")
		if src.yielded != 0 {
			t.Errorf("a mismatched call read %d items", src.yielded)
		}
		_, err = p.CallStreamJSON("shout", `["!"]`, nil)
		wantError(t, err, fidius.ErrStreamMismatch, "")
		_, err = p.CallStreamJSON("count", "[0]", nil)
		wantError(t, err, fidius.ErrArgumentMismatch, "")
		_, err = p.CallStreamJSON("nope", "[]", nil)
		wantError(t, err, fidius.ErrUnknownMethod, "")
	})
}

// A stream dropped without Close is freed by its cleanup, which releases
// its input.
func TestUnclosedStreamIsCollected(t *testing.T) {
	host := newHost(t, nil)
	p := loadPath(t, host, "streams/libstream_plugin.so", "", &fidius.LoadOptions{Interface: interfaceFile(t, "streamer.toml")})
	before := fidius.LiveStreamInputs()
	func() {
		s, err := p.CallStreamJSON("shout", `["!"]`, fidius.ItemsFromSeq(slices.Values([]string{`"a"`, `"b"`})))
		if err != nil {
			t.Fatal(err)
		}
		nextJSONIs(t, s, `"A!"`)
	}()
	if fidius.LiveStreamInputs() != before+1 {
		t.Fatalf("%d live inputs, want %d", fidius.LiveStreamInputs(), before+1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fidius.LiveStreamInputs() != before || liveProducers(t, p) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the unclosed stream was not freed: %d live inputs, %d producers", fidius.LiveStreamInputs()-before, liveProducers(t, p))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// A Stream is an io.Closer.
var _ io.Closer = (*fidius.Stream)(nil)
