package fidius_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// Loads the BasicCalculator plugin with the Calculator interface and calls
// it with JSON; a division by zero shows the plugin's own error.
func Example() {
	fixtures := os.Getenv("FIDIUS_TEST_FIXTURES")

	host, err := fidius.NewBuilder().AddSearchPath(filepath.Join(fixtures, "plugins")).Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer host.Close()

	iface, err := fidius.NewInterfaceFromFile(filepath.Join(fixtures, "interfaces", "calculator.toml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer iface.Close()

	calc, err := host.Load("BasicCalculator", &fidius.LoadOptions{Interface: iface})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer calc.Close()

	sum, err := calc.CallJSON("add", "[3, 7]")
	fmt.Println("add(3, 7) =", sum, err)

	_, err = calc.CallJSON("divide", "[3, 0]")
	var ferr *fidius.Error
	if errors.As(err, &ferr) && errors.Is(err, fidius.ErrPluginError) {
		fmt.Println(ferr.PluginCode, ferr.PluginMessage, ferr.PluginDetails)
	}
	// Output:
	// add(3, 7) = 10 <nil>
	// DIV_ZERO cannot divide 3 by zero {"dividend":3}
}
