package fidius_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// The Calculator interface hash every calculator fixture has.
const calculatorHash = 0x0271e9b7d21d10f1

// Method indices of the Calculator interface.
const (
	methodAdd uint32 = iota
	methodGreet
	methodDivide
	methodDescribe
	methodBoom
	methodReverse
	methodPing
	methodMultiply
)

// TestMain refuses to run without fixtures: a missing FIDIUS_TEST_FIXTURES
// fails the package instead of skipping what needs it.
func TestMain(m *testing.M) {
	if os.Getenv("FIDIUS_TEST_FIXTURES") == "" {
		fmt.Fprintln(os.Stderr, "FIDIUS_TEST_FIXTURES is not set: point it at the test fixture directory (target/test-fixtures)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// fixture returns the path of relative inside $FIDIUS_TEST_FIXTURES, and
// fails the test (rather than skipping it) when the variable is unset.
func fixture(t testing.TB, relative string) string {
	t.Helper()
	dir := os.Getenv("FIDIUS_TEST_FIXTURES")
	if dir == "" {
		t.Fatal("FIDIUS_TEST_FIXTURES is not set: point it at the test fixture directory (target/test-fixtures)")
	}
	return filepath.Join(dir, relative)
}

// newHost builds a host searching the fixture directories dirs, with extra
// options applied first; it is closed when the test ends.
func newHost(t testing.TB, configure func(*fidius.Builder), dirs ...string) *fidius.Host {
	t.Helper()
	b := fidius.NewBuilder()
	if configure != nil {
		configure(b)
	}
	for _, dir := range dirs {
		b.AddSearchPath(fixture(t, dir))
	}
	host, err := b.Build()
	if err != nil {
		t.Fatalf("building the host: %v", err)
	}
	closeAtEnd(t, host)
	return host
}

// closeAtEnd closes c when the test ends, failing the test if Close does.
func closeAtEnd(t testing.TB, c io.Closer) {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// interfaceFile reads interfaces/name of the fixtures; it is closed when the
// test ends.
func interfaceFile(t testing.TB, name string) *fidius.Interface {
	t.Helper()
	iface, err := fidius.NewInterfaceFromFile(fixture(t, filepath.Join("interfaces", name)))
	if err != nil {
		t.Fatalf("reading interface %s: %v", name, err)
	}
	closeAtEnd(t, iface)
	return iface
}

// load loads a plugin by name and closes it when the test ends.
func load(t testing.TB, host *fidius.Host, name string, options *fidius.LoadOptions) *fidius.Plugin {
	t.Helper()
	p, err := host.Load(name, options)
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	closeAtEnd(t, p)
	return p
}

// loadPath loads a plugin from a fixture path and closes it when the test ends.
func loadPath(t testing.TB, host *fidius.Host, relative, name string, options *fidius.LoadOptions) *fidius.Plugin {
	t.Helper()
	p, err := host.LoadPath(fixture(t, relative), name, options)
	if err != nil {
		t.Fatalf("loading %s from %s: %v", name, relative, err)
	}
	closeAtEnd(t, p)
	return p
}

// jsonIs checks that method(args) returns want.
func jsonIs(t testing.TB, p *fidius.Plugin, method, args, want string) {
	t.Helper()
	got, err := p.CallJSON(method, args)
	if err != nil {
		t.Fatalf("%s(%s): %v", method, args, err)
	}
	if got != want {
		t.Fatalf("%s(%s) = %s, want %s", method, args, got, want)
	}
}

// wantError checks that err is an *Error of status want, matching its
// sentinel, whose message contains text; it returns the *Error.
func wantError(t testing.TB, err error, want error, text string) *fidius.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var ferr *fidius.Error
	if !errors.As(err, &ferr) {
		t.Fatalf("error %T is not a *fidius.Error", err)
	}
	if !strings.Contains(ferr.Message, text) {
		t.Fatalf("message %q does not contain %q", ferr.Message, text)
	}
	return ferr
}

// i64s is the bincode encoding of a tuple of i64: each little-endian.
func i64s(values ...int64) []byte {
	out := make([]byte, 0, 8*len(values))
	for _, v := range values {
		out = binary.LittleEndian.AppendUint64(out, uint64(v))
	}
	return out
}

// bincodeString is the bincode encoding of a String: u64 length, then bytes.
func bincodeString(s string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(len(s))), s...)
}

// decodeI64 decodes a bincode i64 result.
func decodeI64(t testing.TB, out []byte) int64 {
	t.Helper()
	if len(out) != 8 {
		t.Fatalf("result is %d bytes, want 8: %v", len(out), out)
	}
	return int64(binary.LittleEndian.Uint64(out))
}
