// Package preprocess holds the one preprocessing specification shared by host and device: the
// calibration tools and the daemon feed a model exactly the same tensor for the same image.
package preprocess

// Spec says how an image becomes a model input tensor. It is stored next to the model, in
// calibration.json and in bundle manifests.
type Spec struct {
	Width    int        `json:"width" yaml:"width"`       // model input width in pixels
	Height   int        `json:"height" yaml:"height"`     // model input height in pixels
	Channels int        `json:"channels" yaml:"channels"` // 1 (gray) or 3 (RGB)
	Resize   ResizeMode `json:"resize" yaml:"resize"`     // how a frame of another size is fitted
	Mean     []float32  `json:"mean" yaml:"mean"`         // per channel, on pixels scaled to [0,1]
	Std      []float32  `json:"std" yaml:"std"`           // per channel, on pixels scaled to [0,1]
	Layout   string     `json:"layout" yaml:"layout"`     // tensor layout; "NCHW"
}

// ResizeMode names a policy for fitting a frame to the model's input size.
type ResizeMode string

// Resize policies.
const (
	ResizeStretch    ResizeMode = "stretch"     // scale both axes to the input size
	ResizeCenterCrop ResizeMode = "center-crop" // scale the shorter side to fit, then crop the centre
)
