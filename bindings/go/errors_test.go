package fidius_test

import (
	"strings"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// The numbers behind a mismatch or a method index out of range.
func TestErrorNumbers(t *testing.T) {
	strict := newHost(t, func(b *fidius.Builder) { b.InterfaceHash(0x1234) }, "plugins")
	_, err := strict.Load("BasicCalculator", nil)
	ferr := wantError(t, err, fidius.ErrInterfaceHashMismatch, "")
	if expected, found, ok := ferr.Mismatch(); !ok || expected != 0x1234 || found != calculatorHash {
		t.Errorf("hash Mismatch() = %#x, %#x, %v", expected, found, ok)
	}
	if _, _, ok := ferr.MethodOutOfRange(); ok {
		t.Error("a hash mismatch has a method index")
	}

	arenaOnly := newHost(t, func(b *fidius.Builder) { b.BufferStrategy(fidius.BufferArena) }, "plugins")
	_, err = arenaOnly.Load("BasicCalculator", nil)
	ferr = wantError(t, err, fidius.ErrBufferStrategyMismatch, "")
	if expected, found, ok := ferr.Mismatch(); !ok || fidius.BufferStrategy(expected) != fidius.BufferArena ||
		fidius.BufferStrategy(found) != fidius.BufferPluginAllocated {
		t.Errorf("strategy Mismatch() = %d, %d, %v", expected, found, ok)
	}

	// An interface file of another version than the plugin's 2.
	toml, err := interfaceFile(t, "calculator.toml").ToTOML()
	if err != nil {
		t.Fatal(err)
	}
	other, err := fidius.NewInterfaceFromTOML(replaceOnce(t, toml, "version = 2", "version = 5"))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, other)
	_, err = newHost(t, nil, "plugins").Load("BasicCalculator", &fidius.LoadOptions{Interface: other})
	ferr = wantError(t, err, fidius.ErrInterfaceVersionMismatch, "")
	if expected, found, ok := ferr.Mismatch(); !ok || expected != 5 || found != 2 {
		t.Errorf("version Mismatch() = %d, %d, %v", expected, found, ok)
	}

	calc := load(t, newHost(t, nil, "plugins"), "BasicCalculator", nil)
	_, err = calc.Call(99, nil)
	ferr = wantError(t, err, fidius.ErrMethodOutOfRange, "99")
	if index, count, ok := ferr.MethodOutOfRange(); !ok || index != 99 || count != 8 {
		t.Errorf("MethodOutOfRange() = %d, %d, %v", index, count, ok)
	}
	if _, _, ok := ferr.Mismatch(); ok {
		t.Error("a method out of range is a mismatch")
	}

	// Other errors have neither, nor do errors made in Go.
	_, err = calc.Call(methodDivide, i64s(1, 0))
	ferr = wantError(t, err, fidius.ErrPluginError, "")
	if _, _, ok := ferr.Mismatch(); ok {
		t.Error("a plugin error is a mismatch")
	}
	if _, _, ok := ferr.MethodOutOfRange(); ok {
		t.Error("a plugin error has a method index")
	}
	if _, _, ok := fidius.ErrMethodOutOfRange.MethodOutOfRange(); ok {
		t.Error("the sentinel has a method index")
	}
}

// replaceOnce replaces the one occurrence of old in s.
func replaceOnce(t testing.TB, s, old, replacement string) string {
	t.Helper()
	before, after, found := strings.Cut(s, old)
	if !found {
		t.Fatalf("%q not found", old)
	}
	return before + replacement + after
}
