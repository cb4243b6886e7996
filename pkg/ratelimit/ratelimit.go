// Package ratelimit limits how often each client or IP address may do
// something on this node, with a token bucket per key
// (golang.org/x/time/rate).
//
// The limits are per node: they bound the load one node takes, and are
// cheap, with no database round trip. Limits that must hold across nodes,
// such as wrong passwords per account, are kept in the database instead
// (pkg/identity).
package ratelimit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bounds on the memory the buckets take. A full bucket is as good as none,
// so sweeping drops them; should an attacker make more keys than maxKeys
// between sweeps (fresh addresses), all buckets are dropped and start full,
// which is the limiter at its most lenient, never stricter.
const (
	sweepEvery = time.Minute
	maxKeys    = 100_000
)

// Limiter allows each key a number of events per interval, in bursts of up
// to that many. A nil Limiter allows everything.
type Limiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// New returns a Limiter allowing n events per interval to each key, or nil
// (no limit) when n is 0.
func New(n int, interval time.Duration) *Limiter {
	if n <= 0 {
		return nil
	}
	return &Limiter{
		limit:   rate.Limit(float64(n) / interval.Seconds()),
		burst:   n,
		buckets: map[string]*rate.Limiter{},
	}
}

// Allow takes one event from key's bucket. When the bucket is empty it
// takes nothing and says how long until the event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := time.Now()
	l.mu.Lock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops full buckets every sweepEvery, and every bucket when there
// are too many. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	if len(l.buckets) >= maxKeys {
		l.buckets = map[string]*rate.Limiter{}
		l.lastSweep = now
		return
	}
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
}

// AddressKey is the key an IP address is limited under: the address
// itself, or its /64 for IPv6, since one host commonly holds a whole /64
// and could otherwise take a fresh address for every attempt.
func AddressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
