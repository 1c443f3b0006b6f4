package fidius_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// Cancelling is at 300 ms; a call stopped later than cancelSlack failed
// to stop. Every host of these tests has a call deadline of 30 s, so that
// a cancellation that does not work shows as a TIMEOUT, not a hang.
const (
	cancelAfter   = 300 * time.Millisecond
	cancelSlack   = 10 * time.Second
	cancelBackup  = 30 * time.Second
	faultMethod   = 2 // fault(String) in the Faulty interface
	echoMethod    = 3 // echo(Vec<u8>), raw
	spinMethod    = 0 // spin() in the Hostile interface
	counterMethod = 3 // counter() in the Hostile interface
)

// cancelledLater returns a context that another goroutine cancels after d.
func cancelledLater(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(d, cancel)
	t.Cleanup(func() {
		timer.Stop()
		cancel()
	})
	return ctx
}

// timingOut returns a context whose deadline is d from now.
func timingOut(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cancellable returns a context that can be cancelled and is not.
func cancellable(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// wantCancelled checks that err is a StatusCancelled *Error whose message
// contains text and which wraps cause (context.Canceled or
// context.DeadlineExceeded) and not the other one.
func wantCancelled(t testing.TB, err error, cause error, text string) *fidius.Error {
	t.Helper()
	ferr := wantError(t, err, fidius.ErrCancelled, text)
	if ferr.Status != fidius.StatusCancelled || ferr.Status.String() != "CANCELLED" || uint32(ferr.Status) != 319 {
		t.Fatalf("status %d %v, want CANCELLED (319)", uint32(ferr.Status), ferr.Status)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("error %v does not match %v", err, cause)
	}
	other := context.Canceled
	if cause == context.Canceled {
		other = context.DeadlineExceeded
	}
	if errors.Is(err, other) {
		t.Fatalf("error %v matches %v too", err, other)
	}
	if got := errors.Unwrap(ferr); got != cause {
		t.Fatalf("Unwrap() = %v, want %v", got, cause)
	}
	return ferr
}

// stoppedInTime checks that a call cancelled at cancelAfter returned soon
// after it.
func stoppedInTime(t testing.TB, what string, elapsed time.Duration) {
	t.Helper()
	if elapsed < cancelAfter || elapsed > cancelSlack {
		t.Errorf("%s was stopped after %v, want soon after %v", what, elapsed, cancelAfter)
	}
}

// u64 is the bincode encoding of a u64.
func u64(v uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, v)
}

// callsOf returns what Faulty's calls() returns: the number of calls
// before it (calls() counts itself).
func callsOf(t testing.TB, p *fidius.Plugin) uint64 {
	t.Helper()
	got, err := p.CallJSON("calls", "[]")
	if err != nil {
		t.Fatalf("calls(): %v", err)
	}
	n, err := strconv.ParseUint(got, 10, 64)
	if err != nil {
		t.Fatalf("calls() = %q: %v", got, err)
	}
	return n
}

// A context's deadline, or its cancellation from another goroutine, stops
// an isolated plugin's endless call: its worker is killed, the call fails
// with StatusCancelled wrapping the context's error, and the next call
// runs on a new worker, which a restart policy of 0 allows (a cancelled
// call is no fault of the plugin's).
func TestCallContextIsolated(t *testing.T) {
	for _, fixtureCase := range []struct{ relative, name string }{
		{faultyNative, "native"},
		{faultyPython, "python"},
	} {
		for _, stop := range []struct {
			name  string
			ctx   func(t *testing.T) context.Context
			cause error
		}{
			{"deadline", func(t *testing.T) context.Context { return timingOut(t, cancelAfter) }, context.DeadlineExceeded},
			{"cancel", func(t *testing.T) context.Context { return cancelledLater(t, cancelAfter) }, context.Canceled},
		} {
			t.Run(fixtureCase.name+"/"+stop.name, func(t *testing.T) {
				host := isolatedHost(t, func(b *fidius.Builder) {
					b.CallDeadline(cancelBackup).RestartPolicy(0, time.Hour)
				})
				p := loadPath(t, host, fixtureCase.relative, "", faultyOptions(t, nil))
				jsonIs(t, p, "ping", "[1]", "2")
				first := usageOf(t, p)
				if first.Pid <= 0 {
					t.Fatalf("usage before the call: %+v", first)
				}

				start := time.Now()
				got, err := p.CallJSONContext(stop.ctx(t), "fault", `["spin"]`)
				elapsed := time.Since(start)
				wantCancelled(t, err, stop.cause, "killed")
				if got != "" {
					t.Errorf("a cancelled call returned %q", got)
				}
				stoppedInTime(t, "the spinning call", elapsed)
				if usage := usageOf(t, p); usage.Pid != 0 {
					t.Errorf("the worker survived the cancellation: %+v", usage)
				}

				// A new worker, despite the restart policy of 0: state lost.
				jsonIs(t, p, "ping", "[1]", "2")
				jsonIs(t, p, "calls", "[]", "1")
				if usage := usageOf(t, p); usage.Pid <= 0 || usage.Pid == first.Pid || usage.Restarts != 1 {
					t.Errorf("usage after the cancellation: %+v (the first worker was %d)", usage, first.Pid)
				}
			})
		}
	}
}

// A WASM guest is stopped, spinning at its next epoch check and asleep in
// its wait in the host; the next call runs on a fresh instance.
func TestCallContextWasm(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) { b.CallDeadline(cancelBackup) }, "wasm")
	hostile := load(t, host, "HostileGuest", &fidius.LoadOptions{Interface: interfaceFile(t, "hostile.toml")})
	if info := hostile.Info(); info.Runtime != fidius.RuntimeWasm {
		t.Fatalf("info %+v", info)
	}

	jsonIs(t, hostile, "counter", "[]", "1")
	jsonIs(t, hostile, "counter", "[]", "2")
	for _, c := range []struct {
		method, args string
		ctx          func(testing.TB, time.Duration) context.Context // made when the call starts
		cause        error
	}{
		{"spin", "[]", timingOut, context.DeadlineExceeded},
		{"nap", "[3600000]", cancelledLater, context.Canceled},
		{"spin", "[]", cancelledLater, context.Canceled},
		{"nap", "[3600000]", timingOut, context.DeadlineExceeded},
	} {
		start := time.Now()
		got, err := hostile.CallJSONContext(c.ctx(t, cancelAfter), c.method, c.args)
		elapsed := time.Since(start)
		wantCancelled(t, err, c.cause, "")
		if got != "" {
			t.Errorf("a cancelled %s returned %q", c.method, got)
		}
		stoppedInTime(t, c.method, elapsed)
		jsonIs(t, hostile, "counter", "[]", "1") // a fresh instance
	}

	// Raw: spin() and counter() take the empty tuple and return a u64.
	start := time.Now()
	out, err := hostile.CallContext(timingOut(t, cancelAfter), spinMethod, nil)
	elapsed := time.Since(start)
	wantCancelled(t, err, context.DeadlineExceeded, "")
	if out != nil {
		t.Errorf("a cancelled raw spin returned %v", out)
	}
	stoppedInTime(t, "the raw spin", elapsed)
	out, err = hostile.CallContext(cancellable(t), counterMethod, nil)
	if err != nil || !bytes.Equal(out, u64(1)) {
		t.Errorf("counter() = %v, %v; want a fresh instance's 1", out, err)
	}
	jsonIs(t, hostile, "counter", "[]", "2")
}

// An in-process Python plugin is stopped by an exception raised in its
// code; it keeps its state and answers on.
func TestCallContextPython(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) { b.CallDeadline(cancelBackup) })
	p := loadPath(t, host, faultyPython, "", faultyOptions(t, nil))
	if info := p.Info(); info.Runtime != fidius.RuntimePython {
		t.Fatalf("info %+v", info)
	}
	if _, err := p.WorkerUsage(); !errors.Is(err, fidius.ErrUnsupported) {
		t.Fatalf("the Python plugin is not in-process: %v", err)
	}

	start := time.Now()
	got, err := p.CallJSONContext(cancelledLater(t, cancelAfter), "fault", `["spin"]`)
	elapsed := time.Since(start)
	wantCancelled(t, err, context.Canceled, "exception")
	if got != "" {
		t.Errorf("a cancelled call returned %q", got)
	}
	stoppedInTime(t, "the endless loop", elapsed)
	jsonIs(t, p, "calls", "[]", "1") // the same instance: fault counted

	start = time.Now()
	out, err := p.CallContext(timingOut(t, cancelAfter), faultMethod, bincodeString("spin"))
	elapsed = time.Since(start)
	wantCancelled(t, err, context.DeadlineExceeded, "exception")
	if out != nil {
		t.Errorf("a cancelled raw call returned %v", out)
	}
	stoppedInTime(t, "the raw endless loop", elapsed)
	jsonIs(t, p, "calls", "[]", "3")
	got, err = p.CallJSONContext(cancellable(t), "ping", "[1]")
	if err != nil || got != "2" {
		t.Errorf("ping(1) = %q, %v", got, err)
	}
}

// An in-process native plugin cannot be stopped: a context that can be
// cancelled is refused with StatusUnsupported before anything runs; one
// that cannot (or none) makes an ordinary call.
func TestCallContextInProcessNative(t *testing.T) {
	p := loadPath(t, newHost(t, nil), faultyNative, "", faultyOptions(t, nil))
	if info := p.Info(); info.Runtime != fidius.RuntimeCdylib {
		t.Fatalf("info %+v", info)
	}
	before := callsOf(t, p)

	for _, ctx := range []context.Context{cancellable(t), timingOut(t, time.Hour), cancelledLater(t, time.Hour)} {
		got, err := p.CallJSONContext(ctx, "ping", "[1]")
		wantError(t, err, fidius.ErrUnsupported, "isolated")
		if got != "" || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, fidius.ErrCancelled) {
			t.Errorf("refused call: %q, %v", got, err)
		}
		out, err := p.CallContext(ctx, 0, u64(1))
		wantError(t, err, fidius.ErrUnsupported, "")
		if out != nil {
			t.Errorf("refused raw call returned %v", out)
		}
	}
	if after := callsOf(t, p); after != before+1 {
		t.Errorf("calls() = %d after the refused calls, want %d: they ran", after, before+1)
	}

	// Contexts that are never done, and none.
	for _, ctx := range []context.Context{context.Background(), context.TODO(), withRequest("plain"), nil} {
		got, err := p.CallJSONContext(ctx, "ping", "[1]")
		if err != nil || got != "2" {
			t.Errorf("ping(1) with %v = %q, %v", ctx, got, err)
		}
		out, err := p.CallContext(ctx, 0, u64(41))
		if err != nil || !bytes.Equal(out, u64(42)) {
			t.Errorf("raw ping(41) with %v = %v, %v", ctx, out, err)
		}
	}
	if after := callsOf(t, p); after != before+10 {
		t.Errorf("calls() = %d, want %d", after, before+10)
	}
}

// A context already done fails the call before the plugin is asked:
// StatusCancelled wrapping the context's error, whatever the runtime (an
// in-process native plugin included), and nothing runs.
func TestCallContextAlreadyDone(t *testing.T) {
	cancelled, cancel := context.WithCancel(withRequest("too late"))
	cancel()
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()

	isolated := loadPath(t, isolatedHost(t, nil), faultyNative, "", faultyOptions(t, nil))
	inProcess := loadPath(t, newHost(t, nil), faultyNative, "", faultyOptions(t, nil))
	for name, p := range map[string]*fidius.Plugin{"isolated": isolated, "in-process": inProcess} {
		t.Run(name, func(t *testing.T) {
			before := callsOf(t, p)
			for _, c := range []struct {
				ctx   context.Context
				cause error
			}{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}} {
				got, err := p.CallJSONContext(c.ctx, "ping", "[1]")
				wantCancelled(t, err, c.cause, "before the call")
				if got != "" {
					t.Errorf("a refused call returned %q", got)
				}
				out, err := p.CallContext(c.ctx, 0, u64(1))
				wantCancelled(t, err, c.cause, "before the call")
				if out != nil {
					t.Errorf("a refused raw call returned %v", out)
				}
				_, err = p.CallJSONContext(c.ctx, "fault", `["abort"]`)
				wantCancelled(t, err, c.cause, "")
			}
			if after := callsOf(t, p); after != before+1 {
				t.Errorf("calls() = %d after the refused calls, want %d: they ran", after, before+1)
			}
		})
	}
	if usage := usageOf(t, isolated); usage.Restarts != 0 || usage.Calls != 2 {
		t.Errorf("usage of the isolated plugin: %+v, want 2 calls (the counters)", usage)
	}
}

// Raw calls with a context: bincode in and out, stopped alike.
func TestCallContextRaw(t *testing.T) {
	host := isolatedHost(t, func(b *fidius.Builder) { b.CallDeadline(cancelBackup) })
	p := loadPath(t, host, faultyNative, "", faultyOptions(t, nil))

	ctx := cancellable(t)
	out, err := p.CallContext(ctx, 0, u64(41)) // ping(41)
	if err != nil || !bytes.Equal(out, u64(42)) {
		t.Fatalf("ping(41) = %v, %v", out, err)
	}
	out, err = p.CallContext(ctx, echoMethod, []byte("raw bytes"))
	if err != nil || string(out) != "raw bytes" {
		t.Fatalf("echo = %q, %v", out, err)
	}
	out, err = p.CallContext(ctx, faultMethod, bincodeString("fine"))
	if err != nil || !bytes.Equal(out, bincodeString("fine")) {
		t.Fatalf("fault(fine) = %v, %v", out, err)
	}
	_, err = p.CallContext(ctx, faultMethod, bincodeString("error"))
	if ferr := wantError(t, err, fidius.ErrPluginError, ""); ferr.PluginCode != "ASKED" {
		t.Errorf("plugin error %+v", ferr)
	}
	_, err = p.CallContext(ctx, 99, nil)
	wantError(t, err, fidius.ErrMethodOutOfRange, "99")

	start := time.Now()
	out, err = p.CallContext(timingOut(t, cancelAfter), faultMethod, bincodeString("spin"))
	elapsed := time.Since(start)
	wantCancelled(t, err, context.DeadlineExceeded, "killed")
	if out != nil {
		t.Errorf("a cancelled call returned %v", out)
	}
	stoppedInTime(t, "the raw spin", elapsed)

	// The next call restarts the worker; the context was not used up.
	out, err = p.CallContext(ctx, 0, u64(1))
	if err != nil || !bytes.Equal(out, u64(2)) {
		t.Fatalf("ping(1) after the cancellation = %v, %v", out, err)
	}
	out, err = p.CallContext(context.Background(), 0, u64(7))
	if err != nil || !bytes.Equal(out, u64(8)) {
		t.Fatalf("ping(7) = %v, %v", out, err)
	}

	// A closed plugin says so, even with a context.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.CallContext(ctx, 0, u64(1))
	wantError(t, err, fidius.ErrMisuse, "closed")
	_, err = p.CallJSONContext(context.Background(), "ping", "[1]")
	wantError(t, err, fidius.ErrMisuse, "closed")
}

// The context of CallContext and CallJSONContext reaches host functions
// as that of CallWithContext does.
func TestCallContextHostFunctions(t *testing.T) {
	bookkeeperRuntimes(t, func(t *testing.T, bk bookkeeper) {
		l := &ledger{}
		p := mustLoadBookkeeper(t, newHost(t, nil), bk.path, jsonLedger(t, l))

		// A native plugin in-process needs a context that is never done.
		ctx := withRequest("context call")
		if !bk.native {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		l.logRequest = "context call"
		got, err := p.CallJSONContext(ctx, "record", `["entry", 3]`)
		if err != nil || got != "3" {
			t.Fatalf("record = %q, %v", got, err)
		}
		out, err := p.CallContext(ctx, methodRecord, recordInput("raw", 2))
		if err != nil || !bytes.Equal(out, []byte{2, 0, 0, 0}) {
			t.Fatalf("raw record = %v, %v", out, err)
		}
		if len(l.logs) != 5 || l.logs[0] != `["entry #0"]` || l.logs[4] != `["raw #1"]` {
			t.Errorf("logs %q", l.logs)
		}
		l.check(t)

		if bk.native {
			_, err = p.CallJSONContext(cancellable(t), "record", `["refused", 1]`)
			wantError(t, err, fidius.ErrUnsupported, "")
			if len(l.logs) != 5 {
				t.Errorf("the refused call logged: %q", l.logs)
			}
		}
	})
}

// Goroutines share a plugin, each call with a context of its own: the
// cancelled calls stop, the others are not disturbed, and each call's
// token and goroutine are its own.
func TestCallContextConcurrent(t *testing.T) {
	host := isolatedHost(t, func(b *fidius.Builder) { b.CallDeadline(cancelBackup) })
	options := faultyOptions(t, nil)
	p := loadPath(t, host, faultyNative, "", options)
	bystander := loadPath(t, host, faultyNative, "", options)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wg.Go(func() {
		for range 3 {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := p.CallJSONContext(ctx, "fault", `["spin"]`)
			cancel()
			if !errors.Is(err, fidius.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
				errs <- fmt.Errorf("spin: %v", err)
			}
		}
	})
	for worker := range 3 {
		wg.Go(func() {
			for i := range 20 {
				ctx, cancel := context.WithCancel(context.Background())
				want := strconv.Itoa(worker*100 + i + 1)
				got, err := bystander.CallJSONContext(ctx, "ping", "["+strconv.Itoa(worker*100+i)+"]")
				cancel()
				if err != nil || got != want {
					errs <- fmt.Errorf("ping: %q, %v; want %s", got, err, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	jsonIs(t, p, "ping", "[1]", "2")
	if usage := usageOf(t, bystander); usage.Restarts != 0 || usage.Calls != 60 {
		t.Errorf("the bystander's usage: %+v", usage)
	}
}

// The status and its sentinel.
func TestStatusCancelled(t *testing.T) {
	if fidius.StatusCancelled != 319 || fidius.StatusCancelled.String() != "CANCELLED" || fidius.StatusName(319) != "CANCELLED" {
		t.Errorf("StatusCancelled = %d %q", uint32(fidius.StatusCancelled), fidius.StatusCancelled.String())
	}
	if !errors.Is(&fidius.Error{Status: fidius.StatusCancelled, Message: "m"}, fidius.ErrCancelled) ||
		errors.Is(fidius.ErrTimeout, fidius.ErrCancelled) {
		t.Error("ErrCancelled matches by status only")
	}
}
