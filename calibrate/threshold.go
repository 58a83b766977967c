package calibrate

import "fmt"

// FitThreshold fits the deployed threshold on ID validation scores. The decision rule is
// "ID when score >= threshold"; FitThreshold returns the largest threshold whose true positive
// rate (the fraction of id accepted) is at least target, and that rate. Use [DefaultRecall]
// for the usual 95%.
//
// The threshold is always one of the scores, and the rate is exact: k/n in float64, where k
// counts the scores >= threshold, so it can be checked by counting. Ties are accepted or
// rejected as a whole: when several scores equal the threshold, all of them are accepted, so
// the rate may exceed the target by up to the size of that tie group over n; no threshold
// accepts only part of a tie group. Any threshold above the next lower score would make the
// same decisions; returning the score itself keeps the fit exact and free of rounding.
//
// The comparison k/n >= target is the one of [OpenOOD]: the threshold and rate equal the
// OpenOOD operating point of [FPRAtRecall] on the same ID scores (against any OOD set).
// A target of 1 returns the smallest score. FitThreshold does not modify id.
func FitThreshold(id []float64, target float64) (threshold, tpr float64, err error) {
	if err := checkRecall(target); err != nil {
		return 0, 0, fmt.Errorf("fit threshold: %w", err)
	}
	if err := checkScores("ID", id); err != nil {
		return 0, 0, fmt.Errorf("fit threshold: %w", err)
	}
	s := sortedDesc(id)
	n := float64(len(s))
	for i, v := range s {
		if i+1 < len(s) && s[i+1] == v {
			continue // not the end of a tie group
		}
		if rate := float64(i+1) / n; rate >= target {
			return v, rate, nil
		}
	}
	// Unreachable for target <= 1: the last group accepts every score.
	return s[len(s)-1], 1, nil
}
