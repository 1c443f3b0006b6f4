package fidius_test

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// Many goroutines call one cdylib plugin at once, raw and JSON.
func TestConcurrentCalls(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")})

	var wg sync.WaitGroup
	var wrong atomic.Int64
	for worker := range 8 {
		wg.Go(func() {
			base := int64(worker) * 1_000_000
			for i := range int64(1000) {
				out, err := calc.Call(methodAdd, i64s(base, i))
				if err != nil || len(out) != 8 || decodeI64(t, out) != base+i {
					wrong.Add(1)
				}
				if i%10 == 0 {
					args := "[" + strconv.FormatInt(base, 10) + ", " + strconv.FormatInt(i, 10) + "]"
					if got, err := calc.CallJSON("add", args); err != nil || got != strconv.FormatInt(base+i, 10) {
						wrong.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if wrong.Load() != 0 {
		t.Errorf("%d wrong answers", wrong.Load())
	}
}

// Goroutines share one WASM plugin (its calls are serialized on one
// instance) and one host for loading.
func TestConcurrentWasm(t *testing.T) {
	host := newHost(t, nil, "wasm")
	options := &fidius.LoadOptions{Interface: interfaceFile(t, "calculator.toml")}
	calc := load(t, host, "WasmCalculator", options)

	var wg sync.WaitGroup
	for worker := range 4 {
		wg.Go(func() {
			for i := range 50 {
				a := worker*1000 + i
				if got, err := calc.CallJSON("add", "["+strconv.Itoa(a)+", 1]"); err != nil || got != strconv.Itoa(a+1) {
					t.Errorf("add(%d, 1) = %s, %v", a, got, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 3 {
			p, err := host.Load("WasmCalculator", options)
			if err != nil {
				t.Errorf("concurrent load: %v", err)
				continue
			}
			if got, err := p.CallJSON("multiply", "[6, 7]"); err != nil || got != "42" {
				t.Errorf("multiply(6, 7) = %s, %v", got, err)
			}
			p.Close()
		}
	})
	wg.Wait()
}

// Close waits for running calls, and later calls report a closed plugin:
// closing under load never frees a handle a call is using.
func TestCloseDuringCalls(t *testing.T) {
	host := newHost(t, nil, "plugins")
	calc, err := host.Load("BasicCalculator", nil)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var ok, closed, other atomic.Int64
	for range 4 {
		wg.Go(func() {
			for i := int64(0); ; i++ {
				out, err := calc.Call(methodAdd, i64s(i, 1))
				switch {
				// A plain check: t.Fatal may not be called off the test goroutine.
				case err == nil && len(out) == 8 && int64(binary.LittleEndian.Uint64(out)) == i+1:
					ok.Add(1)
				case errors.Is(err, fidius.ErrMisuse):
					closed.Add(1)
					return
				default:
					other.Add(1)
					return
				}
			}
		})
	}
	// Close only once calls are really running on every goroutine's behalf.
	for ok.Load() < 100 && other.Load() == 0 {
		runtime.Gosched()
	}
	calc.Close()
	wg.Wait()
	if closed.Load() != 4 || other.Load() != 0 {
		t.Errorf("%d calls ok, %d saw the plugin closed (want 4), %d failed otherwise", ok.Load(), closed.Load(), other.Load())
	}
}
