package fidius_test

import (
	"encoding/binary"
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

// scaleConfig is the bincode of ScaleConfig{factor, label, mode} (mode 0
// Quiet, 1 Loud).
func scaleConfig(factor int64, label string, mode uint32) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(factor))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(label)))
	out = append(out, label...)
	return binary.LittleEndian.AppendUint32(out, mode)
}

// The configured Scaler of every runtime this build has.
func scalerFixtures() []string {
	paths := []string{"configured/libscaler_plugin.so"}
	if fidius.Features().Has(fidius.FeatureWasm) {
		paths = append(paths, "configured/wasm-scaler")
	}
	if fidius.Features().Has(fidius.FeaturePython) {
		paths = append(paths, "configured/python-scaler")
	}
	return paths
}

func TestConfiguredInstances(t *testing.T) {
	scaler := interfaceFile(t, "scaler.toml")
	if got := scaler.ConfigType(); got != "ScaleConfig" {
		t.Fatalf("ConfigType() = %q", got)
	}
	for _, path := range scalerFixtures() {
		t.Run(path, func(t *testing.T) {
			host := newHost(t, nil)
			_, err := host.LoadPath(fixture(t, path), "", &fidius.LoadOptions{Interface: scaler})
			wantError(t, err, fidius.ErrConfigRequired, "ScaleConfig")
			_, err = host.LoadPath(fixture(t, path), "", &fidius.LoadOptions{Interface: scaler, ConfigJSON: `{"factor": "x"}`})
			wantError(t, err, fidius.ErrConfigInvalid, "factor")
			_, err = host.LoadPath(fixture(t, path), "", &fidius.LoadOptions{Interface: scaler, Config: []byte{1}, ConfigJSON: "{}"})
			wantError(t, err, fidius.ErrInvalidArgument, "not both")

			first := loadPath(t, host, path, "", &fidius.LoadOptions{
				Interface: scaler, ConfigJSON: `{"factor": 3, "label": "abc", "mode": "Loud"}`,
			})
			jsonIs(t, first, "scale", "[5]", "15")
			jsonIs(t, first, "label", "[]", `"ABC"`)
			jsonIs(t, first, "bump", "[]", "1")

			second, err := first.NewInstance(scaleConfig(-2, "xy", 0))
			if err != nil {
				t.Fatalf("NewInstance: %v", err)
			}
			jsonIs(t, second, "scale", "[5]", "-10")
			jsonIs(t, second, "bump", "[]", "1")
			jsonIs(t, first, "bump", "[]", "2")

			third, err := second.NewInstanceJSON(`{"factor": 1, "label": "q", "mode": "Quiet"}`)
			if err != nil {
				t.Fatalf("NewInstanceJSON: %v", err)
			}
			_, err = first.NewInstance(scaleConfig(1, "q", 9))
			wantError(t, err, fidius.ErrConfigInvalid, "variant")
			_, err = first.NewInstanceJSON("{")
			wantError(t, err, fidius.ErrInvalidJSON, "JSON")

			// The new instances outlive the handle they came from.
			if err := second.Close(); err != nil {
				t.Fatal(err)
			}
			jsonIs(t, third, "label", "[]", `"q"`)
			if err := third.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := third.NewInstance(nil); err == nil {
				t.Fatal("NewInstance on a closed plugin succeeded")
			}
		})
	}
}

func TestConfigRefusedByPython(t *testing.T) {
	if !fidius.Features().Has(fidius.FeaturePython) {
		t.Fatal("this build has no Python runtime; the test suite expects one")
	}
	host := newHost(t, nil)
	_, err := host.LoadPath(fixture(t, "configured/python-scaler"), "", &fidius.LoadOptions{
		Interface: interfaceFile(t, "scaler.toml"), ConfigJSON: `{"factor": 0, "label": "z", "mode": "Quiet"}`,
	})
	ferr := wantError(t, err, fidius.ErrConfigRejected, "__fidius_configure__")
	if ferr.PluginCode != "ZERO_FACTOR" {
		t.Fatalf("PluginCode = %q", ferr.PluginCode)
	}
}

func TestHostImports(t *testing.T) {
	host := newHost(t, nil, "hostcall")
	plugin := load(t, host, "LedgerBookkeeper", nil)
	imports, err := plugin.HostImports()
	if err != nil {
		t.Fatal(err)
	}
	want := []fidius.HostImport{{Name: "Ledger", Version: 3, Hash: interfaceFile(t, "ledger.toml").Hash()}}
	if len(imports) != 1 || imports[0] != want[0] {
		t.Fatalf("HostImports() = %+v, want %+v", imports, want)
	}
	calc := load(t, newHost(t, nil, "plugins"), "BasicCalculator", nil)
	if imports, err := calc.HostImports(); err != nil || len(imports) != 0 {
		t.Fatalf("BasicCalculator imports %+v (%v)", imports, err)
	}
}
