package fidius

/*
#include "fidius_host.h"
*/
import "C"

import (
	"io"
	"time"
)

// Every handle type is an io.Closer.
var (
	_ io.Closer = (*Host)(nil)
	_ io.Closer = (*Builder)(nil)
	_ io.Closer = (*Plugin)(nil)
	_ io.Closer = (*Interface)(nil)
	_ io.Closer = (*InterfaceBuilder)(nil)
	_ io.Closer = (*EgressPolicy)(nil)
	_ io.Closer = (*Binding)(nil)
)

// Host discovers and loads plugins. Make one with NewBuilder().Build().
//
// A Host is safe for concurrent use by several goroutines. Close frees it;
// plugins loaded from it keep working after that.
type Host struct {
	h guarded[*C.fidius_host_t]
}

func freeHost(ptr *C.fidius_host_t) { C.fidius_host_free(ptr) }

// Close frees the host, after waiting for loads and discoveries running on
// other goroutines. It is idempotent, a no-op on a nil *Host, and returns
// nil (it implements io.Closer). Plugins loaded from the host stay valid.
func (h *Host) Close() error {
	if h == nil {
		return nil
	}
	return h.h.close(freeHost)
}

// Discover scans the search paths and lists every valid plugin and every
// skipped file with the reason. Unusable files never fail the scan. When
// signatures are not required, every library file is mapped (running its
// initialisers) to read its registry.
func (h *Host) Discover() (*Discovery, error) {
	host := h.h.acquire()
	defer h.h.release()
	if host == nil {
		return nil, closedError("host")
	}
	var d *C.fidius_host_discovery_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_discover(host, &d, &cerr), cerr); err != nil {
		return nil, err
	}
	defer C.fidius_host_discovery_free(d)

	result := &Discovery{}
	for i := C.size_t(0); i < C.fidius_host_discovery_plugin_count(d); i++ {
		result.Plugins = append(result.Plugins, readInfo(C.fidius_host_discovery_plugin(d, i)))
	}
	for i := C.size_t(0); i < C.fidius_host_discovery_skipped_count(d); i++ {
		result.Skipped = append(result.Skipped, SkippedEntry{
			Path:    C.GoString(C.fidius_host_discovery_skipped_path(d, i)),
			Status:  Status(C.fidius_host_discovery_skipped_status(d, i)),
			Message: C.GoString(C.fidius_host_discovery_skipped_message(d, i)),
		})
	}
	return result, nil
}

// Load loads the plugin called name from the first library or package in
// the search paths that has it. options may be nil for the defaults; WASM
// and Python plugins need options with an Interface. When the name is
// found nowhere, the error (StatusPluginNotFound) lists the files tried and
// why each failed.
func (h *Host) Load(name string, options *LoadOptions) (*Plugin, error) {
	return h.load(options, func(host *C.fidius_host_t, opts *C.fidius_host_load_options_t,
		out **C.fidius_host_plugin_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(name)
		return C.fidius_host_load(host, s, n, opts, out, cerr)
	})
}

// LoadPath loads a plugin from the library file or package directory at
// path, which need not be in a search path. name selects the plugin; ""
// loads the only plugin of a single-plugin library. options as for Load.
func (h *Host) LoadPath(path, name string, options *LoadOptions) (*Plugin, error) {
	return h.load(options, func(host *C.fidius_host_t, opts *C.fidius_host_load_options_t,
		out **C.fidius_host_plugin_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		p, pn := text(path)
		if name == "" {
			return C.fidius_host_load_path(host, p, pn, nil, 0, opts, out, cerr)
		}
		s, n := text(name)
		return C.fidius_host_load_path(host, p, pn, s, n, opts, out, cerr)
	})
}

// load runs one C load function with the C form of options and wraps the
// plugin it made.
func (h *Host) load(options *LoadOptions, load func(*C.fidius_host_t, *C.fidius_host_load_options_t,
	**C.fidius_host_plugin_t, **C.fidius_host_error_t) C.fidius_host_status) (*Plugin, error) {
	host := h.h.acquire()
	defer h.h.release()
	if host == nil {
		return nil, closedError("host")
	}
	opts, err := options.toC()
	if err != nil {
		return nil, err
	}
	defer C.fidius_host_load_options_free(opts) // NULL (no options) is a no-op

	var plugin *C.fidius_host_plugin_t
	var cerr *C.fidius_host_error_t
	// The interface, egress policy and bindings of options may be collected
	// from here on: opts holds its own references.
	enterC()
	if err := takeError(load(host, opts, &plugin, &cerr), cerr); err != nil {
		return nil, err
	}
	return newPlugin(plugin), nil
}

// VerifyPath checks the signature of a library file (<file>.sig) or a
// package directory (package.sig) against the host's trusted keys, without
// loading, mapping or running anything: an install-time check, whether or
// not the host requires signatures. It returns nil when a trusted key
// verifies the file or package; StatusSignatureRequired when there is no
// signature file; StatusSignatureInvalid when the signature is malformed,
// the file was tampered with or an untrusted key signed it; and
// StatusInvalidArgument when the host has no trusted key.
func (h *Host) VerifyPath(path string) error {
	host := h.h.acquire()
	defer h.h.release()
	if host == nil {
		return closedError("host")
	}
	p, n := text(path)
	var cerr *C.fidius_host_error_t
	return takeError(C.fidius_host_verify_path(host, p, n, &cerr), cerr)
}

// UnpackArchive unpacks the .fid archive archive (a package packed by
// `fidius package pack`) into dest, created when missing, and returns the
// package's directory, dest/{name}-{version}, which must not exist yet.
// The archive is read whole and checked first (files and directories only,
// every path inside the package, size and entry limits); when the host
// requires signatures, its package.sig must verify before anything is
// written. A failure leaves nothing in dest.
func (h *Host) UnpackArchive(archive, dest string) (string, error) {
	host := h.h.acquire()
	defer h.h.release()
	if host == nil {
		return "", closedError("host")
	}
	a, an := text(archive)
	d, dn := text(dest)
	var dir *C.char
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_unpack_archive(host, a, an, d, dn, &dir, &cerr), cerr); err != nil {
		return "", err
	}
	return takeString(dir, -1), nil
}

// LoadOptions are the options of one load (Host.Load, Host.LoadPath). The
// zero value (or a nil *LoadOptions) keeps every default of the host. A
// LoadOptions is plain data, read only during the load: one value may
// serve many loads, also concurrently, as long as nobody modifies it.
type LoadOptions struct {
	// Interface is the interface the plugin must match; it is required for
	// WASM and Python plugins. Its hash, version and method count are
	// checked at load, and it enables Plugin.CallJSON and method lookup by
	// name. The plugin keeps its own reference: the interface may be closed
	// after the load.
	Interface *Interface

	// WasmDeadline overrides the host's deadline of each WASM call: 0 keeps
	// the host's, NoDeadline turns it off. Millisecond resolution, as for
	// Builder.WasmDeadline.
	WasmDeadline time.Duration

	// PythonDeadline overrides the host's deadline of each Python call and
	// of the plugin's import at load: 0 keeps the host's, NoDeadline turns
	// it off. Millisecond resolution, as for Builder.WasmDeadline.
	PythonDeadline time.Duration

	// WasmMemoryLimit overrides the host's cap on the guest's linear memory,
	// in bytes; 0 keeps the host's.
	WasmMemoryLimit uint64

	// FreshInstancePerCall overrides the host's choice of a fresh WASM
	// instance per call (Builder.WasmFreshInstancePerCall); nil keeps the
	// host's. Use fidius.Bool(true) for a pointer to a constant.
	FreshInstancePerCall *bool

	// EgressPolicy overrides the host's egress policy for this plugin; nil
	// keeps the host's. The plugin keeps its own reference.
	EgressPolicy *EgressPolicy

	// Config is the configuration the plugin is constructed with
	// (#[plugin_impl(Trait, config = C)]), as bincode of the config type;
	// nil for none. When the interface declares the config type, the bytes
	// are checked against it before the plugin sees them.
	Config []byte

	// ConfigJSON is the configuration as JSON text, e.g. `{"factor": 3}`;
	// "" for none. It needs the interface's config type, except for Python
	// plugins. Set Config or ConfigJSON, not both.
	ConfigJSON string

	// Isolation overrides the host's isolation (Builder.Isolation) for this
	// plugin; nil keeps the host's. Use new(fidius.Isolated) for a pointer
	// to a constant.
	Isolation *Isolation

	// RestartPolicy overrides the host's restart policy
	// (Builder.RestartPolicy) for this plugin, when isolated; nil keeps the
	// host's.
	RestartPolicy *RestartPolicy

	// Bindings are the host functions the plugin may call, one Binding per
	// host interface (a later one replaces an earlier one of the same
	// interface name); bindings of interfaces the plugin does not import
	// are ignored. A native library gets them bound before any of its code
	// runs, checked against the version and hash it was built against
	// (StatusInterfaceVersionMismatch, StatusInterfaceHashMismatch); see
	// Binding for the once-per-library rule (StatusHostAlreadyBound).
	// An isolated native plugin calls them across the process boundary
	// (the Go function runs in the host, with the call's context), and each
	// load binds its own. Python plugins cannot call host functions:
	// loading one with bindings is StatusUnsupported. The plugin keeps its
	// own references.
	Bindings []*Binding
}

// Bool returns a pointer to v, for LoadOptions.FreshInstancePerCall.
func Bool(v bool) *bool { return &v }

// toC builds the C load options for o, or returns nil (the defaults) when o
// is nil. The caller frees the result with fidius_host_load_options_free.
func (o *LoadOptions) toC() (*C.fidius_host_load_options_t, error) {
	if o == nil {
		return nil, nil
	}
	enterC()
	opts := C.fidius_host_load_options_new()
	if opts == nil {
		return nil, &Error{Status: StatusInternalPanic, Message: "fidius_host_load_options_new failed"}
	}
	var cerr *C.fidius_host_error_t
	check := func(status C.fidius_host_status) error {
		return takeError(status, cerr)
	}
	err := func() error {
		if o.Interface != nil {
			iface := o.Interface.h.acquire()
			defer o.Interface.h.release()
			if iface == nil {
				return closedError("interface")
			}
			if err := check(C.fidius_host_load_options_set_interface(opts, iface, &cerr)); err != nil {
				return err
			}
		}
		if o.WasmDeadline != 0 {
			ms := C.uint64_t(deadlineMillis(o.WasmDeadline))
			if err := check(C.fidius_host_load_options_set_wasm_deadline_ms(opts, ms, &cerr)); err != nil {
				return err
			}
		}
		if o.PythonDeadline != 0 {
			ms := C.uint64_t(deadlineMillis(o.PythonDeadline))
			if err := check(C.fidius_host_load_options_set_python_deadline_ms(opts, ms, &cerr)); err != nil {
				return err
			}
		}
		if o.WasmMemoryLimit != 0 {
			bytes, err := sizeT(o.WasmMemoryLimit, "the WASM memory limit")
			if err != nil {
				return err
			}
			if err := check(C.fidius_host_load_options_set_wasm_memory_limit(opts, bytes, &cerr)); err != nil {
				return err
			}
		}
		if o.FreshInstancePerCall != nil {
			fresh := C.bool(*o.FreshInstancePerCall)
			if err := check(C.fidius_host_load_options_set_wasm_fresh_instance_per_call(opts, fresh, &cerr)); err != nil {
				return err
			}
		}
		if o.Isolation != nil {
			isolation := C.uint32_t(*o.Isolation)
			if err := check(C.fidius_host_load_options_set_isolation(opts, isolation, &cerr)); err != nil {
				return err
			}
		}
		if o.RestartPolicy != nil {
			ms, err := windowMillis(o.RestartPolicy.Window)
			if err != nil {
				return err
			}
			maxRestarts := C.uint32_t(o.RestartPolicy.MaxRestarts)
			if err := check(C.fidius_host_load_options_set_restart_policy(opts, maxRestarts, C.uint64_t(ms), &cerr)); err != nil {
				return err
			}
		}
		if o.Config != nil && o.ConfigJSON != "" {
			return &Error{Status: StatusInvalidArgument, Message: "LoadOptions: set Config or ConfigJSON, not both"}
		}
		if o.Config != nil {
			data, n := bytesArg(o.Config)
			if err := check(C.fidius_host_load_options_set_config(opts, data, n, &cerr)); err != nil {
				return err
			}
		}
		if o.ConfigJSON != "" {
			s, n := text(o.ConfigJSON)
			if err := check(C.fidius_host_load_options_set_config_json(opts, s, n, &cerr)); err != nil {
				return err
			}
		}
		for _, b := range o.Bindings {
			if err := addBinding(opts, b); err != nil {
				return err
			}
		}
		if o.EgressPolicy != nil {
			policy := o.EgressPolicy.h.acquire()
			defer o.EgressPolicy.h.release()
			if policy == nil {
				return closedError("egress policy")
			}
			if err := check(C.fidius_host_load_options_set_egress_policy(opts, policy, &cerr)); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		C.fidius_host_load_options_free(opts)
		return nil, err
	}
	return opts, nil
}

// addBinding adds b to the C load options opts.
func addBinding(opts *C.fidius_host_load_options_t, b *Binding) error {
	if b == nil {
		return &Error{Status: StatusNullArgument, Message: "LoadOptions.Bindings holds a nil *Binding"}
	}
	binding := b.h.acquire()
	defer b.h.release()
	if binding == nil {
		return closedError("binding")
	}
	var cerr *C.fidius_host_error_t
	return takeError(C.fidius_host_load_options_add_binding(opts, binding, &cerr), cerr)
}
