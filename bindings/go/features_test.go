package fidius_test

import (
	"testing"

	fidius "github.com/fidius-host/libfidius_host/bindings/go"
)

func TestFeatures(t *testing.T) {
	features := fidius.Features()
	if features != fidius.HeaderFeatures {
		t.Errorf("Features() = %v, the header says %v", features, fidius.HeaderFeatures)
	}
	// The fixtures are built with both runtimes.
	if !features.Has(fidius.FeatureWasm) || !features.Has(fidius.FeaturePython) || !features.Has(fidius.FeatureWasm|fidius.FeaturePython) {
		t.Errorf("Features() = %v, want wasm|python", features)
	}
	for f, want := range map[fidius.Feature]string{
		0:                  "none",
		fidius.FeatureWasm: "wasm",
		fidius.FeatureWasm | fidius.FeaturePython: "wasm|python",
		fidius.FeaturePython | 8:                  "python|8",
	} {
		if got := f.String(); got != want {
			t.Errorf("Feature(%d).String() = %q, want %q", uint32(f), got, want)
		}
	}
	for f, want := range map[fidius.MethodFlag]string{
		0:                                        "0",
		fidius.MethodRaw:                         "raw",
		fidius.MethodOptional | fidius.MethodRaw: "optional|raw",
		fidius.MethodStreaming | 64:              "streaming|64",
	} {
		if got := f.String(); got != want {
			t.Errorf("MethodFlag(%d).String() = %q, want %q", uint32(f), got, want)
		}
	}
	if fidius.Feature(0).Has(fidius.FeatureWasm) {
		t.Error("no features has wasm")
	}
}
