package oauth

import (
	"context"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/audit"
)

// fositeStore is the store as fosite sees it, with two additions. Reuse:
// fosite calls DeleteRefreshTokenSession only when a spent refresh token is
// presented again, inside the transaction that revokes the token's whole
// family (RFC 9700 §4.14.2). That is the moment to record the reuse, in the
// same transaction, and to count it. (A revoked refresh token never gets
// here: the store reports it as not found.) And private_key_jwt replay
// protection per client (assertion.go).
type fositeStore struct {
	Store
	audit   *audit.Log
	metrics Observer
	// parLifespan is how long a pushed request is kept when its session
	// does not say (par.go).
	parLifespan time.Duration
}

var (
	_ fosite.Storage    = (*fositeStore)(nil)
	_ fosite.PARStorage = (*fositeStore)(nil)
)

// DeleteRefreshTokenSession deactivates the reused token and records the
// reuse: which client's grant, for which subject.
func (s *fositeStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	if err := s.Store.DeleteRefreshTokenSession(ctx, signature); err != nil {
		return err
	}
	r, err := s.Store.GetRefreshTokenSession(ctx, signature, NewSession())
	if r == nil {
		return fmt.Errorf("oauth: read reused refresh token: %w", err)
	}
	clientID := r.GetClient().GetID()
	err = s.audit.Record(ctx, audit.Event{
		Action:  audit.RefreshReuseDetected,
		Actor:   audit.Client(clientID),
		Target:  audit.Client(clientID),
		Details: map[string]any{"subject": r.GetSession().GetSubject(), "grant": r.GetID()},
	})
	if err == nil {
		s.metrics.RefreshTokenReused()
	}
	return err
}
