package fidius_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

// hostileManifest is the package.toml of the Python packages written by
// hostilePackage.
const hostileManifest = `[package]
name = "Hostile"
version = "1"
interface = "Calculator"
interface_version = 2
runtime = "python"

[python]
entry_module = "plugin"

[metadata]
`

// hostileCalculator is a Calculator whose add never returns and whose
// greet sleeps for an hour; multiply answers.
const hostileCalculator = `import time
__interface_hash__ = 0x0271E9B7D21D10F1
def add(a, b):
    while True:
        pass
def greet(name):
    time.sleep(3600)
def divide(a, b):
    return a // b
def describe(flag, ratio, tags, note):
    return ''
def boom():
    return ''
def reverse(data):
    return data[::-1]
def ping():
    return None
def multiply(a, b):
    return a * b
`

// hostilePackage writes a Python package whose plugin.py is source into a
// temporary directory and returns the package directory.
func hostilePackage(t testing.TB, source string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pkg")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"package.toml": hostileManifest, "plugin.py": source} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadHostileCalculator loads hostileCalculator; the plugin is closed when
// the test ends.
func loadHostileCalculator(t *testing.T, host *fidius.Host, options *fidius.LoadOptions) *fidius.Plugin {
	t.Helper()
	p, err := host.LoadPath(hostilePackage(t, hostileCalculator), "", options)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// wantTimeouts checks that add (an endless loop) and greet (an hour's
// sleep) are stopped at a deadline of 300 ms, well before the default 10 s,
// and that the plugin answers afterwards.
func wantTimeouts(t *testing.T, p *fidius.Plugin) {
	t.Helper()
	for _, call := range []struct{ method, args string }{{"add", "[1, 2]"}, {"greet", `["x"]`}} {
		start := time.Now()
		_, err := p.CallJSON(call.method, call.args)
		elapsed := time.Since(start)
		wantError(t, err, fidius.ErrTimeout, "deadline")
		if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("%s(%s) was stopped after %v", call.method, call.args, elapsed)
		}
	}
	jsonIs(t, p, "multiply", "[6, 7]", "42") // still usable
}

// wantImportTimeout checks that a package whose import never ends fails to
// load with StatusTimeout at a deadline of 300 ms.
func wantImportTimeout(t *testing.T, host *fidius.Host, options *fidius.LoadOptions) {
	t.Helper()
	start := time.Now()
	_, err := host.LoadPath(hostilePackage(t, "while True:\n    pass\n"), "", options)
	wantError(t, err, fidius.ErrTimeout, "deadline")
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("the endless import was stopped after %v", elapsed)
	}
}

func TestPythonDeadline(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) { b.PythonDeadline(300 * time.Millisecond) })
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	p := loadHostileCalculator(t, host, options)
	wantTimeouts(t, p)
	wantImportTimeout(t, host, options)
}

func TestPythonDeadlinePerLoad(t *testing.T) {
	host := newHost(t, nil)
	options := &fidius.LoadOptions{
		Interface:      interfaceFile(t, "calculator.toml"),
		PythonDeadline: 300 * time.Millisecond,
	}
	p := loadHostileCalculator(t, host, options)
	wantTimeouts(t, p)
	wantImportTimeout(t, host, options)
}

// The call deadline covers Python calls when no Python deadline is set.
func TestPythonCallDeadline(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) { b.CallDeadline(300 * time.Millisecond) })
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	p := loadHostileCalculator(t, host, options)
	wantTimeouts(t, p)
}
