package mqtt_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/oodguard/oodguard/guard/mqtt/mqtttest"
	"github.com/oodguard/oodguard/runtime/runtimetest"
)

// The README's way to lock the update topic down, firmware/systemd/mosquitto.acl.example, on a
// real mosquitto: only the operator commands a device; a device cannot command or impersonate
// another; anonymous clients are refused.
func TestMosquittoACLExample(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	for i, u := range []string{"operator", "cam1", "cam2"} {
		args := []string{"-b", passwd, u, u + "-secret"}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl := filepath.Join(runtimetest.RepoRoot(t), "firmware/systemd/mosquitto.acl.example")
	if _, err := os.Stat(acl); err != nil {
		t.Fatal(err)
	}
	mq := mqtttest.StartMosquittoWith(t, "allow_anonymous false\npassword_file "+passwd+"\nacl_file "+acl+"\n")

	connect := func(user string) (paho.Client, error) {
		o := paho.NewClientOptions().AddBroker(mq.URL()).SetClientID("acl-" + user).SetConnectTimeout(5 * time.Second)
		if user != "" {
			o.SetUsername(user).SetPassword(user + "-secret")
		}
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, tok.Error()
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c, nil
	}
	collect := func(c paho.Client, filter string) chan string {
		got := make(chan string, 16)
		tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- m.Topic() + " " + string(m.Payload()) })
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return got
	}
	if _, err := connect(""); err == nil {
		t.Error("an anonymous client connected")
	}
	op, err := connect("operator")
	if err != nil {
		t.Fatal(err)
	}
	cam1, err := connect("cam1")
	if err != nil {
		t.Fatal(err)
	}
	cam2, err := connect("cam2")
	if err != nil {
		t.Fatal(err)
	}
	cmds := collect(cam1, "oodguard/cam1/ota/update")
	seen := collect(op, "oodguard/#")
	publish := func(c paho.Client, topic, payload string) {
		c.Publish(topic, 1, false, payload).WaitTimeout(5 * time.Second)
	}
	publish(cam2, "oodguard/cam1/ota/update", "from cam2")
	publish(cam2, "oodguard/cam1/events", "spoofed by cam2")
	publish(op, "oodguard/cam1/ota/update", "from operator")
	publish(cam1, "oodguard/cam1/events", "from cam1")

	want := map[string]bool{"oodguard/cam1/ota/update from operator": true, "oodguard/cam1/events from cam1": true}
	deadline := time.After(3 * time.Second)
	var cam1Got, opGot []string
	for done := false; !done; {
		select {
		case m := <-cmds:
			cam1Got = append(cam1Got, m)
		case m := <-seen:
			opGot = append(opGot, m)
		case <-deadline:
			done = true
		}
	}
	if len(cam1Got) != 1 || cam1Got[0] != "oodguard/cam1/ota/update from operator" {
		t.Errorf("cam1 received commands %q, want only the operator's", cam1Got)
	}
	for _, m := range opGot {
		if !want[m] {
			t.Errorf("operator saw %q, which the ACL should have refused", m)
		}
	}
	if len(opGot) != 2 {
		t.Errorf("operator saw %q, want the operator's command and cam1's event", opGot)
	}
}
