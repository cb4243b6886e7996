package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
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
