//go:build fidius_gcdebug

package fidius

import "runtime"

// gcDebug reports whether the package was built with -tags fidius_gcdebug.
const gcDebug = true

// enterC runs before the package calls into the C library. With
// -tags fidius_gcdebug it collects garbage there, twice, letting the cleanup
// goroutine run in between: a handle whose Go owner is unreachable too early
// is then freed while the library still uses it, and the tests (under the
// race detector or not) crash or fail instead of passing by luck. Far too
// slow for production use.
func enterC() {
	runtime.GC()
	runtime.Gosched()
	runtime.GC()
}
