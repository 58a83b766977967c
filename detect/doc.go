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
//     after)) (graph: TopK, ScatterElements, ReduceSum, Exp).
//   - DICE: keep the final weights whose contribution w * mean ID feature is above its p-th
//     percentile (graph: the masked weight as a new initializer).
//   - ViM: energy minus alpha times the norm of the features' residual outside the principal
//     subspace of the ID features centred at u = -pinv(W) b.
//   - Mahalanobis (MDS): minus the smallest Mahalanobis distance to the class means, with the
//     covariance shared by the classes (pseudo-inverse with scipy's pinvh cutoff).
//   - KNN: minus the k-th smallest squared distance between the L2-normalised features and a
//     bank of L2-normalised ID features, subsampled to a bounded size.
//
// The shaping methods (ReAct, ASH, DICE) change the logits, after which the usual logit scores
// apply (their host-side Score is the energy at T = 1, as OpenOOD reports them); the feature
// methods (ViM, Mahalanobis, KNN) add a graph output named ScoreOutput.
//
// Fitting streams the ID data twice (see Fit) and keeps memory independent of the number of
// images: float64 sums and a D×D scatter matrix, a fixed-size seeded reservoir of activations
// for ReAct's percentile and a fixed-size seeded reservoir of features for the KNN bank.
//
// The package is host-side: the device daemon runs the written graphs and never links it.
package detect
