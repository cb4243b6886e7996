package identity_test

// The fuzz target here types what the fuzzer makes up into the second
// factor's code field, on a real database. Its seeds (the f.Add calls and
// testdata/fuzz) run as ordinary tests in every `go test`.

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/seal"
)

// codeFuzz is two users of one MFA manager: one with a confirmed factor,
// and one whose factor is enrolled but not yet confirmed, with the secrets
// of their authenticator apps. A fuzz target sets it up once, not per
// input, since each input runs many times.
type codeFuzz struct {
	mfa                            *identity.MFA
	confirmed, pending             *identity.User
	confirmedSecret, pendingSecret string
}

func newCodeFuzz(f *testing.F) *codeFuzz {
	f.Helper()
	ctx := context.Background()
	store := pgtest.Store(f)
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		f.Fatal(err)
	}
	log := audit.New(store, slog.New(slog.DiscardHandler))
	users := identity.NewManager(store, identity.NewHasher(), log, identity.Throttle{})
	// A throttle no fuzzing run reaches, so that every input has its code
	// looked at rather than being refused unread.
	m := identity.NewMFA(store, box, "id.example.com", identity.Throttle{MaxFailures: 1 << 30, Window: time.Minute}, log)
	cf := &codeFuzz{mfa: m}
	for _, u := range []**identity.User{&cf.confirmed, &cf.pending} {
		if *u, err = users.Create(ctx, identity.User{Email: strings.ToLower(rand.Text()) + "@example.com"}, ""); err != nil {
			f.Fatal(err)
		}
	}
	e, err := m.Enrol(ctx, cf.confirmed)
	if err != nil {
		f.Fatal(err)
	}
	cf.confirmedSecret = e.Secret
	now, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	if _, err := m.Confirm(ctx, cf.confirmed.ID, now); err != nil {
		f.Fatal(err)
	}
	if e, err = m.Enrol(ctx, cf.pending); err != nil {
		f.Fatal(err)
	}
	cf.pendingSecret = e.Secret
	return cf
}

// validCodes are the codes of secret's app that may be accepted around
// now: those of the current 30-second step and two either side, one more
// than MFA allows, so that a step ending while an input runs does not
// matter.
func validCodes(t *testing.T, secret string) []string {
	t.Helper()
	var codes []string
	for step := -2; step <= 2; step++ {
		c, err := totp.GenerateCodeCustom(secret, time.Now().Add(time.Duration(step)*30*time.Second),
			totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
	}
	return codes
}

// typed reports whether code is one of codes as a user might type it,
// with space around it.
func typed(code string, codes []string) bool {
	for _, c := range codes {
		if strings.TrimSpace(code) == c {
			return true
		}
	}
	return false
}

// FuzzSecondFactorCode types arbitrary codes into the second factor. A
// code that is not one the user's authenticator app shows around now never
// verifies and never confirms an enrolment, and fails with ErrInvalidCode
// (or *ThrottledError, which the throttle here never reaches), never with
// another error; and no code at all verifies for a factor that is not yet
// confirmed. In the code, {totp} stands for the confirmed user's current
// code, so that the fuzzer can try what is near it.
func FuzzSecondFactorCode(f *testing.F) {
	for _, code := range []string{
		"{totp}",
		" {totp}\n",
		"{totp}0",
		"0{totp}",
		"{totp}{totp}",
		"{totp} {totp}",
		"000000",
		"123456",
		"12345",
		"1234567",
		"-12345",
		"+12345",
		"12 345",
		"１２３４５６",
		"\u00a0123456\u00a0",
		"abcd-efgh-ijkl-mnop",
		"ABCD EFGH IJKL MNOP",
		"abcdefghijklmnop",
		"aaaa-aaaa-aaaa-aaa\u212a",
		"'; DROP TABLE users; --",
		"\x00\x00\x00\x00\x00\x00",
		"\xff\xfe\xfd\xfc\xfb\xfa",
		"",
	} {
		f.Add(code)
	}
	cf := newCodeFuzz(f)
	f.Fuzz(func(t *testing.T, code string) {
		ctx := context.Background()
		if current := validCodes(t, cf.confirmedSecret)[2]; strings.Contains(code, "{totp}") {
			code = strings.ReplaceAll(code, "{totp}", current)
		}
		check := func(what string, err error) {
			t.Helper()
			var throttled *identity.ThrottledError
			switch {
			case err == nil:
				t.Fatalf("%s accepted %q", what, code)
			case !errors.Is(err, identity.ErrInvalidCode) && !errors.As(err, &throttled):
				t.Fatalf("%s of %q failed with %v, want ErrInvalidCode", what, code, err)
			}
		}
		if !typed(code, validCodes(t, cf.confirmedSecret)) {
			check("Verify for a confirmed factor", cf.mfa.Verify(ctx, cf.confirmed.ID, code))
		}
		check("Verify for a factor not yet confirmed", cf.mfa.Verify(ctx, cf.pending.ID, code))
		if !typed(code, validCodes(t, cf.pendingSecret)) {
			_, err := cf.mfa.Confirm(ctx, cf.pending.ID, code)
			check("Confirm", err)
		}
	})
}
