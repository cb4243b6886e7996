package ratelimit_test

import (
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/ratelimit"
)

func TestEachKeyGetsItsOwnBurstThenWaits(t *testing.T) {
	l := ratelimit.New(3, time.Minute)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait < 15*time.Second || wait > 20*time.Second {
		t.Fatalf("the 4th event: allowed=%v, wait %s; want a refusal and a wait of about 20s (3 per minute)", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key shares the first key's bucket")
	}
	// A refused event does not count: the wait does not grow.
	if _, again := l.Allow("a"); again > wait+time.Second {
		t.Fatalf("refusals lengthen the wait: %s after %s", again, wait)
	}
}

func TestZeroMeansNoLimit(t *testing.T) {
	l := ratelimit.New(0, time.Second)
	for range 1000 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatal("a limit of 0 refused an event")
		}
	}
}

func TestIPv6AddressesShareTheirSlash64(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"::ffff:203.0.113.9", "::ffff:203.0.113.9"},
		{"not an ip", "not an ip"},
	}
	for _, tt := range tests {
		if got := ratelimit.AddressKey(tt.ip); got != tt.want {
			t.Errorf("AddressKey(%q) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}

func TestARefundedReservationIsAsIfNeverTaken(t *testing.T) {
	l := ratelimit.New(2, time.Hour)
	for range 10 {
		r, ok, _ := l.Reserve("a")
		if !ok {
			t.Fatal("a reservation given back still counts")
		}
		r.Refund()
	}
	kept, _, _ := l.Reserve("a")
	_ = kept // not given back: a failure
	if _, ok, _ := l.Reserve("a"); !ok {
		t.Fatal("the second of a burst of 2 refused")
	}
	if _, ok, wait := l.Reserve("a"); ok || wait <= 0 {
		t.Fatalf("a third event within the hour: allowed=%v wait %s, want refused with a wait", ok, wait)
	}
	// Refunds never fill a bucket past its burst.
	full := ratelimit.New(1, time.Hour)
	r, _, _ := full.Reserve("b")
	r.Refund()
	r.Refund()
	full.Allow("b")
	if ok, _ := full.Allow("b"); ok {
		t.Fatal("refunding twice made room for two events in a burst of one")
	}
}

func TestParallelReservationsNeverExceedTheBurst(t *testing.T) {
	l := ratelimit.New(5, time.Hour)
	var (
		mu      sync.Mutex
		granted int
		wg      sync.WaitGroup
	)
	for range 200 {
		wg.Go(func() {
			if _, ok, _ := l.Reserve("burst"); ok {
				mu.Lock()
				granted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if granted != 5 {
		t.Fatalf("%d of 200 parallel reservations granted, want exactly the burst of 5", granted)
	}
}

func TestANilLimiterAllowsEverything(t *testing.T) {
	var l *ratelimit.Limiter
	r, ok, _ := l.Reserve("x")
	r.Refund()
	if !ok {
		t.Fatal("a nil limiter refused")
	}
}

// A burst of parallel attempts that all succeed passes whole through a
// limit on failures, each waiting for a slot; a burst that all fail gets
// no more attempts than the limit.
func TestAttemptsInFlightHoldTheLimitOnlyUntilTheyEnd(t *testing.T) {
	l := ratelimit.New(5, time.Minute)
	run := func(key string, succeed bool) (passed int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				a, ok, _ := l.Attempt(t.Context(), key, 2*time.Second)
				if !ok {
					return
				}
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				passed++
				mu.Unlock()
				if succeed {
					a.Succeeded()
				} else {
					a.Failed()
				}
			})
		}
		wg.Wait()
		return passed
	}
	if got := run("right", true); got != 50 {
		t.Errorf("%d of 50 parallel attempts with the right secret passed, want all", got)
	}
	if got := run("wrong", false); got != 5 {
		t.Errorf("%d of 50 parallel guesses were checked, want the limit of 5", got)
	}
}
