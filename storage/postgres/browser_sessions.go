package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
)

// BrowserSession is one sign-in of a user in one browser.
type BrowserSession struct {
	SID       string
	UserID    string
	AuthTime  time.Time
	AMR       []string
	ExpiresAt time.Time
	UserAgent string
	IP        string
}

// SessionStore returns the store scs keeps browser session data in. Its
// own clean-up loop is off: the janitor sweeps the table with the others.
func (s *Store) SessionStore() scs.Store {
	return pgxstore.NewWithCleanupInterval(s.pool, 0)
}

// CreateBrowserSession records a sign-in.
func (s *Store) CreateBrowserSession(ctx context.Context, b BrowserSession) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO browser_sessions (sid, user_id, auth_time, amr, expires_at, user_agent, ip)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, b.SID, b.UserID, b.AuthTime, b.AMR, b.ExpiresAt, b.UserAgent, b.IP)
	if err != nil {
		return fmt.Errorf("postgres: record browser session: %w", err)
	}
	return nil
}

// BrowserSessionActive reports whether the sign-in sid of userID still
// stands: not signed out, revoked or expired, and the user not disabled.
func (s *Store) BrowserSessionActive(ctx context.Context, sid, userID string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var active bool
	err := s.db(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM browser_sessions b JOIN users u ON u.id = b.user_id
		WHERE b.sid = $1 AND b.user_id = $2 AND b.expires_at > now() AND NOT u.disabled)`, sid, userID).Scan(&active)
	if err != nil {
		return false, fmt.Errorf("postgres: check browser session: %w", err)
	}
	return active, nil
}

// DeleteBrowserSession ends a sign-in.
func (s *Store) DeleteBrowserSession(ctx context.Context, sid string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `DELETE FROM browser_sessions WHERE sid = $1`, sid); err != nil {
		return fmt.Errorf("postgres: delete browser session: %w", err)
	}
	return nil
}
