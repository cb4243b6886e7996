package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/pkg/identity"
)

var _ identity.FailureStore = (*Store)(nil)

// RecordFailure records a failed attempt on an account.
func (s *Store) RecordFailure(ctx context.Context, kind string, key []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `INSERT INTO auth_failures (kind, key) VALUES ($1, $2)`, kind, key); err != nil {
		return fmt.Errorf("postgres: record failed attempt: %w", err)
	}
	return nil
}

// CountFailures counts an account's failed attempts within window and
// within the last hour, and says when the last one was.
func (s *Store) CountFailures(ctx context.Context, kind string, key []byte, window time.Duration) (identity.Failures, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var (
		f    identity.Failures
		last *time.Time
	)
	err := s.db(ctx).QueryRow(ctx, `SELECT count(*) FILTER (WHERE at > now() - $3::interval), count(*), max(at)
		FROM auth_failures WHERE kind = $1 AND key = $2 AND at > now() - interval '1 hour'`,
		kind, key, window).Scan(&f.InWindow, &f.InHour, &last)
	if err != nil {
		return f, fmt.Errorf("postgres: count failed attempts: %w", err)
	}
	if last != nil {
		f.Last = *last
	}
	return f, nil
}

// ClearFailures forgets an account's failed attempts, which unlocks it.
func (s *Store) ClearFailures(ctx context.Context, kind string, key []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `DELETE FROM auth_failures WHERE kind = $1 AND key = $2`, kind, key); err != nil {
		return fmt.Errorf("postgres: clear failed attempts: %w", err)
	}
	return nil
}
