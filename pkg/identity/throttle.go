package identity

import (
	"context"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// Kinds of failed attempt, each throttled on its own.
const (
	failedPassword = "password"
	failedCode     = "code"
)

// Throttle timings. firstDelay is the wait after the failure that reaches
// MaxFailures; lockoutPeriod is how long a lockout lasts after the last
// failure, and the period LockoutFailures are counted over.
const (
	firstDelay    = 30 * time.Second
	lockoutPeriod = time.Hour
)

// Throttle limits wrong guesses per account, on every node at once (the
// counts are in the database): after MaxFailures within Window, each
// further attempt waits, 30 seconds and then twice as long after each
// failure, up to Window; after LockoutFailures within an hour, the account
// is locked for an hour from the last failure. NIST SP 800-63B §5.2.2 asks
// for no more than 100 failed attempts per account; LockoutFailures is at
// most that. Attempts refused while waiting are not failures: they do not
// extend the wait, so an attacker cannot keep an account locked for ever.
// A zero Throttle throttles nothing.
type Throttle struct {
	MaxFailures     int
	Window          time.Duration
	LockoutFailures int
}

// Failures are an account's recent failed attempts.
type Failures struct {
	// InWindow counts those within the throttle's window, InHour those
	// within the last hour.
	InWindow, InHour int
	Last             time.Time
}

// FailureStore keeps failed attempts per kind and account. window is at
// most an hour.
type FailureStore interface {
	RecordFailure(ctx context.Context, kind string, key []byte) error
	CountFailures(ctx context.Context, kind string, key []byte, window time.Duration) (Failures, error)
	ClearFailures(ctx context.Context, kind string, key []byte) error
}

// ThrottledError says the account must wait before its next attempt.
type ThrottledError struct {
	RetryAfter time.Duration
	// Locked says the account reached the lockout, not just a delay.
	Locked bool
}

func (e *ThrottledError) Error() string {
	if e.Locked {
		return "too many failed attempts: locked for " + e.RetryAfter.Round(time.Second).String()
	}
	return "too many failed attempts: wait " + e.RetryAfter.Round(time.Second).String()
}

// wait returns the ThrottledError an attempt now meets, or nil.
func (t Throttle) wait(f Failures, now time.Time) *ThrottledError {
	if t.LockoutFailures > 0 && f.InHour >= t.LockoutFailures {
		if d := f.Last.Add(lockoutPeriod).Sub(now); d > 0 {
			return &ThrottledError{RetryAfter: d, Locked: true}
		}
	}
	if t.MaxFailures <= 0 || f.InWindow < t.MaxFailures {
		return nil
	}
	delay := min(firstDelay<<min(f.InWindow-t.MaxFailures, 16), t.Window)
	if d := f.Last.Add(delay).Sub(now); d > 0 {
		return &ThrottledError{RetryAfter: d}
	}
	return nil
}

// throttled returns the ThrottledError the account's next attempt meets,
// or nil.
func (t Throttle) throttled(ctx context.Context, store FailureStore, kind string, key []byte) (*ThrottledError, error) {
	if t.MaxFailures <= 0 && t.LockoutFailures <= 0 {
		return nil, nil
	}
	f, err := store.CountFailures(ctx, kind, key, t.Window)
	if err != nil {
		return nil, err
	}
	return t.wait(f, time.Now()), nil
}

// failureEvents are the audit actions of a kind of failure: the failure
// itself, the one that starts the delays, the one that locks.
type failureEvents struct{ failed, throttled, locked string }

var eventsOf = map[string]failureEvents{
	failedPassword: {audit.LoginFailed, audit.LoginThrottled, audit.LoginLocked},
	failedCode:     {audit.MFAFailed, audit.MFAThrottled, audit.MFALocked},
}

// fail records a failed attempt and, in the same transaction, its audit
// event, with one more for the step it reached: the delays beginning, or
// the lockout. e is the failure's event, whose action fail fills in.
func (t Throttle) fail(ctx context.Context, store FailureStore, log Auditor, kind string, key []byte, e audit.Event) error {
	events := eventsOf[kind]
	return log.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		f, err := store.CountFailures(ctx, kind, key, t.Window)
		if err != nil {
			return audit.Event{}, err
		}
		if err := store.RecordFailure(ctx, kind, key); err != nil {
			return audit.Event{}, err
		}
		step := e
		step.Details = map[string]any{"failures_in_window": f.InWindow + 1, "failures_in_hour": f.InHour + 1}
		if email, ok := e.Details["email"]; ok {
			step.Details["email"] = email
		}
		switch {
		case t.LockoutFailures > 0 && f.InHour+1 == t.LockoutFailures:
			step.Action = events.locked
			step.Details["for"] = lockoutPeriod.String()
		case t.MaxFailures > 0 && f.InWindow+1 == t.MaxFailures:
			step.Action = events.throttled
		}
		if step.Action != "" {
			if err := log.Record(ctx, step); err != nil {
				return audit.Event{}, err
			}
		}
		e.Action = events.failed
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["failures_in_window"] = f.InWindow + 1
		return e, nil
	})
}

// accountKey is what password failures are counted under: a digest of the
// email as anyone could type it, whether or not an account has it.
func accountKey(email string) []byte {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return sum[:]
}
