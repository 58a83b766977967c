// Package detect fits post-hoc OOD detectors on a trained classifier's penultimate features and
// writes each one into a copy of the classifier's ONNX graph, so that the device computes the
// detector's score with the same ONNX Runtime session that computes the logits.
//
// The detectors, with the semantics of OpenOOD v1.5's post-processors (higher score = more
// in-distribution, as everywhere in oodguard):
//
//   - ReAct: clip the penultimate features at c, the p-th percentile of every ID activation
//     (graph: a Clip before the final linear layer).
//   - ASH-P, ASH-B, ASH-S: per sample, keep the top k = D - round(D*p/100) features and zero
//     the rest (ASH-B: the kept ones set to sum/k; ASH-S: scaled by exp(sum before / sum
//     after)); among equal values the lower index is kept, as ONNX TopK does (graph: TopK,
//     ScatterElements, ReduceSum, Exp).
//   - DICE: keep the final weights whose contribution w * mean ID feature is above its p-th
//     percentile (graph: the masked weight as a new initializer).
//   - ViM: energy minus alpha times the norm of the features' residual outside the principal
//     subspace of the ID features centred at u = -pinv(W) b.
//   - Mahalanobis (MDS): minus the smallest squared Mahalanobis distance to the class means,
//     with the covariance shared by the classes (pseudo-inverse with scipy's pinvh cutoff).
//   - KNN: minus the k-th smallest squared distance between the L2-normalised features and a
//     bank of L2-normalised ID features, subsampled to a bounded size. Host-side, vectors are
//     normalised as OpenOOD does (x/|x| + 1e-10); the graph divides by max(|x|, 1e-12), which
//     differs by less than float32 resolution except for an all-zero vector.
//
// The shaping methods (ReAct, ASH, DICE, and a Chain of them such as DICE + ReAct) change the
// logits, after which the usual logit scores apply: their host-side Score is the energy at
// T = 1, as OpenOOD reports them, and Shaper.Logits gives the shaped logits for any other.
// Their graphs keep the model's single logits output, so the runtime package runs them as it
// runs the plain model. The feature methods (ViM, Mahalanobis, KNN) add a graph output named
// ScoreOutput. Spec records a detector's method, output and fitted parameters.
//
// Use: Load or Parse finds the final linear layer (Head) and its input, the penultimate
// features; an Extractor runs the copy that also outputs them (WithFeatures) under ONNX
// Runtime and turns batches of preprocessed images into a Pass; Fit streams that Pass twice and
// keeps memory independent of the number of images (float64 sums and a D×D scatter matrix, a
// fixed-size seeded reservoir of activations for ReAct's percentile and a fixed-size seeded
// reservoir of features for the KNN bank); the Fitted statistics give each detector, or the
// Candidates of a Grid (OpenOOD's sweep); Model.Write writes one into a copy of the graph.
//
// The package is host-side: the device daemon runs the written graphs and never links it. It
// links neither GoMLX nor the unleash packages: the ONNX protobuf types come from
// compute-onnx's protos package, which needs only google.golang.org/protobuf.
package detect
