package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// FuzzTrainingBatchNorms: arbitrary bytes through the BatchNorm and Dropout readers that Open runs on every
// model file: a list or an error, never a panic.
func FuzzTrainingBatchNorms(f *testing.F) {
	for _, p := range []string{"../testdata/zoo/resnet18.trainbn.onnx", "../testdata/zoo/densenet.trainbn.op17.onnx", "../testdata/zoo/mobilenetv2.trainbn.onnx", "../testdata/models/cnn28.onnx"} {
		if b, err := os.ReadFile(filepath.FromSlash(p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{0x3a, 0x05, 0x0a, 0x03, 0x22, 0x01, 0x42})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, _ := trainingBatchNorms(b)
		if 2*len(nodes) > len(b) { // each node takes a tag and a length byte at least
			t.Fatalf("%d nodes from %d bytes", len(nodes), len(b))
		}
		_ = checkInferenceBatchNorm(b)
		if drops, _ := trainingDropouts(b); 2*len(drops) > len(b) {
			t.Fatalf("%d Dropout nodes from %d bytes", len(drops), len(b))
		}
	})
}

// trainingDropouts finds the training-mode Dropout of a train-mode export (its training_mode input
// a Constant true) and none in the eval-mode export; a model whose only training-mode node is a
// Dropout is refused with ErrTrainingDropout, one whose Dropout is told false is not.
func TestTrainingDropouts(t *testing.T) {
	for _, c := range []struct {
		file string
		want int
	}{{"mobilenetv2.trainbn.onnx", 1}, {"mobilenetv2.onnx", 0}, {"resnet18.trainbn.onnx", 0}, {"squeezenet.trainbn.onnx", 1}} {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "zoo", c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := trainingDropouts(b)
		if err != nil || len(got) != c.want {
			t.Errorf("%s: training-mode Dropout %v (%v), want %d", c.file, got, err, c.want)
		}
	}
	for _, mode := range []byte{1, 0} {
		model := dropoutModel(mode)
		err := checkInferenceBatchNorm(model)
		if mode == 1 && (!errors.Is(err, ErrTrainingDropout) || !strings.Contains(err.Error(), "model.eval()")) {
			t.Errorf("training_mode=true: %v, want ErrTrainingDropout with the export hint", err)
		}
		if mode == 0 && err != nil {
			t.Errorf("training_mode=false: %v", err)
		}
	}
}

// dropoutModel encodes a ModelProto whose graph is a Constant BOOL (raw value mode) feeding the
// training_mode input of a Dropout.
func dropoutModel(mode byte) []byte {
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
	}
	var tensor []byte
	tensor = protowire.AppendVarint(protowire.AppendTag(tensor, 2, protowire.VarintType), 9) // BOOL
	tensor = bytesField(tensor, tensorRaw, []byte{mode})
	var attr []byte
	attr = bytesField(attr, attrName, []byte("value"))
	attr = bytesField(attr, attrTensor, tensor)
	var constant []byte
	constant = bytesField(constant, nodeOutput, []byte("mode"))
	constant = bytesField(constant, nodeOpType, []byte("Constant"))
	constant = bytesField(constant, nodeAttribute, attr)
	var drop []byte
	for _, in := range []string{"x", "ratio", "mode"} {
		drop = bytesField(drop, nodeInput, []byte(in))
	}
	drop = bytesField(drop, nodeOutput, []byte("y"))
	drop = bytesField(drop, nodeName, []byte("drop"))
	drop = bytesField(drop, nodeOpType, []byte("Dropout"))
	var graph []byte
	graph = bytesField(graph, graphNode, constant)
	graph = bytesField(graph, graphNode, drop)
	return bytesField(nil, modelGraph, graph)
}
