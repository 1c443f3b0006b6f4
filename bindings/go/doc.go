// Package fidius embeds fidius plugins in Go programs: it discovers,
// verifies, loads and calls native (cdylib), WebAssembly and Python plugins
// through libfidius_host, the C-ABI plugin host.
//
// A Host (made with NewBuilder) scans search paths and loads plugins; a
// Plugin is called with raw bytes (Call: bincode of the argument tuple, or
// the bytes of a raw method) or, when loaded with an Interface, with JSON
// (CallJSON). Failures are *Error values carrying a Status; match them with
// errors.Is and the Err* sentinels, or errors.As for the details:
//
//	host, err := fidius.NewBuilder().AddSearchPath("plugins").Build()
//	if err != nil { ... }
//	defer host.Close()
//	iface, err := fidius.NewInterfaceFromFile("calculator.toml")
//	if err != nil { ... }
//	defer iface.Close()
//	calc, err := host.Load("BasicCalculator", &fidius.LoadOptions{Interface: iface})
//	if err != nil { ... }
//	defer calc.Close()
//	sum, err := calc.CallJSON("add", "[3, 7]") // "10"
//
// # Host functions
//
// A plugin may call its host through a host interface (a #[host_interface]
// trait it imports). Bind Go functions to one with NewJSONBinding or
// NewRawBinding and pass the Binding in LoadOptions.Bindings; call the
// plugin with Plugin.CallWithContext or Plugin.CallJSONWithContext to give
// the host functions the context.Context of the request they serve:
//
//	ledger, err := fidius.NewInterfaceFromFile("ledger.toml")
//	if err != nil { ... }
//	binding, err := fidius.NewJSONBinding(ledger, func(call fidius.HostCall, args string) (string, error) {
//		switch call.Name {
//		case "lookup":
//			return lookup(call.Context, args)
//		case "charge":
//			return "", &fidius.PluginError{Code: "NO_FUNDS", Message: "the account cannot pay"}
//		}
//		return "", nil
//	})
//	if err != nil { ... }
//	defer binding.Close()
//	p, err := host.Load("LedgerBookkeeper", &fidius.LoadOptions{Interface: iface, Bindings: []*fidius.Binding{binding}})
//	if err != nil { ... }
//	n, err := p.CallJSONWithContext(ctx, "lookup_plus_one", `["answer"]`)
//
// Host functions run on several goroutines and threads at once; see
// Binding for what they may do and return.
//
// # Cancellation
//
// Plugin.CallContext and Plugin.CallJSONContext pass their ctx to host
// functions as CallWithContext does, and are stopped when ctx is cancelled
// or its deadline passes: a WASM guest is interrupted, an isolated plugin's
// worker is killed (the next call starts a new one), an in-process Python
// plugin gets an exception. The call then fails with ErrCancelled, which
// wraps ctx.Err():
//
//	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
//	defer cancel()
//	_, err := p.CallJSONContext(ctx, "parse", `["..."]`)
//	if errors.Is(err, context.DeadlineExceeded) { ... } // and errors.Is(err, fidius.ErrCancelled)
//
// Native code running in the host's process cannot be stopped: an
// in-process cdylib plugin given a ctx that can be cancelled fails with
// ErrUnsupported without being called. Load it isolated to cancel its
// calls, or use CallWithContext.
//
// # Streams
//
// Methods with Stream<T> in their signature (the plugin must be loaded
// with an interface) are called with the streaming calls; a unary call of
// one, or a streaming call of a unary method, fails with ErrStreamMismatch.
// A server-streaming method (`-> Stream<T>`) gives a *Stream, whose items
// are pulled one at a time (Next, NextJSON; io.EOF at the end) or ranged
// over (All, AllJSON); breaking out of the loop, or Close, cancels it:
//
//	s, err := p.CallStreamJSON("count", "[3, 7]", nil)
//	if err != nil { ... }
//	for item, err := range s.AllJSON() { // "3", "4", "5", "6"
//		if err != nil { ... }
//	}
//
// The items of a Stream<T> argument are Items, made from an iterator
// (ItemsFromSeq, ItemsFromSeq2), a channel (ItemsFromChan) or a function
// (ItemsFromFunc), and read lazily, as the plugin asks for them: during the
// call for a client-streaming method (Plugin.CallClientStream, one result),
// during Stream.Next for a bidirectional one (Plugin.CallStream with its
// input):
//
//	sum, err := p.CallClientStreamJSON("sum", "[]", fidius.ItemsFromChan(numbers))
//	s, err := p.CallStreamJSON("shout", `["!"]`, fidius.ItemsFromSeq(words))
//
// Items that fail (an error, a panic, an item not of the item type) fail
// the call or stream with ErrStreamInputFailed, which wraps their error.
//
// # Isolation
//
// A native or Python plugin runs in the host's process unless isolated:
// Builder.Isolation (or LoadOptions.Isolation for one load) with Isolated
// runs each Plugin in a worker process of its own. A crash, abort or exit
// in the plugin then fails the call with ErrWorkerLost, and the next call
// starts a new worker (the plugin's state is lost) as the restart policy
// allows; a call past the call deadline kills the worker (ErrTimeout).
// Plugin.WorkerUsage reports the calls, errors, timeouts, restarts, the
// worker's pid and what the workers used (CPU time, peak memory).
// Builder.DiscoveryIsolation(Isolated) opens the libraries that
// Host.Discover (and Host.Load by name) scans in a worker too: one whose
// initialisers crash or hang is a skipped entry (StatusWorkerLost,
// StatusTimeout) instead of taking the host down:
//
//	host, err := fidius.NewBuilder().AddSearchPath("plugins").
//		Isolation(fidius.Isolated).
//		DiscoveryIsolation(fidius.Isolated).
//		CallDeadline(2 * time.Second).
//		WorkerMemoryLimit(1 << 30).
//		RestartPolicy(5, time.Minute).
//		Build()
//	if err != nil { ... }
//	_, err = p.CallJSON("parse", `["..."]`)
//	if errors.Is(err, fidius.ErrWorkerLost) { ... } // the next call restarts it
//
// # Memory
//
// Every string, byte slice and struct this package returns is a copy in Go
// memory: it stays valid after the handle it came from is closed. Handles
// (Host, Plugin, Interface, InterfaceBuilder, EgressPolicy, Binding,
// Builder, Stream) are io.Closers: Close is idempotent, accepts a nil
// receiver and returns nil.
// A runtime cleanup frees a handle that is garbage collected without
// Close, but closing explicitly releases libraries, WASM instances and
// worker processes at a known time.
//
// # Goroutines
//
// Host, Plugin, Interface, EgressPolicy and Binding are safe for
// concurrent use, and the Go functions of egress policies and bindings
// must be too.
// Builder and InterfaceBuilder are not: set one up from a single goroutine.
// A Stream is used by one goroutine at a time (concurrent calls are
// serialized) and may move between goroutines; its input Items are asked
// for one item at a time, on the goroutine calling the plugin or pulling
// the stream.
// LoadOptions and the result types are plain data. Close waits for calls
// running on the same handle (a Stream's Close, which never waits, leaves
// the stream to the Next running, which cancels it as it returns), so a
// handle is never freed under a call.
//
// # Building
//
// The package links against libfidius_host with cgo and finds the header
// and library through the environment, e.g.
//
//	CGO_CFLAGS=-I/path/to/include \
//	CGO_LDFLAGS="-L/path/to/lib -Wl,-rpath,/path/to/lib" go build
//
// or, with -tags fidius_pkgconfig, through pkg-config (package fidius_host).
//
// With -tags fidius_gcdebug the package collects garbage (twice) each time
// it enters the C library, so that a handle freed while still in use shows
// up in tests rather than by luck; it is for testing only.
package fidius
