package fidius_test

import (
	"io"
	"runtime"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// Every handle is an io.Closer whose Close is idempotent, returns nil and
// accepts a nil receiver.
func TestCloseIsIdempotentAndNilSafe(t *testing.T) {
	host := newHost(t, nil, "plugins")
	plugin, err := host.Load("BasicCalculator", nil)
	if err != nil {
		t.Fatal(err)
	}
	iface, err := fidius.NewInterfaceFromFile(fixture(t, "interfaces/calculator.toml"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := fidius.NewEgressAllowList("example.com")
	if err != nil {
		t.Fatal(err)
	}
	built := fidius.NewBuilder()
	if _, err := built.Build(); err != nil {
		t.Fatal(err)
	}
	handles := map[string]io.Closer{
		"builder":           fidius.NewBuilder(),
		"built builder":     built,
		"host":              host,
		"plugin":            plugin,
		"interface":         iface,
		"interface builder": fidius.NewInterfaceBuilder("Thing", 1),
		"egress policy":     policy,
	}
	for name, handle := range handles {
		for range 2 {
			if err := handle.Close(); err != nil {
				t.Errorf("%s: Close() = %v", name, err)
			}
		}
	}
	nils := map[string]io.Closer{
		"builder":           (*fidius.Builder)(nil),
		"host":              (*fidius.Host)(nil),
		"plugin":            (*fidius.Plugin)(nil),
		"interface":         (*fidius.Interface)(nil),
		"interface builder": (*fidius.InterfaceBuilder)(nil),
		"egress policy":     (*fidius.EgressPolicy)(nil),
	}
	for name, handle := range nils {
		if err := handle.Close(); err != nil {
			t.Errorf("nil %s: Close() = %v", name, err)
		}
	}
}

// Handles dropped without Close are freed once the garbage collector finds
// them unreachable: here a callback policy, and the plugin and load options
// holding it, whose Go callback the library releases only when every one of
// them is gone.
func TestUnclosedHandlesAreCollected(t *testing.T) {
	before := fidius.LiveEgressCallbacks()
	func() {
		policy, err := fidius.NewEgressPolicy(func(*fidius.HTTPRequest) bool { return false })
		if err != nil {
			t.Fatal(err)
		}
		host, err := fidius.NewBuilder().Build()
		if err != nil {
			t.Fatal(err)
		}
		iface, err := fidius.NewInterfaceFromFile(fixture(t, "interfaces/fetcher.toml"))
		if err != nil {
			t.Fatal(err)
		}
		plugin, err := host.LoadPath(fixture(t, "wasm/fetch"), "FetchGuest", &fidius.LoadOptions{Interface: iface, EgressPolicy: policy})
		if err != nil {
			t.Fatal(err)
		}
		if plugin.MethodCount() == 0 {
			t.Error("no methods")
		}
	}()
	if fidius.LiveEgressCallbacks() != before+1 {
		t.Fatalf("%d live callbacks, want %d", fidius.LiveEgressCallbacks(), before+1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fidius.LiveEgressCallbacks() != before {
		if time.Now().After(deadline) {
			t.Fatalf("the unclosed policy and plugin were not freed: %d live callbacks, want %d", fidius.LiveEgressCallbacks(), before)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
