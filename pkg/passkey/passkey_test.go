package passkey_test

import (
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/webauthntest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const origin = "https://id.example.com"

type fixture struct {
	m     *passkey.Manager
	audit *audit.Log
	user  passkey.User
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := pgtest.Store(t)
	log := audit.New(store, slog.New(slog.DiscardHandler))
	u, err := identity.NewManager(store, identity.NewHasher(), log, identity.Throttle{}).Create(t.Context(),
		identity.User{Email: "ada@example.com", Name: "Ada"}, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := passkey.New(origin+"/", "id.example.com", store, log)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{m: m, audit: log, user: passkey.User{ID: u.ID, Email: u.Email, Name: u.Name}}
}

// register adds a passkey held by a new software authenticator.
func (f *fixture) register(t *testing.T) *webauthntest.Authenticator {
	t.Helper()
	a, err := webauthntest.New(origin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.m.BeginRegistration(t.Context(), f.user)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Register(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.FinishRegistration(t.Context(), f.user, c.Session, answer, "Phone"); err != nil {
		t.Fatalf("registration: %v", err)
	}
	return a
}

// assert runs an assertion ceremony answered by a.
func (f *fixture) assert(t *testing.T, a *webauthntest.Authenticator) (passkey.Assertion, error) {
	t.Helper()
	c, err := f.m.BeginAssertion(t.Context(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Assert(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	return f.m.FinishAssertion(t.Context(), f.user.ID, c.Session, answer)
}

// events are the audit log's events of action.
func (f *fixture) events(t *testing.T, action string) []audit.Event {
	t.Helper()
	events, err := f.audit.List(t.Context(), audit.Query{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func TestAPasskeyRegisteredInACeremonyProvesItsHolderAndCountsItsUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	got, err := f.assert(t, a)
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	if amr := got.AMR(); !slices.Equal(amr, []string{"hwk", "user"}) {
		t.Errorf("amr %v, want hwk and user", amr)
	}
	keys, err := f.m.List(t.Context(), f.user.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("passkeys %v (%v)", keys, err)
	}
	if keys[0].SignCount != 1 || keys[0].LastUsedAt.IsZero() || keys[0].Name != "Phone" {
		t.Errorf("stored passkey %+v: want count 1, a last use, its name", keys[0])
	}
	if n := len(f.events(t, audit.PasskeyRegistered)); n != 1 {
		t.Errorf("%d passkey.registered events, want 1", n)
	}
}

func TestASyncedPasskeyIsASoftwareKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := webauthntest.New(origin)
	a.BackupEligible = true
	c, _ := f.m.BeginRegistration(t.Context(), f.user)
	answer, _ := a.Register(c.Options)
	if _, err := f.m.FinishRegistration(t.Context(), f.user, c.Session, answer, "Synced"); err != nil {
		t.Fatal(err)
	}
	got, err := f.assert(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if amr := got.AMR(); !slices.Equal(amr, []string{"swk", "user"}) {
		t.Errorf("amr %v, want swk and user", amr)
	}
}

// Answers that a phishing page, a replay or a stranger's key would give
// are refused, and the audit log says why.
func TestAnswersMadeForAnotherSiteChallengeOrKeyAreRefusedAndAudited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spoil  func(t *testing.T, f *fixture, a *webauthntest.Authenticator, session []byte) (*webauthntest.Authenticator, []byte)
		reason string
	}{
		{"another origin", func(_ *testing.T, _ *fixture, a *webauthntest.Authenticator, s []byte) (*webauthntest.Authenticator, []byte) {
			a.Origin = "https://id.example.com.evil.example"
			return a, s
		}, "origin"},
		{"another RP ID", func(_ *testing.T, _ *fixture, a *webauthntest.Authenticator, s []byte) (*webauthntest.Authenticator, []byte) {
			a.RPID = "evil.example"
			return a, s
		}, "rp_id"},
		{"another ceremony's challenge", func(t *testing.T, f *fixture, a *webauthntest.Authenticator, _ []byte) (*webauthntest.Authenticator, []byte) {
			other, _ := f.m.BeginAssertion(t.Context(), f.user.ID)
			return a, other.Session
		}, "challenge"},
		{"no ceremony at all", func(_ *testing.T, _ *fixture, a *webauthntest.Authenticator, _ []byte) (*webauthntest.Authenticator, []byte) {
			return a, nil
		}, "session"},
		{"a key that is not the user's", func(_ *testing.T, _ *fixture, _ *webauthntest.Authenticator, s []byte) (*webauthntest.Authenticator, []byte) {
			stranger, _ := webauthntest.New(origin)
			return stranger, s
		}, "unknown_credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			a := f.register(t)
			c, err := f.m.BeginAssertion(t.Context(), f.user.ID)
			if err != nil {
				t.Fatal(err)
			}
			a, session := tt.spoil(t, f, a, c.Session)
			answer, err := a.Assert(c.Options)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.FinishAssertion(t.Context(), f.user.ID, session, answer); err == nil {
				t.Fatal("the answer was accepted")
			}
			events := f.events(t, audit.PasskeyFailed)
			if len(events) != 1 || events[0].Details["reason"] != tt.reason {
				t.Fatalf("passkey.failed events %v, want one with reason %s", events, tt.reason)
			}
		})
	}
}

// A passkey whose counter goes back may have been copied: the answer is
// refused though its signature is good, the stored counter stays, and the
// audit log records a suspected clone.
func TestASignCountThatDoesNotRiseIsRefusedAsAPossibleClone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	a.Count = 4
	if _, err := f.assert(t, a); err != nil { // counter 5
		t.Fatal(err)
	}
	a.Count = 2 // the copy is behind: it answers with 3
	if _, err := f.assert(t, a); !errors.Is(err, passkey.ErrCloneSuspected) {
		t.Fatalf("a counter that went back: %v, want ErrCloneSuspected", err)
	}
	a.Count = 4 // the same count again: 5
	if _, err := f.assert(t, a); !errors.Is(err, passkey.ErrCloneSuspected) {
		t.Fatalf("a counter that stood still: %v, want ErrCloneSuspected", err)
	}
	keys, _ := f.m.List(t.Context(), f.user.ID)
	if keys[0].SignCount != 5 {
		t.Errorf("stored count %d after refusals, want 5", keys[0].SignCount)
	}
	if n := len(f.events(t, audit.PasskeyCloneSuspected)); n != 2 {
		t.Errorf("%d passkey.clone_suspected events, want 2", n)
	}
	a.Count = 9
	if _, err := f.assert(t, a); err != nil {
		t.Errorf("the genuine key, counting on: %v", err)
	}
}

// Authenticators that keep no counter (synced passkeys) always send 0.
func TestAPasskeyWithoutACounterIsNotTakenForAClone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	for range 2 {
		a.Count = ^uint32(0) // raised to 0 before it answers
		if _, err := f.assert(t, a); err != nil {
			t.Fatalf("a zero counter: %v", err)
		}
	}
}

func TestPasskeyNamesAreBoundedAndRemovalIsTheOwnersOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.register(t)
	keys, _ := f.m.List(t.Context(), f.user.ID)
	id := keys[0].ID
	long := string(make([]rune, passkey.MaxNameChars+1))
	for _, name := range []string{"", "   ", long} {
		if err := f.m.Rename(t.Context(), f.user.ID, id, name); !errors.Is(err, passkey.ErrInvalidName) {
			t.Errorf("rename to %q: %v, want ErrInvalidName", name, err)
		}
	}
	if err := f.m.Rename(t.Context(), f.user.ID, id, "Old phone"); err != nil {
		t.Fatal(err)
	}
	other := "00000000-0000-0000-0000-000000000000"
	if err := f.m.Remove(t.Context(), other, id); !errors.Is(err, passkey.ErrNotFound) {
		t.Errorf("removal by another user: %v, want ErrNotFound", err)
	}
	if err := f.m.Remove(t.Context(), f.user.ID, id); err != nil {
		t.Fatal(err)
	}
	if has, _ := f.m.Has(t.Context(), f.user.ID); has {
		t.Error("the passkey is still there")
	}
}

func TestAnIssuerOnAnIPAddressOffersNoPasskeys(t *testing.T) {
	t.Parallel()
	m, err := passkey.New("http://127.0.0.1:8080", "x", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Available() {
		t.Error("an IP address is no WebAuthn RP ID")
	}
	if _, err := m.BeginRegistration(t.Context(), passkey.User{ID: "x"}); !errors.Is(err, passkey.ErrUnavailable) {
		t.Errorf("registration: %v, want ErrUnavailable", err)
	}
}
