// This file keeps who is signed in on each browser: the session data, in
// Postgres through github.com/alexedwards/scs, and a record of each
// sign-in; and the authorization requests parked in the session while the
// user signs in (see the package doc).

package signin

import (
	"context"
	"crypto/rand"
	"encoding/gob"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/risk"
	"github.com/latchkey/latchkey/pkg/server"
)

// Keys of the values kept in a browser session.
const (
	authKey    = "auth"
	pendingKey = "pending"
	partialKey = "partial"
	// ceremonyKey holds the passkey ceremony under way (Ceremony).
	ceremonyKey = "passkey_ceremony"
	// riskKey holds the risk decision of the password just given
	// (NoteRisk), for the sign-in's audit event.
	riskKey = "risk"
)

// secondFactorTTL is how long a password stays good for while the user
// looks for their authenticator app.
const secondFactorTTL = 10 * time.Minute

// Auth is who is signed in on a browser, and how.
type Auth struct {
	UserID string
	// SID names this sign-in: the sid claim of ID tokens, and the key of
	// its browser_sessions record.
	SID string
	// AuthTime is when the user last proved who they are, to the
	// nanosecond: prompt=login and max_age=0 need a sign-in after the
	// request, and one in the same second may be before it. (The ID
	// token's auth_time is whole seconds, as OpenID Connect defines it.)
	AuthTime time.Time
	// AMR lists how (RFC 8176): pwd for a password.
	AMR []string
}

// partial is a user who gave the right password and still owes the
// second factor. It is not a sign-in: nothing accepts it but the
// second-factor page.
type partial struct {
	UserID string
	At     time.Time
}

func init() {
	// scs encodes session values with encoding/gob, which names each type
	// of value it stores. The names are those the types had in pkg/session,
	// where they lived before: sessions stored by an earlier release then
	// still load (a renamed type would fail to decode, and every browser
	// signed in at the upgrade would get an error page).
	gob.RegisterName("github.com/latchkey/latchkey/pkg/session.Auth", Auth{})
	gob.RegisterName("map[string]session.Pending", map[string]Pending{})
	gob.RegisterName("github.com/latchkey/latchkey/pkg/session.partial", partial{})
	gob.RegisterName("github.com/latchkey/latchkey/pkg/signin.ceremony", ceremony{})
	gob.RegisterName("github.com/latchkey/latchkey/pkg/signin.riskNote", riskNote{})
}

// riskNote is what the risk policy made of a password sign-in (pkg/risk),
// kept until the sign-in it belongs to completes, after the second factor
// if one is asked for.
type riskNote struct {
	UserID           string
	Signals, Actions []string
	At               time.Time
}

// NoteRisk keeps d, the risk decision on userID's password just given,
// for the audit event of the sign-in it leads to (SignIn); a decision of
// nothing clears an older one.
func (m *Sessions) NoteRisk(ctx context.Context, userID string, d risk.Decision) {
	if !d.Signalled() {
		m.scs.Remove(ctx, riskKey)
		return
	}
	signals, actions := d.Names()
	m.scs.Put(ctx, riskKey, riskNote{UserID: userID, Signals: signals, Actions: actions, At: time.Now()})
}

// SessionStore keeps browser sessions (storage/postgres): the session data
// scs loads and saves, and a record of each sign-in, which must stand for
// the session to count.
type SessionStore interface {
	SessionStore() scs.Store
	CreateBrowserSession(ctx context.Context, b identity.BrowserSession) error
	BrowserSessionActive(ctx context.Context, sid, userID string) (bool, error)
	UpdateBrowserSessionAuth(ctx context.Context, sid string, authTime time.Time, amr []string) error
	DeleteBrowserSession(ctx context.Context, sid string) error
}

// SessionConfig configures browser sessions.
type SessionConfig struct {
	// Secure marks the cookie Secure and gives it the __Host- prefix; set
	// it when the issuer is https.
	Secure bool
	// IdleTimeout ends a session that has not been used for this long.
	IdleTimeout time.Duration
	// Lifetime ends a session this long after sign-in, however active.
	Lifetime time.Duration
	// ParkRateLimit is how many requests a minute each client address
	// (server.ClientIP; IPv6 per /64) may park on this node; 0 is no
	// limit.
	ParkRateLimit int
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Sessions keeps who is signed in on each browser (see the package doc).
type Sessions struct {
	scs       *scs.SessionManager
	store     SessionStore
	audit     Auditor
	lifetime  time.Duration
	parkLimit *ratelimit.Limiter
}

// NewSessions returns Sessions keeping sessions in store and recording
// sign-ins in the audit log.
func NewSessions(store SessionStore, audit Auditor, cfg SessionConfig) *Sessions {
	s := scs.New()
	s.Store = store.SessionStore()
	// The sessions table holds SHA-256 digests of the tokens, never the
	// tokens: a copy of the database, or a read of the table, yields no
	// cookie that works. The token is 256 random bits, so a fast digest is
	// as good as a slow one (as for client secrets).
	s.HashTokenInStore = true
	s.IdleTimeout = cfg.IdleTimeout
	s.Lifetime = cfg.Lifetime
	s.Cookie.Name = server.CookieName("latchkey_session", cfg.Secure)
	s.Cookie.Path = "/"
	s.Cookie.HttpOnly = true
	s.Cookie.Secure = cfg.Secure
	s.Cookie.SameSite = http.SameSiteLaxMode
	s.Cookie.Persist = true
	return &Sessions{scs: s, store: store, audit: audit, lifetime: cfg.Lifetime,
		parkLimit: ratelimit.New(cfg.ParkRateLimit, time.Minute)}
}

// Handler loads the browser's session for next and saves it afterwards.
// What the browser's user does is recorded in the audit log as theirs:
// the signed-in user's, or that of the user who gave their password and
// owes the second factor.
func (m *Sessions) Handler(next http.Handler) http.Handler {
	return m.scs.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if a, ok := m.scs.Get(ctx, authKey).(Auth); ok {
			ctx = audit.WithActor(ctx, audit.User(a.UserID))
		} else if p, ok := m.scs.Get(ctx, partialKey).(partial); ok {
			ctx = audit.WithActor(ctx, audit.User(p.UserID))
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	}))
}

// Current returns who is signed in, if anyone. A session whose sign-in was
// ended elsewhere, or whose user was disabled, is cleared.
func (m *Sessions) Current(ctx context.Context) (Auth, bool, error) {
	a, ok := m.scs.Get(ctx, authKey).(Auth)
	if !ok {
		return Auth{}, false, nil
	}
	active, err := m.store.BrowserSessionActive(ctx, a.SID, a.UserID)
	if err != nil {
		return Auth{}, false, err
	}
	if !active {
		m.scs.Remove(ctx, authKey)
		return Auth{}, false, nil
	}
	return a, true, nil
}

// SignInNotes are what a sign-in's audit event says of how it came about.
type SignInNotes struct {
	// NewBrowser says the browser has not signed in to the account before
	// (pkg/device), for the user's notice (pkg/notify).
	NewBrowser bool
	// TrustedDevice says the second factor was not asked for because the
	// browser is one the user trusts (pkg/trust).
	TrustedDevice bool
}

// SignIn starts a sign-in for userID, proven by amr, on this browser: a new
// session token, a new sid, and a record of it, with the browser's user
// agent (from r) and address (server.ClientIP). The sign-in's audit event
// carries notes.
func (m *Sessions) SignIn(ctx context.Context, r *http.Request, userID string, amr []string, notes SignInNotes) (Auth, error) {
	if old, ok := m.scs.Get(ctx, authKey).(Auth); ok {
		// Signing in again, or as someone else, replaces the old sign-in.
		if err := m.store.DeleteBrowserSession(ctx, old.SID); err != nil {
			return Auth{}, err
		}
	}
	if err := m.scs.RenewToken(ctx); err != nil {
		return Auth{}, err
	}
	a := Auth{UserID: userID, SID: rand.Text(), AuthTime: time.Now(), AMR: amr}
	details := map[string]any{"sid": a.SID, "amr": amr}
	if notes.NewBrowser {
		details[NewBrowser] = true
	}
	if notes.TrustedDevice {
		details[TrustedDevice] = true
	}
	// The password's risk decision, if this sign-in is what it led to.
	if n, ok := m.scs.Pop(ctx, riskKey).(riskNote); ok && n.UserID == userID && time.Since(n.At) < secondFactorTTL {
		details[RiskDetail] = map[string]any{risk.DetailSignals: n.Signals, risk.DetailActions: n.Actions}
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.LoginSucceeded, Actor: audit.User(userID), Target: audit.User(userID),
				Details: details},
			m.store.CreateBrowserSession(ctx, identity.BrowserSession{
				SID:       a.SID,
				UserID:    userID,
				AuthTime:  a.AuthTime,
				AMR:       amr,
				ExpiresAt: time.Now().Add(m.lifetime),
				UserAgent: r.UserAgent(),
				// As the audit log and the rate limits see it: the client's
				// address, from a trusted proxy's X-Forwarded-For.
				IP: server.ClientIP(ctx),
			})
	})
	if err != nil {
		return Auth{}, err
	}
	m.scs.Remove(ctx, partialKey)
	m.scs.Put(ctx, authKey, a)
	return a, nil
}

// NewBrowser is the detail, set to true, of a login.succeeded event on a
// browser that had not signed in to the account before.
const NewBrowser = "new_browser"

// TrustedDevice is the detail, set to true, of a login.succeeded event
// whose second factor a trusted browser stood in for.
const TrustedDevice = "trusted_device"

// RiskDetail is the detail of a login.succeeded event that holds the risk
// signals its password sign-in raised and the actions the policy took
// (pkg/risk), when there were any.
const RiskDetail = "risk"

// AwaitSecondFactor records that userID gave the right password and must
// now give their second factor before they are signed in.
func (m *Sessions) AwaitSecondFactor(ctx context.Context, userID string) {
	m.scs.Put(ctx, partialKey, partial{UserID: userID, At: time.Now()})
}

// AwaitingSecondFactor returns the user who gave their password and owes
// the second factor, if that was recently enough.
func (m *Sessions) AwaitingSecondFactor(ctx context.Context) (string, bool) {
	p, ok := m.scs.Get(ctx, partialKey).(partial)
	if !ok || time.Since(p.At) > secondFactorTTL {
		return "", false
	}
	return p.UserID, true
}

// Elevate records that the signed-in user has just proven who they are
// again, by amr (step-up): auth_time is now, the methods are added to the
// sign-in's, and the session gets a new token, as at any change of
// privilege.
func (m *Sessions) Elevate(ctx context.Context, amr []string) (Auth, error) {
	a, ok := m.scs.Get(ctx, authKey).(Auth)
	if !ok {
		return Auth{}, errors.New("session: nobody is signed in to elevate")
	}
	for _, method := range amr {
		if !slices.Contains(a.AMR, method) {
			a.AMR = append(a.AMR, method)
		}
	}
	a.AuthTime = time.Now()
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.LoginSucceeded, Actor: audit.User(a.UserID), Target: audit.User(a.UserID),
			Details: map[string]any{"sid": a.SID, "amr": amr, "step_up": true}}, m.store.UpdateBrowserSessionAuth(ctx, a.SID, a.AuthTime, a.AMR)
	})
	if err != nil {
		return Auth{}, err
	}
	if err := m.scs.RenewToken(ctx); err != nil {
		return Auth{}, err
	}
	m.scs.Put(ctx, authKey, a)
	return a, nil
}

// SignOut ends the sign-in on this browser, and the session with it.
func (m *Sessions) SignOut(ctx context.Context) error {
	if a, ok := m.scs.Get(ctx, authKey).(Auth); ok {
		if err := m.store.DeleteBrowserSession(ctx, a.SID); err != nil {
			return err
		}
	}
	return m.scs.Destroy(ctx)
}

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

// Kinds of passkey ceremony, kept apart so that the answer to one is never
// taken for the other's.
const (
	registration = "registration"
	assertion    = "assertion"
)

// ceremonyTTL is how long a passkey ceremony may take, as the browser is
// told (pkg/passkey).
const ceremonyTTL = 5 * time.Minute

// ceremony is a passkey ceremony begun on this browser: for whom, of which
// kind, and the session data (the challenge) its answer must match. Only
// one is kept: beginning another replaces it.
type ceremony struct {
	Kind, UserID string
	Data         []byte
	At           time.Time
}

// BeginCeremony keeps the session data of a passkey ceremony of kind for
// userID in this browser's session, and only there: its answer must come
// from the same browser (TakeCeremony).
func (m *Sessions) BeginCeremony(ctx context.Context, kind, userID string, data []byte) {
	m.scs.Put(ctx, ceremonyKey, ceremony{Kind: kind, UserID: userID, Data: data, At: time.Now()})
}

// TakeCeremony returns the session data of the passkey ceremony of kind
// for userID begun on this browser, and forgets it, whatever it finds: a
// challenge is answered once, rightly or not. nil when there is none (it
// was begun on another browser, taken already, or is too old).
func (m *Sessions) TakeCeremony(ctx context.Context, kind, userID string) []byte {
	c, ok := m.scs.Pop(ctx, ceremonyKey).(ceremony)
	if !ok || c.Kind != kind || c.UserID != userID || time.Since(c.At) > ceremonyTTL {
		return nil
	}
	return c.Data
}
