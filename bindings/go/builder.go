package fidius

/*
#include "fidius_host.h"
*/
import "C"

import "time"

// Builder collects the options of a Host; Build makes the host.
//
// Options chain, and the first one that fails is reported by Build (later
// ones are then ignored):
//
//	host, err := fidius.NewBuilder().
//		AddSearchPath("plugins").
//		RequireSignature(true).
//		AddTrustedKeyFile("keys/release.public").
//		Build()
//
// A Builder is not safe for concurrent use: set it up from one goroutine.
// Build consumes it, whether it succeeds or fails; Close releases a builder
// that is never built.
type Builder struct {
	h   guarded[*C.fidius_host_builder_t]
	err error
}

// NewBuilder returns a builder with the defaults: no search paths, strict
// load policy, no signatures required, no trusted keys, no expected
// interface hash or buffer strategy, a 64 MiB output limit, a 10 s call
// deadline (WASM, Python and isolated plugins), a 256 MiB WASM memory cap,
// 512 MiB limits on library files and packages, and plugins run in-process.
func NewBuilder() *Builder {
	b := &Builder{}
	enterC()
	ptr := C.fidius_host_builder_new()
	if ptr == nil {
		b.err = &Error{Status: StatusInternalPanic, Message: "fidius_host_builder_new failed"}
		return b
	}
	own(b, &b.h, ptr, freeBuilder)
	return b
}

func freeBuilder(ptr *C.fidius_host_builder_t) { C.fidius_host_builder_free(ptr) }

// fail keeps err for Build, unless an earlier option failed.
func (b *Builder) fail(err error) *Builder {
	if b.err == nil {
		b.err = err
	}
	return b
}

// apply runs one C setter on the builder, unless an earlier option failed,
// and keeps the first error for Build.
func (b *Builder) apply(set func(*C.fidius_host_builder_t, **C.fidius_host_error_t) C.fidius_host_status) *Builder {
	if b.err != nil {
		return b
	}
	ptr := b.h.acquire()
	defer b.h.release()
	if ptr == nil {
		b.err = closedError("builder")
		return b
	}
	var cerr *C.fidius_host_error_t
	b.err = takeError(set(ptr, &cerr), cerr)
	return b
}

// Err returns the first error of the options set so far, or nil.
func (b *Builder) Err() error { return b.err }

// AddSearchPath adds a directory to scan for plugins (library files and
// package directories). Directories are scanned in the order added; one
// that does not exist is reported by discovery.
func (b *Builder) AddSearchPath(dir string) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(dir)
		return C.fidius_host_builder_add_search_path(ptr, s, n, cerr)
	})
}

// LoadPolicy sets what a library with some invalid plugin descriptors does
// (LoadPolicyStrict by default).
func (b *Builder) LoadPolicy(policy LoadPolicy) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_load_policy(ptr, C.uint32_t(policy), cerr)
	})
}

// RequireSignature requires (or not) a valid detached signature for every
// library (<file>.sig) and package (package.sig). When required, a library
// that is unsigned, tampered with or signed by an untrusted key is never
// mapped. Build fails if no trusted key is added.
func (b *Builder) RequireSignature(required bool) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_require_signature(ptr, C.bool(required), cerr)
	})
}

// AddTrustedKey trusts an Ed25519 public key given as its 32 raw bytes. Any
// one trusted key verifying a signature is enough.
func (b *Builder) AddTrustedKey(key []byte) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		data, n := bytesArg(key)
		return C.fidius_host_builder_add_trusted_key(ptr, data, n, cerr)
	})
}

// AddTrustedKeyFile trusts the public key in a NAME.public file written by
// `fidius keygen`.
func (b *Builder) AddTrustedKeyFile(path string) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(path)
		return C.fidius_host_builder_add_trusted_key_file(ptr, s, n, cerr)
	})
}

// InterfaceHash accepts only plugins whose interface hash is hash; others
// are reported by discovery and fail to load with
// StatusInterfaceHashMismatch.
func (b *Builder) InterfaceHash(hash uint64) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_interface_hash(ptr, C.uint64_t(hash), cerr)
	})
}

// BufferStrategy accepts only plugins with this buffer strategy.
func (b *Builder) BufferStrategy(strategy BufferStrategy) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_buffer_strategy(ptr, C.uint32_t(strategy), cerr)
	})
}

// WasmDeadline sets the default deadline of each WASM call (the call
// deadline unless set); 0 or NoDeadline means none. A call past it fails with
// StatusTimeout and the plugin's next call runs on a fresh instance. The
// deadline has millisecond resolution; shorter positive durations count as
// one millisecond.
func (b *Builder) WasmDeadline(d time.Duration) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_wasm_deadline_ms(ptr, C.uint64_t(deadlineMillis(d)), cerr)
	})
}

// CallDeadline sets the default deadline of each call in every runtime
// that can stop one (10 s unless set): WASM calls, and Python calls and
// imports; 0 or NoDeadline means none. WasmDeadline and PythonDeadline,
// when set, override it whatever the order. Native (cdylib) calls have no
// deadline in-process; isolated ones (Isolation) do, and past it their
// worker is killed. Millisecond resolution, as for WasmDeadline.
func (b *Builder) CallDeadline(d time.Duration) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_call_deadline_ms(ptr, C.uint64_t(deadlineMillis(d)), cerr)
	})
}

// PythonDeadline sets the default deadline of each Python call and of a
// Python plugin's import at load (the call deadline unless set); 0 or
// NoDeadline means none. Past it the host raises an exception in the
// plugin's code, the call or load fails with StatusTimeout, and the plugin
// stays usable. Code blocked inside C sees the exception only when that C
// call returns; time.sleep is cut at the deadline. Millisecond resolution,
// as for WasmDeadline.
func (b *Builder) PythonDeadline(d time.Duration) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_python_deadline_ms(ptr, C.uint64_t(deadlineMillis(d)), cerr)
	})
}

// MaxLibrarySize sets the largest library file the host reads, in bytes
// (512 MiB unless set; 0 is refused, and Build reports it). A larger file fails with
// StatusFileTooLarge without being read past the limit.
func (b *Builder) MaxLibrarySize(bytes uint64) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_max_library_size(ptr, C.uint64_t(bytes), cerr)
	})
}

// MaxPackageSize sets the largest package (WASM or Python), all its files
// together, in bytes (512 MiB unless set; 0 is refused, and Build reports it). A larger
// package fails with StatusFileTooLarge without being read past the limit.
func (b *Builder) MaxPackageSize(bytes uint64) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_max_package_size(ptr, C.uint64_t(bytes), cerr)
	})
}

// WasmMemoryLimit sets the default cap on a WASM guest's linear memory, in
// bytes (256 MiB unless set; 0 is invalid). Growing past it fails the call
// with StatusMemoryLimit.
func (b *Builder) WasmMemoryLimit(bytes uint64) *Builder {
	size, err := sizeT(bytes, "the WASM memory limit")
	if err != nil {
		return b.fail(err)
	}
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_wasm_memory_limit(ptr, size, cerr)
	})
}

// WasmFreshInstancePerCall sets whether every WASM call runs on a fresh
// instance of the component (false by default). false: a plugin keeps one
// instance, guest state persists between calls, and calls on one plugin
// are serialized. true: no state carries over, and calls on one plugin run
// in parallel, at the cost of an instantiation per call.
func (b *Builder) WasmFreshInstancePerCall(fresh bool) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_wasm_fresh_instance_per_call(ptr, C.bool(fresh), cerr)
	})
}

// WasmInstancePool takes the host's WASM instances from a pool of slots
// preallocated slots (0, the default: no pool). Instantiating from the pool
// is about twice as fast, which pays with a fresh instance per call. At most
// slots instances live at once: one per loaded persistent plugin, one per
// running call of a fresh-instance plugin; a load or call that finds none
// free fails with ErrInstancePoolExhausted. Each slot reserves address space
// (not memory) for a 4 GiB linear memory.
func (b *Builder) WasmInstancePool(slots uint32) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_wasm_instance_pool(ptr, C.uint32_t(slots), cerr)
	})
}

// AddDeniedCapability refuses every package that asks for capability: an exact
// capability such as "stdout", or a prefix such as "fs" or "env" covering
// every "fs:…" or "env:…" capability. Such loads fail with
// StatusCapabilityDenied.
func (b *Builder) AddDeniedCapability(capability string) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(capability)
		return C.fidius_host_builder_add_denied_capability(ptr, s, n, cerr)
	})
}

// AllowUnsignedPrecompiled sets whether a package's precompiled .cwasm may
// be loaded when no verified package signature covers it (false by
// default: the component is compiled instead, and the plugin's diagnostics
// say so). A .cwasm is native code that runs outside the sandbox.
func (b *Builder) AllowUnsignedPrecompiled(allow bool) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_allow_unsigned_precompiled(ptr, C.bool(allow), cerr)
	})
}

// WasmCompileCache keeps compiled WASM components in dir, at most maxBytes
// of them (0: 256 MiB), so that later processes load a component without
// compiling it. The directory is created (mode 0700) when missing; it and
// the key file in it must belong to this user and be writable by nobody
// else (otherwise ErrInvalidArgument). An entry that fails its check is
// compiled again, never run, and the plugin's diagnostics say so.
func (b *Builder) WasmCompileCache(dir string, maxBytes uint64) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(dir)
		return C.fidius_host_builder_set_wasm_compile_cache(ptr, s, n, C.uint64_t(maxBytes), cerr)
	})
}

// EgressPolicy sets which outbound HTTP requests WASM plugins with the http
// capability may send (load options may set their own). Without a policy
// such plugins do not load (StatusNoEgressPolicy). nil removes the policy.
// The builder keeps its own reference: the policy may be closed afterwards.
func (b *Builder) EgressPolicy(policy *EgressPolicy) *Builder {
	if policy == nil {
		return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
			return C.fidius_host_builder_set_egress_policy(ptr, nil, cerr)
		})
	}
	policyPtr := policy.h.acquire()
	defer policy.h.release()
	if policyPtr == nil {
		if b.err == nil {
			b.err = closedError("egress policy")
		}
		return b
	}
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_egress_policy(ptr, policyPtr, cerr)
	})
}

// MaxOutputSize sets the largest output one call may return, in bytes
// (64 MiB unless set; 0 is invalid). A larger result fails with
// StatusOutputTooLarge.
func (b *Builder) MaxOutputSize(bytes uint64) *Builder {
	size, err := sizeT(bytes, "the output limit")
	if err != nil {
		return b.fail(err)
	}
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_max_output_size(ptr, size, cerr)
	})
}

// Isolation sets where native (cdylib) and Python plugins run by default
// (InProcess unless set); LoadOptions.Isolation may say otherwise for one
// load. An isolated plugin is loaded by a worker process with this host's
// settings (signatures included) and its Plugin works as an in-process one,
// except that:
//   - a crash, abort, exit or kill of the worker fails the call in flight
//     with StatusWorkerLost (the message names the signal or exit code),
//     and the next call starts a new worker as the restart policy allows:
//     the plugin's state is lost;
//   - each call, and the load, has the call deadline (PythonDeadline for
//     Python plugins): past it the worker is killed and the call is
//     StatusTimeout;
//   - loading by name tries each candidate library in a worker, so one
//     that crashes while being opened is a skipped file;
//   - host functions (LoadOptions.Bindings) of a native plugin run in the
//     host, called across the process boundary one at a time (Python
//     plugins have none, as in-process); streams are served item by item,
//     each a round trip to the worker.
//
// Each call costs a round trip to the worker (under 10 µs on a 2-vCPU VM). An unknown
// value is StatusInvalidArgument.
func (b *Builder) Isolation(isolation Isolation) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_isolation(ptr, C.uint32_t(isolation), cerr)
	})
}

// DiscoveryIsolation sets where unsigned libraries are opened to list their
// plugins: by Discover, and by Load (by name) to find the library that holds
// the plugin, which is then loaded as Isolation says (in-process unless
// set). InProcess, the default, maps them in this process: a library whose
// initialisers crash or hang takes the host with it. Isolated opens them in
// a worker process (WorkerPath) kept for the whole scan: a library that
// takes its worker down is a skipped entry (StatusWorkerLost naming the
// signal, or StatusTimeout past the call deadline), the next one gets a new
// worker, and discovery maps no unsigned library in the host. It costs a
// worker start per scan and a round trip per library. With signatures
// required only verified bytes are mapped, in-process, and this setting is
// not used. An unknown value is StatusInvalidArgument.
func (b *Builder) DiscoveryIsolation(isolation Isolation) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_discovery_isolation(ptr, C.uint32_t(isolation), cerr)
	})
}

// WorkerPath sets the worker executable isolated plugins run in. By default
// it is the fidius-host-worker next to the shared library (or next to the
// program the static library is linked into), else in ../libexec from
// there. The path is used as given when a worker starts: a missing or
// unrunnable file makes isolated loads fail with StatusWorkerUnavailable.
// An empty path is StatusInvalidArgument.
func (b *Builder) WorkerPath(path string) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(path)
		return C.fidius_host_builder_set_worker_path(ptr, s, n, cerr)
	})
}

// WorkerMemoryLimit caps the address space of each worker process, in bytes
// (RLIMIT_AS; 0, the default, means none). A plugin that allocates past it
// usually ends its worker: the call is StatusWorkerLost, naming the cap. The
// cap counts the worker's whole address space (the library, Python when
// loaded): allow 256 MiB or more.
func (b *Builder) WorkerMemoryLimit(bytes uint64) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_worker_memory_limit(ptr, C.uint64_t(bytes), cerr)
	})
}

// WorkerCPULimit caps the CPU time of each worker process (RLIMIT_CPU; 0,
// the default, means none): the kernel kills a worker that has used it
// (SIGXCPU) and the call is StatusWorkerLost. Unlike the call deadline it
// counts across calls, for the worker's life. Second resolution: a duration
// that is not a whole number of seconds rounds up. A negative duration is
// StatusInvalidArgument.
func (b *Builder) WorkerCPULimit(d time.Duration) *Builder {
	seconds, err := cpuSeconds(d)
	if err != nil {
		return b.fail(err)
	}
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_worker_cpu_limit(ptr, C.uint64_t(seconds), cerr)
	})
}

// WorkerHardening sets how each worker process confines itself: a
// combination of HardenNoNewPrivileges, HardenDenyNetwork and
// HardenConfineFilesystem (0, the default, is none; see each constant).
// Isolation contains faults; hardening also limits what a hostile plugin in
// a worker can reach: a refused system call is an error the plugin sees
// (e.g. EACCES), and the worker keeps serving. A worker that cannot apply a
// part it was asked for refuses the load with StatusUnsupported naming it.
// Discovery and load-by-name probe workers apply the first two parts; the
// filesystem part confines the worker of each loaded plugin. Not covered:
// files the worker had open before, UNIX sockets by path, and (without the
// filesystem part) other processes' memory as the user's permissions
// allow; for more, run the host as its own user or in a container. Unknown
// bits are StatusInvalidArgument ("unknown bits").
func (b *Builder) WorkerHardening(h WorkerHardening) *Builder {
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_worker_hardening(ptr, C.uint32_t(h), cerr)
	})
}

// RestartPolicy sets what an isolated plugin's next call does after its
// worker was lost: start a new worker if fewer than maxRestarts were
// started for that plugin handle within the last window, otherwise fail
// with StatusWorkerLost without starting one (see the RestartPolicy type).
// maxRestarts 0 never restarts. The default is 5 restarts a minute;
// LoadOptions.RestartPolicy may override it for one load. The window has
// millisecond resolution; a negative one, or 0 with maxRestarts above 0, is
// StatusInvalidArgument.
func (b *Builder) RestartPolicy(maxRestarts uint32, window time.Duration) *Builder {
	ms, err := windowMillis(window)
	if err != nil {
		return b.fail(err)
	}
	return b.apply(func(ptr *C.fidius_host_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		return C.fidius_host_builder_set_restart_policy(ptr, C.uint32_t(maxRestarts), C.uint64_t(ms), cerr)
	})
}

// Build makes the host, or returns the first error of the options. It
// consumes the builder either way: a second Build reports a closed builder.
func (b *Builder) Build() (*Host, error) {
	ptr := b.h.take()
	if b.err != nil {
		C.fidius_host_builder_free(ptr) // NULL is a no-op
		return nil, b.err
	}
	if ptr == nil {
		return nil, closedError("builder")
	}
	var host *C.fidius_host_t
	var cerr *C.fidius_host_error_t
	enterC()
	// fidius_host_builder_build frees the builder whatever it returns.
	if err := takeError(C.fidius_host_builder_build(ptr, &host, &cerr), cerr); err != nil {
		return nil, err
	}
	h := &Host{}
	own(h, &h.h, host, freeHost)
	return h, nil
}

// Close releases a builder that will not be built. It is idempotent, a
// no-op after Build and on a nil *Builder, and returns nil (it implements
// io.Closer).
func (b *Builder) Close() error {
	if b == nil {
		return nil
	}
	return b.h.close(freeBuilder)
}

// NoDeadline turns a deadline off (Builder.CallDeadline,
// Builder.WasmDeadline, Builder.PythonDeadline, LoadOptions.WasmDeadline,
// LoadOptions.PythonDeadline).
const NoDeadline time.Duration = -1

// deadlineMillis converts a deadline to the C library's milliseconds, where
// 0 means none: zero and negative durations give 0, and sub-millisecond
// positive ones round up so they do not turn the deadline off.
func deadlineMillis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return ceilDiv(d, time.Millisecond)
}

// ceilDiv returns d / unit rounded up, for a d that is not negative
// (without the overflow of (d + unit - 1) / unit near the largest duration).
func ceilDiv(d, unit time.Duration) uint64 {
	n := uint64(d / unit)
	if d%unit != 0 {
		n++
	}
	return n
}

// cpuSeconds converts a worker CPU limit to the C library's whole seconds,
// where 0 means none: a positive duration rounds up, so that a limit below
// a second does not turn the limit off; a negative one is an error.
func cpuSeconds(d time.Duration) (uint64, error) {
	if d < 0 {
		return 0, &Error{Status: StatusInvalidArgument, Message: "the worker CPU-time limit " + d.String() + " is negative"}
	}
	return ceilDiv(d, time.Second), nil
}

// windowMillis converts a restart policy's window to the C library's
// milliseconds: a positive duration rounds up, as deadlines do; a negative
// one is an error.
func windowMillis(window time.Duration) (uint64, error) {
	if window < 0 {
		return 0, &Error{Status: StatusInvalidArgument, Message: "the restart policy window " + window.String() + " is negative"}
	}
	return deadlineMillis(window), nil
}
