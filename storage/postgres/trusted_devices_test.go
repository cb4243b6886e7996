package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/trust"
)

func TestAddingOrRemovingAPasskeyForgetsTheBrowsersTrustedToSkipTheFactors(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	u := &identity.User{ID: uuid.NewString(), Email: "ada@example.com"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	trustOne := func() {
		t.Helper()
		now := time.Now()
		d := trust.Device{ID: uuid.NewString(), UserID: u.ID, Label: "Firefox on Linux", CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateTrustedDevice(ctx, d, []byte(d.ID), nil); err != nil {
			t.Fatal(err)
		}
	}
	trusted := func() int {
		t.Helper()
		ds, err := s.TrustedDevices(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}

	trustOne()
	key := &passkey.Passkey{ID: []byte("credential-1"), UserID: u.ID, PublicKey: []byte("key"), Name: "Work laptop"}
	if err := s.CreatePasskey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := trusted(); n != 0 {
		t.Fatalf("after a passkey was added, %d browsers are still trusted", n)
	}
	trustOne()
	if err := s.DeletePasskey(ctx, u.ID, key.ID); err != nil {
		t.Fatal(err)
	}
	if n := trusted(); n != 0 {
		t.Fatalf("after a passkey was removed, %d browsers are still trusted", n)
	}
	trustOne()
	if err := s.DeletePasskey(ctx, u.ID, key.ID); !errors.Is(err, passkey.ErrNotFound) {
		t.Fatalf("removing a passkey the user does not have: %v", err)
	}
	if n := trusted(); n != 1 {
		t.Fatalf("a removal that removed nothing forgot %d browsers", 1-n)
	}
}
