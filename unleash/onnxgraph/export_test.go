package onnxgraph

// ConvExplicit exposes convExplicit to the external tests.
var ConvExplicit = convExplicit

// OddKernel exposes oddKernel to the external tests.
var OddKernel = oddKernel

// MaxPoolExplicit exposes maxPoolExplicit to the external tests.
var MaxPoolExplicit = maxPoolExplicit

// BatchNormExplicit exposes batchNormExplicit to the external tests.
var BatchNormExplicit = batchNormExplicit

// MaxPoolExplicitPadded exposes maxPoolExplicitPadded to the external tests.
var MaxPoolExplicitPadded = maxPoolExplicitPadded

// HeldBytes returns how many bytes of the file the model keeps besides its decoded values.
func (m *Model) HeldBytes() int { return len(m.raw) }
