package identity

import (
	"context"
	"slices"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// BrowserSession is one sign-in of a user in one browser, named by its sid
// (the ID token's sid claim).
type BrowserSession struct {
	SID       string    `json:"sid"`
	UserID    string    `json:"-"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UserAgent string    `json:"user_agent"`
	IP        string    `json:"ip"`
}

// Consent is what a user allowed an app.
type Consent struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Scopes     []string  `json:"scopes"`
	GrantedAt  time.Time `json:"granted_at"`
}

// Sessions lists the user's current sign-ins, newest first.
func (m *Manager) Sessions(ctx context.Context, userID string) ([]BrowserSession, error) {
	if !IsSub(userID) {
		return nil, ErrNotFound
	}
	return m.store.BrowserSessions(ctx, userID)
}

// EndSession signs the user out of one browser. It reports false if the
// user has no such session, so that nobody can end another user's.
func (m *Manager) EndSession(ctx context.Context, userID, sid string) (bool, error) {
	if !IsSub(userID) {
		return false, ErrNotFound
	}
	var ended bool
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if ended, err = m.store.EndUserBrowserSession(ctx, userID, sid); !ended {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.UserSessionRevoked, Target: audit.User(userID),
			Details: map[string]any{"sid": sid}}, err
	})
	return ended, err
}

// Consents lists the apps the user has allowed, by name.
func (m *Manager) Consents(ctx context.Context, userID string) ([]Consent, error) {
	if !IsSub(userID) {
		return nil, ErrNotFound
	}
	return m.store.Consents(ctx, userID)
}

// App is an app as consent sees it (a *client.Client): its ID, and
// whether it is registered to sign users in without asking (a first-party
// app).
type App interface {
	GetID() string
	SkipsConsent() bool
}

// Allows reports whether the user allows app every one of scopes: always
// for an app registered to skip consent, otherwise when the consent the
// user recorded lists each scope. The sign-in asks before an app gets a
// code (a no is the consent page), and the token endpoint asks again at
// every use of the grant, so that a consent withdrawn ends what it
// allowed.
func (m *Manager) Allows(ctx context.Context, userID string, app App, scopes []string) (bool, error) {
	if app.SkipsConsent() {
		return true, nil
	}
	allowed, err := m.store.ConsentedScopes(ctx, userID, app.GetID())
	if err != nil {
		return false, err
	}
	for _, s := range scopes {
		if !slices.Contains(allowed, s) {
			return false, nil
		}
	}
	return true, nil
}

// GrantConsent records that the user allowed an app these scopes.
func (m *Manager) GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.ConsentGranted, Target: audit.User(userID),
			Details: map[string]any{"client_id": clientID, "scopes": scopes}}, m.store.GrantConsent(ctx, userID, clientID, scopes)
	})
}

// RevokeConsent withdraws what the user allowed an app and revokes every
// token and unused authorization code the app holds for them: an app the
// user no longer trusts loses access now, not when its tokens expire. It
// reports whether there was anything to revoke.
func (m *Manager) RevokeConsent(ctx context.Context, userID, clientID string) (bool, error) {
	if !IsSub(userID) {
		return false, ErrNotFound
	}
	var revoked bool
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if revoked, err = m.store.RevokeConsent(ctx, userID, clientID); !revoked {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.ConsentRevoked, Target: audit.User(userID),
			Details: map[string]any{"client_id": clientID}}, err
	})
	return revoked, err
}
