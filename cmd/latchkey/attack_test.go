package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// This file holds what the adversarial tests (attack_*_test.go) share: a
// way to attack from several hosts at once. Linux routes all of
// 127.0.0.0/8 to this machine, so a connection from 127.0.0.2 reaches a
// node listening on 127.0.0.1 and the node sees 127.0.0.2 as its peer, as
// it would see another host.

// attackers returns n loopback source addresses, 127.0.0.2 onwards.
func attackers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return out
}

// transportFrom returns a transport whose connections come from ip.
func transportFrom(ip string) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	return &http.Client{Transport: transportFrom(ip), Timeout: 60 * time.Second}
}

// from makes the browser's connections come from ip.
func (b *browser) from(ip string) *browser {
	b.http.Transport = transportFrom(ip)
	return b
}

// burst runs attempt n times at once, spreading the attempts over the
// given source addresses in turn, and waits for all of them. attempt gets
// its index and the address it comes from.
func burst(t *testing.T, n int, from []string, attempt func(i int, ip string)) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			attempt(i, from[i%len(from)])
		})
	}
	close(start)
	wg.Wait()
}

// postForm posts a form to the node as a browser's page would, from
// client; safe to call from any goroutine, it returns what went wrong
// rather than failing the test.
func (n *node) postForm(client *http.Client, path string, form url.Values) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, n.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", n.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// events returns the audit events of action, newest first, whose details
// have every given key and value (key, value, ...).
func (n *node) events(t *testing.T, action string, details ...string) []audit.Event {
	t.Helper()
	all, err := audit.New(n.store, quietLogger()).List(t.Context(), audit.Query{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range all {
		match := true
		for i := 0; i+1 < len(details); i += 2 {
			if v, _ := e.Details[details[i]].(string); v != details[i+1] {
				match = false
			}
		}
		if match {
			out = append(out, e)
		}
	}
	return out
}
