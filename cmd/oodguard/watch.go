package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/guard/event"
	"github.com/oodguard/oodguard/guard/mqtt"
)

// watchCommand subscribes to devices' alerts and prints them.
type watchCommand struct {
	conn           mqtt.Config // broker, credentials and TLS, as in oodguardd's mqtt config
	prefix, device string
	save           string
	untilOffline   bool
	count          int
	wait           time.Duration
	jsonOut        bool
}

func (c *watchCommand) Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: oodguard watch -broker tcp://HOST:PORT [flags]

Subscribes to oodguardd alerts (<prefix>/<device>/events), availability and frames, and prints
each alert as it arrives, once per event id (MQTT may deliver a message twice). With -save, the
flagged frames are written there as <event-id>.jpg.

It reaches the broker as oodguardd does: each connection flag is the key of the daemon's mqtt
config with '-' for '.' and '_' (tls.ca_file is -tls-ca-file, password_file is -password-file).
The password comes from a file or an environment variable, never from the command line.

Flags:
`)
}

func (c *watchCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("watch", c)
	fs.StringVar(&c.conn.Broker, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL: tcp://, ssl://, ws:// or wss://")
	fs.StringVar(&c.conn.Username, "username", "", "MQTT username")
	fs.StringVar(&c.conn.PasswordFile, "password-file", "", "file holding the password (needs -username)")
	fs.StringVar(&c.conn.PasswordEnv, "password-env", "", "or: environment variable holding the password (needs -username)")
	fs.StringVar(&c.conn.TLS.CAFile, "tls-ca-file", "", "PEM roots that sign the broker's certificate (ssl://, wss://; default: the system's)")
	fs.StringVar(&c.conn.TLS.CertFile, "tls-cert-file", "", "PEM client certificate, for mutual TLS")
	fs.StringVar(&c.conn.TLS.KeyFile, "tls-key-file", "", "PEM key of -tls-cert-file")
	fs.StringVar(&c.conn.TLS.ServerName, "tls-server-name", "", "host name to check in the broker's certificate instead of the URL's")
	fs.BoolVar(&c.conn.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any broker certificate: testing only")
	fs.StringVar(&c.prefix, "prefix", "oodguard", "topic prefix")
	fs.StringVar(&c.device, "device", "+", "device id; + for every device")
	fs.StringVar(&c.save, "save", "", "folder to save flagged frames in")
	fs.BoolVar(&c.untilOffline, "until-offline", false, "exit when a watched device goes offline or the broker goes away")
	fs.IntVar(&c.count, "count", 0, "exit after this many alerts (0: never)")
	fs.DurationVar(&c.wait, "wait", 10*time.Second, "keep trying to reach the broker this long at start")
	fs.BoolVar(&c.jsonOut, "json", false, "print each alert as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if err := c.conn.ValidateConnection(); err != nil {
		return usageError{watchFlagError(err)}
	}
	opts, err := c.conn.ClientOptions() // reads the password and TLS files
	if err != nil {
		return watchFlagError(err)
	}
	if c.save != "" {
		if err := os.MkdirAll(c.save, 0o755); err != nil {
			return err
		}
	}
	base := c.prefix + "/" + c.device
	done := make(chan string, 1)
	finish := func(why string) {
		select {
		case done <- why:
		default:
		}
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	alerts := 0
	onEvent := func(_ paho.Client, m paho.Message) {
		ev, err := event.Decode(m.Payload())
		if err != nil {
			fmt.Fprintf(stderr, "ignoring a malformed event on %s: %v\n", m.Topic(), err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[ev.ID] {
			return
		}
		seen[ev.ID] = true
		alerts++
		c.print(ev)
		if c.count > 0 && alerts >= c.count {
			finish(fmt.Sprintf("%d alerts", alerts))
		}
	}
	onFrame := func(_ paho.Client, m paho.Message) {
		if c.save == "" {
			return
		}
		id := m.Topic()[strings.LastIndex(m.Topic(), "/")+1:]
		if id == "" || strings.ContainsAny(id, `/\.`) {
			return
		}
		if err := os.WriteFile(filepath.Join(c.save, id+".jpg"), m.Payload(), 0o644); err != nil {
			fmt.Fprintf(stderr, "saving frame %s: %v\n", id, err)
		}
	}
	onAvailable := func(_ paho.Client, m paho.Message) {
		dev := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), c.prefix+"/"), "/available")
		fmt.Fprintf(stdout, "%s %s is %s\n", time.Now().Format("15:04:05"), dev, m.Payload())
		if c.untilOffline && string(m.Payload()) == "offline" {
			finish(dev + " went offline")
		}
	}
	// The source's state and the update state: short lines, from untrusted JSON.
	onSource := func(_ paho.Client, m paho.Message) {
		dev := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), c.prefix+"/"), "/source")
		var st struct{ State, Source, Error string }
		if err := json.Unmarshal(m.Payload(), &st); err != nil || st.State == "" {
			fmt.Fprintf(stderr, "ignoring a malformed source state on %s\n", m.Topic())
			return
		}
		line := fmt.Sprintf("%s %s source %s is %s", time.Now().Format("15:04:05"), dev, st.Source, st.State)
		if st.Error != "" {
			line += ": " + st.Error
		}
		fmt.Fprintln(stdout, line)
	}
	onOTA := func(_ paho.Client, m paho.Message) {
		dev := strings.TrimSuffix(strings.TrimPrefix(m.Topic(), c.prefix+"/"), "/ota/state")
		var st struct {
			Phase, Current, Reason string
			Command                *struct{ SHA256, Status, Reason string }
		}
		if err := json.Unmarshal(m.Payload(), &st); err != nil || st.Phase == "" {
			fmt.Fprintf(stderr, "ignoring a malformed update state on %s\n", m.Topic())
			return
		}
		line := fmt.Sprintf("%s %s update: %s", time.Now().Format("15:04:05"), dev, st.Phase)
		if st.Current != "" {
			line += ", running " + st.Current
		}
		if st.Reason != "" {
			line += " (" + st.Reason + ")"
		}
		if cmd := st.Command; cmd != nil {
			line += fmt.Sprintf("; command %.12s %s", cmd.SHA256, cmd.Status)
			if cmd.Reason != "" {
				line += ": " + cmd.Reason
			}
		}
		fmt.Fprintln(stdout, line)
	}
	opts.SetClientID(fmt.Sprintf("oodguard-watch-%d", os.Getpid())).
		SetCleanSession(true).SetAutoReconnect(true).SetOrderMatters(true).SetConnectTimeout(2 * time.Second)
	opts.SetOnConnectHandler(func(cl paho.Client) {
		cl.Subscribe(base+"/events", 1, onEvent)
		cl.Subscribe(base+"/frames/+", 1, onFrame)
		// Source and update states before availability: with -until-offline, a retained
		// "offline" ends the watch, after the device's last states were printed.
		for _, s := range []struct {
			topic string
			f     paho.MessageHandler
		}{{"/source", onSource}, {"/ota/state", onOTA}} {
			if tok := cl.Subscribe(base+s.topic, 1, s.f); tok.WaitTimeout(5*time.Second) && tok.Error() != nil {
				fmt.Fprintf(stderr, "subscribe %s: %v\n", base+s.topic, tok.Error())
			}
		}
		cl.Subscribe(base+"/available", 1, onAvailable)
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		fmt.Fprintf(stdout, "%s lost the broker: %v\n", time.Now().Format("15:04:05"), err)
		if c.untilOffline {
			finish("broker went away")
		}
	})
	cl := paho.NewClient(opts)
	deadline := time.Now().Add(c.wait)
	for {
		t := cl.Connect()
		if t.WaitTimeout(3*time.Second) && t.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker %s: not reachable for %v: %v", c.conn.Broker, c.wait, t.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer cl.Disconnect(250)
	fmt.Fprintf(stdout, "watching %s/# on %s\n", base, c.conn.Broker)
	select {
	case <-ctx.Done():
	case why := <-done:
		fmt.Fprintf(stdout, "done: %s\n", why)
	}
	return nil
}

// watchFlagError names the flag of an mqtt config error: "-tls-ca-file: open ca.pem: no such
// file or directory" rather than the daemon's "mqtt config: tls.ca_file: ...".
func watchFlagError(err error) error {
	var fe *mqtt.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	name := "-" + strings.NewReplacer(".", "-", "_", "-").Replace(fe.Field)
	if fe.Field == "tls" {
		name = "-tls-* flags"
	}
	return fmt.Errorf("%s: %w", name, fe.Err)
}

func (c *watchCommand) print(ev event.Event) {
	if c.jsonOut {
		json.NewEncoder(stdout).Encode(ev)
		return
	}
	frame := ""
	if ev.Frame != "" {
		frame = " frame on " + ev.Frame
	}
	fmt.Fprintf(stdout, "%s ALERT %s frame %d (%s): %s %.4f, median %.4f < threshold %.4f, model %s%s\n",
		ev.Time.Local().Format("15:04:05.000"), ev.Device, ev.FrameID, ev.Source, ev.ScoreKind, ev.Score, ev.Median, ev.Threshold, ev.Model, frame)
}
