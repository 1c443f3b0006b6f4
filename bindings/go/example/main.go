// Command example loads the BasicCalculator plugin from the directory given
// on the command line and calls it, with raw bincode bytes and with JSON.
//
//	go run ./example /path/to/plugins
//
// The JSON calls need the plugin's interface; it is described here in code
// (it could as well come from an interface file with
// fidius.NewInterfaceFromFile).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: example PLUGIN_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	host, err := fidius.NewBuilder().AddSearchPath(dir).Build()
	if err != nil {
		return err
	}
	defer host.Close()

	found, err := host.Discover()
	if err != nil {
		return err
	}
	fmt.Printf("plugins in %s:\n", dir)
	for _, info := range found.Plugins {
		fmt.Printf("  %-20s interface %s v%d, hash %016x, %s\n",
			info.Name, info.InterfaceName, info.InterfaceVersion, info.InterfaceHash, info.Runtime)
	}

	// The Calculator interface, method by method in declaration order: its
	// hash must equal the plugin's, or the load fails.
	iface, err := fidius.NewInterfaceBuilder("Calculator", 2).
		AddMethod("add:i64,i64->i64", 0).
		AddMethod("greet:String->String", 0).
		AddMethod("divide:i64,i64->Result<i64,PluginError>", 0).
		AddMethod("describe:bool,f64,Vec<String>,Option<String>->String", 0).
		AddMethod("boom:->String", 0).
		AddMethod("reverse:Vec<u8>->Vec<u8>", fidius.MethodRaw).
		AddMethod("ping:->", 0).
		AddMethod("multiply:i64,i64->i64", fidius.MethodOptional).
		Build()
	if err != nil {
		return err
	}
	defer iface.Close()

	calc, err := host.Load("BasicCalculator", &fidius.LoadOptions{Interface: iface})
	if err != nil {
		return err
	}
	defer calc.Close()

	// A raw call: add is method 0 and takes the bincode of (i64, i64).
	input := binary.LittleEndian.AppendUint64(nil, 3)
	input = binary.LittleEndian.AppendUint64(input, 7)
	out, err := calc.Call(0, input)
	if err != nil {
		return err
	}
	fmt.Printf("\nBasicCalculator.add(3, 7) = %d (raw bincode)\n", int64(binary.LittleEndian.Uint64(out)))

	greeting, err := calc.CallJSON("greet", `["Go"]`)
	if err != nil {
		return err
	}
	fmt.Printf("BasicCalculator.greet(\"Go\") = %s (JSON)\n", greeting)

	// A failing call: the plugin's own error comes with code and details.
	_, err = calc.CallJSON("divide", "[3, 0]")
	var ferr *fidius.Error
	if !errors.As(err, &ferr) {
		return fmt.Errorf("divide(3, 0) did not fail as expected: %v", err)
	}
	fmt.Printf("BasicCalculator.divide(3, 0) -> %s: code %s, message %q, details %s\n",
		ferr.Status, ferr.PluginCode, ferr.PluginMessage, ferr.PluginDetails)
	return nil
}
