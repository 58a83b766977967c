// Package broker runs an embedded MQTT broker (github.com/mochi-mqtt/server/v2) for a device
// that has no broker of its own, and for the demo.
//
// The broker has no credentials and no TLS, so it trusts only the device itself: it accepts
// connections from loopback addresses (127.0.0.0/8, ::1) and refuses every other client at
// CONNECT, whatever address it listens on. Start listens on 127.0.0.1:1883 when addr is empty.
// For a broker that other machines use, run a real one (mosquitto) with TLS and passwords.
//
// Retained messages and sessions live in memory and are lost when the broker closes.
package broker

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/zap"
)

// DefaultAddr is where Start listens when addr is empty.
const DefaultAddr = "127.0.0.1:1883"

// Broker is a running embedded broker.
type Broker struct {
	srv *mochi.Server
	tcp *listeners.TCP
	log *zap.Logger
}

// Start listens on addr (host:port; port 0 picks a free one) and serves MQTT until Close.
// log is used as given (callers name it, e.g. log.Named("broker")); mochi-mqtt's own records go
// to its child "mochi". nil logs nothing.
func Start(addr string, log *zap.Logger) (*Broker, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if addr == "" {
		addr = DefaultAddr
	}
	if host, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("broker: address %q: %w", addr, err)
	} else if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		log.Warn("listening beyond loopback; only loopback clients will be accepted", zap.String("addr", addr))
	}
	srv := mochi.New(&mochi.Options{Logger: slog.New(newSlogHandler(log.Named("mochi")))})
	if err := srv.AddHook(&loopbackOnly{log: log}, nil); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b := &Broker{srv: srv, tcp: tcp, log: log}
	log.Info("embedded broker listening", zap.String("addr", b.Addr()))
	return b, nil
}

// Addr returns the address the broker listens on, with the port it got.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL returns the broker's address as a client URL, tcp://host:port.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Close disconnects every client and stops listening. Clients do not get their last wills
// delivered to anyone: every connection ends at once.
func (b *Broker) Close() error {
	err := b.srv.Close()
	b.log.Info("embedded broker closed")
	return err
}

// loopbackOnly admits loopback clients and lets them publish and subscribe to anything.
type loopbackOnly struct {
	mochi.HookBase
	log *zap.Logger
}

func (h *loopbackOnly) ID() string { return "oodguard-loopback-only" }

func (h *loopbackOnly) Provides(b byte) bool {
	return bytes.IndexByte([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, b) >= 0
}

func (h *loopbackOnly) OnConnectAuthenticate(cl *mochi.Client, _ packets.Packet) bool {
	if cl.Net.Inline || isLoopback(cl.Net.Remote) {
		return true
	}
	h.log.Warn("refused a client that is not on loopback", zap.String("remote", cl.Net.Remote), zap.String("client_id", cl.ID))
	return false
}

func (h *loopbackOnly) OnACLCheck(cl *mochi.Client, _ string, _ bool) bool {
	return cl.Net.Inline || isLoopback(cl.Net.Remote)
}

// isLoopback reports whether a remote address ("host:port") is a loopback address.
func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

var _ mochi.Hook = (*loopbackOnly)(nil)
