// Package calibrate measures how well an OOD score separates in-distribution (ID) inputs from
// out-of-distribution (OOD) ones, and fits the score threshold a guard deploys.
//
// Conventions, the same as the Unleashing Mask, Energy and Hendrycks code:
//
//   - ID is the positive class. A "true positive" is an ID input accepted as ID, a "false
//     positive" an OOD input accepted as ID.
//   - Scores are float64 with higher = more ID. An input is accepted as ID when
//     score >= threshold.
//   - Every metric is a fraction in [0,1]. Reports multiply by 100 for display.
//   - Metrics are computed per OOD set against the full ID set; a summary over several OOD sets
//     is their unweighted mean (see [Mean]).
//
// Scores that compare equal (including 0 and -0) form one tie group: a threshold accepts or
// rejects a tie group as a whole. No function reorders or modifies the caller's slices.
package calibrate

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultRecall is the ID recall (TPR) at which FPR is reported: FPR95.
const DefaultRecall = 0.95

// Errors returned, wrapped, for unusable input.
var (
	ErrNoScores  = errors.New("no scores")
	ErrNonFinite = errors.New("score is NaN or infinite")
	ErrRecall    = errors.New("target recall must be in (0, 1]")
)

// Convention names a way to pick the ROC point at which FPR95 is read.
type Convention string

// The FPR conventions. Both use ID as the positive class.
const (
	// Closest is the method's fpr_and_fdr_at_recall (Hendrycks OE, energy_ood, Unleashing
	// Mask): the tie-grouped threshold whose ID recall is closest to the target, compared in
	// float64. Between two points whose float64 distances are equal the higher-recall one
	// wins; exact ties can still break the other way after rounding (with 20 ID scores,
	// |0.90-0.95| < |1.00-0.95| in float64, so 0.90 is taken). Among thresholds with the same
	// recall the lowest one (the most OOD accepted) is taken. The recall reached may be below
	// or above the target.
	Closest Convention = "closest"
	// OpenOOD is the first ROC point, scanning thresholds from high to low, with
	// TPR >= target: the highest threshold that reaches the target recall. This is OpenOOD's
	// older fpr_recall (roc_curve with ID positive) read on the full tie-grouped curve; see
	// [FPRAtRecall].
	OpenOOD Convention = "openood"
)

// Metrics are the OOD-detection metrics of one OOD set against an ID set, or their mean over
// several OOD sets. All rates are fractions in [0,1]; reports show them multiplied by 100.
type Metrics struct {
	NumID  int     `json:"n_id"`   // ID samples
	NumOOD int     `json:"n_ood"`  // OOD samples (for a mean: the total over the sets)
	Recall float64 `json:"recall"` // target ID recall (TPR) of both FPR conventions

	AUROC   float64 `json:"auroc"`    // area under the ROC curve, ties counted 1/2
	AUPRIn  float64 `json:"aupr_in"`  // average precision with ID positive
	AUPROut float64 `json:"aupr_out"` // average precision with OOD positive, score negated

	FPR95                 float64 `json:"fpr95"`                    // OOD accepted at the target recall, Closest convention
	TPRAtThreshold        float64 `json:"tpr_at_threshold"`         // ID recall actually reached at the Closest threshold
	FPR95OpenOOD          float64 `json:"fpr95_openood"`            // OOD accepted at the target recall, OpenOOD convention
	TPRAtThresholdOpenOOD float64 `json:"tpr_at_threshold_openood"` // ID recall actually reached at the OpenOOD threshold

	DetectionError float64 `json:"detection_error"` // min over thresholds of 0.5*(1-TPR) + 0.5*FPR
}

// Evaluate computes all metrics of one OOD set against the ID set at the given target recall
// (use [DefaultRecall] for FPR95).
func Evaluate(id, ood []float64, recall float64) (Metrics, error) {
	if err := checkRecall(recall); err != nil {
		return Metrics{}, err
	}
	c, err := newCurve(id, ood)
	if err != nil {
		return Metrics{}, err
	}
	closest := c.closest(recall)
	first := c.firstAtLeast(recall)
	return Metrics{
		NumID:                 c.nID,
		NumOOD:                c.nOOD,
		Recall:                recall,
		AUROC:                 c.auroc(),
		AUPRIn:                c.averagePrecision(false),
		AUPROut:               c.averagePrecision(true),
		FPR95:                 closest.FPR,
		TPRAtThreshold:        closest.TPR,
		FPR95OpenOOD:          first.FPR,
		TPRAtThresholdOpenOOD: first.TPR,
		DetectionError:        c.detectionError(),
	}, nil
}

// Mean returns the unweighted mean of metrics computed for several OOD sets against the same
// ID set at the same target recall, as the method's code reports them. NumOOD of the result is
// the total over the sets.
func Mean(ms []Metrics) (Metrics, error) {
	if len(ms) == 0 {
		return Metrics{}, fmt.Errorf("mean of metrics: %w", ErrNoScores)
	}
	out := Metrics{NumID: ms[0].NumID, Recall: ms[0].Recall}
	for i, m := range ms {
		if m.NumID != out.NumID || m.Recall != out.Recall {
			return Metrics{}, fmt.Errorf("mean of metrics: set %d has n_id %d and recall %g, set 0 has %d and %g",
				i, m.NumID, m.Recall, out.NumID, out.Recall)
		}
		out.NumOOD += m.NumOOD
		out.AUROC += m.AUROC
		out.AUPRIn += m.AUPRIn
		out.AUPROut += m.AUPROut
		out.FPR95 += m.FPR95
		out.TPRAtThreshold += m.TPRAtThreshold
		out.FPR95OpenOOD += m.FPR95OpenOOD
		out.TPRAtThresholdOpenOOD += m.TPRAtThresholdOpenOOD
		out.DetectionError += m.DetectionError
	}
	n := float64(len(ms))
	for _, v := range []*float64{&out.AUROC, &out.AUPRIn, &out.AUPROut, &out.FPR95, &out.TPRAtThreshold,
		&out.FPR95OpenOOD, &out.TPRAtThresholdOpenOOD, &out.DetectionError} {
		*v /= n
	}
	return out, nil
}

// AUROC returns the area under the ROC curve: the trapezoidal area over the distinct score
// thresholds, which equals the Mann-Whitney statistic P(id > ood) + P(id == ood)/2. It equals
// sklearn's roc_auc_score(labels, scores) with ID labelled 1.
func AUROC(id, ood []float64) (float64, error) {
	c, err := newCurve(id, ood)
	if err != nil {
		return 0, err
	}
	return c.auroc(), nil
}

// AUPRIn returns the average precision with ID positive, sklearn's
// average_precision_score(labels, scores) with ID labelled 1: the step-wise sum
// Σ (R_n - R_{n-1})·P_n over the tie-grouped thresholds from high to low, not a trapezoid.
func AUPRIn(id, ood []float64) (float64, error) {
	c, err := newCurve(id, ood)
	if err != nil {
		return 0, err
	}
	return c.averagePrecision(false), nil
}

// AUPROut returns the average precision with OOD positive and the scores negated, sklearn's
// average_precision_score(labels, -scores) with OOD labelled 1.
func AUPROut(id, ood []float64) (float64, error) {
	c, err := newCurve(id, ood)
	if err != nil {
		return 0, err
	}
	return c.averagePrecision(true), nil
}

// OperatingPoint is one point of the ROC curve: accepting as ID every score >= Threshold
// accepts the fraction TPR of the ID set and the fraction FPR of the OOD set.
type OperatingPoint struct {
	Threshold float64 `json:"threshold"`
	TPR       float64 `json:"tpr"`
	FPR       float64 `json:"fpr"`
}

// FPRAtRecall returns the operating point at which FPR is read for the target ID recall
// (TPR) in the given convention. The threshold is always one of the scores.
//
// Closest reproduces fpr_and_fdr_at_recall exactly: with the tie-grouped thresholds in
// descending order, the cumulative ID counts tps and recall = tps/#ID in float64, it scans the
// thresholds from the first one that reaches recall 1 back to the highest one and keeps the
// first minimum of |recall - target|. (The routine also appends a sentinel point with recall 1
// and FPR 0; it ties with the first point scanned and so is never chosen.)
//
// OpenOOD takes the first threshold, from high to low, with float64 tps/#ID >= target; it is
// the point of sklearn's roc_curve(labels, scores, drop_intermediate=False) with ID labelled
// 1. sklearn's default drop_intermediate=True can drop that point when it lies on a straight
// run of equal tie-group steps, and then reports the next kept point (a higher FPR).
func FPRAtRecall(id, ood []float64, recall float64, conv Convention) (OperatingPoint, error) {
	if err := checkRecall(recall); err != nil {
		return OperatingPoint{}, err
	}
	c, err := newCurve(id, ood)
	if err != nil {
		return OperatingPoint{}, err
	}
	switch conv {
	case Closest:
		return c.closest(recall), nil
	case OpenOOD:
		return c.firstAtLeast(recall), nil
	default:
		return OperatingPoint{}, fmt.Errorf("unknown FPR convention %q (want %q or %q)", conv, Closest, OpenOOD)
	}
}

// DetectionError returns the minimum over all thresholds of 0.5*(1-TPR) + 0.5*FPR: the
// smallest misclassification rate when ID and OOD are equally likely. Accepting nothing and
// accepting everything both score 0.5, so the result is at most 0.5.
func DetectionError(id, ood []float64) (float64, error) {
	c, err := newCurve(id, ood)
	if err != nil {
		return 0, err
	}
	return c.detectionError(), nil
}

// Accuracy returns the top-1 accuracy: the fraction of predictions equal to their labels.
func Accuracy(predictions, labels []int) (float64, error) {
	if len(predictions) != len(labels) {
		return 0, fmt.Errorf("accuracy: %d predictions but %d labels", len(predictions), len(labels))
	}
	if len(labels) == 0 {
		return 0, fmt.Errorf("accuracy: %w", ErrNoScores)
	}
	correct := 0
	for i, p := range predictions {
		if p == labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(len(labels)), nil
}

// curve is the tie-grouped ROC curve of an ID and an OOD score set.
type curve struct {
	groups     []group // distinct scores, descending
	nID, nOOD  int
	lastRecall int // index of the first group at which every ID score is accepted
}

// group is one distinct score and how many ID and OOD samples have it.
type group struct {
	score   float64
	id, ood int
}

// newCurve checks both score sets and groups them by distinct score. It sorts copies.
func newCurve(id, ood []float64) (*curve, error) {
	if err := checkScores("ID", id); err != nil {
		return nil, err
	}
	if err := checkScores("OOD", ood); err != nil {
		return nil, err
	}
	a, b := sortedDesc(id), sortedDesc(ood)
	c := &curve{nID: len(a), nOOD: len(b), groups: make([]group, 0, len(a)+len(b))}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var s float64
		switch {
		case j == len(b) || (i < len(a) && a[i] >= b[j]):
			s = a[i]
		default:
			s = b[j]
		}
		g := group{score: s}
		for ; i < len(a) && a[i] == s; i++ {
			g.id++
		}
		for ; j < len(b) && b[j] == s; j++ {
			g.ood++
		}
		c.groups = append(c.groups, g)
	}
	tp := 0
	for k, g := range c.groups {
		tp += g.id
		if tp == c.nID {
			c.lastRecall = k
			break
		}
	}
	return c, nil
}

// auroc computes the Mann-Whitney statistic exactly in integers and divides once.
func (c *curve) auroc() float64 {
	var twiceU, oodBelow uint64
	for k := len(c.groups) - 1; k >= 0; k-- {
		g := c.groups[k]
		twiceU += uint64(g.id) * (2*oodBelow + uint64(g.ood))
		oodBelow += uint64(g.ood)
	}
	return float64(twiceU) / (2 * float64(c.nID) * float64(c.nOOD))
}

// averagePrecision is sklearn's step-wise average precision: ID positive with thresholds from
// high to low, or, with outlier set, OOD positive with thresholds from low to high (the
// scores negated).
func (c *curve) averagePrecision(outlier bool) float64 {
	nPos := c.nID
	if outlier {
		nPos = c.nOOD
	}
	var tp, fp int
	var ap, prevRecall float64
	for k := range c.groups {
		g := c.groups[k]
		pos, neg := g.id, g.ood
		if outlier {
			g = c.groups[len(c.groups)-1-k]
			pos, neg = g.ood, g.id
		}
		tp += pos
		fp += neg
		if pos == 0 {
			continue // recall unchanged: this threshold adds nothing
		}
		recall := float64(tp) / float64(nPos)
		ap += (recall - prevRecall) * (float64(tp) / float64(tp+fp))
		prevRecall = recall
	}
	return ap
}

// closest implements the Closest convention; see FPRAtRecall.
func (c *curve) closest(target float64) OperatingPoint {
	tp, fp := 0, 0
	for _, g := range c.groups[:c.lastRecall+1] {
		tp += g.id
		fp += g.ood
	}
	best, bestDist := OperatingPoint{}, math.Inf(1)
	for k := c.lastRecall; k >= 0; k-- {
		recall := float64(tp) / float64(c.nID)
		if d := math.Abs(recall - target); d < bestDist {
			bestDist = d
			best = OperatingPoint{Threshold: c.groups[k].score, TPR: recall, FPR: float64(fp) / float64(c.nOOD)}
		}
		tp -= c.groups[k].id
		fp -= c.groups[k].ood
	}
	return best
}

// firstAtLeast implements the OpenOOD convention; see FPRAtRecall.
func (c *curve) firstAtLeast(target float64) OperatingPoint {
	tp, fp := 0, 0
	for _, g := range c.groups {
		tp += g.id
		fp += g.ood
		if recall := float64(tp) / float64(c.nID); recall >= target {
			return OperatingPoint{Threshold: g.score, TPR: recall, FPR: float64(fp) / float64(c.nOOD)}
		}
	}
	// Unreachable for target <= 1: the last group has recall exactly 1.
	last := c.groups[len(c.groups)-1]
	return OperatingPoint{Threshold: last.score, TPR: 1, FPR: 1}
}

// detectionError is the minimum of 0.5*(1-TPR) + 0.5*FPR over all thresholds, including
// accepting nothing (0.5).
func (c *curve) detectionError() float64 {
	best := 0.5
	tp, fp := 0, 0
	for _, g := range c.groups {
		tp += g.id
		fp += g.ood
		tpr, fpr := float64(tp)/float64(c.nID), float64(fp)/float64(c.nOOD)
		best = min(best, 0.5*(1-tpr)+0.5*fpr)
	}
	return best
}

// checkScores rejects an empty set and non-finite scores; what names the set in errors.
func checkScores(what string, s []float64) error {
	if len(s) == 0 {
		return fmt.Errorf("%s scores: %w", what, ErrNoScores)
	}
	for i, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s score %d is %v: %w", what, i, v, ErrNonFinite)
		}
	}
	return nil
}

// checkRecall rejects a target recall outside (0, 1].
func checkRecall(r float64) error {
	if !(r > 0 && r <= 1) {
		return fmt.Errorf("%w, got %v", ErrRecall, r)
	}
	return nil
}

// sortedDesc returns a copy of s sorted from high to low.
func sortedDesc(s []float64) []float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	slices.Reverse(c)
	return c
}
