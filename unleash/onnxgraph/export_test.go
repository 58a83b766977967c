package onnxgraph

// ConvExplicit exposes convExplicit to the external tests.
var ConvExplicit = convExplicit

// OddKernel exposes oddKernel to the external tests.
var OddKernel = oddKernel
