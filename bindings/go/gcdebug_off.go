//go:build !fidius_gcdebug

package fidius

// gcDebug reports whether the package was built with -tags fidius_gcdebug.
const gcDebug = false

// enterC runs before the package calls into the C library; it does nothing
// unless the package is built with -tags fidius_gcdebug (gcdebug_on.go).
func enterC() {}
