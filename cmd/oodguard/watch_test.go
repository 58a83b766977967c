package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/guard/mqtt"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
)

// watch reaches a broker the way oodguardd does: over TLS with the CA and a client certificate
// (the test broker requires one), with a username and the password from a file or the
// environment. Errors name the flag.
func TestWatchTLSAndCredentials(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	files := m.TLSFiles()
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A retained "offline" for device dev1, published over TLS with the same options watch uses:
	// watch -until-offline gets it as soon as it subscribes, and exits.
	pubCfg := mqtt.Config{Broker: m.TLSURL(), TLS: mqtt.TLSConfig{CAFile: files.CAFile, CertFile: files.CertFile, KeyFile: files.KeyFile}}
	opts, err := pubCfg.ClientOptions()
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(opts.SetClientID("watch-test-publisher"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher over TLS: %v", tok.Error())
	}
	if tok := pub.Publish("oodguard/dev1/available", 1, true, "offline"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	pub.Disconnect(100)

	tlsFlags := []string{"-broker", m.TLSURL(), "-tls-ca-file", files.CAFile, "-tls-cert-file", files.CertFile, "-tls-key-file", files.KeyFile}
	watch := func(extra ...string) (int, string, string) {
		t.Helper()
		type result struct {
			code     int
			out, err string
		}
		done := make(chan result, 1)
		args := append(append([]string{"watch", "-until-offline", "-wait", "5s"}, tlsFlags...), extra...)
		go func() {
			code, out, errOut := runCLI(t, args...)
			done <- result{code, out, errOut}
		}()
		select {
		case r := <-done:
			return r.code, r.out, r.err
		case <-time.After(30 * time.Second):
			t.Fatalf("watch %v did not exit", args)
			return 0, "", ""
		}
	}
	for name, extra := range map[string][]string{
		"password file": {"-username", "operator", "-password-file", pwFile},
		"password env":  {"-username", "operator", "-password-env", "OODGUARD_TEST_WATCH_PW"},
	} {
		t.Setenv("OODGUARD_TEST_WATCH_PW", "s3cret")
		code, out, errOut := watch(extra...)
		if code != 0 || !strings.Contains(out, "watching oodguard/+/# on "+m.TLSURL()) || !strings.Contains(out, "dev1 is offline") {
			t.Errorf("%s: exit %d\n%s%s", name, code, out, errOut)
		}
	}

	for _, c := range []struct {
		name  string
		args  []string
		code  int
		wants string
	}{
		{"missing password file", []string{"-username", "u", "-password-file", filepath.Join(dir, "nope")}, 1, "-password-file"},
		{"password without username", []string{"-password-file", pwFile}, 2, "-username"},
		{"missing CA file", []string{"-tls-ca-file", filepath.Join(dir, "nope.pem")}, 1, "-tls-ca-file"},
		{"TLS flags on tcp", []string{"-broker", m.URL()}, 2, "-tls-* flags"},
		{"certificate without key", []string{"-tls-key-file", ""}, 2, "-tls-key-file"},
	} {
		code, _, errOut := runCLI(t, append(append([]string{"watch", "-wait", "1s"}, tlsFlags...), c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.wants) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", c.name, code, errOut, c.code, c.wants)
		}
	}
}

// watch prints a device's source state and update state (from the retained topics), and
// ignores malformed ones.
func TestWatchPrintsSourceAndUpdateStates(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL()).SetClientID("watch-states-publisher"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for topic, payload := range map[string]string{
		"oodguard/cam9/source":    `{"state": "offline", "source": "/dev/video0", "error": "camera /dev/video0: open: no such file or directory"}`,
		"oodguard/cam9/ota/state": `{"phase": "idle", "current": "1.1.0-1", "command": {"sha256": "abcdefabcdef0123", "status": "refused", "reason": "downgrade"}}`,
		"oodguard/cam8/source":    `not json`,
		"oodguard/cam9/available": "offline",
	} {
		if tok := pub.Publish(topic, 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	pub.Disconnect(100)
	code, out, errOut := runCLI(t, "watch", "-broker", m.URL(), "-until-offline", "-wait", "5s")
	for _, want := range []string{
		"cam9 source /dev/video0 is offline: camera /dev/video0: open: no such file or directory",
		"cam9 update: idle, running 1.1.0-1; command abcdefabcdef refused: downgrade",
		"cam9 is offline",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, no %q in:\n%s%s", code, want, out, errOut)
		}
	}
	if !strings.Contains(errOut, "malformed source state on oodguard/cam8/source") {
		t.Errorf("malformed state not reported: %s", errOut)
	}
}
