package fidius_test

import (
	"errors"
	"strings"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// calculatorBuilder describes the Calculator interface in code, with the
// spacing variations the library canonicalizes.
func calculatorBuilder() *fidius.InterfaceBuilder {
	return fidius.NewInterfaceBuilder("Calculator", 2).
		WasmExport("fidius:calculator/calculator@0.1.0").
		AddMethod("add: i64, i64 -> i64", 0).
		AddMethod("greet:String->String", 0).
		AddMethod("divide:i64,i64->Result<i64,PluginError>", 0).
		AddMethod("describe:bool,f64,Vec<String>,Option < String >->String", 0).
		AddMethod("boom:->String", 0).
		AddMethod("reverse:Vec<u8>->Vec<u8>", fidius.MethodRaw).
		AddMethod("ping:->", 0).
		AddMethod("multiply:i64,i64->i64", fidius.MethodOptional)
}

func TestInterfaceBuilder(t *testing.T) {
	b := calculatorBuilder()
	defer b.Close()
	iface, err := b.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer iface.Close()

	if iface.Name() != "Calculator" || iface.Version() != 2 || iface.Hash() != calculatorHash ||
		iface.WasmExport() != "fidius:calculator/calculator@0.1.0" || iface.MethodCount() != 8 {
		t.Errorf("interface %s v%d %#x %q, %d methods", iface.Name(), iface.Version(), iface.Hash(), iface.WasmExport(), iface.MethodCount())
	}
	if got := iface.MethodSignature(0); got != "add:i64,i64->i64" {
		t.Errorf("MethodSignature(0) = %q", got)
	}
	if got := iface.MethodSignature(99); got != "" {
		t.Errorf("MethodSignature(99) = %q, want empty", got)
	}
	if iface.MethodFlags(5) != fidius.MethodRaw || iface.MethodFlags(7) != fidius.MethodOptional || iface.MethodFlags(99) != 0 {
		t.Errorf("flags %v %v %v", iface.MethodFlags(5), iface.MethodFlags(7), iface.MethodFlags(99))
	}
	methods := iface.Methods()
	if len(methods) != 8 || methods[6] != (fidius.Method{Signature: "ping:->", Flags: 0}) ||
		methods[5].Signature != "reverse:Vec < u8 >->Vec < u8 >!raw" {
		t.Errorf("Methods() = %+v", methods)
	}
	if index, err := iface.MethodIndex("ping"); err != nil || index != methodPing {
		t.Errorf("MethodIndex(ping) = %d, %v", index, err)
	}
	_, err = iface.MethodIndex("pong")
	wantError(t, err, fidius.ErrUnknownMethod, "pong")

	// The same interface as the generated file, and a TOML round trip.
	file := interfaceFile(t, "calculator.toml")
	if file.Hash() != iface.Hash() {
		t.Errorf("file hash %#x, built %#x", file.Hash(), iface.Hash())
	}
	toml, err := iface.ToTOML()
	if err != nil || !strings.Contains(toml, `name = "Calculator"`) {
		t.Fatalf("ToTOML: %v\n%s", err, toml)
	}
	again, err := fidius.NewInterfaceFromTOML(toml)
	if err != nil {
		t.Fatalf("NewInterfaceFromTOML: %v", err)
	}
	defer again.Close()
	if again.Hash() != calculatorHash || again.MethodFlags(7) != fidius.MethodOptional {
		t.Errorf("round trip: %#x, flags %v", again.Hash(), again.MethodFlags(7))
	}

	// A built interface is as good as a file for loading and JSON calls.
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: iface})
	jsonIs(t, calc, "add", "[3, 7]", "10")

	// The builder stays usable after Build.
	second, err := b.Build()
	if err != nil {
		t.Fatalf("second Build: %v", err)
	}
	second.Close()
}

func TestInterfaceTypes(t *testing.T) {
	b := fidius.NewInterfaceBuilder("Geometry", 1).AddMethod("at:Point->Point", 0)
	defer b.Close()
	// Point is not declared yet.
	_, err := b.Build()
	wantError(t, err, fidius.ErrInvalidInterface, "Point")

	b = fidius.NewInterfaceBuilder("Geometry", 1).
		AddType("struct Point { x: f64, y: f64 }").
		AddMethod("at:Point->Point", 0)
	defer b.Close()
	iface, err := b.Build()
	if err != nil {
		t.Fatalf("Build with the type: %v", err)
	}
	defer iface.Close()
	if iface.MethodSignature(0) != "at:Point->Point" {
		t.Errorf("signature %q", iface.MethodSignature(0))
	}
	toml, err := iface.ToTOML()
	if err != nil || !strings.Contains(toml, "struct Point") {
		t.Errorf("ToTOML lost the type: %v\n%s", err, toml)
	}
}

func TestInterfaceErrors(t *testing.T) {
	// The first failing call is kept; later calls are ignored.
	b := fidius.NewInterfaceBuilder("Calc", 1).AddMethod("nope", 0).AddMethod("add:i64->i64", 0)
	defer b.Close()
	wantError(t, b.Err(), fidius.ErrInvalidInterface, "")
	_, err := b.Build()
	wantError(t, err, fidius.ErrInvalidInterface, "")

	for name, b := range map[string]*fidius.InterfaceBuilder{
		"bad name":       fidius.NewInterfaceBuilder("not an ident", 1),
		"duplicate":      fidius.NewInterfaceBuilder("C", 1).AddMethod("f:->", 0).AddMethod("f:i64->", 0),
		"bad type":       fidius.NewInterfaceBuilder("C", 1).AddType("struct {"),
		"bad export":     fidius.NewInterfaceBuilder("C", 1).WasmExport("has space"),
		"reference type": fidius.NewInterfaceBuilder("C", 1).AddMethod("r:&str->()", 0),
	} {
		_, err := b.Build()
		if !errors.Is(err, fidius.ErrInvalidInterface) {
			t.Errorf("%s: %v, want INVALID_INTERFACE", name, err)
		}
		b.Close()
	}
	b = fidius.NewInterfaceBuilder("C", 1).AddMethod("f:->()", 64)
	wantError(t, b.Err(), fidius.ErrInvalidArgument, "")
	b.Close()
	b.Close()
	_, err = b.Build()
	wantError(t, err, fidius.ErrInvalidArgument, "") // the first error stays

	closed := fidius.NewInterfaceBuilder("C", 1)
	closed.Close()
	_, err = closed.AddMethod("f:->", 0).Build()
	wantError(t, err, fidius.ErrMisuse, "closed")

	_, err = fidius.NewInterfaceFromFile(fixture(t, "interfaces/nothing.toml"))
	wantError(t, err, fidius.ErrFileNotFound, "")
	_, err = fidius.NewInterfaceFromTOML("name = ")
	wantError(t, err, fidius.ErrInvalidInterface, "")
	_, err = fidius.NewInterfaceFromTOML("")
	if err == nil {
		t.Error("an empty interface file was accepted")
	}
	tampered := strings.Replace(calculatorTOML(t), "0x0271e9b7d21d10f1", "0x0271e9b7d21d10f2", 1)
	_, err = fidius.NewInterfaceFromTOML(tampered)
	wantError(t, err, fidius.ErrInterfaceHashMismatch, "")

	iface := interfaceFile(t, "calculator.toml")
	iface.Close()
	iface.Close()
	if iface.Name() != "" || iface.MethodCount() != 0 || iface.Methods() == nil || len(iface.Methods()) != 0 {
		t.Errorf("closed interface still answers: %q %d", iface.Name(), iface.MethodCount())
	}
	_, err = iface.ToTOML()
	wantError(t, err, fidius.ErrMisuse, "interface is closed")
	host := newHost(t, nil, "plugins")
	_, err = host.Load("BasicCalculator", &fidius.LoadOptions{Interface: iface})
	wantError(t, err, fidius.ErrMisuse, "interface is closed")
}

// calculatorTOML is the text of the Calculator interface file.
func calculatorTOML(t *testing.T) string {
	t.Helper()
	toml, err := interfaceFile(t, "calculator.toml").ToTOML()
	if err != nil {
		t.Fatal(err)
	}
	return toml
}

// The interface is released by the plugin's own reference, not the caller's.
func TestInterfaceClosedAfterLoad(t *testing.T) {
	iface, err := fidius.NewInterfaceFromFile(fixture(t, "interfaces/calculator.toml"))
	if err != nil {
		t.Fatal(err)
	}
	host := newHost(t, nil, "plugins")
	calc := load(t, host, "BasicCalculator", &fidius.LoadOptions{Interface: iface})
	iface.Close()
	jsonIs(t, calc, "greet", `["after close"]`, `"Hello, after close!"`)
}
