package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/seal"
)

// mfaFixture is a user and the MFA manager, on a database of their own.
type mfaFixture struct {
	mfa   *identity.MFA
	user  *identity.User
	dbURL string
}

func newMFA(t *testing.T, throttle identity.Throttle) *mfaFixture {
	t.Helper()
	url := pgtest.URL(t)
	store := pgtest.Open(t, url)
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		t.Fatal(err)
	}
	u, err := identity.NewManager(store, identity.NewHasher(), audit.New(store, slog.New(slog.DiscardHandler)), identity.Throttle{}).Create(t.Context(), identity.User{Email: "ada@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	m := identity.NewMFA(store, box, "id.example.com", throttle, audit.New(store, slog.New(slog.DiscardHandler)))
	return &mfaFixture{mfa: m, user: u, dbURL: url}
}

var lenient = identity.Throttle{MaxFailures: 100, Window: time.Hour}

// code is the authenticator app's code for the step steps away from now.
func code(t *testing.T, secret string, steps int) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now().Add(time.Duration(steps)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol adds a confirmed factor and returns its secret and recovery codes.
func (f *mfaFixture) enrol(t *testing.T) (string, []string) {
	t.Helper()
	secret, codes, _ := f.enrolWithCode(t)
	return secret, codes
}

// enrolWithCode is enrol, also returning the code that confirmed it.
func (f *mfaFixture) enrolWithCode(t *testing.T) (secret string, recovery []string, used string) {
	t.Helper()
	e, err := f.mfa.Enrol(t.Context(), f.user)
	if err != nil {
		t.Fatal(err)
	}
	used = code(t, e.Secret, 0)
	recovery, err = f.mfa.Confirm(t.Context(), f.user.ID, used)
	if err != nil {
		t.Fatal(err)
	}
	return e.Secret, recovery, used
}

func TestEnrolmentCountsOnlyOnceConfirmed(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	e, err := f.mfa.Enrol(t.Context(), f.user)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/") || !strings.Contains(e.URI, "secret="+e.Secret) || !bytes.HasPrefix(e.QR, []byte("\x89PNG")) {
		t.Fatalf("enrolment %q with a %d-byte QR: want an otpauth URI holding the secret and a PNG", e.URI, len(e.QR))
	}
	again, err := f.mfa.Enrol(t.Context(), f.user)
	if err != nil || again.Secret != e.Secret {
		t.Fatalf("enrolling again before confirming gave secret %q (%v), want the same one, already scanned", again.Secret, err)
	}
	if on, _ := f.mfa.Enabled(t.Context(), f.user.ID); on {
		t.Fatal("the factor counts before it is confirmed")
	}
	if _, err := f.mfa.Confirm(t.Context(), f.user.ID, "000000"); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("confirming with a wrong code: %v", err)
	}
	codes, err := f.mfa.Confirm(t.Context(), f.user.ID, code(t, e.Secret, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes, want 10", len(codes))
	}
	if on, _ := f.mfa.Enabled(t.Context(), f.user.ID); !on {
		t.Fatal("the confirmed factor does not count")
	}
	if _, err := f.mfa.Enrol(t.Context(), f.user); !errors.Is(err, identity.ErrFactorExists) {
		t.Fatalf("enrolling over a working factor: %v, want ErrFactorExists", err)
	}
}

func TestACodeWorksOnce(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	secret, _, used := f.enrolWithCode(t)
	if err := f.mfa.Verify(t.Context(), f.user.ID, used); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("the code that confirmed the factor worked again: %v", err)
	}
	next := code(t, secret, 1) // the next step, within the allowed skew
	if err := f.mfa.Verify(t.Context(), f.user.ID, next); err != nil {
		t.Fatalf("a fresh code: %v", err)
	}
	if err := f.mfa.Verify(t.Context(), f.user.ID, next); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("the same code twice: %v, want ErrInvalidCode", err)
	}
	if err := f.mfa.Verify(t.Context(), f.user.ID, code(t, secret, 3)); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("a code for a minute and a half from now: %v, want ErrInvalidCode", err)
	}
}

func TestConcurrentUsesOfOneCodeHaveOneWinner(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	secret, _ := f.enrol(t)
	c := code(t, secret, 1)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	start := make(chan struct{})
	for range 10 {
		wg.Go(func() {
			<-start
			if f.mfa.Verify(context.Background(), f.user.ID, c) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 10 concurrent uses of one code succeeded, want 1", wins)
	}
}

func TestWrongCodesAreThrottledAndRecorded(t *testing.T) {
	t.Parallel()
	f := newMFA(t, identity.Throttle{MaxFailures: 3, Window: 15 * time.Minute})
	secret, _ := f.enrol(t)
	for i := range 3 {
		if err := f.mfa.Verify(t.Context(), f.user.ID, "123456"); !errors.Is(err, identity.ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	err := f.mfa.Verify(t.Context(), f.user.ID, code(t, secret, 1))
	var throttled *identity.ThrottledError
	if !errors.As(err, &throttled) || throttled.RetryAfter < 20*time.Second {
		t.Fatalf("the right code after three wrong ones: %v, want a throttle of about 30s", err)
	}
	conn := pgtest.Conn(t, f.dbURL)
	var failures, failed, throttledEvents int
	if err := conn.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM auth_failures WHERE kind = 'code' AND key = $1::text::bytea),
		(SELECT count(*) FROM audit_events WHERE action = 'mfa.failed' AND target = 'user:' || $1),
		(SELECT count(*) FROM audit_events WHERE action = 'mfa.throttled' AND target = 'user:' || $1)`,
		f.user.ID).Scan(&failures, &failed, &throttledEvents); err != nil {
		t.Fatal(err)
	}
	if failures != 3 || failed != 3 || throttledEvents != 1 {
		t.Fatalf("recorded %d failures, %d mfa.failed and %d mfa.throttled events; want 3, 3 and 1", failures, failed, throttledEvents)
	}
}

func TestRecoveryCodeWorksOnceInAnyForm(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	_, codes := f.enrol(t)
	typed := strings.ToUpper(strings.ReplaceAll(codes[3], "-", " "))
	if err := f.mfa.Verify(t.Context(), f.user.ID, typed); err != nil {
		t.Fatalf("recovery code typed in capitals with spaces: %v", err)
	}
	if err := f.mfa.Verify(t.Context(), f.user.ID, codes[3]); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("a used recovery code: %v, want ErrInvalidCode", err)
	}
	if left, _ := f.mfa.RecoveryCodesLeft(t.Context(), f.user.ID); left != 9 {
		t.Fatalf("%d recovery codes left, want 9", left)
	}
	fresh, err := f.mfa.RegenerateRecoveryCodes(t.Context(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.mfa.Verify(t.Context(), f.user.ID, codes[4]); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatal("an old recovery code works after new ones were made")
	}
	if err := f.mfa.Verify(t.Context(), f.user.ID, fresh[0]); err != nil {
		t.Fatalf("a new recovery code: %v", err)
	}
}

func TestSecretsAreNotStoredInClear(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	secret, codes := f.enrol(t)
	conn := pgtest.Conn(t, f.dbURL)
	var stored []byte
	if err := conn.QueryRow(t.Context(), `SELECT secret FROM totp_factors WHERE user_id = $1`, f.user.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(t.Context(), `SELECT digest FROM recovery_codes WHERE user_id = $1`, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	digests, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	everything := append(bytes.Join(digests, nil), stored...)
	if bytes.Contains(everything, []byte(secret)) || bytes.Contains(bytes.ToUpper(everything), []byte(strings.ToUpper(secret[:16]))) {
		t.Fatal("the TOTP secret is stored in clear")
	}
	for _, c := range codes {
		plain := strings.ReplaceAll(c, "-", "")
		if bytes.Contains(everything, []byte(plain)) || bytes.Contains(everything, []byte(c)) {
			t.Fatalf("recovery code %s is stored in clear", c)
		}
	}
	if len(digests) != 10 {
		t.Fatalf("%d recovery code rows, want 10", len(digests))
	}
}

func TestTurningOffNeedsACurrentCode(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	secret, _ := f.enrol(t)
	if err := f.mfa.Disable(t.Context(), f.user.ID, "000000"); !errors.Is(err, identity.ErrInvalidCode) {
		t.Fatalf("turning off with a wrong code: %v", err)
	}
	if err := f.mfa.Disable(t.Context(), f.user.ID, code(t, secret, 1)); err != nil {
		t.Fatal(err)
	}
	if on, _ := f.mfa.Enabled(t.Context(), f.user.ID); on {
		t.Fatal("the factor is still on")
	}
	if err := f.mfa.Reset(t.Context(), f.user.ID); !errors.Is(err, identity.ErrNoFactor) {
		t.Fatalf("resetting a user with no factor: %v, want ErrNoFactor", err)
	}
}

func TestAParallelBurstOfCodesGetsNoMoreChecksThanTheLimit(t *testing.T) {
	t.Parallel()
	f := newMFA(t, identity.Throttle{MaxFailures: 5, Window: 15 * time.Minute, LockoutFailures: 20})
	secret, _ := f.enrol(t)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			guess := fmt.Sprintf("%06d", i)
			if i%2 == 1 {
				guess = "aaaa-bbbb-cccc-dd" + fmt.Sprintf("%02d", i) // recovery-code shaped
			}
			_ = f.mfa.Verify(t.Context(), f.user.ID, guess)
		})
	}
	wg.Wait()
	conn := pgtest.Conn(t, f.dbURL)
	var checked int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'mfa.failed'`).Scan(&checked); err != nil {
		t.Fatal(err)
	}
	if checked != 5 {
		t.Fatalf("a burst of 60 codes had %d checked, want the limit of 5", checked)
	}
	var throttled *identity.ThrottledError
	if err := f.mfa.Verify(t.Context(), f.user.ID, code(t, secret, 1)); !errors.As(err, &throttled) {
		t.Fatalf("the right code right after the burst: %v, want a pause", err)
	}
}

func TestEachRecoveryCodeUsedIsRecordedWithTheCodesLeft(t *testing.T) {
	t.Parallel()
	f := newMFA(t, lenient)
	_, codes := f.enrol(t)
	if err := f.mfa.Verify(t.Context(), f.user.ID, codes[0]); err != nil {
		t.Fatal(err)
	}
	// A spent code and a wrong one are not uses.
	_ = f.mfa.Verify(t.Context(), f.user.ID, codes[0])
	_ = f.mfa.Verify(t.Context(), f.user.ID, "aaaa-bbbb-cccc-dddd")
	store := pgtest.Open(t, f.dbURL)
	used, err := audit.New(store, slog.New(slog.DiscardHandler)).List(t.Context(), audit.Query{Action: audit.MFARecoveryCodeUsed})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 1 || used[0].Target != audit.User(f.user.ID) || used[0].Details["codes_left"] != float64(9) {
		t.Fatalf("events %+v, want one use of a recovery code, with 9 left", used)
	}
}
