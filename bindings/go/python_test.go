package fidius_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

func TestPythonCalculator(t *testing.T) {
	host := newHost(t, nil, "python")
	_, err := host.Load("PyCalculator", nil)
	wantError(t, err, fidius.ErrNoInterface, "")

	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	py := load(t, host, "PyCalculator", options)
	if info := py.Info(); info.Runtime != fidius.RuntimePython || info.InterfaceHash != calculatorHash || !py.HasCapability(0) {
		t.Errorf("info %+v, capability %v", info, py.HasCapability(0))
	}
	native := load(t, newHost(t, nil, "plugins"), "BasicCalculator", options)

	// The Python calculator answers as the native one does.
	for _, call := range []struct{ method, args string }{
		{"add", "[3, 7]"},
		{"add", "[9223372036854775807, 1]"},
		{"greet", `["Go"]`},
		{"divide", "[-9, 2]"},
		{"describe", `[true, 0.25, ["a", "b"], null]`},
		{"reverse", "[[1, 2, 3]]"},
		{"ping", "[]"},
	} {
		want, err := native.CallJSON(call.method, call.args)
		if err != nil {
			t.Fatalf("native %s(%s): %v", call.method, call.args, err)
		}
		jsonIs(t, py, call.method, call.args, want)
	}
	jsonIs(t, py, "multiply", "[6, 7]", "42")

	out, err := py.Call(methodAdd, i64s(3, 7))
	if err != nil || decodeI64(t, out) != 10 {
		t.Errorf("raw add(3, 7) = %v, %v", out, err)
	}
	out, err = py.Call(methodReverse, []byte("fidius"))
	if err != nil || string(out) != "suidif" {
		t.Errorf("reverse(fidius) = %q, %v", out, err)
	}
	_, err = py.Call(methodAdd, []byte{1, 2, 3})
	wantError(t, err, fidius.ErrPluginSerialization, "")

	_, err = py.CallJSON("divide", "[1, 0]")
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != "DIV_ZERO" || ferr.PluginDetails != `{"dividend":1}` {
		t.Errorf("divide by zero: %+v", ferr)
	}
	_, err = py.CallJSON("boom", "[]")
	wantError(t, err, fidius.ErrPluginError, "RuntimeError")
	_, err = py.CallJSON("add", "[1,")
	wantError(t, err, fidius.ErrInvalidJSON, "not valid JSON")
}

func TestPythonExceptions(t *testing.T) {
	host := newHost(t, nil)
	raising := loadPath(t, host, "python/raising", "", &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")})

	_, err := raising.CallJSON("add", "[1, 2]")
	wantError(t, err, fidius.ErrPluginError, "SystemExit")
	_, err = raising.CallJSON("divide", "[1, 2]")
	ferr := wantError(t, err, fidius.ErrPluginError, "")
	if ferr.PluginCode != "QUOTA" || !strings.Contains(ferr.PluginMessage, "over quota dividing 1") ||
		!strings.Contains(ferr.PluginDetails, "Traceback") {
		t.Errorf("QuotaError: %+v", ferr)
	}
	_, err = raising.CallJSON("describe", "[true, 1.0, [], null]")
	wantError(t, err, fidius.ErrPluginProtocol, "expected a str")
	_, err = raising.CallJSON("multiply", "[1, 2]")
	wantError(t, err, fidius.ErrNotImplemented, "multiply")
}

func TestPythonSigned(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) {
		b.RequireSignature(true).AddTrustedKeyFile(fixture(t, "keys/trusted.public"))
	})
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	signed := loadPath(t, host, "python-signed/calc", "", options)
	jsonIs(t, signed, "greet", `["signed"]`, `"Hello, signed!"`)
	_, err := host.LoadPath(fixture(t, "python/calc"), "", options)
	wantError(t, err, fidius.ErrSignatureRequired, "")
}

// Goroutines call one Python plugin while another loads and closes others.
func TestPythonConcurrent(t *testing.T) {
	host := newHost(t, nil, "python")
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	py := load(t, host, "PyCalculator", options)

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	wg.Go(func() {
		for range 5 {
			p, err := host.Load("PyCalculator", options)
			if err != nil {
				errs <- err
				continue
			}
			if got, err := p.CallJSON("multiply", "[6, 7]"); err != nil || got != "42" {
				errs <- fmt.Errorf("multiply(6, 7) on a new plugin = %q, %v", got, err)
			}
			p.Close()
		}
	})
	for worker := range 4 {
		wg.Go(func() {
			for i := range 50 {
				a := int64(worker * 1000)
				want := strconv.FormatInt(a+int64(i), 10)
				if got, err := py.CallJSON("add", "["+strconv.FormatInt(a, 10)+", "+strconv.Itoa(i)+"]"); err != nil || got != want {
					t.Errorf("add(%d, %d) = %s, %v", a, i, got, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("loader: %v", err)
	}
}
