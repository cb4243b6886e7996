package identity_test

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
)

const goodPassword = "correct horse battery staple"

// loginScene is a directory with one user, ada@example.com, whose
// sign-ins are throttled by throttle, and a connection to its database for
// moving failures back in time.
type loginScene struct {
	m    *identity.Manager
	ada  *identity.User
	conn *pgx.Conn
}

func newLoginScene(t *testing.T, throttle identity.Throttle) *loginScene {
	t.Helper()
	url := pgtest.URL(t)
	store := pgtest.Open(t, url)
	m := identity.NewManager(store, identity.NewHasher(), audit.New(store, slog.New(slog.DiscardHandler)), throttle)
	ada, err := m.Create(t.Context(), identity.User{Email: "ada@example.com"}, goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	return &loginScene{m: m, ada: ada, conn: pgtest.Conn(t, url)}
}

// ago moves every recorded failure d into the past, as if d had passed.
func (s *loginScene) ago(t *testing.T, d time.Duration) {
	t.Helper()
	if _, err := s.conn.Exec(t.Context(), `UPDATE auth_failures SET at = at - $1::interval`, d); err != nil {
		t.Fatal(err)
	}
}

func (s *loginScene) signIn(t *testing.T, email, password string) error {
	t.Helper()
	_, err := s.m.Authenticate(t.Context(), email, password, nil)
	if err != nil && !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("sign-in failed with %v, not ErrInvalidCredentials", err)
	}
	return err
}

func (s *loginScene) events(t *testing.T, action string) int {
	t.Helper()
	var n int
	if err := s.conn.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = $1`, action).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWrongPasswordsFirstDelayThenLockTheAccount(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 2, Window: 15 * time.Minute, LockoutFailures: 4})
	for range 2 {
		if s.signIn(t, "ada@example.com", "wrong password") == nil {
			t.Fatal("a wrong password signed in")
		}
	}
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatal("right after two failures the right password went through; want a 30s pause")
	}
	s.ago(t, 31*time.Second)
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("after the pause the right password fails: %v", err)
	}

	// Two more failures reach four within the hour: locked for an hour.
	for range 2 {
		s.ago(t, 5*time.Minute) // past each growing pause
		s.signIn(t, "ada@example.com", "wrong password")
	}
	s.ago(t, 30*time.Minute) // long past any pause, within the lockout
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatal("a locked account signed in")
	}
	if n := s.events(t, audit.LoginLocked); n != 1 {
		t.Fatalf("%d login.locked events, want 1", n)
	}
	s.ago(t, 31*time.Minute) // an hour after the last failure
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("the lockout did not end after an hour: %v", err)
	}
	if s.events(t, audit.LoginThrottled) == 0 || s.events(t, audit.LoginFailed) < 5 {
		t.Fatal("the failures and the pause were not all recorded")
	}
}

func TestRefusedAttemptsDoNotProlongTheLock(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 1, Window: 15 * time.Minute, LockoutFailures: 2})
	s.signIn(t, "ada@example.com", "wrong")
	s.ago(t, time.Minute)
	s.signIn(t, "ada@example.com", "wrong") // locked from now
	for range 10 {
		s.signIn(t, "ada@example.com", "attacker keeps trying")
	}
	s.ago(t, 61*time.Minute)
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("attempts during the lockout kept it going: %v", err)
	}
}

func TestAnUnknownEmailIsThrottledLikeAnAccount(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 2, Window: 15 * time.Minute, LockoutFailures: 3})
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		for range 3 {
			s.signIn(t, email, "wrong")
			s.ago(t, 5*time.Minute) // past each pause
		}
	}
	var locks []string
	rows, err := s.conn.Query(t.Context(), `SELECT details->>'email' FROM audit_events WHERE action = 'login.locked' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	if locks, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if len(locks) != 2 || locks[0] != "ada@example.com" || locks[1] != "nobody@example.com" {
		t.Fatalf("lockouts %v, want the real account and the unknown email alike", locks)
	}
	// Counted per email in any case and spacing, as it would be typed.
	s.ago(t, 10*time.Minute)
	if s.signIn(t, " ADA@example.com ", goodPassword) == nil {
		t.Fatal("another spelling of a locked email got through")
	}
}

func TestUnlockLetsALockedUserInAtOnce(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 1, Window: 15 * time.Minute, LockoutFailures: 1})
	s.signIn(t, "ada@example.com", "wrong")
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatal("not locked")
	}
	if err := s.m.Unlock(t.Context(), s.ada.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("still locked after Unlock: %v", err)
	}
	if s.events(t, audit.UserUnlocked) != 1 {
		t.Fatal("the unlock was not recorded")
	}
}

// secondNode is another node's Manager on the scene's database: its own
// pool, its own hasher, the same counts.
func (s *loginScene) secondNode(t *testing.T, throttle identity.Throttle) *identity.Manager {
	t.Helper()
	store := pgtest.Open(t, s.conn.Config().ConnString())
	return identity.NewManager(store, identity.NewHasher(), audit.New(store, slog.New(slog.DiscardHandler)), throttle)
}

func (s *loginScene) reasons(t *testing.T, reason string) int {
	t.Helper()
	var n int
	if err := s.conn.QueryRow(t.Context(), `SELECT count(*) FROM audit_events
		WHERE action = 'login.failed' AND details->>'reason' = $1`, reason).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAParallelBurstOnTwoNodesGetsNoMoreChecksThanTheLimit(t *testing.T) {
	t.Parallel()
	throttle := identity.Throttle{MaxFailures: 5, Window: 15 * time.Minute, LockoutFailures: 20}
	s := newLoginScene(t, throttle)
	nodes := []*identity.Manager{s.m, s.secondNode(t, throttle)}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			_, _ = nodes[i%2].Authenticate(t.Context(), "ada@example.com", fmt.Sprintf("guess %d", i), nil)
		})
	}
	wg.Wait()
	if checked := s.reasons(t, "wrong password"); checked != 5 {
		t.Fatalf("a burst of 60 guesses on two nodes had %d passwords checked, want the limit of 5", checked)
	}
	if refused := s.reasons(t, "throttled"); refused != 55 {
		t.Fatalf("%d guesses refused unchecked, want the other 55", refused)
	}
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatal("the right password right after the burst went through; want the pause")
	}
}

func TestARightPasswordGivesItsReservationBack(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 2, Window: 15 * time.Minute, LockoutFailures: 20})
	for range 10 {
		if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
			t.Fatalf("a right password counted as a failure: %v", err)
		}
	}
	var left int
	if err := s.conn.QueryRow(t.Context(), `SELECT count(*) FROM auth_failures`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d failures recorded after ten right passwords", left)
	}
}

func TestAKnownDeviceKeepsSigningInWhileUnknownOnesAreLocked(t *testing.T) {
	t.Parallel()
	s := newLoginScene(t, identity.Throttle{MaxFailures: 1, Window: 15 * time.Minute, LockoutFailures: 2})
	laptop, thief := identity.Device("laptop-device-id"), identity.Device("stolen-cookie-id")
	for range 2 {
		s.ago(t, 5*time.Minute)
		s.signIn(t, "ada@example.com", "attacker's guess")
	}
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatal("an unknown device got in while the account is locked for unknown devices")
	}
	if _, err := s.m.Authenticate(t.Context(), "ada@example.com", goodPassword, laptop); err != nil {
		t.Fatalf("the owner's own browser is locked out by someone else's guesses: %v", err)
	}
	// A device's own wrong passwords lock that device alone.
	for range 2 {
		s.ago(t, 5*time.Minute)
		_, _ = s.m.Authenticate(t.Context(), "ada@example.com", "typo", thief)
	}
	if _, err := s.m.Authenticate(t.Context(), "ada@example.com", goodPassword, thief); err == nil {
		t.Fatal("a device with two failures got in; want it locked")
	}
	if _, err := s.m.Authenticate(t.Context(), "ada@example.com", goodPassword, laptop); err != nil {
		t.Fatalf("another device's failures locked the laptop: %v", err)
	}
	// Unlock lets every device in at once.
	if err := s.m.Unlock(t.Context(), s.ada.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Authenticate(t.Context(), "ADA@example.com", goodPassword, thief); err != nil {
		t.Fatalf("a locked device is still locked after Unlock: %v", err)
	}
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("unknown devices are still locked after Unlock: %v", err)
	}
}

func TestNoCounterTakesMoreThanADaysFailures(t *testing.T) {
	t.Parallel()
	// Only the daily limit applies: delays and the hourly lock are off.
	s := newLoginScene(t, identity.Throttle{MaxFailures: 100, Window: time.Minute})
	if _, err := s.conn.Exec(t.Context(), `INSERT INTO auth_failures (kind, key, at)
		SELECT 'password', $1, now() - interval '2 hours' FROM generate_series(1, $2)`,
		identity.AccountKey("ada@example.com"), identity.DailyFailures); err != nil {
		t.Fatal(err)
	}
	if s.signIn(t, "ada@example.com", goodPassword) == nil {
		t.Fatalf("the right password got in after %d failures within a day", identity.DailyFailures)
	}
	s.ago(t, 23*time.Hour)
	if err := s.signIn(t, "ada@example.com", goodPassword); err != nil {
		t.Fatalf("a day after the failures the account is still refused: %v", err)
	}
}
