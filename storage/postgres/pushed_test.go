package postgres_test

import (
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/pgtest"
)

func TestAClientHoldsAtMostItsCapOfLivePushedRequests(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	newClient(t, s, "app")
	newClient(t, s, "other")
	params := url.Values{"client_id": {"app"}}
	soon := time.Now().Add(time.Minute)
	for i, sig := range []string{"a", "b"} {
		if ok, err := s.StorePushedRequest(ctx, sig, "app", params, soon, 2); err != nil || !ok {
			t.Fatalf("push %d: %v %v", i, ok, err)
		}
	}
	if ok, err := s.StorePushedRequest(ctx, "c", "app", params, soon, 2); err != nil || ok {
		t.Fatalf("a push over the cap: stored %v, %v; want refused", ok, err)
	}
	// The cap is the client's own, and expired pushes do not count.
	if ok, err := s.StorePushedRequest(ctx, "d", "other", params, soon, 2); err != nil || !ok {
		t.Fatalf("another client's push: %v %v", ok, err)
	}
	if _, err := s.RedeemPushedRequest(ctx, "a", "app"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.StorePushedRequest(ctx, "e", "app", params, soon, 2); err != nil || !ok {
		t.Fatalf("a push after one was redeemed: %v %v", ok, err)
	}
}

func TestAPushedRequestIsRedeemedOnceByItsOwnClientBeforeItExpires(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	newClient(t, s, "app")
	newClient(t, s, "other")
	params := url.Values{"client_id": {"app"}, "scope": {"openid"}}
	if _, err := s.StorePushedRequest(ctx, "live", "app", params, time.Now().Add(time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StorePushedRequest(ctx, "gone", "app", params, time.Now().Add(-time.Second), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemPushedRequest(ctx, "gone", "app"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("an expired push: %v, want not found", err)
	}
	if _, err := s.RedeemPushedRequest(ctx, "live", "other"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("another client's push: %v, want not found", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range 12 {
		wg.Go(func() {
			got, err := s.RedeemPushedRequest(ctx, "live", "app")
			if err == nil && got.Get("scope") == "openid" {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, fosite.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("12 redemptions at once: %d won, want exactly 1", wins)
	}
}
