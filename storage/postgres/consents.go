package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ConsentedScopes returns the scopes a user has allowed a client, none if
// they never consented.
func (s *Store) ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var scopes []string
	err := s.db(ctx).QueryRow(ctx, `SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: read consent: %w", err)
	}
	return scopes, nil
}

// GrantConsent records that a user allowed a client scopes, adding them to
// what the user allowed it before.
func (s *Store) GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO consents (user_id, client_id, scopes) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, client_id) DO UPDATE SET updated_at = now(),
			scopes = ARRAY (SELECT DISTINCT s FROM unnest(consents.scopes || EXCLUDED.scopes) s ORDER BY s)`,
		userID, clientID, scopes)
	if err != nil {
		return fmt.Errorf("postgres: record consent: %w", err)
	}
	return nil
}
