package bundle

import (
	"encoding/json"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"1.2.3", "1.2.3"},
		{"v0.10.0", "0.10.0"},
		{"1.0.0-rc.1", "1.0.0-rc.1"},
		{"2.0.0-x-y.0.a", "2.0.0-x-y.0.a"},
		{"18446744073709551615.0.0", "18446744073709551615.0.0"},
	} {
		v, err := ParseVersion(c.in)
		if err != nil || v.String() != c.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %s", c.in, v, err, c.want)
		}
	}
	for _, bad := range []string{
		"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-rc..1", "1.2.3-01",
		"1.2.3+build", "1.2.3-rc_1", " 1.2.3", "-1.2.3", "18446744073709551616.0.0", "vv1.2.3",
	} {
		if v, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %v, want an error", bad, v)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	// Ascending, as in the Semantic Versioning 2.0.0 spec, plus numeric fields.
	order := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "10.0.0",
	}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := MustParseVersion(a).Compare(MustParseVersion(b)); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestVersionJSON(t *testing.T) {
	var s struct {
		V Version `json:"v"`
		Z Version `json:"z,omitzero"`
	}
	if err := json.Unmarshal([]byte(`{"v":"v1.2.3-rc.1"}`), &s); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `{"v":"1.2.3-rc.1"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"v":"1.2"}`), &s); err == nil {
		t.Error("1.2 parsed")
	}
}
