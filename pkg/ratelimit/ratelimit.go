// Package ratelimit limits how often each client or IP address may do
// something on this node, with a token bucket per key.
//
// The limits are per node: they bound the load one node takes, and are
// cheap, with no database round trip. Limits that must hold across nodes,
// such as wrong passwords per account, are kept in the database instead
// (pkg/identity).
//
// # Counting only failures
//
// Some limits count failures, not attempts: wrong passwords from one
// address, failed client authentications. Checking the limit first and
// counting the failure afterwards would let a burst of parallel requests
// all pass the check before any of them is counted. So such a limit is
// taken before the attempt (Reserve), like any other, and given back
// (Reservation.Refund) when the attempt turns out not to be a failure: at
// any moment, the attempts in flight count against the limit.
package ratelimit

import (
	"context"
	"net/netip"
	"sync"
	"time"
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
	// perSecond is how fast a bucket refills; burst is how full it gets.
	perSecond float64
	burst     float64

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

// bucket is one key's allowance: tokens left as of last.
type bucket struct {
	tokens float64
	last   time.Time
	// inflight counts Attempts taken and not ended; ended, when not nil,
	// is closed when one ends, waking those waiting for it.
	inflight int
	ended    chan struct{}
}

// New returns a Limiter allowing n events per interval to each key, or nil
// (no limit) when n is 0.
func New(n int, interval time.Duration) *Limiter {
	if n <= 0 {
		return nil
	}
	return &Limiter{
		perSecond: float64(n) / interval.Seconds(),
		burst:     float64(n),
		buckets:   map[string]*bucket{},
	}
}

// Allow takes one event from key's bucket. When the bucket is empty it
// takes nothing and says how long until the event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	_, ok, wait := l.Reserve(key)
	return ok, wait
}

// Reservation is an event taken from a bucket, which its taker may give
// back. The zero Reservation gives nothing back.
type Reservation struct {
	l   *Limiter
	key string
	// left is how many whole events the bucket held after this one.
	left int
}

// Left is how many more events the bucket allowed right after this one
// was taken, for telling callers what remains (RateLimit headers).
func (r Reservation) Left() int { return r.left }

// Reserve takes one event from key's bucket, as Allow does, and returns it
// as a Reservation that Refund gives back.
func (l *Limiter) Reserve(key string) (Reservation, bool, time.Duration) {
	if l == nil {
		return Reservation{}, true, 0
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.fill(key, now)
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second))
		return Reservation{}, false, max(wait, time.Nanosecond)
	}
	b.tokens--
	return Reservation{l: l, key: key, left: int(b.tokens)}, true, 0
}

// Refund gives the event back, for an attempt that did not count: the
// bucket is as if it had never been taken, up to its burst.
func (r Reservation) Refund() {
	if r.l == nil {
		return
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	// A bucket swept since was full, and a new one starts full: nothing
	// to give back to.
	if b, ok := r.l.buckets[r.key]; ok {
		b.tokens = min(b.tokens+1, r.l.burst)
	}
}

// Attempt is an event taken for an attempt whose outcome is not known
// yet: it counts against the limit while in flight, and its taker ends it
// with Succeeded, which gives it back, or Failed, which keeps it. The zero
// Attempt does nothing.
type Attempt struct {
	l *Limiter
	b *bucket
}

// Attempt takes one event from key's bucket for an attempt in flight, as
// Reserve does, for limits that count only failures. When the bucket is
// empty only because attempts are in flight, it waits, up to maxWait and
// while ctx lasts, for one of them to end, since an attempt that succeeds
// gives its event back. So a burst of parallel attempts that succeed all
// pass, one after another as slots free up, while a burst that fails gets
// no more attempts than the limit: the failures keep their events, and
// the waiting ones are then refused.
func (l *Limiter) Attempt(ctx context.Context, key string, maxWait time.Duration) (Attempt, bool, time.Duration) {
	if l == nil {
		return Attempt{}, true, 0
	}
	deadline := time.Now().Add(maxWait)
	for {
		now := time.Now()
		l.mu.Lock()
		l.sweep(now)
		b := l.fill(key, now)
		if b.tokens >= 1 {
			b.tokens--
			b.inflight++
			l.mu.Unlock()
			return Attempt{l: l, b: b}, true, 0
		}
		wait := max(time.Duration((1-b.tokens)/l.perSecond*float64(time.Second)), time.Nanosecond)
		if b.inflight == 0 || !now.Before(deadline) {
			l.mu.Unlock()
			return Attempt{}, false, wait
		}
		if b.ended == nil {
			b.ended = make(chan struct{})
		}
		ended := b.ended
		l.mu.Unlock()
		timer := time.NewTimer(deadline.Sub(now))
		select {
		case <-ended:
			timer.Stop()
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return Attempt{}, false, wait
		}
	}
}

// Succeeded ends the attempt and gives its event back.
func (a Attempt) Succeeded() { a.end(true) }

// Failed ends the attempt and keeps its event counted.
func (a Attempt) Failed() { a.end(false) }

func (a Attempt) end(giveBack bool) {
	if a.l == nil {
		return
	}
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	a.b.inflight--
	if giveBack {
		a.b.tokens = min(a.b.tokens+1, a.l.burst)
	}
	if a.b.ended != nil {
		close(a.b.ended)
		a.b.ended = nil
	}
}

// fill returns key's bucket refilled up to now, making a full one for a
// new key. l.mu is held.
func (l *Limiter) fill(key string, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
		return b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.tokens+elapsed.Seconds()*l.perSecond, l.burst)
		b.last = now
	}
	return b
}

// sweep drops full buckets every sweepEvery, and every bucket when there
// are too many. l.mu is held.
func (l *Limiter) sweep(now time.Time) {
	if len(l.buckets) >= maxKeys {
		l.buckets = map[string]*bucket{}
		l.lastSweep = now
		return
	}
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k := range l.buckets {
		if b := l.fill(k, now); b.tokens >= l.burst && b.inflight == 0 {
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
