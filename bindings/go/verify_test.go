package fidius_test

import (
	"os"
	"path/filepath"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// VerifyPath checks signatures without loading anything.
func TestVerifyPath(t *testing.T) {
	// The trusted key of a host that does not require signatures is enough.
	host := newHost(t, func(b *fidius.Builder) { b.AddTrustedKeyFile(fixture(t, "keys/trusted.public")) })
	for _, signed := range []string{"signed/libcalc_plugin.so", "wasm-signed/calc", "python-signed/calc"} {
		if err := host.VerifyPath(fixture(t, signed)); err != nil {
			t.Errorf("VerifyPath(%s): %v", signed, err)
		}
	}
	wantError(t, host.VerifyPath(fixture(t, "plugins/libcalc_plugin.so")), fidius.ErrSignatureRequired, "libcalc_plugin.so.sig")
	wantError(t, host.VerifyPath(fixture(t, "wasm/calc")), fidius.ErrSignatureRequired, "package.sig")
	// Signed, but by a key the host does not trust.
	wantError(t, host.VerifyPath(fixture(t, "signed/libmarker.so")), fidius.ErrSignatureInvalid, "libmarker.so")
	wantError(t, host.VerifyPath(fixture(t, "signed/nothing.so")), fidius.ErrFileNotFound, "nothing.so")

	// A signed library with one byte changed no longer verifies.
	dir := t.TempDir()
	library := copyFile(t, fixture(t, "signed/libcalc_plugin.so"), filepath.Join(dir, "libcalc_plugin.so"))
	copyFile(t, fixture(t, "signed/libcalc_plugin.so.sig"), library+".sig")
	if err := host.VerifyPath(library); err != nil {
		t.Fatalf("VerifyPath of the copy: %v", err)
	}
	bytes, err := os.ReadFile(library)
	if err != nil {
		t.Fatal(err)
	}
	bytes[len(bytes)/2] ^= 0xff
	if err := os.WriteFile(library, bytes, 0o644); err != nil {
		t.Fatal(err)
	}
	wantError(t, host.VerifyPath(library), fidius.ErrSignatureInvalid, "tampered")

	// A host without any trusted key cannot verify.
	wantError(t, newHost(t, nil).VerifyPath(fixture(t, "signed/libcalc_plugin.so")), fidius.ErrInvalidArgument, "no trusted key")
	closed := newHost(t, nil)
	closed.Close()
	wantError(t, closed.VerifyPath(fixture(t, "signed/libcalc_plugin.so")), fidius.ErrMisuse, "host is closed")
}

// copyFile copies from to to and returns to.
func copyFile(t testing.TB, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return to
}
