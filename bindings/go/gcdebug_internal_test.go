package fidius

import (
	"runtime"
	"testing"
)

// With -tags fidius_gcdebug every entry into the C library collects
// garbage first; without it, entering C costs nothing extra.
func TestEnterC(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_ = Version()
	runtime.ReadMemStats(&after)
	collections := after.NumGC - before.NumGC
	if gcDebug && collections < 2 {
		t.Errorf("built with fidius_gcdebug, but entering C ran %d collections, want 2", collections)
	}
	t.Logf("gcdebug %v: %d collections on entering C", gcDebug, collections)
}
