package runtime

import (
	"errors"
	"fmt"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// ErrNotClassifier is returned for models that are not image classifiers.
var ErrNotClassifier = errors.New("not an image classifier")

// TensorInfo describes one model input or output. A dimension of -1 is dynamic.
type TensorInfo struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`      // "tensor", "sequence", "map", ...
	ElemType string  `json:"elem_type"` // e.g. "float32" (tensors only)
	Shape    []int64 `json:"shape"`
}

func (t TensorInfo) String() string {
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		if d < 0 {
			dims[i] = "?"
		} else {
			dims[i] = fmt.Sprint(d)
		}
	}
	if t.Kind != "tensor" {
		return fmt.Sprintf("%s: %s", t.Name, t.Kind)
	}
	return fmt.Sprintf("%s: %s[%s]", t.Name, t.ElemType, strings.Join(dims, ","))
}

// ModelInfo lists a model's inputs and outputs.
type ModelInfo struct {
	Inputs  []TensorInfo `json:"inputs"`
	Outputs []TensorInfo `json:"outputs"`
}

// ClassifierShape is the shape of an image classifier: input [N,C,H,W] and logits [N,K], and
// optionally a score output [N] that the graph computes next to the logits (a post-hoc
// detector's score; Score names it, "" when there is none). Batch is -1 when the batch axis is
// dynamic, else the fixed batch size.
type ClassifierShape struct {
	Input    string `json:"input"`
	Output   string `json:"output"`
	Score    string `json:"score,omitempty"`
	Batch    int    `json:"batch"`
	Channels int    `json:"channels"`
	Height   int    `json:"height"`
	Width    int    `json:"width"`
	Classes  int    `json:"classes"`
}

// InputLen returns the number of input values for a batch of n images.
func (s ClassifierShape) InputLen(n int) int { return n * s.Channels * s.Height * s.Width }

func (s ClassifierShape) String() string {
	b := "?"
	if s.Batch > 0 {
		b = fmt.Sprint(s.Batch)
	}
	str := fmt.Sprintf("%s[%s,%d,%d,%d] -> %s[%s,%d]", s.Input, b, s.Channels, s.Height, s.Width, s.Output, b, s.Classes)
	if s.Score != "" {
		str += fmt.Sprintf(", %s[%s]", s.Score, b)
	}
	return str
}

func infoFromORT(in []ort.InputOutputInfo) []TensorInfo {
	out := make([]TensorInfo, len(in))
	for i, v := range in {
		t := TensorInfo{Name: v.Name, Kind: strings.ToLower(strings.TrimPrefix(v.OrtValueType.String(), "ONNXType"))}
		if v.OrtValueType == ort.ONNXTypeTensor {
			t.Kind = "tensor"
			t.ElemType = elemTypeName(v.DataType)
			t.Shape = append([]int64(nil), v.Dimensions...)
		}
		out[i] = t
	}
	return out
}

func elemTypeName(t ort.TensorElementDataType) string {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return "float32"
	case ort.TensorElementDataTypeDouble:
		return "float64"
	case ort.TensorElementDataTypeFloat16:
		return "float16"
	case ort.TensorElementDataTypeUint8:
		return "uint8"
	case ort.TensorElementDataTypeInt8:
		return "int8"
	case ort.TensorElementDataTypeInt32:
		return "int32"
	case ort.TensorElementDataTypeInt64:
		return "int64"
	case ort.TensorElementDataTypeBool:
		return "bool"
	case ort.TensorElementDataTypeString:
		return "string"
	default:
		return strings.ToLower(strings.TrimPrefix(t.String(), "ONNXTensorElementDataType"))
	}
}

// ClassifierShape checks that m is an image classifier (one float32 input [N,C,H,W] with static
// C, H and W; one float32 output [N,K] with static K, optionally followed or preceded by one
// float32 score output [N]; the same batch axis) and returns its shape.
func (m ModelInfo) ClassifierShape() (ClassifierShape, error) {
	var s ClassifierShape
	if len(m.Inputs) != 1 {
		return s, fmt.Errorf("%w: it has %d inputs, want 1 image input [N,C,H,W]", ErrNotClassifier, len(m.Inputs))
	}
	var scoreOut *TensorInfo
	outs := m.Outputs
	if len(outs) == 2 {
		for i := range outs {
			if o := outs[i]; len(o.Shape) == 1 {
				scoreOut = &o
				outs = []TensorInfo{outs[1-i]}
				break
			}
		}
	}
	if len(outs) != 1 {
		return s, fmt.Errorf("%w: it has %d outputs, want 1 logits output [N,K] and at most 1 score output [N]", ErrNotClassifier, len(m.Outputs))
	}
	in, out := m.Inputs[0], outs[0]
	if in.Kind != "tensor" || in.ElemType != "float32" || len(in.Shape) != 4 {
		return s, fmt.Errorf("%w: input %s, want float32[N,C,H,W]", ErrNotClassifier, in)
	}
	if out.Kind != "tensor" || out.ElemType != "float32" || len(out.Shape) != 2 {
		return s, fmt.Errorf("%w: output %s, want float32[N,K] logits", ErrNotClassifier, out)
	}
	for i, name := range []string{"channels", "height", "width"} {
		if in.Shape[i+1] <= 0 {
			return s, fmt.Errorf("%w: input %s has a dynamic %s; oodguard needs a fixed image size", ErrNotClassifier, in, name)
		}
	}
	if c := in.Shape[1]; c != 1 && c != 3 {
		return s, fmt.Errorf("%w: input %s has %d channels, want 1 (gray) or 3 (RGB) in NCHW layout", ErrNotClassifier, in, c)
	}
	if out.Shape[1] < 2 {
		return s, fmt.Errorf("%w: output %s has %d classes, want at least 2", ErrNotClassifier, out, out.Shape[1])
	}
	if in.Shape[0] != out.Shape[0] && (in.Shape[0] > 0 || out.Shape[0] > 0) {
		return s, fmt.Errorf("%w: input %s and output %s disagree on the batch axis", ErrNotClassifier, in, out)
	}
	if scoreOut != nil {
		if scoreOut.Kind != "tensor" || scoreOut.ElemType != "float32" {
			return s, fmt.Errorf("%w: score output %s, want float32[N]", ErrNotClassifier, *scoreOut)
		}
		if scoreOut.Shape[0] != out.Shape[0] && (scoreOut.Shape[0] > 0 || out.Shape[0] > 0) {
			return s, fmt.Errorf("%w: score output %s and logits %s disagree on the batch axis", ErrNotClassifier, *scoreOut, out)
		}
		s.Score = scoreOut.Name
	}
	s = ClassifierShape{
		Input: in.Name, Output: out.Name, Score: s.Score, Batch: int(in.Shape[0]),
		Channels: int(in.Shape[1]), Height: int(in.Shape[2]), Width: int(in.Shape[3]), Classes: int(out.Shape[1]),
	}
	if s.Batch <= 0 {
		s.Batch = -1
	}
	return s, nil
}
