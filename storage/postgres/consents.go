package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/identity"
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
		return nil, errorf("postgres: read consent: %w", err)
	}
	return scopes, nil
}

// Consents lists the apps a user has allowed, by name.
func (s *Store) Consents(ctx context.Context, userID string) ([]identity.Consent, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT c.client_id, cl.name, c.scopes, c.granted_at
		FROM consents c JOIN clients cl ON cl.id = c.client_id WHERE c.user_id = $1 ORDER BY lower(cl.name), c.client_id`, userID)
	if err != nil {
		return nil, errorf("postgres: list consents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (identity.Consent, error) {
		var c identity.Consent
		err := row.Scan(&c.ClientID, &c.ClientName, &c.Scopes, &c.GrantedAt)
		return c, err
	})
	if err != nil {
		return nil, errorf("postgres: list consents: %w", err)
	}
	return out, nil
}

// RevokeConsent withdraws what a user allowed an app and, in the same
// transaction, revokes every token and unused authorization code the app
// holds for the user: an app the user no longer trusts must lose access
// now, not when its tokens expire, nor come back through a code issued a
// moment before. It reports whether there was anything to revoke.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string) (bool, error) {
	var revoked bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
		if err != nil {
			return err
		}
		revoked = tag.RowsAffected() > 0
		for _, t := range []tokenTable{accessTokens, refreshTokens, codes} {
			tag, err := tx.Exec(ctx, t.revoke(`subject = $1 AND client_id = $2`), userID, clientID)
			if err != nil {
				return err
			}
			revoked = revoked || tag.RowsAffected() > 0
		}
		return nil
	})
	if err != nil {
		return false, errorf("postgres: revoke consent: %w", err)
	}
	return revoked, nil
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
		return errorf("postgres: record consent: %w", err)
	}
	return nil
}
