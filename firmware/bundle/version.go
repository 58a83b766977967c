package bundle

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version, MAJOR.MINOR.PATCH with an optional "-PRERELEASE" of
// dot-separated identifiers, ordered as Semantic Versioning 2.0.0 orders them. Parse accepts a
// leading "v"; build metadata ("+...") is refused, since it would make two different versions
// compare equal. The zero Version means "none" (no version installed, no minimum).
type Version struct {
	Major, Minor, Patch uint64
	Pre                 string // prerelease, without the "-"; "" for a release
}

// ParseVersion parses s as a [Version].
func ParseVersion(s string) (Version, error) {
	bad := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("version %q: %s (want MAJOR.MINOR.PATCH[-PRERELEASE])", s, why)
	}
	rest := strings.TrimPrefix(s, "v")
	if strings.Contains(rest, "+") {
		return bad("build metadata is not allowed")
	}
	core, pre, hasPre := strings.Cut(rest, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return bad("need three numbers")
	}
	var n [3]uint64
	for i, p := range parts {
		if !isNumeric(p) {
			return bad(fmt.Sprintf("%q is not a number without leading zeros", p))
		}
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad(fmt.Sprintf("%q is out of range", p))
		}
		n[i] = v
	}
	if hasPre {
		for _, id := range strings.Split(pre, ".") {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return bad(fmt.Sprintf("prerelease identifier %q is not [0-9A-Za-z-]+", id))
			}
			if isDigits(id) && !isNumeric(id) {
				return bad(fmt.Sprintf("prerelease identifier %q has a leading zero", id))
			}
		}
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2], Pre: pre}, nil
}

// MustParseVersion is ParseVersion for constants; it panics on a bad version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// IsZero reports whether v is the zero Version ("none").
func (v Version) IsZero() bool { return v == Version{} }

// String formats v as MAJOR.MINOR.PATCH[-PRE], or "" for the zero Version.
func (v Version) String() string {
	if v.IsZero() {
		return ""
	}
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	return s
}

// Compare returns -1, 0 or +1 as v is older than, equal to or newer than w. A prerelease is
// older than its release: 1.2.0-rc.1 < 1.2.0.
func (v Version) Compare(w Version) int {
	if c := cmp.Compare(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Patch, w.Patch); c != 0 {
		return c
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(w.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := comparePre(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// comparePre orders two prerelease identifiers: numbers numerically and below words, words
// in ASCII order.
func comparePre(a, b string) int {
	na, nb := isDigits(a), isDigits(b)
	switch {
	case na && nb:
		// No leading zeros, so the longer number is the larger.
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case na:
		return -1
	case nb:
		return 1
	}
	return strings.Compare(a, b)
}

// MarshalText writes v as its String.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses a version with ParseVersion.
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// isNumeric reports whether s is a decimal number without leading zeros.
func isNumeric(s string) bool {
	return isDigits(s) && (s == "0" || s[0] != '0')
}
