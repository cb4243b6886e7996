package ratelimit_test

import (
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
