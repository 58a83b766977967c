package preprocess

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestTestModelSpecsMatchPresets checks that the specs stored next to the test models are the
// presets the Go code uses.
func TestTestModelSpecsMatchPresets(t *testing.T) {
	for name, want := range map[string]Spec{"cnn28": FashionMNIST(), "resnet32": CIFAR10()} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "models", name+".preprocess.json"))
		if err != nil {
			t.Fatal(err)
		}
		var got Spec
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s.preprocess.json = %+v, preset %+v", name, got, want)
		}
	}
}
