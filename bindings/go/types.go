package fidius

/*
#include "fidius_host.h"
*/
import "C"

import (
	"strconv"
	"strings"
	"time"
)

// LoadPolicy says what a library with some invalid plugin descriptors does.
type LoadPolicy uint32

const (
	// LoadPolicyStrict rejects the whole library for one invalid descriptor
	// (the default).
	LoadPolicyStrict LoadPolicy = C.FIDIUS_HOST_LOAD_POLICY_STRICT
	// LoadPolicyLenient skips invalid descriptors one by one (discovery
	// reports each) and keeps the library's valid plugins loadable. It never
	// relaxes signature, file-header, registry, interface-hash or
	// buffer-strategy checks.
	LoadPolicyLenient LoadPolicy = C.FIDIUS_HOST_LOAD_POLICY_LENIENT
)

// BufferStrategy says how plugin outputs travel (fidius BufferStrategyKind).
type BufferStrategy uint32

const (
	// BufferPluginAllocated: the plugin allocates outputs and the host frees
	// them through the plugin.
	BufferPluginAllocated BufferStrategy = C.FIDIUS_HOST_BUFFER_STRATEGY_PLUGIN_ALLOCATED
	// BufferArena: the host lends the plugin an arena (one per thread).
	BufferArena BufferStrategy = C.FIDIUS_HOST_BUFFER_STRATEGY_ARENA
)

// String returns "PluginAllocated", "Arena" or "BufferStrategy(n)".
func (s BufferStrategy) String() string {
	switch s {
	case BufferPluginAllocated:
		return "PluginAllocated"
	case BufferArena:
		return "Arena"
	}
	return "BufferStrategy(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Isolation says where native (cdylib) and Python plugins run. WASM
// plugins are sandboxed in-process and ignore it.
type Isolation uint32

const (
	// InProcess runs the plugin in the host's process (the default): the
	// fastest calls, but a crash, abort or exit in the plugin ends the host.
	InProcess Isolation = C.FIDIUS_HOST_ISOLATION_IN_PROCESS
	// Isolated runs each plugin handle in a worker process of its own
	// (fidius-host-worker): a fault in the plugin ends the worker and fails
	// the call with StatusWorkerLost, a call past the call deadline kills
	// the worker (StatusTimeout), and the next call starts a new worker as
	// the restart policy allows (the plugin's state is lost).
	Isolated Isolation = C.FIDIUS_HOST_ISOLATION_ISOLATED
)

// String returns "InProcess", "Isolated" or "Isolation(n)".
func (i Isolation) String() string {
	switch i {
	case InProcess:
		return "InProcess"
	case Isolated:
		return "Isolated"
	}
	return "Isolation(" + strconv.FormatUint(uint64(i), 10) + ")"
}

// WorkerHardening is a set of the ways each worker process confines itself
// (Builder.WorkerHardening); combine the constants with |. Each part needs a
// kernel feature (seccomp filters; Landlock, Linux 5.13, its signal scope
// 6.12): a worker that cannot apply a part it was asked for refuses the
// load with StatusUnsupported naming it, rather than run without it. The
// zero value, the default, is no hardening.
type WorkerHardening uint32

const (
	// HardenNoNewPrivileges sets PR_SET_NO_NEW_PRIVS: nothing the worker
	// executes gains privileges (set-user-ID programs, file capabilities).
	// The two other parts imply it.
	HardenNoNewPrivileges WorkerHardening = C.FIDIUS_HOST_WORKER_HARDENING_NO_NEW_PRIVILEGES
	// HardenDenyNetwork installs a seccomp filter on every thread of the
	// worker before the plugin is read: creating a socket or socket pair of
	// any family, and setting up io_uring, fail with EACCES ("Permission
	// denied"): no connection to the network or to a UNIX socket by path.
	// The worker's own socket to the host is unaffected.
	HardenDenyNetwork WorkerHardening = C.FIDIUS_HOST_WORKER_HARDENING_DENY_NETWORK
	// HardenConfineFilesystem confines the worker with Landlock once the
	// plugin is loaded (its library's initialisers and its Python modules'
	// top level run before): files are readable only beneath the plugin's
	// own path (and, for Python, the interpreter's module directories);
	// nothing can be written, created or removed; no process outside the
	// worker can be signalled. A plugin that started a thread while it
	// loaded cannot be confined and fails to load with StatusUnsupported.
	HardenConfineFilesystem WorkerHardening = C.FIDIUS_HOST_WORKER_HARDENING_CONFINE_FILESYSTEM
)

// String names the parts joined by "|", e.g. "NoNewPrivileges|DenyNetwork";
// "None" for the zero value, and unknown bits as a number.
func (h WorkerHardening) String() string {
	if h == 0 {
		return "None"
	}
	var parts []string
	for _, part := range []struct {
		bit  WorkerHardening
		name string
	}{
		{HardenNoNewPrivileges, "NoNewPrivileges"},
		{HardenDenyNetwork, "DenyNetwork"},
		{HardenConfineFilesystem, "ConfineFilesystem"},
	} {
		if h&part.bit != 0 {
			parts = append(parts, part.name)
			h &^= part.bit
		}
	}
	if h != 0 {
		parts = append(parts, "WorkerHardening("+strconv.FormatUint(uint64(h), 10)+")")
	}
	return strings.Join(parts, "|")
}

// RestartPolicy says what an isolated plugin's next call does after its
// worker was lost: start a new worker if fewer than MaxRestarts were
// started for that plugin handle within the last Window; otherwise fail
// with StatusWorkerLost (saying how the last worker ended) without starting
// one. The host's default is 5 restarts a minute.
type RestartPolicy struct {
	// MaxRestarts is how many restarts the window allows; 0 never restarts.
	MaxRestarts uint32
	// Window is the span restarts are counted over, with millisecond
	// resolution (a shorter positive one counts as one millisecond). It must
	// be positive when MaxRestarts is not 0 (otherwise StatusInvalidArgument).
	Window time.Duration
}

// Runtime says what executes a plugin.
type Runtime uint32

const (
	// RuntimeCdylib is a native shared library built with the fidius Rust
	// crates.
	RuntimeCdylib Runtime = C.FIDIUS_HOST_RUNTIME_CDYLIB
	// RuntimePython is a Python package.
	RuntimePython Runtime = C.FIDIUS_HOST_RUNTIME_PYTHON
	// RuntimeWasm is a WebAssembly component.
	RuntimeWasm Runtime = C.FIDIUS_HOST_RUNTIME_WASM
)

// String returns "cdylib", "python", "wasm" or "Runtime(n)".
func (r Runtime) String() string {
	switch r {
	case RuntimeCdylib:
		return "cdylib"
	case RuntimePython:
		return "python"
	case RuntimeWasm:
		return "wasm"
	}
	return "Runtime(" + strconv.FormatUint(uint64(r), 10) + ")"
}

// MethodFlag marks a method of an interface; combine flags with |.
type MethodFlag uint32

const (
	// MethodOptional (#[optional]): not part of the hash; a plugin may lack
	// the method.
	MethodOptional MethodFlag = C.FIDIUS_HOST_METHOD_FLAG_OPTIONAL
	// MethodRaw (#[wire(raw)]): bytes travel unencoded.
	MethodRaw MethodFlag = C.FIDIUS_HOST_METHOD_FLAG_RAW
	// MethodStreaming: the method returns Stream<T> (the signature's return
	// type is T).
	MethodStreaming MethodFlag = C.FIDIUS_HOST_METHOD_FLAG_STREAMING
)

// String lists the set flags, e.g. "optional|raw", or "0" for none.
func (f MethodFlag) String() string {
	return flagNames(f, []flagName[MethodFlag]{{MethodOptional, "optional"}, {MethodRaw, "raw"}, {MethodStreaming, "streaming"}}, "0")
}

// flagName names one bit of a flag set.
type flagName[T ~uint32] struct {
	flag T
	name string
}

// flagNames lists the named bits set in f, then any unnamed rest as a
// number, joined with "|"; none when f is 0.
func flagNames[T ~uint32](f T, known []flagName[T], none string) string {
	var names []string
	for _, k := range known {
		if f&k.flag != 0 {
			names = append(names, k.name)
			f &^= k.flag
		}
	}
	if f != 0 {
		names = append(names, strconv.FormatUint(uint64(f), 10))
	}
	if len(names) == 0 {
		return none
	}
	return strings.Join(names, "|")
}

// PluginInfo holds the facts about one plugin, as discovery reports them and
// as a loaded plugin has them. It is a plain copy: it stays valid after the
// plugin, discovery or host it came from is closed.
type PluginInfo struct {
	// Name is the plugin's name, e.g. "BasicCalculator".
	Name string
	// InterfaceName is the name of the interface (Rust trait) it implements.
	InterfaceName string
	// Path is the library file or package directory the plugin came from.
	Path string
	// InterfaceHash is the FNV-1a hash of the interface's required methods.
	InterfaceHash uint64
	// InterfaceVersion is the interface's version.
	InterfaceVersion uint32
	// Capabilities has bit k set when the k-th optional method is
	// implemented.
	Capabilities uint64
	// BufferStrategy is how outputs travel.
	BufferStrategy BufferStrategy
	// Runtime is what executes the plugin.
	Runtime Runtime
}

// readInfo copies a borrowed C plugin info into Go memory.
func readInfo(info *C.fidius_host_plugin_info_t) PluginInfo {
	return PluginInfo{
		Name:             C.GoString(C.fidius_host_plugin_info_name(info)),
		InterfaceName:    C.GoString(C.fidius_host_plugin_info_interface_name(info)),
		Path:             C.GoString(C.fidius_host_plugin_info_path(info)),
		InterfaceHash:    uint64(C.fidius_host_plugin_info_interface_hash(info)),
		InterfaceVersion: uint32(C.fidius_host_plugin_info_interface_version(info)),
		Capabilities:     uint64(C.fidius_host_plugin_info_capabilities(info)),
		BufferStrategy:   BufferStrategy(C.fidius_host_plugin_info_buffer_strategy(info)),
		Runtime:          Runtime(C.fidius_host_plugin_info_runtime(info)),
	}
}

// SkippedEntry is a search path, file or plugin descriptor that discovery
// passed over, and why.
type SkippedEntry struct {
	// Path is the file or search path that was skipped.
	Path string
	// Status is the reason as a status code, e.g. StatusInvalidMagic.
	Status Status
	// Message explains the reason and names the file.
	Message string
}

// Err returns the reason as an *Error, for errors.Is checks.
func (s SkippedEntry) Err() error {
	return &Error{Status: s.Status, Message: s.Message}
}

// Discovery is what Host.Discover found: every valid plugin, and every
// search path, file or descriptor skipped with the reason. It is a plain
// copy that needs no closing.
type Discovery struct {
	// Plugins are the loadable plugins, in scan order.
	Plugins []PluginInfo
	// Skipped are the entries that were passed over.
	Skipped []SkippedEntry
}

// Plugin returns the info of the plugin called name, if one was found.
func (d *Discovery) Plugin(name string) (PluginInfo, bool) {
	for _, info := range d.Plugins {
		if info.Name == name {
			return info, true
		}
	}
	return PluginInfo{}, false
}

// Metadata is one key-value pair of a plugin's trait-level or method-level
// metadata.
type Metadata struct {
	// Key is the metadata key, e.g. "category".
	Key string
	// Value is its value, e.g. "math".
	Value string
}

// DeniedRequest is an outbound HTTP request, socket or name lookup of a
// plugin that its egress policy refused.
type DeniedRequest struct {
	// Method is the HTTP method, e.g. "POST"; for a socket "TCP" or "UDP",
	// for a name lookup "DNS".
	Method string
	// URL is scheme://authority/path?query; for a socket "tcp://ip:port"
	// or "udp://ip:port", for a name lookup "dns://name".
	URL string
	// Reason is why it was denied, e.g. "denied by the egress policy".
	Reason string
}

// WorkerUsage holds the use figures of an isolated plugin handle, counted
// since it was loaded (Plugin.WorkerUsage).
type WorkerUsage struct {
	// Calls is the number of calls sent to a worker.
	Calls uint64
	// Errors is the number of calls that failed, whatever the reason
	// (plugin errors included).
	Errors uint64
	// Timeouts is the number of calls that ran past the deadline (their
	// worker was killed).
	Timeouts uint64
	// Restarts is the number of workers started after the first.
	Restarts uint64
	// Pid is the process id of the running worker, or 0 when none runs (it
	// was lost and not restarted yet).
	Pid int
	// CPUTime is the CPU time (user and system) of every worker the plugin
	// had: the ended ones' final figures and the running one's so far.
	CPUTime time.Duration
	// PeakMemory is the largest peak resident memory of those workers, in
	// bytes.
	PeakMemory uint64
}
