package fidius_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

func TestWasmCalculator(t *testing.T) {
	host := newHost(t, nil, "wasm")
	_, err := host.Load("WasmCalculator", nil)
	wantError(t, err, fidius.ErrNoInterface, "")

	calc := load(t, host, "WasmCalculator", &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")})
	if info := calc.Info(); info.Runtime != fidius.RuntimeWasm || info.InterfaceHash != calculatorHash {
		t.Errorf("info %+v", info)
	}
	jsonIs(t, calc, "add", "[3, 7]", "10")
	jsonIs(t, calc, "greet", `["Go"]`, `"Hello, Go!"`)
	jsonIs(t, calc, "ping", "[]", "null")

	// Typed methods take bincode, as on the cdylib; raw ones bytes.
	out, err := calc.Call(methodAdd, i64s(3, 7))
	if err != nil || decodeI64(t, out) != 10 {
		t.Errorf("raw add(3, 7) = %v, %v", out, err)
	}
	out, err = calc.Call(methodReverse, []byte("fidius"))
	if err != nil || string(out) != "suidif" {
		t.Errorf("reverse(fidius) = %q, %v", out, err)
	}

	_, err = calc.CallJSON("divide", "[1, 0]")
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != "DIV_ZERO" || ferr.PluginDetails != `{"dividend":1}` {
		t.Errorf("divide by zero: %+v", ferr)
	}
	_, err = calc.CallJSON("boom", "[]")
	wantError(t, err, fidius.ErrPluginTrap, "trapped")
	jsonIs(t, calc, "add", "[20, 22]", "42") // a fresh instance after the trap
}

func TestWasmLimits(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) {
		b.WasmDeadline(fidius.NoDeadline).WasmMemoryLimit(16 << 20)
	}, "wasm")
	hostile := load(t, host, "HostileGuest", &fidius.LoadOptions{
		Interface:    interfaceFile(t, "hostile.toml"),
		WasmDeadline: 200 * time.Millisecond,
	})

	jsonIs(t, hostile, "counter", "[]", "1")
	jsonIs(t, hostile, "counter", "[]", "2")
	start := time.Now()
	_, err := hostile.CallJSON("spin", "[]")
	elapsed := time.Since(start)
	wantError(t, err, fidius.ErrTimeout, "deadline")
	if elapsed < 200*time.Millisecond || elapsed > 60*time.Second {
		t.Errorf("the endless call was stopped after %v", elapsed)
	}
	jsonIs(t, hostile, "counter", "[]", "1") // a fresh instance

	_, err = hostile.CallJSON("hog", "[64]")
	wantError(t, err, fidius.ErrMemoryLimit, "16777216")
	jsonIs(t, hostile, "hog", "[2]", "2")
	if high, err := hostile.MemoryHighWater(); err != nil || high < 2<<20 || high > 16<<20 {
		t.Errorf("MemoryHighWater = %d, %v: want between 2 MiB and the 16 MiB cap", high, err)
	}
	_, err = hostile.CallJSON("crash", "[]")
	wantError(t, err, fidius.ErrPluginTrap, "crash")
	_, err = hostile.CallJSON("read_file", `["/etc/passwd"]`)
	wantError(t, err, fidius.ErrPluginError, "returned an error")

	// A load may set its own memory cap.
	tight := load(t, host, "HostileGuest", &fidius.LoadOptions{
		Interface:       interfaceFile(t, "hostile.toml"),
		WasmMemoryLimit: 8 << 20,
	})
	_, err = tight.CallJSON("hog", "[12]")
	wantError(t, err, fidius.ErrMemoryLimit, "8388608")

	_, err = host.Load("HostileGuest", &fidius.LoadOptions{Interface: interfaceFile(t, "hostile.toml"), WasmMemoryLimit: 0})
	if err != nil {
		t.Errorf("a zero memory limit should keep the host's: %v", err)
	}
}

func TestWasmDeniedCapability(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) { b.AddDeniedCapability("http") }, "wasm")
	policy, err := fidius.NewEgressAllowList()
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Close()
	_, err = host.Load("FetchGuest", &fidius.LoadOptions{Interface: interfaceFile(t, "fetcher.toml"), EgressPolicy: policy})
	wantError(t, err, fidius.ErrCapabilityDenied, "")
}

func TestWasmFreshInstances(t *testing.T) {
	hostile := interfaceFile(t, "hostile.toml")
	host := newHost(t, func(b *fidius.Builder) { b.WasmFreshInstancePerCall(true) }, "wasm")
	fresh := load(t, host, "HostileGuest", &fidius.LoadOptions{Interface: hostile})
	jsonIs(t, fresh, "counter", "[]", "1")
	jsonIs(t, fresh, "counter", "[]", "1")
	persistent := load(t, host, "HostileGuest", &fidius.LoadOptions{Interface: hostile, FreshInstancePerCall: fidius.Bool(false)})
	jsonIs(t, persistent, "counter", "[]", "1")
	jsonIs(t, persistent, "counter", "[]", "2")

	plain := newHost(t, nil, "wasm")
	perLoad := load(t, plain, "HostileGuest", &fidius.LoadOptions{Interface: hostile, FreshInstancePerCall: fidius.Bool(true)})
	jsonIs(t, perLoad, "counter", "[]", "1")
	jsonIs(t, perLoad, "counter", "[]", "1")
}

func TestWasmInstancePool(t *testing.T) {
	hostile := interfaceFile(t, "hostile.toml")
	host := newHost(t, func(b *fidius.Builder) { b.WasmInstancePool(1) }, "wasm")
	first := load(t, host, "HostileGuest", &fidius.LoadOptions{Interface: hostile})
	jsonIs(t, first, "counter", "[]", "1")
	_, err := host.Load("HostileGuest", &fidius.LoadOptions{Interface: hostile})
	wantError(t, err, fidius.ErrInstancePoolExhausted, "pool")
	first.Close() // gives its slot back
	second := load(t, host, "HostileGuest", &fidius.LoadOptions{Interface: hostile})
	jsonIs(t, second, "counter", "[]", "1")
	jsonIs(t, second, "counter", "[]", "2")
}

func TestWasmMaxPackageSize(t *testing.T) {
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	small := newHost(t, func(b *fidius.Builder) { b.MaxPackageSize(1000) })
	_, err := small.LoadPath(fixture(t, "wasm/calc"), "", options)
	wantError(t, err, fidius.ErrFileTooLarge, "1000")
	calc := loadPath(t, newHost(t, nil), "wasm/calc", "", options)
	jsonIs(t, calc, "add", "[1, 2]", "3")
}

// A guest asleep on a WASI clock waits in the host; the deadline ends it.
func TestWasmSleepEndsAtTheDeadline(t *testing.T) {
	host := newHost(t, nil, "wasm")
	hostile := load(t, host, "HostileGuest", &fidius.LoadOptions{
		Interface:    interfaceFile(t, "hostile.toml"),
		WasmDeadline: 200 * time.Millisecond,
	})
	start := time.Now()
	_, err := hostile.CallJSON("nap", "[3600000]")
	wantError(t, err, fidius.ErrTimeout, "deadline")
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond || elapsed > 30*time.Second {
		t.Errorf("the hour-long nap was stopped after %v", elapsed)
	}
}

func TestWasmSignedPackages(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) {
		b.RequireSignature(true).AddTrustedKeyFile(fixture(t, "keys/trusted.public"))
	})
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	calc := loadPath(t, host, "wasm-signed/calc", "", options)
	jsonIs(t, calc, "multiply", "[6, 7]", "42")
	_, err := host.LoadPath(fixture(t, "wasm/calc"), "", options)
	wantError(t, err, fidius.ErrSignatureRequired, "package.sig")
}

func TestPrecompileComponent(t *testing.T) {
	component, err := os.ReadFile(fixture(t, "wasm/calc/calc_component.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := os.ReadFile(fixture(t, "wasm/calc/package.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cwasm, err := fidius.PrecompileComponent(component)
	if err != nil || len(cwasm) == 0 {
		t.Fatalf("PrecompileComponent: %d bytes, %v", len(cwasm), err)
	}
	_, err = fidius.PrecompileComponent([]byte("nope"))
	wantError(t, err, fidius.ErrInvalidComponent, "precompile")
	_, err = fidius.PrecompileComponent(nil)
	if err == nil {
		t.Error("an empty component compiled")
	}

	// A package with its .cwasm next to the component.
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"package.toml":         manifest,
		"calc_component.wasm":  component,
		"calc_component.cwasm": cwasm,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}

	// Unsigned precompiled code is not used unless the host allows it.
	cautious := newHost(t, nil)
	p, err := cautious.LoadPath(dir, "", options)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if diags := p.Diagnostics(); len(diags) != 1 || !strings.Contains(diags[0], "not signed") {
		t.Errorf("Diagnostics() = %q", diags)
	}
	jsonIs(t, p, "add", "[1, 2]", "3")

	trusting := newHost(t, func(b *fidius.Builder) { b.AllowUnsignedPrecompiled(true) })
	q, err := trusting.LoadPath(dir, "", options)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if diags := q.Diagnostics(); len(diags) != 0 {
		t.Errorf("Diagnostics() = %q, want none", diags)
	}
	jsonIs(t, q, "add", "[2, 2]", "4")
}

func TestWasmCompileCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	// Two hosts, as two processes would be: the first compiles and keeps
	// the component, the second reads it.
	for round := 0; round < 2; round++ {
		host := newHost(t, func(b *fidius.Builder) { b.WasmCompileCache(cache, 0) })
		p, err := host.LoadPath(fixture(t, "wasm/calc"), "", options)
		if err != nil {
			t.Fatal(err)
		}
		if diags := p.Diagnostics(); len(diags) != 0 {
			t.Errorf("round %d: Diagnostics() = %q, want none", round, diags)
		}
		jsonIs(t, p, "add", "[40, 2]", "42")
		p.Close()
		entries, _ := filepath.Glob(filepath.Join(cache, "*.entry"))
		if len(entries) != 1 {
			t.Errorf("round %d: cache entries %q, want one", round, entries)
		}
	}
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := fidius.NewBuilder().WasmCompileCache(cache, 0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "others may write it")
}

func TestArchives(t *testing.T) {
	host := newHost(t, nil)
	dest := t.TempDir()
	dir, err := host.UnpackArchive(fixture(t, "archives/calc.fid"), dest)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(dest, "WasmCalculator-0.1.0") {
		t.Errorf("UnpackArchive() = %q", dir)
	}
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	for _, path := range []string{dir, fixture(t, "archives/calc.fid")} {
		p, err := host.LoadPath(path, "", options)
		if err != nil {
			t.Fatal(err)
		}
		jsonIs(t, p, "add", "[40, 2]", "42")
		p.Close()
	}
	_, err = host.UnpackArchive(fixture(t, "archives/calc.fid"), dest)
	wantError(t, err, fidius.ErrInvalidArgument, "already exists")
	_, err = host.UnpackArchive(fixture(t, "archives/missing.fid"), dest)
	wantError(t, err, fidius.ErrFileNotFound, "")
}

func TestWasmDiscovery(t *testing.T) {
	found, err := newHost(t, nil, "wasm").Discover()
	if err != nil {
		t.Fatal(err)
	}
	wasm := map[string]bool{}
	for _, info := range found.Plugins {
		if info.Runtime == fidius.RuntimeWasm {
			wasm[info.Name] = true
		}
	}
	if len(wasm) != 5 || !wasm["WasmCalculator"] || !wasm["HostileGuest"] || !wasm["FetchGuest"] || !wasm["SocketGuest"] || !wasm["WasmStreams"] {
		t.Errorf("WASM plugins found: %v", wasm)
	}
}
