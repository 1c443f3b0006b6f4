package fidius

/*
#include "fidius_host.h"
*/
import "C"

// Interface is a validated, immutable plugin interface: name, version,
// methods (fidius signature strings) and declared types. Read one from an
// interface file (NewInterfaceFromFile, NewInterfaceFromTOML) or build one
// (NewInterfaceBuilder), and set it on LoadOptions.
//
// An Interface is safe for concurrent use. Plugins loaded with it keep
// their own reference, so it may be closed right after loading.
type Interface struct {
	h guarded[*C.fidius_host_interface_t]
}

func freeInterface(ptr *C.fidius_host_interface_t) { C.fidius_host_interface_free(ptr) }

// newInterface wraps an interface handle the caller owns.
func newInterface(ptr *C.fidius_host_interface_t) *Interface {
	i := &Interface{}
	own(i, &i.h, ptr, freeInterface)
	return i
}

// Method is one method of an interface.
type Method struct {
	// Signature is the canonical fidius signature string, markers included,
	// e.g. "add:i64,i64->i64": exactly what the hash sees.
	Signature string
	// Flags says whether the method is optional, raw or streaming.
	Flags MethodFlag
}

// NewInterfaceFromFile reads an interface file (TOML, as written by
// fidius-interface-gen or Interface.ToTOML).
func NewInterfaceFromFile(path string) (*Interface, error) {
	s, n := text(path)
	enterC()
	var iface *C.fidius_host_interface_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_interface_new_from_file(s, n, &iface, &cerr), cerr); err != nil {
		return nil, err
	}
	return newInterface(iface), nil
}

// NewInterfaceFromTOML parses interface-file text, as NewInterfaceFromFile
// does.
func NewInterfaceFromTOML(toml string) (*Interface, error) {
	s, n := text(toml)
	enterC()
	var iface *C.fidius_host_interface_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_interface_new_from_toml(s, n, &iface, &cerr), cerr); err != nil {
		return nil, err
	}
	return newInterface(iface), nil
}

// Close frees the interface handle. It is idempotent, a no-op on a nil
// *Interface, and returns nil (it implements io.Closer); plugins loaded
// with the interface keep working.
func (i *Interface) Close() error {
	if i == nil {
		return nil
	}
	return i.h.close(freeInterface)
}

// Name returns the interface (Rust trait) name, or "" once closed.
func (i *Interface) Name() string {
	ptr := i.h.acquire()
	defer i.h.release()
	return C.GoString(C.fidius_host_interface_name(ptr)) // NULL for NULL
}

// Version returns the interface version, or 0 once closed.
func (i *Interface) Version() uint32 {
	ptr := i.h.acquire()
	defer i.h.release()
	return uint32(C.fidius_host_interface_version(ptr))
}

// Hash returns the interface hash of the required methods, as
// #[plugin_interface] computes it, or 0 once closed.
func (i *Interface) Hash() uint64 {
	ptr := i.h.acquire()
	defer i.h.release()
	return uint64(C.fidius_host_interface_hash(ptr))
}

// WasmExport returns the WASM component export name, or "" when none was
// given (or once closed).
func (i *Interface) WasmExport() string {
	ptr := i.h.acquire()
	defer i.h.release()
	return C.GoString(C.fidius_host_interface_wasm_export(ptr))
}

// ConfigType returns the type plugins of the interface are configured
// with (e.g. "ScaleConfig"), or "" when it declares none (or once closed).
func (i *Interface) ConfigType() string {
	ptr := i.h.acquire()
	defer i.h.release()
	return C.GoString(C.fidius_host_interface_config_type(ptr))
}

// MethodCount returns the number of methods, or 0 once closed.
func (i *Interface) MethodCount() uint32 {
	ptr := i.h.acquire()
	defer i.h.release()
	return uint32(C.fidius_host_interface_method_count(ptr))
}

// MethodSignature returns the canonical signature of method number index,
// or "" when out of range.
func (i *Interface) MethodSignature(index uint32) string {
	ptr := i.h.acquire()
	defer i.h.release()
	return C.GoString(C.fidius_host_interface_method_signature(ptr, C.uint32_t(index)))
}

// MethodFlags returns the flags of method number index; 0 when out of
// range.
func (i *Interface) MethodFlags(index uint32) MethodFlag {
	ptr := i.h.acquire()
	defer i.h.release()
	return MethodFlag(C.fidius_host_interface_method_flags(ptr, C.uint32_t(index)))
}

// Methods returns every method in declaration order (the order of the
// plugin's vtable and of method indices).
func (i *Interface) Methods() []Method {
	ptr := i.h.acquire()
	defer i.h.release()
	count := uint32(C.fidius_host_interface_method_count(ptr))
	methods := make([]Method, 0, count)
	for index := C.uint32_t(0); index < C.uint32_t(count); index++ {
		methods = append(methods, Method{
			Signature: C.GoString(C.fidius_host_interface_method_signature(ptr, index)),
			Flags:     MethodFlag(C.fidius_host_interface_method_flags(ptr, index)),
		})
	}
	return methods
}

// MethodIndex returns the index of the method called name;
// StatusUnknownMethod when there is none.
func (i *Interface) MethodIndex(name string) (uint32, error) {
	ptr := i.h.acquire()
	defer i.h.release()
	if ptr == nil {
		return 0, closedError("interface")
	}
	s, n := text(name)
	var index C.uint32_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_interface_method_index(ptr, s, n, &index, &cerr), cerr); err != nil {
		return 0, err
	}
	return uint32(index), nil
}

// ToTOML writes the interface as interface-file text.
func (i *Interface) ToTOML() (string, error) {
	ptr := i.h.acquire()
	defer i.h.release()
	if ptr == nil {
		return "", closedError("interface")
	}
	var toml *C.char
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_interface_to_toml(ptr, &toml, &cerr), cerr); err != nil {
		return "", err
	}
	return takeString(toml, -1), nil
}

// InterfaceBuilder collects an interface's methods and types. Calls chain,
// and the first one that fails is reported by Build (later ones are then
// ignored):
//
//	iface, err := fidius.NewInterfaceBuilder("Calculator", 2).
//		WasmExport("fidius:calculator/calculator@0.1.0").
//		AddMethod("add:i64,i64->i64", 0).
//		AddMethod("multiply:i64,i64->i64", fidius.MethodOptional).
//		Build()
//
// An InterfaceBuilder is not safe for concurrent use. Building does not
// consume it; Close releases it (a runtime cleanup does so too when it is
// garbage collected).
type InterfaceBuilder struct {
	h   guarded[*C.fidius_host_interface_builder_t]
	err error
}

func freeInterfaceBuilder(ptr *C.fidius_host_interface_builder_t) {
	C.fidius_host_interface_builder_free(ptr)
}

// NewInterfaceBuilder starts an interface called name (the Rust trait name,
// an identifier) at version (the #[plugin_interface(version = …)]).
func NewInterfaceBuilder(name string, version uint32) *InterfaceBuilder {
	b := &InterfaceBuilder{}
	s, n := text(name)
	var ptr *C.fidius_host_interface_builder_t
	var cerr *C.fidius_host_error_t
	enterC()
	if b.err = takeError(C.fidius_host_interface_builder_new(s, n, C.uint32_t(version), &ptr, &cerr), cerr); b.err == nil {
		own(b, &b.h, ptr, freeInterfaceBuilder)
	}
	return b
}

// apply runs one C builder function, unless an earlier call failed, and
// keeps the first error for Build.
func (b *InterfaceBuilder) apply(add func(*C.fidius_host_interface_builder_t, **C.fidius_host_error_t) C.fidius_host_status) *InterfaceBuilder {
	if b.err != nil {
		return b
	}
	ptr := b.h.acquire()
	defer b.h.release()
	if ptr == nil {
		b.err = closedError("interface builder")
		return b
	}
	var cerr *C.fidius_host_error_t
	b.err = takeError(add(ptr, &cerr), cerr)
	return b
}

// Err returns the first error of the calls so far, or nil.
func (b *InterfaceBuilder) Err() error { return b.err }

// WasmExport sets the WASM component export name, e.g.
// "fidius:calculator/calculator@0.1.0".
func (b *InterfaceBuilder) WasmExport(exportName string) *InterfaceBuilder {
	return b.apply(func(ptr *C.fidius_host_interface_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(exportName)
		return C.fidius_host_interface_builder_set_wasm_export(ptr, s, n, cerr)
	})
}

// ConfigType declares the type plugins of the interface are constructed
// with (#[plugin_impl(Trait, config = C)]), e.g. "ScaleConfig" (declared
// with AddType) or "Vec<String>". It does not change the hash. With it,
// configurations are checked against the type, LoadOptions.ConfigJSON
// works for every runtime, and a load without a configuration fails with
// StatusConfigRequired.
func (b *InterfaceBuilder) ConfigType(typeName string) *InterfaceBuilder {
	return b.apply(func(ptr *C.fidius_host_interface_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(typeName)
		return C.fidius_host_interface_builder_set_config_type(ptr, s, n, cerr)
	})
}

// AddMethod adds the next method, in declaration order, from its fidius
// signature string "name:T1,T2->R", e.g. "add:i64,i64->i64" or "ping:->".
// Any spacing is accepted. The markers !raw, !stream and <stream are
// understood as well as flags.
func (b *InterfaceBuilder) AddMethod(signature string, flags MethodFlag) *InterfaceBuilder {
	return b.apply(func(ptr *C.fidius_host_interface_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(signature)
		return C.fidius_host_interface_builder_add_method(ptr, s, n, C.uint32_t(flags), cerr)
	})
}

// AddType declares a struct or enum that method types use, in Rust syntax,
// e.g. "struct Point { x: f64, y: f64 }" or "enum Shape { Empty,
// Circle(f64) }". Their JSON form follows serde's default representation.
func (b *InterfaceBuilder) AddType(declaration string) *InterfaceBuilder {
	return b.apply(func(ptr *C.fidius_host_interface_builder_t, cerr **C.fidius_host_error_t) C.fidius_host_status {
		s, n := text(declaration)
		return C.fidius_host_interface_builder_add_type(ptr, s, n, cerr)
	})
}

// Build checks the whole interface (every type must be builtin or
// declared), computes its hash and returns it, or the first error of the
// calls so far. The builder stays usable.
func (b *InterfaceBuilder) Build() (*Interface, error) {
	if b.err != nil {
		return nil, b.err
	}
	ptr := b.h.acquire()
	defer b.h.release()
	if ptr == nil {
		return nil, closedError("interface builder")
	}
	var iface *C.fidius_host_interface_t
	var cerr *C.fidius_host_error_t
	if err := takeError(C.fidius_host_interface_builder_build(ptr, &iface, &cerr), cerr); err != nil {
		return nil, err
	}
	return newInterface(iface), nil
}

// Close frees the builder. It is idempotent, a no-op on a nil
// *InterfaceBuilder, and returns nil (it implements io.Closer).
func (b *InterfaceBuilder) Close() error {
	if b == nil {
		return nil
	}
	return b.h.close(freeInterfaceBuilder)
}
