package passkey_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/internal/webauthntest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/passkey"
)

// anyone lets every passkey's user sign in.
func anyone(context.Context, string) (bool, error) { return true, nil }

// signInWith runs a passwordless ceremony answered by a, with may saying
// who may sign in; it returns the answer too, for replays.
func (f *fixture) signInWith(t *testing.T, a *webauthntest.Authenticator, may func(context.Context, string) (bool, error)) (passkey.Assertion, []byte, []byte, error) {
	t.Helper()
	c, err := f.m.BeginPasswordless(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	answer, err := a.Assert(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.m.FinishPasswordless(t.Context(), c.Session, answer, may)
	return got, c.Session, answer, err
}

// refusedFor checks that err is a refusal recorded in the audit log, as
// the last passkey.failed event, with reason.
func (f *fixture) refusedFor(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the answer was accepted; want it refused (%s)", reason)
	}
	events := f.events(t, audit.PasskeyFailed)
	if len(events) == 0 || events[0].Details["reason"] != reason || events[0].Details["ceremony"] != "passwordless" {
		t.Fatalf("refused with %v; passkey.failed events %v, want the last with reason %s", err, events, reason)
	}
}

// The options name no user and no credential, so the authenticator offers
// the passkeys it holds for the site, and require the user verified.
func TestPasswordlessOptionsAskForAnyPasskeyOfTheSiteWithTheUserVerified(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, err := f.m.BeginPasswordless(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		PublicKey map[string]any `json:"publicKey"`
	}
	if err := json.Unmarshal(c.Options, &o); err != nil {
		t.Fatal(err)
	}
	if o.PublicKey["userVerification"] != "required" || o.PublicKey["rpId"] != "id.example.com" {
		t.Errorf("options %s: want userVerification required for rpId id.example.com", c.Options)
	}
	if allow, ok := o.PublicKey["allowCredentials"].([]any); ok && len(allow) > 0 {
		t.Errorf("options %s list credentials", c.Options)
	}
}

// The passkey names its user: the sign-in is theirs, by a key with the
// user verified, and the challenge is good for that one answer.
func TestAPasswordlessAnswerSignsInThePasskeysUserOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	got, session, answer, err := f.signInWith(t, a, anyone)
	if err != nil {
		t.Fatalf("passwordless sign-in: %v", err)
	}
	if got.Passkey.UserID != f.user.ID || !slices.Equal(got.AMR(), []string{"hwk", "user"}) {
		t.Errorf("signed in %s by %v, want %s by hwk and user", got.Passkey.UserID, got.AMR(), f.user.ID)
	}
	keys, _ := f.m.List(t.Context(), f.user.ID)
	if keys[0].SignCount != 1 || keys[0].LastUsedAt.IsZero() {
		t.Errorf("stored passkey %+v: want its use counted", keys[0])
	}
	_, err = f.m.FinishPasswordless(t.Context(), session, answer, anyone)
	f.refusedFor(t, err, "replay")
	if errors.Is(err, passkey.ErrCloneSuspected) || len(f.events(t, audit.PasskeyCloneSuspected)) != 0 {
		t.Error("a replay was taken for a clone, which would alarm the user")
	}
}

// Each answer a phishing page, a replay, a stranger's key, a key without
// a PIN or a copied key would give is refused, with the audit log saying
// which; and a passkey whose user may not sign in signs nobody in.
func TestPasswordlessAnswersThatMustNotSignInAreRefusedAndAudited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		spoil  func(f *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator
		may    func(context.Context, string) (bool, error)
		reason string
	}{
		{"another origin", func(_ *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator {
			a.Origin = "https://id.example.com.evil.example"
			return a
		}, anyone, "origin"},
		{"another relying party", func(_ *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator {
			a.RPID = "evil.example"
			return a
		}, anyone, "rp_id"},
		{"a passkey registered nowhere", func(f *fixture, _ *webauthntest.Authenticator) *webauthntest.Authenticator {
			stranger, _ := webauthntest.New(origin)
			stranger.UserHandle = []byte(f.user.ID)
			return stranger
		}, anyone, "unknown_credential"},
		{"a user handle that is not the passkey's user", func(_ *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator {
			a.UserHandle = []byte("00000000-0000-0000-0000-000000000000")
			return a
		}, anyone, "unknown_credential"},
		{"the user not verified", func(_ *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator {
			a.Unverified = true
			return a
		}, anyone, "user_verification"},
		{"a user who may not sign in", func(_ *fixture, a *webauthntest.Authenticator) *webauthntest.Authenticator {
			return a
		}, func(context.Context, string) (bool, error) { return false, nil }, "disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			a := tt.spoil(f, f.register(t))
			_, _, _, err := f.signInWith(t, a, tt.may)
			f.refusedFor(t, err, tt.reason)
			if !errors.Is(err, passkey.ErrRefused) && !errors.Is(err, passkey.ErrUnknownCredential) {
				t.Errorf("refused with %v, want one of the package's refusals", err)
			}
		})
	}
}

// The session data of an assertion for a named user (which does not
// require the user verified) does not pass for a passwordless one.
func TestAnAssertionsSessionIsNoPasswordlessCeremony(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	c, err := f.m.BeginAssertion(t.Context(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := a.Assert(c.Options)
	_, err = f.m.FinishPasswordless(t.Context(), c.Session, answer, anyone)
	f.refusedFor(t, err, "session")
}

// The counter rule is the assertion's: a copy of the key, behind the
// original, is refused as a possible clone and recorded as one.
func TestAPasswordlessAnswerFromACopiedKeyIsRefusedAsAPossibleClone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.register(t)
	a.Count = 4
	if _, _, _, err := f.signInWith(t, a, anyone); err != nil {
		t.Fatal(err)
	}
	a.Count = 2
	if _, _, _, err := f.signInWith(t, a, anyone); !errors.Is(err, passkey.ErrCloneSuspected) {
		t.Fatalf("a counter that went back: %v, want ErrCloneSuspected", err)
	}
	if n := len(f.events(t, audit.PasskeyCloneSuspected)); n != 1 {
		t.Errorf("%d passkey.clone_suspected events, want 1", n)
	}
}
