package ota

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused: a download's URL, or a redirect it was sent to, breaks the URLPolicy. Nothing was
// fetched from it.
var ErrRefused = errors.New("url refused by the update policy")

// URLPolicy says where a Downloader may fetch bundles from. Update commands come over MQTT from
// anyone with publish rights on the update topic, so the URL is untrusted: the policy keeps it
// from making the device fetch from itself or its link-local neighbours (the HTTP endpoints of
// the daemon, a cloud metadata service) and publish what it learned.
type URLPolicy struct {
	// AllowLocal lets URLs and redirects reach loopback, link-local, unspecified and multicast
	// addresses (checked on the address actually dialled, so a name that resolves there is
	// refused too). Off by default; tests and a bundle server on the device itself turn it on.
	AllowLocal bool
	// Prefixes, when not empty, are the only URL prefixes an update command may name (e.g.
	// "https://updates.example.com/bundles/"). Redirects from there are not held to them.
	Prefixes []string
	// MaxRedirects bounds the redirects followed; 5 when zero.
	MaxRedirects int
}

// CheckURL checks a command's URL before anything is fetched: http or https, no fragment
// tricks, and one of Prefixes when given.
func (p URLPolicy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRefused, RedactURL(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: %s: scheme %q is not http or https", ErrRefused, RedactURL(raw), u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%w: %s: no host", ErrRefused, RedactURL(raw))
	}
	if len(p.Prefixes) == 0 {
		return nil
	}
	for _, pre := range p.Prefixes {
		if strings.HasPrefix(raw, pre) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s does not start with one of ota.url_prefixes", ErrRefused, RedactURL(raw))
}

// checkRedirect keeps redirects to the scheme of the first request (no https -> http) and
// bounds their number; the dialler checks where they lead.
func (p URLPolicy) checkRedirect(req *http.Request, via []*http.Request) error {
	max := p.MaxRedirects
	if max == 0 {
		max = 5
	}
	if len(via) > max {
		return fmt.Errorf("%w: more than %d redirects", ErrRefused, max)
	}
	if req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("%w: redirect from %s to %s changes the scheme", ErrRefused, via[0].URL.Scheme, RedactURL(req.URL.String()))
	}
	return nil
}

// control refuses connections to local addresses unless AllowLocal; it runs on the address
// actually dialled, after name resolution, so a DNS name cannot smuggle a local address in.
func (p URLPolicy) control(_, address string, _ syscall.RawConn) error {
	if p.AllowLocal {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: address %s: %v", ErrRefused, address, err)
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%w: %s is a loopback, link-local or unspecified address (ota.allow_local_urls is off)", ErrRefused, a)
	}
	return nil
}

// Client returns an HTTP client that follows the policy: its dialler refuses local addresses
// and its redirect check keeps the scheme and bounds the count. It uses the proxy from the
// environment, as http.DefaultClient does.
func (p URLPolicy) Client() *http.Client {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: p.control}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr, CheckRedirect: p.checkRedirect}
}

// RedactURL returns raw with its credentials hidden, for logs and published states: the
// password of user:password@ and every query value (pre-signed URLs carry their tokens there)
// become "REDACTED". A string that does not parse as a URL is replaced whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		} else {
			u.User = url.User("REDACTED")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// redactErr hides credentials in the URL of a *url.Error inside err (net/http hides only the
// password, not query tokens).
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
