package fidius_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// The Bookkeeper fixture (interfaces/bookkeeper.toml) calls its host's
// Ledger (interfaces/ledger.toml): record(line, times) logs "line #i"
// through the host times times, lookup_plus_one(key) is the host's
// lookup(key) + 1, charge_from_thread(account, cents) charges through the
// host from a thread the plugin starts (natively; a component charges from
// its own). Host failures reach the caller as the plugin's HOST_CALL error.

// Method indices of Bookkeeper.
const (
	methodRecord uint32 = iota
	methodLookupPlusOne
	methodChargeFromThread
)

// requestKey is the context key the tests' requests carry.
type requestKey struct{}

// withRequest returns a context carrying request.
func withRequest(request string) context.Context {
	return context.WithValue(context.Background(), requestKey{}, request)
}

// requestOf returns the request a host call's context carries, or "".
func requestOf(call fidius.HostCall) string {
	request, _ := call.Context.Value(requestKey{}).(string)
	return request
}

// bookkeeper is one runtime of the fixture.
type bookkeeper struct {
	// path is what to load: for the native library a copy of its own (a
	// separate image, bound independently of every other test's).
	path   string
	native bool
}

// bookkeeperRuntimes runs body once per runtime of the fixture, as a
// subtest.
func bookkeeperRuntimes(t *testing.T, body func(t *testing.T, b bookkeeper)) {
	t.Run("native", func(t *testing.T) { body(t, bookkeeper{path: nativeBookkeeper(t), native: true}) })
	t.Run("wasm", func(t *testing.T) { body(t, bookkeeper{path: fixture(t, "hostcall-wasm/bookkeeper")}) })
}

// onPluginThread runs f, whose calls make a native plugin start a thread,
// so that the plugin's library is not kept mapped: natively on an OS
// thread of its own (see onOwnThread). f must not call t.Fatal.
func (b bookkeeper) onPluginThread(t *testing.T, f func()) {
	t.Helper()
	if b.native {
		onOwnThread(t, f)
	} else {
		f()
	}
}

// nativeBookkeeper copies the native library into the test's temporary
// directory: fidius binds host interfaces once per mapped library, and a
// copy is a library of its own.
func nativeBookkeeper(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(fixture(t, "hostcall/libhostcall_plugin.so"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "libhostcall_plugin.so")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// onOwnThread runs f on a goroutine locked to its OS thread, which exits
// with it, and waits until the thread is gone. A native plugin that starts
// a thread keeps its library mapped (and bound) until the thread that
// called it exits (glibc runs the plugin's thread-local destructors then);
// a Go thread normally never does.
func onOwnThread(t *testing.T, f func()) {
	t.Helper()
	tids := make(chan int, 1)
	var run func()
	run = func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		tid := syscall.Gettid()
		if tid == syscall.Getpid() {
			// The main thread never ends: run on another one (not this one,
			// which stays locked until it is done).
			done := make(chan struct{})
			go func() { defer close(done); run() }()
			<-done
			runtime.UnlockOSThread()
			return
		}
		defer func() { tids <- tid }()
		f()
	}
	go run()
	task := "/proc/self/task/" + strconv.Itoa(<-tids)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(task); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %s did not exit", task)
		}
	}
}

// loadBookkeeper loads the fixture at path with bindings.
func loadBookkeeper(t *testing.T, host *fidius.Host, path string, bindings ...*fidius.Binding) (*fidius.Plugin, error) {
	t.Helper()
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "bookkeeper.toml")}
	for _, b := range bindings {
		options.AddBinding(b)
	}
	return host.LoadPath(path, "", options)
}

// mustLoadBookkeeper is loadBookkeeper failing the test on error; the
// plugin is closed when the test ends.
func mustLoadBookkeeper(t *testing.T, host *fidius.Host, path string, bindings ...*fidius.Binding) *fidius.Plugin {
	t.Helper()
	p, err := loadBookkeeper(t, host, path, bindings...)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	closeAtEnd(t, p)
	return p
}

// ledger is a Ledger in Go: it records what it saw. Its functions run on
// several threads and must not call t.Fatal, so they count what is wrong.
type ledger struct {
	mu         sync.Mutex
	logs       []string
	lookups    int
	charges    int
	wrong      []string // what a host call got that it should not have
	logRequest string   // the request every log call must see
	// chargeRequest is the request every charge call must see: none for
	// a native plugin, which charges from a thread of its own.
	chargeRequest string
}

func (l *ledger) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wrong = append(l.wrong, fmt.Sprintf(format, args...))
}

// counts returns how many lookups and charges the ledger served.
func (l *ledger) counts() (lookups, charges int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lookups, l.charges
}

// check reports everything the ledger saw that was wrong.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.wrong {
		t.Error(w)
	}
	l.wrong = nil
}

// json answers the Ledger in JSON: lookup("answer") is 41, other keys are
// missing or fail; charge("alice", 250) is 750 and other charges fail.
func (l *ledger) json(call fidius.HostCall, args string) (string, error) {
	if call.Context == nil || call.Args != nil {
		l.fail("%s: context %v, raw args %v", call.Name, call.Context, call.Args)
	}
	switch call.Name {
	case "log":
		if call.Method != 0 {
			l.fail("log is method %d", call.Method)
		}
		if got := requestOf(call); got != l.logRequest {
			l.fail("log(%s) saw request %q, want %q", args, got, l.logRequest)
		}
		l.mu.Lock()
		l.logs = append(l.logs, args)
		l.mu.Unlock()
		return "", nil // null
	case "lookup":
		l.mu.Lock()
		l.lookups++
		l.mu.Unlock()
		switch args {
		case `["answer"]`:
			return "41", nil
		case `["panic"]`:
			panic("the ledger is on fire")
		case `["fail"]`:
			return "", errors.New("the ledger database is unavailable")
		case `["status"]`:
			return "", &fidius.Error{Status: fidius.StatusIO, Message: "the ledger file is unreadable"}
		case `["wrong type"]`:
			return `"forty-one"`, nil
		}
		return "null", nil
	case "charge":
		l.mu.Lock()
		l.charges++
		l.mu.Unlock()
		if got := requestOf(call); got != l.chargeRequest {
			l.fail("charge(%s) saw request %q, want %q", args, got, l.chargeRequest)
		}
		switch args {
		case `["alice",250]`:
			return "750", nil
		case `["wrapped",1]`:
			return "", fmt.Errorf("charging: %w", &fidius.PluginError{Code: "FROZEN", Message: "the account is frozen"})
		case `["bad details",1]`:
			return "", &fidius.PluginError{Code: "X", Message: "y", Details: "{not json"}
		}
		return "", &fidius.PluginError{Code: "NO_FUNDS", Message: "the account cannot pay", Details: `{"short":250}`}
	}
	return "", fmt.Errorf("no host function %d", call.Method)
}

// jsonLedger binds l.json to the Ledger interface; it is closed when the
// test ends.
func jsonLedger(t *testing.T, l *ledger) *fidius.Binding {
	t.Helper()
	b, err := fidius.NewJSONBinding(interfaceFile(t, "ledger.toml"), l.json)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, b)
	return b
}

// wantPluginError checks that err is the plugin's error code whose
// message contains text, and returns it.
func wantPluginError(t *testing.T, err error, code, text string) *fidius.Error {
	t.Helper()
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != code || !strings.Contains(ferr.PluginMessage, text) {
		t.Fatalf("plugin error %q %q, want %s containing %q", ferr.PluginCode, ferr.PluginMessage, code, text)
	}
	return ferr
}

// A JSON binding: each host call sees the context of the call it serves,
// returns null, numbers or null, and the plugin's PluginError.
func TestHostFunctionsJSON(t *testing.T) {
	bookkeeperRuntimes(t, func(t *testing.T, bk bookkeeper) {
		live := fidius.LiveHostFunctions()
		l := &ledger{}
		binding := jsonLedger(t, l)
		if fidius.LiveHostFunctions() != live+1 {
			t.Fatalf("%d live host functions, want %d", fidius.LiveHostFunctions(), live+1)
		}
		host := newHost(t, nil)
		p, err := loadBookkeeper(t, host, bk.path, binding)
		if err != nil {
			t.Fatal(err)
		}
		binding.Close() // the plugin keeps it

		l.logRequest = "request 1"
		got, err := p.CallJSONWithContext(withRequest("request 1"), "record", `["entry", 300]`)
		if err != nil || got != "300" {
			t.Fatalf("record = %s, %v", got, err)
		}
		if len(l.logs) != 300 || l.logs[0] != `["entry #0"]` || l.logs[299] != `["entry #299"]` {
			t.Fatalf("%d logs, first %v", len(l.logs), l.logs[:min(len(l.logs), 1)])
		}
		// Without a context, host functions see context.Background().
		l.logRequest = ""
		jsonIs(t, p, "record", `["plain", 2]`, "2")
		got, err = p.CallJSONWithContext(nil, "record", `["nil", 1]`)
		if err != nil || got != "1" {
			t.Fatalf("record with a nil context = %s, %v", got, err)
		}

		jsonIs(t, p, "lookup_plus_one", `["answer"]`, "42")
		jsonIs(t, p, "lookup_plus_one", `["missing"]`, "null")

		// A native plugin charges from a thread of its own: no context, even
		// when the call has one. A component charges from the calling one.
		if !bk.native {
			l.chargeRequest = "charging"
		}
		var charged string
		var errs [3]error
		bk.onPluginThread(t, func() {
			ctx := withRequest("charging")
			charged, errs[0] = p.CallJSONWithContext(ctx, "charge_from_thread", `["alice", 250]`)
			_, errs[1] = p.CallJSONWithContext(ctx, "charge_from_thread", `["bob", 5]`)
			_, errs[2] = p.CallJSONWithContext(ctx, "charge_from_thread", `["wrapped", 1]`)
		})
		if errs[0] != nil || charged != "750" {
			t.Errorf("charge_from_thread(alice) = %s, %v", charged, errs[0])
		}
		ferr := wantPluginError(t, errs[1], "NO_FUNDS", "the account cannot pay")
		if ferr.PluginMessage != "the account cannot pay" || ferr.PluginDetails != `{"short":250}` {
			t.Errorf("NO_FUNDS: %+v", ferr)
		}
		wantPluginError(t, errs[2], "FROZEN", "the account is frozen")
		if lookups, charges := l.counts(); charges != 3 || lookups != 2 {
			t.Errorf("%d charges, %d lookups", charges, lookups)
		}
		l.check(t)

		// Closing the plugin releases the function (natively: the library is
		// unmapped, as the thread that called charge_from_thread has exited).
		p.Close()
		if fidius.LiveHostFunctions() != live {
			t.Errorf("%d live host functions after closing, want %d", fidius.LiveHostFunctions(), live)
		}
	})
}

// An isolated native plugin calls its host across the process boundary:
// the Go function runs in the host with the call's context.
func TestHostFunctionsIsolated(t *testing.T) {
	l := &ledger{logRequest: "isolated request"}
	host := newHost(t, func(b *fidius.Builder) { b.Isolation(fidius.Isolated).WorkerPath(workerPath(t)) })
	p := mustLoadBookkeeper(t, host, nativeBookkeeper(t), jsonLedger(t, l))
	got, err := p.CallJSONWithContext(withRequest("isolated request"), "record", `["far", 3]`)
	if err != nil || got != "3" {
		t.Fatalf("record = %s, %v", got, err)
	}
	out, err := p.CallWithContext(withRequest("isolated request"), methodRecord, recordInput("raw", 2))
	if err != nil || !bytes.Equal(out, []byte{2, 0, 0, 0}) {
		t.Fatalf("record(raw, 2) = %v, %v", out, err)
	}
	if len(l.logs) != 5 || l.logs[2] != `["far #2"]` || l.logs[4] != `["raw #1"]` {
		t.Fatalf("logs %v", l.logs)
	}
	jsonIs(t, p, "lookup_plus_one", `["answer"]`, "42")
	if usage := usageOf(t, p); usage.Pid <= 0 {
		t.Errorf("not in a worker: %+v", usage)
	}
	l.check(t)
}

// rawLedger answers log and lookup in bincode: lookup(key) is
// Some(100 * key length).
type rawLedger struct {
	ledger
	logArgs [][]byte
}

func (l *rawLedger) raw(call fidius.HostCall) ([]byte, error) {
	if len(call.Args) < 8 {
		return nil, fmt.Errorf("%s: %d bytes of arguments", call.Name, len(call.Args))
	}
	key := call.Args[8:] // bincode String: u64 length, then the bytes
	switch call.Method {
	case 0:
		if got := requestOf(call); got != l.logRequest {
			l.fail("log(%q) saw request %q, want %q", key, got, l.logRequest)
		}
		l.mu.Lock()
		l.logArgs = append(l.logArgs, call.Args)
		l.mu.Unlock()
		return nil, nil
	case 1:
		value := binary.LittleEndian.Uint64(call.Args) * 100
		return binary.LittleEndian.AppendUint64([]byte{1}, value), nil // Some(value)
	}
	return nil, fmt.Errorf("no host function %d", call.Method)
}

// recordInput is the bincode of record's arguments (line, times).
func recordInput(line string, times uint32) []byte {
	return binary.LittleEndian.AppendUint32(bincodeString(line), times)
}

// A raw binding gets and returns bincode, over JSON and raw calls.
func TestHostFunctionsRaw(t *testing.T) {
	bookkeeperRuntimes(t, func(t *testing.T, bk bookkeeper) {
		l := &rawLedger{}
		binding, err := fidius.NewRawBinding(interfaceFile(t, "ledger.toml"), l.raw)
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, binding)
		p := mustLoadBookkeeper(t, newHost(t, nil), bk.path, binding)

		jsonIs(t, p, "lookup_plus_one", `["abcd"]`, "401")
		// lookup_plus_one("xy"): Ok(Some(201)).
		out, err := p.Call(methodLookupPlusOne, bincodeString("xy"))
		if want := binary.LittleEndian.AppendUint64([]byte{1}, 201); err != nil || !bytes.Equal(out, want) {
			t.Fatalf("lookup_plus_one(xy) = %v, %v; want %v", out, err, want)
		}

		l.logRequest = "raw request"
		out, err = p.CallWithContext(withRequest("raw request"), methodRecord, recordInput("t", 3))
		if err != nil || !bytes.Equal(out, []byte{3, 0, 0, 0}) {
			t.Fatalf("record(t, 3) = %v, %v", out, err)
		}
		if len(l.logArgs) != 3 || !bytes.Equal(l.logArgs[2], bincodeString("t #2")) {
			t.Fatalf("log arguments %q", l.logArgs)
		}
		l.check(t)
	})
}

// A host function that fails: the plugin's call fails (the fixture turns
// host failures into its HOST_CALL error), the process and the plugin go
// on.
func TestHostFunctionFailures(t *testing.T) {
	bookkeeperRuntimes(t, func(t *testing.T, bk bookkeeper) {
		l := &ledger{}
		p := mustLoadBookkeeper(t, newHost(t, nil), bk.path, jsonLedger(t, l))

		for _, c := range []struct{ key, text string }{
			{"panic", "the Go host function panicked: the ledger is on fire"},
			{"fail", "INVALID_ARGUMENT (2): the ledger database is unavailable"},
			{"status", "IO (7): fidius: IO: the ledger file is unreadable"},
			{"wrong type", "the result of 'lookup' is not a valid Option<u64>"},
		} {
			_, err := p.CallJSON("lookup_plus_one", `["`+c.key+`"]`)
			wantPluginError(t, err, "HOST_CALL", c.text)
		}
		var err error
		bk.onPluginThread(t, func() { _, err = p.CallJSON("charge_from_thread", `["bad details", 1]`) })
		wantPluginError(t, err, "HOST_CALL", "the host function's PluginError X was refused")
		jsonIs(t, p, "lookup_plus_one", `["answer"]`, "42")
		l.check(t)
	})
}

// Several goroutines call one plugin at once, each with its own context:
// every host call sees the context of the call it serves.
func TestHostFunctionContextsConcurrent(t *testing.T) {
	bookkeeperRuntimes(t, func(t *testing.T, bk bookkeeper) {
		var logs, wrong atomic.Int64
		binding, err := fidius.NewRawBinding(interfaceFile(t, "ledger.toml"), func(call fidius.HostCall) ([]byte, error) {
			logs.Add(1)
			// The line is "w<worker> #<i>": its worker must be the request's.
			line := string(call.Args[8:])
			if worker, _, _ := strings.Cut(line, " #"); call.Method != 0 || worker != requestOf(call) {
				wrong.Add(1)
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, binding)
		p := mustLoadBookkeeper(t, newHost(t, nil), bk.path, binding)

		const workers, calls, times = 8, 20, 10
		var wg sync.WaitGroup
		for worker := range workers {
			wg.Go(func() {
				name := fmt.Sprintf("w%d", worker)
				ctx := withRequest(name)
				for range calls {
					out, err := p.CallWithContext(ctx, methodRecord, recordInput(name, times))
					if err != nil || !bytes.Equal(out, []byte{times, 0, 0, 0}) {
						t.Errorf("%s: record = %v, %v", name, out, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if logs.Load() != workers*calls*times || wrong.Load() != 0 {
			t.Errorf("%d logs (want %d), %d with another request's context", logs.Load(), workers*calls*times, wrong.Load())
		}
	})
}

// A native library is bound once while mapped: another binding is refused
// until every plugin of it is closed, in every host.
func TestHostFunctionsAlreadyBound(t *testing.T) {
	path := nativeBookkeeper(t)
	live := fidius.LiveHostFunctions()
	first, second := &ledger{}, &ledger{}
	a, b := jsonLedger(t, first), jsonLedger(t, second)
	host, other := newHost(t, nil), newHost(t, nil)

	p, err := loadBookkeeper(t, host, path, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = loadBookkeeper(t, other, path, b)
	wantError(t, err, fidius.ErrHostAlreadyBound, "'Ledger' is already bound")
	q, err := loadBookkeeper(t, other, path, a)
	if err != nil {
		t.Fatalf("loading with the same binding: %v", err)
	}
	jsonIs(t, q, "lookup_plus_one", `["answer"]`, "42")
	if one, _ := first.counts(); one != 1 {
		t.Errorf("%d lookups by the first binding, want 1", one)
	}
	if two, _ := second.counts(); two != 0 {
		t.Errorf("%d lookups by the second binding, want 0", two)
	}
	p.Close()
	q.Close()

	// Unmapped: another binding takes, and the first one is released.
	a.Close()
	if fidius.LiveHostFunctions() != live+1 {
		t.Errorf("%d live host functions, want %d", fidius.LiveHostFunctions(), live+1)
	}
	r := mustLoadBookkeeper(t, other, path, b)
	jsonIs(t, r, "lookup_plus_one", `["answer"]`, "42")
	if two, _ := second.counts(); two != 1 {
		t.Errorf("%d lookups by the second binding, want 1", two)
	}
}

// Wrong arguments are errors, and a binding that could not be made
// releases its function.
func TestHostFunctionBadArguments(t *testing.T) {
	live := fidius.LiveHostFunctions()
	ledgerInterface := interfaceFile(t, "ledger.toml")
	noop := func(fidius.HostCall) ([]byte, error) { return nil, nil }

	_, err := fidius.NewRawBinding(nil, noop)
	wantError(t, err, fidius.ErrNullArgument, "host interface")
	_, err = fidius.NewRawBinding(ledgerInterface, nil)
	wantError(t, err, fidius.ErrNullArgument, "host function")
	_, err = fidius.NewJSONBinding(ledgerInterface, nil)
	wantError(t, err, fidius.ErrNullArgument, "host function")

	closed, err := fidius.NewInterfaceFromFile(fixture(t, "interfaces/ledger.toml"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	_, err = fidius.NewRawBinding(closed, noop)
	wantError(t, err, fidius.ErrMisuse, "closed")

	// Host interfaces have no optional methods.
	optional, err := fidius.NewInterfaceBuilder("Ledger", 3).AddMethod("log:String->", fidius.MethodOptional).Build()
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, optional)
	_, err = fidius.NewRawBinding(optional, noop)
	wantError(t, err, fidius.ErrInvalidInterface, "")
	if fidius.LiveHostFunctions() != live {
		t.Errorf("%d live host functions after failed constructors, want %d", fidius.LiveHostFunctions(), live)
	}

	binding, err := fidius.NewRawBinding(ledgerInterface, noop)
	if err != nil {
		t.Fatal(err)
	}
	binding.Close()
	binding.Close() // idempotent
	(*fidius.Binding)(nil).Close()
	host := newHost(t, nil)
	_, err = loadBookkeeper(t, host, fixture(t, "hostcall-wasm/bookkeeper"), binding)
	wantError(t, err, fidius.ErrMisuse, "binding is closed")
	_, err = loadBookkeeper(t, host, fixture(t, "hostcall-wasm/bookkeeper"), nil)
	wantError(t, err, fidius.ErrNullArgument, "nil *Binding")
	if fidius.LiveHostFunctions() != live {
		t.Errorf("%d live host functions, want %d", fidius.LiveHostFunctions(), live)
	}

	// Without a binding, the plugin's host calls fail with "not bound".
	p := mustLoadBookkeeper(t, host, fixture(t, "hostcall-wasm/bookkeeper"))
	_, err = p.CallJSON("record", `["x", 1]`)
	wantError(t, err, fidius.ErrPluginError, "")
}

// A binding, and the plugin holding it, dropped without Close are freed
// by the garbage collector, releasing the Go function.
func TestUnclosedBindingIsCollected(t *testing.T) {
	before := fidius.LiveHostFunctions()
	host := newHost(t, nil)
	func() {
		l := &ledger{}
		binding, err := fidius.NewJSONBinding(interfaceFile(t, "ledger.toml"), l.json)
		if err != nil {
			t.Fatal(err)
		}
		p, err := loadBookkeeper(t, host, fixture(t, "hostcall-wasm/bookkeeper"), binding)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.CallJSON("lookup_plus_one", `["answer"]`); err != nil || got != "42" {
			t.Errorf("lookup_plus_one = %s, %v", got, err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fidius.LiveHostFunctions() != before {
		if time.Now().After(deadline) {
			t.Fatalf("the unclosed binding and plugin were not freed: %d live host functions, want %d", fidius.LiveHostFunctions(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// A host function may call plugins, the one it serves included (natively);
// calls without a context inside it pass its context on.
func TestHostFunctionNestedCalls(t *testing.T) {
	var p *fidius.Plugin
	var lookups, wrong atomic.Int64
	binding, err := fidius.NewRawBinding(interfaceFile(t, "ledger.toml"), func(call fidius.HostCall) ([]byte, error) {
		if requestOf(call) != "outer" {
			wrong.Add(1)
		}
		switch call.Name {
		case "log": // ask lookup_plus_one, which asks lookup
			out, err := p.Call(methodLookupPlusOne, bincodeString("abc"))
			if want := binary.LittleEndian.AppendUint64([]byte{1}, 8); err != nil || !bytes.Equal(out, want) {
				return nil, fmt.Errorf("nested lookup_plus_one = %v, %v", out, err)
			}
			return nil, nil
		case "lookup":
			lookups.Add(1)
			return binary.LittleEndian.AppendUint64([]byte{1}, 7), nil
		}
		return nil, fmt.Errorf("no host function %s", call.Name)
	})
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, binding)
	p = mustLoadBookkeeper(t, newHost(t, nil), nativeBookkeeper(t), binding)
	out, err := p.CallWithContext(withRequest("outer"), methodRecord, recordInput("nest", 2))
	if err != nil || !bytes.Equal(out, []byte{2, 0, 0, 0}) {
		t.Fatalf("record = %v, %v", out, err)
	}
	if lookups.Load() != 2 || wrong.Load() != 0 {
		t.Errorf("%d nested lookups (want 2), %d without the outer context", lookups.Load(), wrong.Load())
	}
}
