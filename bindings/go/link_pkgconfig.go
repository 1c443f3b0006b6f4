//go:build fidius_pkgconfig

package fidius

// With -tags fidius_pkgconfig the compiler and linker flags come from
// `pkg-config fidius_host` instead of CGO_CFLAGS and CGO_LDFLAGS.

/*
#cgo pkg-config: fidius_host
*/
import "C"
