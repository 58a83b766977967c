package unleash

import (
	"bytes"
	"strings"
	"testing"
)

func TestCopyFilteredDropsOnlyProbeLines(t *testing.T) {
	in := "loading\n" +
		"The requested API version [26] is not available, only API versions [1, 24] are supported in this build. Current ORT Version is: 1.24.1\n" +
		"The requested API version [25] is not available, only API versions [1, 24] are supported in this build. Current ORT Version is: 1.24.1\n" +
		"a real warning mentioning The requested API version [26]\n" +
		"last line without newline"
	var out bytes.Buffer
	copyFiltered(&out, strings.NewReader(in))
	want := "loading\na real warning mentioning The requested API version [26]\nlast line without newline"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
