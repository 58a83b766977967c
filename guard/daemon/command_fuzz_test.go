package daemon

import (
	"net/url"
	"strings"
	"testing"

	"github.com/oodguard/oodguard/firmware/ota"
	"go.uber.org/zap"
)

// FuzzUpdateCommand feeds arbitrary bytes to the update-command path as they come off the
// network: ParseUpdateCommand and the command queue never panic; a command they accept has a
// valid sha256 and a URL; what is published about it never shows a URL's password or query
// values; a refused command is said so.
func FuzzUpdateCommand(f *testing.F) {
	sha := strings.Repeat("ab", 32)
	for _, s := range []string{
		`{"url": "https://updates.example.com/b.tar", "sha256": "` + sha + `"}`,
		`{"url": "https://u:hunter2@h/b.tar?token=s3cr3t", "sha256": "` + sha + `", "allow_downgrade": true}`,
		`{"url": "http://127.0.0.1:9310/metrics", "sha256": "` + sha + `", "version": "1.0.0"}`,
		`{"url": "file:///etc/passwd", "sha256": "` + sha + `"}`,
		`{"url": 5}`, `{"sha256": "AB"}`, `null`, `[]`, `{}`, ``, `{"url": "h", "sha256": "` + sha + `"} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseUpdateCommand(b)
		if err == nil {
			if !sha256Hex.MatchString(cmd.SHA256) || cmd.URL == "" {
				t.Fatalf("accepted %+v", cmd)
			}
			_ = (ota.URLPolicy{Prefixes: []string{"https://updates.example.com/"}}).CheckURL(cmd.URL)
			red := ota.RedactURL(cmd.URL)
			if u, perr := url.Parse(cmd.URL); perr == nil {
				if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(red, p) && !strings.Contains("REDACTED", p) {
					t.Fatalf("redacted %q still shows the password %q", red, p)
				}
				for _, vs := range u.Query() {
					for _, v := range vs {
						if len(v) > 3 && strings.Contains(red, v) && !strings.Contains(u.Host+u.Path+"REDACTED", v) {
							t.Fatalf("redacted %q still shows the query value %q", red, v)
						}
					}
				}
			}
		}
		published := 0
		c := newCommands("", zap.NewNop(), func() { published++ }) // offer touches no file
		c.offer(b)
		last := c.Last()
		switch {
		case err != nil && (last == nil || last.Status != CommandRefused || published != 1):
			t.Fatalf("a bad command (%v) was not refused: %+v", err, last)
		case err == nil && (c.queued == nil || c.queued.SHA256 != cmd.SHA256):
			t.Fatalf("a good command was not queued: %+v", c.queued)
		}
	})
}
