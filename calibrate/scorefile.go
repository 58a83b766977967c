package calibrate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// ReadScoreFile reads a score file: one number per line, higher = more ID. Blank lines and
// lines whose first non-blank character is # are ignored. Errors name the file and the line.
func ReadScoreFile(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read scores: %w", err)
	}
	defer f.Close()
	return ReadScores(f, path)
}

// ReadScores reads scores in the score file format from r, streaming it line by line; name
// labels r in errors ("name:line: ..."). A NaN or infinite score, an unparsable line and a
// stream without any score are errors.
func ReadScores(r io.Reader, name string) ([]float64, error) {
	var scores []float64
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			var ne *strconv.NumError
			if errors.As(err, &ne) {
				err = ne.Err // "invalid syntax" or "value out of range"
			}
			return nil, fmt.Errorf("%s:%d: invalid score %q: %v", name, line, text, err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s:%d: %w: %q", name, line, ErrNonFinite, text)
		}
		scores = append(scores, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if len(scores) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNoScores)
	}
	return scores, nil
}
