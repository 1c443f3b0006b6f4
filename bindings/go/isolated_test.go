package fidius_test

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// The Faulty fixtures, native and Python, whose fault(how) crashes, aborts,
// exits, spins or leaks as asked.
const (
	faultyNative = "faulty/libfaulty_plugin.so"
	faultyPython = "isolated/py-faulty"
)

// workerPath is the worker executable built next to the library, given
// explicitly so that no default lookup is involved.
func workerPath(t testing.TB) string {
	return fixture(t, "../release/fidius-host-worker")
}

// isolatedHost builds a host that runs plugins isolated in the test worker,
// with extra options applied after.
func isolatedHost(t testing.TB, configure func(*fidius.Builder)) *fidius.Host {
	t.Helper()
	return newHost(t, func(b *fidius.Builder) {
		b.Isolation(fidius.Isolated).WorkerPath(workerPath(t))
		if configure != nil {
			configure(b)
		}
	})
}

// faultyOptions are load options with the Faulty interface (for calls by
// name) and the changes of configure.
func faultyOptions(t testing.TB, configure func(*fidius.LoadOptions)) *fidius.LoadOptions {
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "faulty.toml")}
	if configure != nil {
		configure(options)
	}
	return options
}

// usageOf returns the worker usage of an isolated plugin.
func usageOf(t testing.TB, p *fidius.Plugin) fidius.WorkerUsage {
	t.Helper()
	usage, err := p.WorkerUsage()
	if err != nil {
		t.Fatalf("WorkerUsage: %v", err)
	}
	return usage
}

// A crash in an isolated plugin fails the call, not the host: the next
// call runs on a new worker, with the plugin's state lost, and another
// handle of the same plugin never notices.
func TestIsolatedFaults(t *testing.T) {
	for _, fixtureCase := range []struct{ relative, name string }{
		{faultyNative, "FaultyNative"},
		{faultyPython, "PyFaulty"},
	} {
		t.Run(fixtureCase.name, func(t *testing.T) {
			host := isolatedHost(t, func(b *fidius.Builder) { b.RestartPolicy(5, time.Minute) })
			options := faultyOptions(t, nil)
			p := loadPath(t, host, fixtureCase.relative, "", options)
			bystander := loadPath(t, host, fixtureCase.relative, "", options)
			if info := p.Info(); info.Name != fixtureCase.name || p.MethodCount() != 4 {
				t.Errorf("info %+v, %d methods", info, p.MethodCount())
			}

			jsonIs(t, p, "ping", "[41]", "42")
			jsonIs(t, p, "calls", "[]", "1")
			// ping(41) raw: bincode of a u64 in and out.
			if out, err := p.Call(0, binary.LittleEndian.AppendUint64(nil, 41)); err != nil ||
				len(out) != 8 || binary.LittleEndian.Uint64(out) != 42 {
				t.Errorf("raw ping(41) = %v, %v", out, err)
			}
			_, err := p.CallJSON("fault", `["error"]`)
			if ferr := wantError(t, err, fidius.ErrPluginError, ""); ferr.PluginCode != "ASKED" {
				t.Errorf("plugin error %+v", ferr)
			}

			before := usageOf(t, p)
			if before.Pid <= 0 || before.Restarts != 0 || before.Calls != 4 || before.Errors != 1 || before.Timeouts != 0 {
				t.Errorf("usage before the crash: %+v", before)
			}
			if pid := usageOf(t, bystander).Pid; pid <= 0 || pid == before.Pid {
				t.Errorf("the bystander's worker is %d, the plugin's %d", pid, before.Pid)
			}

			_, err = p.CallJSON("fault", `["segfault"]`)
			wantError(t, err, fidius.ErrWorkerLost, "SIGSEGV")
			if after := usageOf(t, p); after.Pid != 0 || after.Errors != 2 {
				t.Errorf("usage after the crash: %+v", after)
			}
			// The next call restarts the worker: a new instance, state lost.
			jsonIs(t, p, "calls", "[]", "0")
			after := usageOf(t, p)
			if after.Pid <= 0 || after.Pid == before.Pid || after.Restarts != 1 {
				t.Errorf("usage after the restart: %+v (the first worker was %d)", after, before.Pid)
			}
			jsonIs(t, bystander, "ping", "[1]", "2")
			if usage := usageOf(t, bystander); usage.Restarts != 0 {
				t.Errorf("the bystander restarted: %+v", usage)
			}

			// Killed from outside between calls: the next call finds it gone,
			// the one after runs on a new worker.
			if err := syscall.Kill(after.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_, err = p.CallJSON("ping", "[1]")
			wantError(t, err, fidius.ErrWorkerLost, "SIGKILL")
			jsonIs(t, p, "ping", "[2]", "3")
		})
	}
}

// A call past the call deadline kills its worker (TIMEOUT); with a restart
// policy of 0 the plugin then stays lost, and says why.
func TestIsolatedDeadlineAndRestartPolicy(t *testing.T) {
	host := isolatedHost(t, func(b *fidius.Builder) {
		b.CallDeadline(300*time.Millisecond).RestartPolicy(0, time.Minute)
	})
	p := loadPath(t, host, faultyNative, "", faultyOptions(t, nil))
	if usage := usageOf(t, p); usage.PeakMemory == 0 {
		t.Errorf("the running worker's peak memory so far: %+v", usage)
	}
	start := time.Now()
	_, err := p.CallJSON("fault", `["spin"]`)
	elapsed := time.Since(start)
	wantError(t, err, fidius.ErrTimeout, "killed")
	if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("the spinning call took %v, want about 300ms", elapsed)
	}
	// The killed worker spun until the deadline: its CPU time counts.
	if usage := usageOf(t, p); usage.Timeouts != 1 || usage.Pid != 0 || usage.CPUTime < 50*time.Millisecond {
		t.Errorf("usage after the timeout: %+v", usage)
	}
	_, err = p.CallJSON("ping", "[1]")
	wantError(t, err, fidius.ErrWorkerLost, "restart policy")
	if usage := usageOf(t, p); usage.Restarts != 0 || usage.Pid != 0 {
		t.Errorf("usage with restarts refused: %+v", usage)
	}
}

// Load options isolate one plugin of an in-process host with a restart
// policy of its own, or keep one of an isolated host in-process.
func TestIsolationLoadOptions(t *testing.T) {
	inProcessHost := newHost(t, func(b *fidius.Builder) { b.WorkerPath(workerPath(t)) })
	isolated := loadPath(t, inProcessHost, faultyNative, "", faultyOptions(t, func(o *fidius.LoadOptions) {
		o.Isolation = new(fidius.Isolated)
		o.RestartPolicy = &fidius.RestartPolicy{MaxRestarts: 0}
	}))
	jsonIs(t, isolated, "ping", "[1]", "2")
	if usage := usageOf(t, isolated); usage.Pid <= 0 || usage.Calls != 1 {
		t.Errorf("usage of the plugin isolated by its load options: %+v", usage)
	}
	_, err := isolated.CallJSON("fault", `["abort"]`)
	wantError(t, err, fidius.ErrWorkerLost, "SIGABRT")
	_, err = isolated.CallJSON("ping", "[1]")
	wantError(t, err, fidius.ErrWorkerLost, "restart policy")

	// A restart policy in the load options overrides the host's (no
	// restart) in the other direction too.
	noRestarts := isolatedHost(t, func(b *fidius.Builder) { b.RestartPolicy(0, 0) })
	restarting := loadPath(t, noRestarts, faultyNative, "", faultyOptions(t, func(o *fidius.LoadOptions) {
		o.RestartPolicy = &fidius.RestartPolicy{MaxRestarts: 1, Window: time.Hour}
	}))
	_, err = restarting.CallJSON("fault", `["exit"]`)
	wantError(t, err, fidius.ErrWorkerLost, "exited with code 3")
	jsonIs(t, restarting, "calls", "[]", "0")
	_, err = restarting.CallJSON("fault", `["segfault"]`)
	wantError(t, err, fidius.ErrWorkerLost, "SIGSEGV")
	_, err = restarting.CallJSON("calls", "[]")
	wantError(t, err, fidius.ErrWorkerLost, "restart policy") // one restart an hour
	if usage := usageOf(t, restarting); usage.Restarts != 1 {
		t.Errorf("usage: %+v, want 1 restart", usage)
	}

	inProcess := loadPath(t, noRestarts, faultyNative, "", faultyOptions(t, func(o *fidius.LoadOptions) {
		o.Isolation = new(fidius.InProcess)
	}))
	_, err = inProcess.WorkerUsage()
	wantError(t, err, fidius.ErrUnsupported, "in-process")
	_, err = inProcess.MemoryHighWater()
	wantError(t, err, fidius.ErrUnsupported, "not a WASM plugin")
}

// The worker's caps: a leak past the memory cap, and CPU time past the
// CPU cap (a limit below a second counts as one), each end the worker.
func TestIsolatedCaps(t *testing.T) {
	host := isolatedHost(t, func(b *fidius.Builder) { b.WorkerMemoryLimit(768 << 20) })
	p := loadPath(t, host, faultyNative, "", faultyOptions(t, nil))
	_, err := p.CallJSON("fault", `["leak"]`)
	wantError(t, err, fidius.ErrWorkerLost, "memory cap 805306368 bytes")
	jsonIs(t, p, "ping", "[0]", "1")

	host = isolatedHost(t, func(b *fidius.Builder) {
		b.WorkerCPULimit(500 * time.Millisecond).CallDeadline(30 * time.Second)
	})
	p = loadPath(t, host, faultyNative, "", faultyOptions(t, nil))
	_, err = p.CallJSON("fault", `["spin"]`)
	wantError(t, err, fidius.ErrWorkerLost, "CPU-time cap 1 s")
	jsonIs(t, p, "ping", "[0]", "1")
}

// A hardened worker opens no network socket, reads no file outside the
// plugin's own, gains no privileges, and still answers; an unhardened one
// opens the socket. Unknown bits are refused.
func TestIsolatedHardening(t *testing.T) {
	plain := loadPath(t, isolatedHost(t, nil), faultyNative, "", faultyOptions(t, nil))
	jsonIs(t, plain, "fault", `["socket"]`, `"a network socket was opened"`)

	all := fidius.HardenNoNewPrivileges | fidius.HardenDenyNetwork | fidius.HardenConfineFilesystem
	if got := all.String(); got != "NoNewPrivileges|DenyNetwork|ConfineFilesystem" {
		t.Errorf("String() = %q", got)
	}
	host := isolatedHost(t, func(b *fidius.Builder) { b.WorkerHardening(all) })
	p := loadPath(t, host, faultyNative, "", faultyOptions(t, nil))
	_, err := p.CallJSON("fault", `["socket"]`)
	wantPluginError(t, err, "OS_ERROR", "Permission denied")
	key, err := filepath.Abs(fixture(t, "keys/trusted.public"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.CallJSON("fault", `["read:`+key+`"]`)
	wantPluginError(t, err, "OS_ERROR", "Permission denied")
	jsonIs(t, p, "fault", `["privileges"]`, `"no_new_privs=1"`)
	jsonIs(t, p, "ping", "[41]", "42")

	b := fidius.NewBuilder().WorkerHardening(8)
	wantError(t, b.Err(), fidius.ErrInvalidArgument, "unknown bits")
	_, err = b.Build()
	wantError(t, err, fidius.ErrInvalidArgument, "unknown bits")
	if got := (fidius.HardenDenyNetwork | 8).String(); got != "DenyNetwork|WorkerHardening(8)" {
		t.Errorf("String() = %q", got)
	}
}

// Discovery in a worker: libraries whose initialisers crash or hang are
// skipped entries with their reason, the other libraries are listed, and a
// load by name finds its library through the worker, then loads the plugin
// in-process (its isolation). The probe folder is never scanned in-process.
func TestIsolatedDiscovery(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) {
		b.DiscoveryIsolation(fidius.Isolated).WorkerPath(workerPath(t)).CallDeadline(1500 * time.Millisecond)
	}, "probe", "faulty")
	start := time.Now()
	found, err := host.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("the discovery took %v", elapsed)
	}
	var crashed, hung int
	for _, s := range found.Skipped {
		switch {
		case strings.HasSuffix(s.Path, "libinit_crash.so"):
			crashed++
			if s.Status != fidius.StatusWorkerLost || !strings.Contains(s.Message, "SIGSEGV") {
				t.Errorf("the crashing library: %+v", s)
			}
			wantError(t, s.Err(), fidius.ErrWorkerLost, "libinit_crash.so")
		case strings.HasSuffix(s.Path, "libinit_hang.so"):
			hung++
			if s.Status != fidius.StatusTimeout {
				t.Errorf("the hanging library: %+v", s)
			}
			wantError(t, s.Err(), fidius.ErrTimeout, "")
		default:
			t.Errorf("unexpected skipped entry %+v", s)
		}
	}
	if crashed != 1 || hung != 1 {
		t.Errorf("skipped %d crashing and %d hanging libraries: %+v", crashed, hung, found.Skipped)
	}
	if info, ok := found.Plugin("FaultyNative"); !ok || info.Runtime != fidius.RuntimeCdylib ||
		!strings.HasSuffix(info.Path, "libfaulty_plugin.so") {
		t.Errorf("FaultyNative: %+v (found %v) in %+v", info, ok, found.Plugins)
	}

	// By name: found through the worker, loaded in-process.
	p := load(t, host, "FaultyNative", faultyOptions(t, nil))
	_, err = p.WorkerUsage()
	wantError(t, err, fidius.ErrUnsupported, "in-process")
	jsonIs(t, p, "ping", "[1]", "2")
	_, err = host.Load("Nobody", nil)
	wantError(t, err, fidius.ErrPluginNotFound, "")

	// An unknown value is refused.
	b := fidius.NewBuilder().DiscoveryIsolation(9)
	wantError(t, b.Err(), fidius.ErrInvalidArgument, "isolation 9")
	_, err = b.Build()
	wantError(t, err, fidius.ErrInvalidArgument, "isolation 9")
}

// In-process plugins have no worker; a missing worker is named at load;
// bad settings are refused.
func TestIsolationSettings(t *testing.T) {
	// In-process by default: no worker is needed, none is asked for, even
	// with a worker path that does not exist.
	missing := fixture(t, "no-such-worker")
	host := newHost(t, func(b *fidius.Builder) {
		b.WorkerPath(missing).WorkerMemoryLimit(1 << 30).WorkerCPULimit(time.Minute)
	})
	p := loadPath(t, host, faultyNative, "", faultyOptions(t, nil))
	jsonIs(t, p, "ping", "[1]", "2")
	usage, err := p.WorkerUsage()
	wantError(t, err, fidius.ErrUnsupported, "in-process")
	if usage != (fidius.WorkerUsage{}) {
		t.Errorf("usage of an in-process plugin: %+v", usage)
	}

	// Isolated, the missing worker is named.
	_, err = host.LoadPath(fixture(t, faultyNative), "", faultyOptions(t, func(o *fidius.LoadOptions) {
		o.Isolation = new(fidius.Isolated)
	}))
	wantError(t, err, fidius.ErrWorkerUnavailable, "no-such-worker")
	_, err = newHost(t, func(b *fidius.Builder) {
		b.Isolation(fidius.Isolated).WorkerPath(missing)
	}).LoadPath(fixture(t, faultyNative), "", nil)
	wantError(t, err, fidius.ErrWorkerUnavailable, "no-such-worker")

	// Bad values, on the builder and in the load options.
	b := fidius.NewBuilder().Isolation(7)
	wantError(t, b.Err(), fidius.ErrInvalidArgument, "isolation 7")
	_, err = b.Build()
	wantError(t, err, fidius.ErrInvalidArgument, "isolation 7")
	_, err = fidius.NewBuilder().RestartPolicy(3, 0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "window")
	_, err = fidius.NewBuilder().RestartPolicy(3, -time.Second).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "negative")
	_, err = fidius.NewBuilder().WorkerCPULimit(-time.Second).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "negative")
	_, err = fidius.NewBuilder().WorkerPath("").Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	for _, options := range []*fidius.LoadOptions{
		{Isolation: new(fidius.Isolation(2))},
		{RestartPolicy: &fidius.RestartPolicy{MaxRestarts: 1}},
		{RestartPolicy: &fidius.RestartPolicy{Window: -time.Millisecond}},
	} {
		_, err = host.LoadPath(fixture(t, faultyNative), "", options)
		wantError(t, err, fidius.ErrInvalidArgument, "")
	}

	// A closed plugin has no usage.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = p.WorkerUsage()
	wantError(t, err, fidius.ErrMisuse, "closed")

	// Names and numbers.
	for status, want := range map[fidius.Status]string{
		fidius.StatusWorkerUnavailable: "WORKER_UNAVAILABLE",
		fidius.StatusWorkerLost:        "WORKER_LOST",
	} {
		if got := status.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint32(status), got, want)
		}
	}
	if fidius.StatusWorkerUnavailable != 134 || fidius.StatusWorkerLost != 318 {
		t.Errorf("statuses %d, %d", fidius.StatusWorkerUnavailable, fidius.StatusWorkerLost)
	}
	for isolation, want := range map[fidius.Isolation]string{
		fidius.InProcess: "InProcess",
		fidius.Isolated:  "Isolated",
		7:                "Isolation(7)",
	} {
		if got := isolation.String(); got != want {
			t.Errorf("Isolation(%d).String() = %q, want %q", uint32(isolation), got, want)
		}
	}
}
