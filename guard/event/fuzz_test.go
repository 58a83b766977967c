package event

import (
	"errors"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every error wraps ErrInvalid, and that what
// it accepts encodes and decodes again to the same event.
func FuzzDecode(f *testing.F) {
	b, _ := sample().Encode()
	f.Add(b)
	f.Add([]byte(`{"id":"a","device":"d","time":"2026-01-01T00:00:00Z","decision":"id","score":1e308,"threshold":-1e308}`))
	f.Add([]byte(`{"id":"","decision":"ood"}`))
	f.Add([]byte(`{"id":"a/b+#","device":"d","time":"2026-01-01T00:00:00Z","decision":"ood"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"score":1e999}`))
	f.Add([]byte(`{"frame_id":18446744073709551616}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		out, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded event does not encode: %v (%+v)", err, e)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !again.Time.Equal(e.Time) {
			t.Fatalf("time changed: %v -> %v", e.Time, again.Time)
		}
		again.Time = e.Time
		if again != e {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}
