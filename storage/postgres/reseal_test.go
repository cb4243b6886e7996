package postgres_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/storage/postgres"
)

// Reseal walks the whole table a batch at a time, rewrites only what the
// callback changes, and leaves the rest alone.
func TestResealRewritesEveryBatch(t *testing.T) {
	undo := postgres.SetResealBatch(2) // five rows: batches of 2, 2 and 1
	defer undo()
	s := pgtest.Store(t)
	ids := map[string]bool{}
	for i := range 5 {
		u := &identity.User{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Email: fmt.Sprintf("user%d@example.com", i)}
		if err := s.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		sealed := "old"
		if i == 2 {
			sealed = "current"
		}
		if err := s.StartTOTP(t.Context(), u.ID, []byte(sealed)); err != nil {
			t.Fatal(err)
		}
		ids[u.ID] = true
	}

	seen := map[string]bool{}
	n, err := s.ResealTOTPSecrets(t.Context(), func(id string, sealed []byte) ([]byte, error) {
		if seen[id] {
			t.Errorf("user %s offered twice", id)
		}
		seen[id] = true
		if string(sealed) == "current" {
			return nil, nil
		}
		return []byte("new:" + id), nil
	})
	if err != nil || n != 4 {
		t.Fatalf("ResealTOTPSecrets = %d, %v; want 4 changed", n, err)
	}
	if len(seen) != len(ids) {
		t.Fatalf("offered %d of %d secrets", len(seen), len(ids))
	}
	for id := range ids {
		f, err := s.TOTPFactor(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Sealed, []byte("new:"+id)) && string(f.Sealed) != "current" {
			t.Errorf("user %s: secret is %q after resealing", id, f.Sealed)
		}
	}
}

// A failing batch rolls back on its own; the batches before it stay done,
// and the count says so.
func TestResealStopsAtAFailureWithoutLosingWork(t *testing.T) {
	s := pgtest.Store(t)
	var users []string
	for i := range 3 {
		u := &identity.User{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), Email: fmt.Sprintf("user%d@example.com", i)}
		if err := s.CreateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		if err := s.StartTOTP(t.Context(), u.ID, []byte("old")); err != nil {
			t.Fatal(err)
		}
		users = append(users, u.ID)
	}
	calls := 0
	n, err := s.ResealTOTPSecrets(t.Context(), func(id string, sealed []byte) ([]byte, error) {
		if calls++; calls == 3 {
			return nil, fmt.Errorf("cannot open the secret")
		}
		return []byte("new"), nil
	})
	if err == nil || !strings.Contains(err.Error(), "cannot open the secret") || n != 0 {
		t.Fatalf("ResealTOTPSecrets = %d, %v; want 0 changed and the callback's error", n, err)
	}
	for _, id := range users {
		if f, _ := s.TOTPFactor(t.Context(), id); string(f.Sealed) != "old" {
			t.Errorf("user %s: secret is %q; the failed batch should have rolled back", id, f.Sealed)
		}
	}
}
