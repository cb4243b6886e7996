package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"

	"github.com/latchkey/latchkey/pkg/identity"
)

// SessionStore returns the store scs keeps browser session data in. Its
// own clean-up loop is off: the janitor sweeps the table with the others.
func (s *Store) SessionStore() scs.Store {
	return sessionStore{pgxstore.NewWithCleanupInterval(s.pool, 0)}
}

// sessionStore is pgxstore with errors like the rest of the store's, so
// that a page that cannot load its session while the database is down
// answers 503 (server.Unavailable).
type sessionStore struct{ data *pgxstore.PostgresStore }

func (ss sessionStore) Find(token string) ([]byte, bool, error) {
	b, found, err := ss.data.Find(token)
	if err != nil {
		return nil, false, errorf("postgres: find session data: %w", err)
	}
	return b, found, nil
}

func (ss sessionStore) Commit(token string, b []byte, expiry time.Time) error {
	if err := ss.data.Commit(token, b, expiry); err != nil {
		return errorf("postgres: save session data: %w", err)
	}
	return nil
}

func (ss sessionStore) Delete(token string) error {
	if err := ss.data.Delete(token); err != nil {
		return errorf("postgres: delete session data: %w", err)
	}
	return nil
}

// CreateBrowserSession records a sign-in.
func (s *Store) CreateBrowserSession(ctx context.Context, b identity.BrowserSession) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO browser_sessions (sid, user_id, auth_time, amr, expires_at, user_agent, ip)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, b.SID, b.UserID, b.AuthTime, b.AMR, b.ExpiresAt, b.UserAgent, b.IP)
	if err != nil {
		return errorf("postgres: record browser session: %w", err)
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
		return false, errorf("postgres: check browser session: %w", err)
	}
	return active, nil
}

// UpdateBrowserSessionAuth records a step-up of a sign-in: when and how the
// user last proved who they are.
func (s *Store) UpdateBrowserSessionAuth(ctx context.Context, sid string, authTime time.Time, amr []string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `UPDATE browser_sessions SET auth_time = $2, amr = $3 WHERE sid = $1`, sid, authTime, amr); err != nil {
		return errorf("postgres: update browser session: %w", err)
	}
	return nil
}

// BrowserSessions lists a user's current sign-ins, newest first.
func (s *Store) BrowserSessions(ctx context.Context, userID string) ([]identity.BrowserSession, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT sid, user_id, auth_time, amr, created_at, expires_at, user_agent, ip
		FROM browser_sessions WHERE user_id = $1 AND expires_at > now() ORDER BY created_at DESC`, userID)
	if err != nil {
		return nil, errorf("postgres: list browser sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (identity.BrowserSession, error) {
		var b identity.BrowserSession
		err := row.Scan(&b.SID, &b.UserID, &b.AuthTime, &b.AMR, &b.CreatedAt, &b.ExpiresAt, &b.UserAgent, &b.IP)
		return b, err
	})
	if err != nil {
		return nil, errorf("postgres: list browser sessions: %w", err)
	}
	return out, nil
}

// EndUserBrowserSession ends one of a user's sign-ins, telling its apps
// (endSessions); false if the user has no such sign-in, so that nobody
// can end another user's.
func (s *Store) EndUserBrowserSession(ctx context.Context, userID, sid string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	n, err := endSessions(ctx, s.db(ctx), `b.sid = $1 AND b.user_id = $2`, sid, userID)
	if err != nil {
		return false, errorf("postgres: end browser session: %w", err)
	}
	return n == 1, nil
}

// DeleteBrowserSession ends a sign-in, telling its apps (endSessions).
func (s *Store) DeleteBrowserSession(ctx context.Context, sid string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := endSessions(ctx, s.db(ctx), `b.sid = $1`, sid); err != nil {
		return errorf("postgres: delete browser session: %w", err)
	}
	return nil
}
