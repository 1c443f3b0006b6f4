package fidius_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

func TestVersionAndStatusNames(t *testing.T) {
	if fidius.Version() != fidius.HeaderVersion {
		t.Errorf("Version() = %q, header says %q", fidius.Version(), fidius.HeaderVersion)
	}
	if fidius.VersionNumber() != 100 {
		t.Errorf("VersionNumber() = %d, want 100 for 0.1.0", fidius.VersionNumber())
	}
	for status, want := range map[fidius.Status]string{
		fidius.StatusOK:             "OK",
		fidius.StatusPluginNotFound: "PLUGIN_NOT_FOUND",
		fidius.StatusMemoryLimit:    "MEMORY_LIMIT",
		fidius.StatusInvalidUTF8:    "INVALID_UTF8",
		123456:                      "UNKNOWN(123456)",
	} {
		if got := status.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", uint32(status), got, want)
		}
	}
	if fidius.StatusName(101) != "PLUGIN_NOT_FOUND" || fidius.StatusName(99) != "UNKNOWN" {
		t.Errorf("StatusName: %q, %q", fidius.StatusName(101), fidius.StatusName(99))
	}
	if got := fidius.ErrTimeout.Error(); got != "fidius: TIMEOUT" {
		t.Errorf("ErrTimeout.Error() = %q", got)
	}
}

func TestSignaturesHash(t *testing.T) {
	hash, err := fidius.SignaturesHash("add:i64,i64->i64")
	if err != nil || hash != 0xbe30b9d096b2c49e {
		t.Errorf("SignaturesHash(add) = %#x, %v", hash, err)
	}
	// Spacing does not matter: the canonical spelling is hashed.
	spaced, err := fidius.SignaturesHash("add: i64 , i64 -> i64")
	if err != nil || spaced != hash {
		t.Errorf("spaced signature hashes to %#x, %v; want %#x", spaced, err, hash)
	}
	empty, err := fidius.SignaturesHash()
	if err != nil || empty != 0xcbf29ce484222325 {
		t.Errorf("SignaturesHash() = %#x, %v; want the FNV offset basis", empty, err)
	}
	_, err = fidius.SignaturesHash("\xff\xfe")
	wantError(t, err, fidius.ErrInvalidUTF8, "")
	_, err = fidius.SignaturesHash("not a signature")
	wantError(t, err, fidius.ErrInvalidInterface, "")
}

func TestRawCalls(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", nil)

	info := calc.Info()
	if info.Name != "BasicCalculator" || info.InterfaceName != "Calculator" || info.InterfaceHash != calculatorHash ||
		info.InterfaceVersion != 2 || info.Runtime != fidius.RuntimeCdylib ||
		info.BufferStrategy != fidius.BufferPluginAllocated || info.Capabilities != 1 ||
		!strings.HasSuffix(info.Path, "libcalc_plugin.so") {
		t.Errorf("unexpected info %+v", info)
	}
	if calc.MethodCount() != 8 {
		t.Errorf("MethodCount() = %d, want 8", calc.MethodCount())
	}

	// add(3, 7): bincode of two little-endian i64 in, one out.
	out, err := calc.Call(methodAdd, i64s(3, 7))
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if !bytes.Equal(out, []byte{10, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("add(3, 7) = %v, want bincode of 10", out)
	}

	out, err = calc.Call(methodGreet, bincodeString("hello"))
	if err != nil || !bytes.Equal(out, bincodeString("Hello, hello!")) {
		t.Errorf("greet(hello) = %q, %v", out, err)
	}

	// A raw method: the bytes themselves, no encoding.
	out, err = calc.Call(methodReverse, []byte("raw!"))
	if err != nil || string(out) != "!war" {
		t.Errorf("reverse(raw!) = %q, %v", out, err)
	}
	out, err = calc.Call(methodPing, nil)
	if err != nil || out == nil || len(out) != 0 {
		t.Errorf("ping() = %v (nil: %v), %v; want an empty result", out, out == nil, err)
	}

	if !calc.HasCapability(0) || calc.HasCapability(1) || calc.HasCapability(64) {
		t.Errorf("capabilities: bit 0 %v, bit 1 %v, bit 64 %v", calc.HasCapability(0), calc.HasCapability(1), calc.HasCapability(64))
	}
	out, err = calc.Call(methodMultiply, i64s(6, 7))
	if err != nil || decodeI64(t, out) != 42 {
		t.Errorf("multiply(6, 7) = %v, %v", out, err)
	}

	if diags := calc.Diagnostics(); len(diags) != 0 {
		t.Errorf("Diagnostics() = %q, want none", diags)
	}
	if _, err := calc.Interface(); !errors.Is(err, fidius.ErrNoInterface) {
		t.Errorf("Interface() of a plugin loaded without one: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", nil)

	traits, err := calc.TraitMetadata()
	if err != nil || len(traits) != 2 || traits[1] != (fidius.Metadata{Key: "category", Value: "math"}) {
		t.Errorf("TraitMetadata() = %+v, %v", traits, err)
	}
	add, err := calc.MethodMetadata(methodAdd)
	if err != nil || len(add) != 2 || add[0] != (fidius.Metadata{Key: "doc", Value: "adds two integers"}) {
		t.Errorf("MethodMetadata(add) = %+v, %v", add, err)
	}
	greet, err := calc.MethodMetadata(methodGreet)
	if err != nil || len(greet) != 0 {
		t.Errorf("MethodMetadata(greet) = %+v, %v", greet, err)
	}
	_, err = calc.MethodMetadata(8)
	wantError(t, err, fidius.ErrMethodOutOfRange, "")
}

func TestJSONCalls(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")})

	jsonIs(t, calc, "add", "[3, 7]", "10")
	jsonIs(t, calc, "greet", `["x"]`, `"Hello, x!"`)
	jsonIs(t, calc, "describe", `[true, 0.5, ["a"], null]`, `"flag=true ratio=0.5 tags=a note=none"`)
	jsonIs(t, calc, "reverse", "[[1, 2, 3]]", "[3,2,1]")
	jsonIs(t, calc, "ping", "[]", "null")
	jsonIs(t, calc, "multiply", "[6, 7]", "42")
	got, err := calc.CallJSONIndex(methodGreet, `["index"]`)
	if err != nil || got != `"Hello, index!"` {
		t.Errorf("CallJSONIndex(greet) = %s, %v", got, err)
	}

	// The plugin hands out its own handle on the interface it was loaded with.
	iface, err := calc.Interface()
	if err != nil {
		t.Fatalf("Interface(): %v", err)
	}
	defer iface.Close()
	if iface.Name() != "Calculator" || iface.Hash() != calculatorHash {
		t.Errorf("plugin interface %s %#x", iface.Name(), iface.Hash())
	}
}

func TestPluginError(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")})

	check := func(how string, err error) {
		t.Helper()
		ferr := wantError(t, err, fidius.ErrPluginError, "BasicCalculator")
		if ferr.Status != fidius.StatusPluginError || ferr.PluginCode != "DIV_ZERO" ||
			ferr.PluginMessage != "cannot divide 1 by zero" || ferr.PluginDetails != `{"dividend":1}` {
			t.Errorf("%s: plugin error %+v", how, ferr)
		}
		if errors.Is(err, fidius.ErrPluginPanic) {
			t.Errorf("%s: a plugin error matches ErrPluginPanic", how)
		}
	}
	out, err := calc.Call(methodDivide, i64s(1, 0))
	if out != nil {
		t.Errorf("failed call returned %v", out)
	}
	check("raw", err)
	json, err := calc.CallJSON("divide", "[1, 0]")
	if json != "" {
		t.Errorf("failed call returned %q", json)
	}
	check("json", err)
	jsonIs(t, calc, "divide", "[-9, 2]", "-4")
}

// Every error a cdylib plugin call can be made to give.
func TestCallErrors(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calculator := interfaceFile(t, "calculator.toml")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: calculator})
	bare := load(t, host, "BasicCalculator", nil)
	partial := loadPath(t, host, "plugins/libcalc_plugin.so", "PartialCalculator", &fidius.LoadOptions{Interface: calculator})

	_, err := calc.Call(methodBoom, nil)
	wantError(t, err, fidius.ErrPluginPanic, "panicked on purpose")
	jsonIs(t, calc, "add", "[20, 22]", "42") // still usable after a panic

	_, err = bare.CallJSON("add", "[1, 2]")
	wantError(t, err, fidius.ErrNoInterface, "")
	_, err = calc.CallJSON("add", `[1, "x"]`)
	wantError(t, err, fidius.ErrArgumentMismatch, "argument 2")
	_, err = calc.CallJSON("add", "[1]")
	wantError(t, err, fidius.ErrArgumentMismatch, "")
	_, err = calc.CallJSON("add", "[1,")
	wantError(t, err, fidius.ErrInvalidJSON, "not valid JSON")
	_, err = calc.CallJSON("add", "")
	wantError(t, err, fidius.ErrInvalidJSON, "")
	_, err = calc.CallJSON("subtract", "[1, 2]")
	wantError(t, err, fidius.ErrUnknownMethod, "subtract")
	_, err = calc.CallJSONIndex(99, "[]")
	wantError(t, err, fidius.ErrMethodOutOfRange, "")
	_, err = calc.Call(8, nil)
	wantError(t, err, fidius.ErrMethodOutOfRange, "8 methods")
	_, err = calc.Call(methodAdd, []byte("abc"))
	wantError(t, err, fidius.ErrPluginSerialization, "")

	// An optional method the plugin lacks.
	if partial.HasCapability(0) {
		t.Error("PartialCalculator claims multiply")
	}
	_, err = partial.Call(methodMultiply, i64s(6, 7))
	wantError(t, err, fidius.ErrNotImplemented, "")
	_, err = partial.CallJSON("multiply", "[6, 7]")
	wantError(t, err, fidius.ErrNotImplemented, "multiply")
	jsonIs(t, partial, "add", "[1, 1]", "2")
}

func TestLoadErrors(t *testing.T) {
	host := newHost(t, nil, "plugins")

	_, err := host.Load("Nobody", nil)
	wantError(t, err, fidius.ErrPluginNotFound, "'Nobody'")
	_, err = host.LoadPath(fixture(t, "plugins/libnothing.so"), "", nil)
	wantError(t, err, fidius.ErrFileNotFound, "libnothing.so")
	_, err = host.LoadPath(fixture(t, "plugins/libcalc_plugin.so"), "", nil)
	wantError(t, err, fidius.ErrAmbiguousPlugin, "libcalc_plugin.so")
	_, err = host.LoadPath(fixture(t, "crafted/libdefect_magic.so"), "", nil)
	wantError(t, err, fidius.ErrInvalidMagic, "libdefect_magic.so")
	_, err = host.LoadPath(fixture(t, "keys/trusted.public"), "", nil)
	wantError(t, err, fidius.ErrNotALibrary, "trusted.public")
	_, err = host.LoadPath(fixture(t, "crafted/libdefect_construct_returns_null.so"), "", nil)
	wantError(t, err, fidius.ErrConstructFailed, "")

	// An interface the plugin does not match.
	echo := interfaceFile(t, "echo.toml")
	_, err = host.Load("BasicCalculator", &fidius.LoadOptions{Interface: echo})
	wantError(t, err, fidius.ErrInterfaceHashMismatch, "")
	strict := newHost(t, func(b *fidius.Builder) { b.InterfaceHash(0x1234) }, "plugins")
	_, err = strict.Load("BasicCalculator", nil)
	wantError(t, err, fidius.ErrInterfaceHashMismatch, "0x0271e9b7d21d10f1")
}

func TestSignatures(t *testing.T) {
	signed := newHost(t, func(b *fidius.Builder) {
		b.RequireSignature(true).AddTrustedKeyFile(fixture(t, "keys/trusted.public"))
	}, "signed")

	calc := load(t, signed, "BasicCalculator", nil)
	out, err := calc.Call(methodAdd, i64s(1, 2))
	if err != nil || decodeI64(t, out) != 3 {
		t.Errorf("signed add(1, 2) = %v, %v", out, err)
	}
	_, err = signed.LoadPath(fixture(t, "plugins/libcalc_plugin.so"), "BasicCalculator", nil)
	wantError(t, err, fidius.ErrSignatureRequired, "")
	_, err = signed.LoadPath(fixture(t, "signed/libmarker.so"), "", nil)
	wantError(t, err, fidius.ErrSignatureInvalid, "libmarker.so")

	// Only the untrusted key: the signed library no longer verifies.
	untrusted := newHost(t, func(b *fidius.Builder) {
		b.RequireSignature(true).AddTrustedKeyFile(fixture(t, "keys/untrusted.public"))
	})
	_, err = untrusted.LoadPath(fixture(t, "signed/libcalc_plugin.so"), "BasicCalculator", nil)
	wantError(t, err, fidius.ErrSignatureInvalid, "")
}

func TestBuilderErrors(t *testing.T) {
	// The first failing option is what Build reports; later ones are ignored.
	_, err := fidius.NewBuilder().
		AddTrustedKey(make([]byte, 31)).
		AddSearchPath("").
		Build()
	wantError(t, err, fidius.ErrInvalidKey, "")

	b := fidius.NewBuilder().AddSearchPath("")
	wantError(t, b.Err(), fidius.ErrInvalidArgument, "")
	b.Close()

	_, err = fidius.NewBuilder().AddTrustedKeyFile(fixture(t, "keys/nothing.public")).Build()
	wantError(t, err, fidius.ErrFileNotFound, "")
	_, err = fidius.NewBuilder().AddSearchPath("bad\xff").Build()
	wantError(t, err, fidius.ErrInvalidUTF8, "")
	_, err = fidius.NewBuilder().LoadPolicy(7).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().BufferStrategy(0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().MaxOutputSize(0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().WasmMemoryLimit(0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().AddDeniedCapability("").Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().MaxLibrarySize(0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")
	_, err = fidius.NewBuilder().MaxPackageSize(0).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "")

	// Signatures required without a trusted key fail at Build.
	_, err = fidius.NewBuilder().RequireSignature(true).Build()
	wantError(t, err, fidius.ErrInvalidArgument, "no trusted key")

	// Build consumes the builder.
	b = fidius.NewBuilder().LoadPolicy(fidius.LoadPolicyLenient)
	host, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	host.Close()
	_, err = b.Build()
	wantError(t, err, fidius.ErrMisuse, "builder")
	b.Close() // harmless after Build
}

func TestMaxOutputSize(t *testing.T) {
	host := newHost(t, func(b *fidius.Builder) {
		b.BufferStrategy(fidius.BufferArena).MaxOutputSize(5000)
	}, "arena")
	echo := load(t, host, "ArenaEcho", nil)
	if echo.Info().BufferStrategy != fidius.BufferArena {
		t.Errorf("ArenaEcho strategy %v", echo.Info().BufferStrategy)
	}
	// repeat("a", times): bincode String then u32.
	repeat := func(times uint32) ([]byte, error) {
		in := append(bincodeString("a"), byte(times), byte(times>>8), byte(times>>16), byte(times>>24))
		return echo.Call(0, in)
	}
	out, err := repeat(4500)
	if err != nil || len(out) != 8+4500 {
		t.Errorf("repeat(a, 4500): %d bytes, %v", len(out), err)
	}
	_, err = repeat(100000)
	wantError(t, err, fidius.ErrOutputTooLarge, "")
}

func TestMaxLibrarySize(t *testing.T) {
	library := fixture(t, "plugins/libcalc_plugin.so")
	small := newHost(t, func(b *fidius.Builder) { b.MaxLibrarySize(1000) })
	_, err := small.LoadPath(library, "BasicCalculator", nil)
	wantError(t, err, fidius.ErrFileTooLarge, "limit of 1000 bytes")

	// The default limit takes the library.
	calc := loadPath(t, newHost(t, nil), "plugins/libcalc_plugin.so", "BasicCalculator", nil)
	out, err := calc.Call(methodAdd, i64s(1, 2))
	if err != nil || decodeI64(t, out) != 3 {
		t.Errorf("add(1, 2) = %v, %v", out, err)
	}
}

// A FIFO where a library is expected is refused without being read: a read
// would wait for a writer forever.
func TestNotARegularFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "libx.so")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	start := time.Now()
	_, err := newHost(t, nil).LoadPath(fifo, "", nil)
	wantError(t, err, fidius.ErrNotARegularFile, "libx.so")
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("refusing the FIFO took %v", elapsed)
	}
}

func TestClosedHandles(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc, err := host.Load("BasicCalculator", nil)
	if err != nil {
		t.Fatal(err)
	}
	calc.Close()
	calc.Close() // idempotent
	_, err = calc.Call(methodAdd, i64s(1, 2))
	wantError(t, err, fidius.ErrMisuse, "plugin is closed")
	_, err = calc.CallJSON("add", "[1, 2]")
	wantError(t, err, fidius.ErrMisuse, "closed")
	if calc.MethodCount() != 0 || calc.HasCapability(0) || calc.Info().Name != "BasicCalculator" {
		t.Errorf("closed plugin: %d methods, capability %v, info %+v", calc.MethodCount(), calc.HasCapability(0), calc.Info())
	}

	// Plugins outlive the host that loaded them.
	other := load(t, host, "BasicCalculator", nil)
	host.Close()
	host.Close()
	out, err := other.Call(methodAdd, i64s(2, 2))
	if err != nil || decodeI64(t, out) != 4 {
		t.Errorf("add after the host closed: %v, %v", out, err)
	}
	_, err = host.Load("BasicCalculator", nil)
	wantError(t, err, fidius.ErrMisuse, "host is closed")
	_, err = host.Discover()
	wantError(t, err, fidius.ErrMisuse, "host is closed")
}

func TestDiscovery(t *testing.T) {
	host := newHost(t, nil, "plugins")
	found, err := host.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Plugins) != 2 || len(found.Skipped) != 0 {
		t.Fatalf("discovered %+v", found)
	}
	basic, ok := found.Plugin("BasicCalculator")
	if !ok || basic.Capabilities != 1 || basic.InterfaceHash != calculatorHash || basic.Runtime != fidius.RuntimeCdylib {
		t.Errorf("BasicCalculator: %+v (found %v)", basic, ok)
	}
	partial, ok := found.Plugin("PartialCalculator")
	if !ok || partial.Capabilities != 0 {
		t.Errorf("PartialCalculator: %+v (found %v)", partial, ok)
	}
	if _, ok := found.Plugin("Nobody"); ok {
		t.Error("found a plugin called Nobody")
	}

	// Skipped files, and a search path that does not exist, are explained.
	crafted := newHost(t, func(b *fidius.Builder) { b.AddSearchPath(fixture(t, "no-such-dir")) }, "crafted")
	found, err = crafted.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Skipped) < 10 {
		t.Fatalf("only %d skipped entries: %+v", len(found.Skipped), found.Skipped)
	}
	var sawMagic, sawMissingDir bool
	for _, s := range found.Skipped {
		if s.Path == "" || !strings.Contains(s.Message, s.Path) {
			t.Errorf("skipped entry %+v does not name its path", s)
		}
		if strings.HasSuffix(s.Path, "libdefect_magic.so") {
			sawMagic = s.Status == fidius.StatusInvalidMagic && errors.Is(s.Err(), fidius.ErrInvalidMagic)
		}
		if strings.HasSuffix(s.Path, "no-such-dir") {
			sawMissingDir = true
		}
	}
	if !sawMagic || !sawMissingDir {
		t.Errorf("skipped: magic %v, missing dir %v: %+v", sawMagic, sawMissingDir, found.Skipped)
	}
}
