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
	// failedPassword counts wrong passwords per account from devices the
	// account does not know; failedDevicePassword counts them per device
	// that has signed in to the account before (see Device).
	failedPassword       = "password"
	failedDevicePassword = "password-device"
	failedCode           = "code"
)

// Throttle timings. firstDelay is the wait after the failure that reaches
// MaxFailures; lockoutPeriod is how long a lockout lasts after the last
// failure, and the period LockoutFailures are counted over.
const (
	firstDelay    = 30 * time.Second
	lockoutPeriod = time.Hour
)

// DailyFailures is the most failures a counter takes in any 24 hours:
// NIST SP 800-63B §5.2.2 asks that online guessing be limited to at most
// 100 failed attempts per account. Past it, the counter refuses every
// attempt until the oldest of the day's failures is a day old.
const DailyFailures = 100

// Throttle limits wrong guesses per account, on every node at once (the
// counts are in the database): after MaxFailures within Window, each
// further attempt waits, 30 seconds and then twice as long after each
// failure, up to Window; after LockoutFailures within an hour, the account
// is locked for an hour from the last failure; after DailyFailures within a
// day, until the day's first failure is a day old. Attempts refused while
// waiting are not failures: they do not extend the wait, so an attacker
// cannot keep an account locked for ever.
//
// Each attempt is counted as a failure from before its secret is checked
// until the check succeeds (begin): the count and the reservation are one
// atomic step per account, so a burst of parallel guesses, from any number
// of addresses and nodes, gets no more checks than the limits allow, and
// a right guess in the burst is checked only if it got one of them.
//
// A zero Throttle refuses nothing, but still records failures.
type Throttle struct {
	MaxFailures     int
	Window          time.Duration
	LockoutFailures int
}

// Failures are an account's recent failed attempts.
type Failures struct {
	// InWindow counts those within the throttle's window, InHour those
	// within the last hour, InDay those within the last 24 hours.
	InWindow, InHour, InDay int
	Last                    time.Time
}

// FailureStore keeps failed attempts per kind and key. ReserveFailure is
// the one atomic step every attempt begins with: under a lock on kind and
// key that every node respects, it counts the failures within window (at
// most an hour), the hour and the day, asks admit whether one more attempt
// may go ahead, and if so records it as a failure, whose ID it returns.
// ForgetFailure takes a recorded failure back; ClearFailures forgets every
// failure of kind whose key starts with keyPrefix.
type FailureStore interface {
	ReserveFailure(ctx context.Context, kind string, key []byte, window time.Duration, admit func(Failures) bool) (id int64, f Failures, admitted bool, err error)
	ForgetFailure(ctx context.Context, id int64) error
	ClearFailures(ctx context.Context, kind string, keyPrefix []byte) error
}

// ThrottledError says the account must wait before its next attempt.
type ThrottledError struct {
	RetryAfter time.Duration
	// Locked says the account reached a lockout, not just a delay.
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
	if t.off() {
		return nil
	}
	if f.InDay >= DailyFailures {
		// The count falls below the limit once the day's first failure
		// is a day old; that time is not known here, so the wait given
		// is the lockout period, after which the client may try again.
		return &ThrottledError{RetryAfter: lockoutPeriod, Locked: true}
	}
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

// off reports whether the throttle refuses nothing.
func (t Throttle) off() bool { return t.MaxFailures <= 0 && t.LockoutFailures <= 0 }

// attempt is one guess at a secret, counted as a failure until it is
// known to be right.
type attempt struct {
	throttle Throttle
	store    FailureStore
	kind     string
	key      []byte
	// id is the failure recorded for it; before, the counts it met.
	id     int64
	before Failures
}

// begin reserves an attempt of kind on key, or returns the wait the
// attempt meets instead, having recorded nothing.
func (t Throttle) begin(ctx context.Context, store FailureStore, kind string, key []byte) (*attempt, *ThrottledError, error) {
	var wait *ThrottledError
	id, f, admitted, err := store.ReserveFailure(ctx, kind, key, t.Window, func(f Failures) bool {
		wait = t.wait(f, time.Now())
		return wait == nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !admitted {
		return nil, wait, nil
	}
	return &attempt{throttle: t, store: store, kind: kind, key: key, id: id, before: f}, nil, nil
}

// succeeded takes the attempt's failure back: it was not one.
func (a *attempt) succeeded(ctx context.Context) error {
	return a.store.ForgetFailure(ctx, a.id)
}

// failureEvents are the audit actions of a kind of failure: the failure
// itself, the one that starts the delays, the one that locks.
type failureEvents struct{ failed, throttled, locked string }

var eventsOf = map[string]failureEvents{
	failedPassword:       {audit.LoginFailed, audit.LoginThrottled, audit.LoginLocked},
	failedDevicePassword: {audit.LoginFailed, audit.LoginThrottled, audit.LoginLocked},
	failedCode:           {audit.MFAFailed, audit.MFAThrottled, audit.MFALocked},
}

// failed keeps the attempt's failure and records it in the audit log, with
// one more event for the step it reached: the delays beginning, or the
// lockout. e is the failure's event, whose action failed fills in.
func (a *attempt) failed(ctx context.Context, log Auditor, e audit.Event) error {
	t, events := a.throttle, eventsOf[a.kind]
	counts := map[string]any{"failures_in_window": a.before.InWindow + 1, "failures_in_hour": a.before.InHour + 1}
	step := audit.Event{Target: e.Target, Details: counts}
	if email, ok := e.Details["email"]; ok {
		step.Details["email"] = email
	}
	switch {
	case t.LockoutFailures > 0 && a.before.InHour+1 == t.LockoutFailures:
		step.Action = events.locked
		step.Details["for"] = lockoutPeriod.String()
	case a.before.InDay+1 == DailyFailures && !t.off():
		step.Action = events.locked
		step.Details["for"] = "24h"
	case t.MaxFailures > 0 && a.before.InWindow+1 == t.MaxFailures:
		step.Action = events.throttled
	}
	e.Action = events.failed
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details["failures_in_window"] = a.before.InWindow + 1
	if a.kind == failedDevicePassword {
		e.Details["device"] = "known"
		step.Details["device"] = "known"
	}
	return log.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if step.Action != "" {
			if err := log.Record(ctx, step); err != nil {
				return audit.Event{}, err
			}
		}
		return e, nil
	})
}

// AccountKey is what an account is known by at sign-in, before anyone
// knows whether it exists: a digest of the email as anyone could type it,
// in any case and spacing. Wrong passwords are counted under it, and
// device cookies (pkg/device) name the account with it.
func AccountKey(email string) []byte {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return sum[:]
}
