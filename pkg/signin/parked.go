// This file parks authorization requests in the browser's session while
// the user signs in (see the package doc).

package signin

import (
	"context"
	"crypto/rand"
	"net/url"
	"time"

	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
)

// Limits on pending requests: a browser rarely has more than one, and one
// left behind (a closed tab) should not linger.
const (
	maxPending = 10
	pendingTTL = time.Hour
)

// Pending is an authorization request waiting on the user.
type Pending struct {
	// Params are the request's parameters as the client sent them.
	Params url.Values
	// Started is when the request arrived: a sign-in must come after it
	// to satisfy prompt=login, and max_age counts back from it.
	Started time.Time
	// Consented says the user allowed the request on the consent page;
	// Denied that they refused.
	Consented, Denied bool
}

// ParkLimitError is Park's refusal of an address over ParkRateLimit.
type ParkLimitError struct {
	// RetryAfter is how long until the address may park again.
	RetryAfter time.Duration
}

func (e *ParkLimitError) Error() string {
	return "signin: too many authorization requests from this address; retry in " + e.RetryAfter.String()
}

// Park keeps an authorization request for the user to act on and returns
// its handle. An address over ParkRateLimit gets a *ParkLimitError and
// parks nothing. On a browser where nobody is signed in, the session is
// given the parked request's life (pendingTTL) from now: without it, a
// caller who never signs in would leave a row for the idle timeout.
// Signing in gives the session its full lifetime again.
func (m *Sessions) Park(ctx context.Context, params url.Values) (string, error) {
	if ok, wait := m.parkLimit.Allow(ratelimit.AddressKey(server.ClientIP(ctx))); !ok {
		return "", &ParkLimitError{RetryAfter: wait}
	}
	pending := m.pending(ctx)
	if len(pending) >= maxPending {
		var oldest string
		for h, p := range pending {
			if oldest == "" || p.Started.Before(pending[oldest].Started) {
				oldest = h
			}
		}
		delete(pending, oldest)
	}
	handle := rand.Text()
	pending[handle] = Pending{Params: params, Started: time.Now()}
	m.scs.Put(ctx, pendingKey, pending)
	if _, signedIn := m.scs.Get(ctx, authKey).(Auth); !signedIn {
		m.scs.SetDeadline(ctx, time.Now().Add(pendingTTL))
	}
	return handle, nil
}

// Pending returns the parked request with the given handle.
func (m *Sessions) Pending(ctx context.Context, handle string) (Pending, bool) {
	p, ok := m.pending(ctx)[handle]
	return p, ok
}

// Update stores a changed parked request, if it is still parked.
func (m *Sessions) Update(ctx context.Context, handle string, p Pending) {
	pending := m.pending(ctx)
	if _, ok := pending[handle]; ok {
		pending[handle] = p
		m.scs.Put(ctx, pendingKey, pending)
	}
}

// Finish forgets a parked request once it is answered.
func (m *Sessions) Finish(ctx context.Context, handle string) {
	pending := m.pending(ctx)
	if _, ok := pending[handle]; ok {
		delete(pending, handle)
		m.scs.Put(ctx, pendingKey, pending)
	}
}

// pending returns the parked requests that have not expired.
func (m *Sessions) pending(ctx context.Context) map[string]Pending {
	stored, _ := m.scs.Get(ctx, pendingKey).(map[string]Pending)
	fresh := make(map[string]Pending, len(stored))
	for h, p := range stored {
		if time.Since(p.Started) < pendingTTL {
			fresh[h] = p
		}
	}
	return fresh
}
