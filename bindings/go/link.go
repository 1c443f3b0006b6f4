//go:build !fidius_pkgconfig

package fidius

// The library is found through the environment, so that no path is
// hard-coded here: CGO_CFLAGS=-I<dir of fidius_host.h> and
// CGO_LDFLAGS=-L<dir of libfidius_host.so> (plus -Wl,-rpath,<same dir> when
// the library is not installed system-wide). Build with -tags
// fidius_pkgconfig to ask pkg-config for fidius_host instead.

/*
#cgo LDFLAGS: -lfidius_host
*/
import "C"
