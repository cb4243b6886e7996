package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/usage"
)

// Reservations from any number of pools at once never hand out more than
// the quota, each takes a quarter of what is left (within the most asked
// for), and what is given back can be reserved again.
func TestQuotaReservationsNeverExceedTheQuota(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	k := usage.QuotaKey{Subject: "client:c", Scope: "token", Period: "day", Start: time.Now().UTC().Truncate(24 * time.Hour)}
	first := pgtest.Open(t, url)
	if granted, reserved, err := first.ReserveQuota(t.Context(), k, 1000, 100); err != nil || granted != 100 || reserved != 100 {
		t.Fatalf("first reservation: %d of %d (%v), want 100: the most asked for", granted, reserved, err)
	}
	if granted, _, _ := first.ReserveQuota(t.Context(), k, 1000, 10_000); granted != 225 {
		t.Fatalf("second reservation took %d, want 225: a quarter of the 900 left", granted)
	}
	var mu sync.Mutex
	var total int64 = 325
	var wg sync.WaitGroup
	for range 4 {
		s := pgtest.Open(t, url)
		wg.Go(func() {
			for {
				granted, _, err := s.ReserveQuota(t.Context(), k, 1000, 50)
				if err != nil {
					t.Error(err)
					return
				}
				if granted == 0 {
					return
				}
				mu.Lock()
				total += granted
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != 1000 {
		t.Fatalf("%d reserved in all, want exactly the quota of 1000", total)
	}
	if err := first.ReturnQuota(t.Context(), k, 30); err != nil {
		t.Fatal(err)
	}
	if granted, reserved, _ := first.ReserveQuota(t.Context(), k, 1000, 100); granted != 7 || reserved != 977 {
		t.Fatalf("after 30 came back: took %d, %d reserved; want 7 (a quarter) and 977", granted, reserved)
	}
}

func TestTheJanitorSweepsQuotaCountersOfPeriodsLongOver(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	now := time.Now().UTC()
	old := usage.QuotaKey{Subject: "client:c", Scope: "*", Period: "month", Start: now.AddDate(0, -3, 0)}
	current := usage.QuotaKey{Subject: "client:c", Scope: "*", Period: "month", Start: now.AddDate(0, 0, -1)}
	for _, k := range []usage.QuotaKey{old, current} {
		if _, _, err := s.ReserveQuota(t.Context(), k, 10, 10); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.Sweep(t.Context(), now, 10, 0)
	if err != nil || deleted["usage_quotas"] != 1 {
		t.Fatalf("swept %d quota counters (%v), want the one of three months ago", deleted["usage_quotas"], err)
	}
	if granted, reserved, _ := s.ReserveQuota(t.Context(), current, 10, 10); granted != 2 || reserved != 4 {
		t.Fatalf("the current counter after the sweep: took %d, %d reserved; want it kept: 2 more, 4 in all", granted, reserved)
	}
}
