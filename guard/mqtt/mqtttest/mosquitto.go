// Package mqtttest gives tests a real MQTT broker, Debian's mosquitto, started on a free
// loopback port with a throw-away configuration, and a subscriber that collects messages.
//
// When mosquitto is not installed the test is skipped with a message, unless the environment
// says test dependencies must be there (runtimetest.Required: CI=true or
// OODGUARD_REQUIRE_ORT=1); then it fails.
package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// EnvMosquitto names the mosquitto binary to use instead of /usr/sbin/mosquitto or $PATH.
const EnvMosquitto = "OODGUARD_MOSQUITTO"

const (
	readyTimeout = 5 * time.Second
	stopTimeout  = 5 * time.Second
)

// Mosquitto is a mosquitto broker run by a test. It listens on two ports of 127.0.0.1: plain
// MQTT (URL), and MQTT over TLS with client certificates (TLSURL, TLSFiles). Its state
// (retained messages, persistent sessions) is saved in a temporary folder when it stops and
// loaded when it starts again, like a broker with persistence after a restart.
type Mosquitto struct {
	tb      testing.TB
	bin     string
	dir     string
	port    int
	tlsPort int
	tls     TLSFiles
	srvCert string
	srvKey  string
	log     *os.File

	extra string // configuration lines appended to the generated ones

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// StartMosquittoWith starts mosquitto as StartMosquitto does, with extra configuration lines
// (e.g. password_file and acl_file). An "allow_anonymous" line in extra replaces the default
// "allow_anonymous true".
func StartMosquittoWith(tb testing.TB, extra string) *Mosquitto {
	tb.Helper()
	return startMosquitto(tb, extra)
}

// StartMosquitto starts mosquitto on a free port of 127.0.0.1 and stops it when the test ends.
func StartMosquitto(tb testing.TB) *Mosquitto {
	tb.Helper()
	return startMosquitto(tb, "")
}

func startMosquitto(tb testing.TB, extra string) *Mosquitto {
	tb.Helper()
	bin := findMosquitto()
	if bin == "" {
		msg := "mosquitto not found in $" + EnvMosquitto + ", /usr/sbin or $PATH (Debian: apt-get install mosquitto)"
		if runtimetest.Required() {
			tb.Fatalf("mosquitto is required here: %s", msg)
		}
		tb.Skip("skipping: " + msg)
	}
	m := &Mosquitto{tb: tb, bin: bin, dir: tb.TempDir(), extra: extra}
	log, err := os.Create(filepath.Join(m.dir, "mosquitto.log"))
	if err != nil {
		tb.Fatal(err)
	}
	m.log = log
	if m.tls, m.srvCert, m.srvKey, err = writeCerts(m.dir); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		m.Stop()
		if tb.Failed() {
			b, _ := os.ReadFile(log.Name())
			tb.Logf("mosquitto log:\n%s", b)
		}
		log.Close()
	})
	var lastErr error
	for range 3 { // the free port may be taken between our probe and mosquitto's bind
		if m.port, err = freePort(); err != nil {
			tb.Fatal(err)
		}
		if m.tlsPort, err = freePort(); err != nil {
			tb.Fatal(err)
		}
		if lastErr = m.start(); lastErr == nil {
			return m
		}
	}
	tb.Fatalf("start mosquitto: %v", lastErr)
	return nil
}

// URL is the broker's address for a client, tcp://127.0.0.1:<port>.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr() }

// Addr is the broker's host:port.
func (m *Mosquitto) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// TLSURL is the address of the TLS listener, ssl://127.0.0.1:<port>. It requires a client
// certificate signed by the test CA.
func (m *Mosquitto) TLSURL() string {
	return "ssl://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(m.tlsPort))
}

// TLSFiles returns the test CA and a client certificate and key for TLSURL.
func (m *Mosquitto) TLSFiles() TLSFiles { return m.tls }

// Stop stops the broker (SIGTERM, repeated every 250 ms, SIGKILL after 5 s); it saves its state
// first. The repeat is for a SIGTERM the broker never acted on: once in a full CI run a broker
// stopped right after it started was still running 5 s later, which 80 runs alone did not
// reproduce. Stopping a stopped broker does nothing.
func (m *Mosquitto) Stop() {
	m.tb.Helper()
	if m.cmd == nil {
		return
	}
	deadline := time.After(stopTimeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for stopped := false; !stopped; {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
			stopped = true
		case <-tick.C:
		case <-deadline:
			m.tb.Errorf("mosquitto did not stop within %v; killing it", stopTimeout)
			_ = m.cmd.Process.Kill()
			<-m.exited
			stopped = true
		}
	}
	m.cmd = nil
}

// Start starts a stopped broker again, on the same port, with the state it saved.
func (m *Mosquitto) Start() {
	m.tb.Helper()
	if m.cmd != nil {
		m.tb.Fatal("mosquitto is already running")
	}
	if err := m.start(); err != nil {
		m.tb.Fatalf("restart mosquitto: %v", err)
	}
}

// Restart stops and starts the broker.
func (m *Mosquitto) Restart() {
	m.tb.Helper()
	m.Stop()
	m.Start()
}

// ForgetState deletes the state a stopped broker saved, so that it starts again empty: no
// retained messages, no sessions.
func (m *Mosquitto) ForgetState() {
	m.tb.Helper()
	if m.cmd != nil {
		m.tb.Fatal("ForgetState on a running mosquitto")
	}
	if err := os.Remove(filepath.Join(m.dir, "mosquitto.db")); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.tb.Fatal(err)
	}
}

func (m *Mosquitto) start() error {
	conf := filepath.Join(m.dir, "mosquitto.conf")
	var b bytes.Buffer
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", m.port)
	fmt.Fprintf(&b, "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		m.tlsPort, m.tls.CAFile, m.srvCert, m.srvKey)
	if !bytes.Contains([]byte(m.extra), []byte("allow_anonymous")) {
		fmt.Fprintf(&b, "allow_anonymous true\n")
	}
	b.WriteString(m.extra)
	if m.extra != "" && m.extra[len(m.extra)-1] != '\n' {
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "persistence true\npersistence_location %s/\npersistence_file mosquitto.db\n", m.dir)
	fmt.Fprintf(&b, "max_queued_messages 100000\n")
	fmt.Fprintf(&b, "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to the user "mosquitto", who cannot write our folder.
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&b, "user %s\n", u.Username)
		}
	}
	if err := os.WriteFile(conf, b.Bytes(), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "-c", conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := net.DialTimeout("tcp", m.Addr(), time.Second); err == nil {
			c.Close()
			m.cmd, m.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("mosquitto exited at start (%v); see its log", cmd.ProcessState)
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("mosquitto not listening on %s after %v", m.Addr(), readyTimeout)
		case <-tick.C:
		}
	}
}

func findMosquitto() string {
	if p := os.Getenv(EnvMosquitto); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto"
	}
	p, _ := exec.LookPath("mosquitto")
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
