package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestAFloodOfKeysDoesNotGrowMemoryWithoutBound(t *testing.T) {
	l := New(1, time.Hour)
	for i := range 2*maxKeys + 10 {
		l.Allow(fmt.Sprint(i))
		if len(l.buckets) > maxKeys {
			t.Fatalf("%d buckets after %d keys, want at most %d", len(l.buckets), i+1, maxKeys)
		}
	}
}

func TestSweepingDropsOnlyFullBuckets(t *testing.T) {
	l := New(2, time.Hour)
	l.Allow("used")
	l.Allow("idle")
	l.buckets["idle"].tokens = l.burst // as full as a new one
	l.sweep(time.Now().Add(sweepEvery))
	if _, ok := l.buckets["used"]; !ok {
		t.Error("a bucket with an event in it was swept")
	}
	if _, ok := l.buckets["idle"]; ok {
		t.Error("a full bucket survived the sweep")
	}
}
