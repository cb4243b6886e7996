package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/validation"
)

var _ identity.Store = (*Store)(nil)

const userColumns = `id, email, email_verified, name, given_name, family_name, claims, password_hash, disabled, created_at, updated_at`

// CreateUser stores a new user; identity.ErrEmailTaken if another user has
// the email in any case.
func (s *Store) CreateUser(ctx context.Context, u *identity.User) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	claims, err := json.Marshal(u.Claims)
	if err != nil {
		return errorf("postgres: create user: %w", err)
	}
	err = s.db(ctx).QueryRow(ctx, `INSERT INTO users (id, email, email_verified, name, given_name, family_name, claims, password_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, '')) RETURNING created_at, updated_at`,
		u.ID, u.Email, u.EmailVerified, u.Name, u.GivenName, u.FamilyName, claimsOrEmpty(claims), u.PasswordHash,
	).Scan(&u.CreatedAt, &u.UpdatedAt)
	if isUniqueViolation(err) {
		return identity.ErrEmailTaken
	}
	if err != nil {
		return errorf("postgres: create user: %w", err)
	}
	return nil
}

// UserByID returns a user, or identity.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id string) (*identity.User, error) {
	return s.user(ctx, `WHERE id = $1`, id)
}

// UserByEmail returns the user with email, compared without case, or
// identity.ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (*identity.User, error) {
	return s.user(ctx, `WHERE lower(email) = lower($1)`, email)
}

func (s *Store) user(ctx context.Context, where string, arg any) (*identity.User, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+userColumns+` FROM users `+where, arg)
	if err != nil {
		return nil, errorf("postgres: get user: %w", err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, scanUser)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, identity.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get user: %w", err)
	}
	return u, nil
}

// FindUsers returns the users q selects, ordered by email, all of them when
// q.Limit is 0. Emails are unique regardless of case, so the lower-cased
// email orders them fully.
func (s *Store) FindUsers(ctx context.Context, q identity.Query) ([]*identity.User, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.EmailPrefix != "", "starts_with(lower(email), ?)", strings.ToLower(q.EmailPrefix))
	w.addIf(q.After != "", "lower(email) > ?", strings.ToLower(q.After))
	sql := `SELECT ` + userColumns + ` FROM users` + w.sql() + ` ORDER BY lower(email)` + w.limit(q.Limit)
	rows, err := s.db(ctx).Query(ctx, sql, w.args...)
	if err != nil {
		return nil, errorf("postgres: list users: %w", err)
	}
	us, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, errorf("postgres: list users: %w", err)
	}
	return us, nil
}

// UpdateUser locks the user, lets update change it, and stores the result
// in one transaction; an error from update changes nothing.
func (s *Store) UpdateUser(ctx context.Context, id string, update func(*identity.User) error) (*identity.User, error) {
	var updated *identity.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		u, err := pgx.CollectExactlyOneRow(rows, scanUser)
		if errors.Is(err, pgx.ErrNoRows) {
			return identity.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := update(u); err != nil {
			return err
		}
		claims, err := json.Marshal(u.Claims)
		if err != nil {
			return err
		}
		updated = u
		err = tx.QueryRow(ctx, `UPDATE users SET email = $2, email_verified = $3, name = $4, given_name = $5,
			family_name = $6, claims = $7, password_hash = NULLIF($8, ''), updated_at = now()
			WHERE id = $1 RETURNING updated_at`,
			id, u.Email, u.EmailVerified, u.Name, u.GivenName, u.FamilyName, claimsOrEmpty(claims), u.PasswordHash,
		).Scan(&u.UpdatedAt)
		if isUniqueViolation(err) {
			return identity.ErrEmailTaken
		}
		return err
	})
	var invalid *validation.Error
	switch {
	case errors.Is(err, identity.ErrNotFound), errors.Is(err, identity.ErrEmailTaken), errors.As(err, &invalid):
		return nil, err
	case err != nil:
		return nil, errorf("postgres: update user %s: %w", id, err)
	}
	return updated, nil
}

// SetUserDisabled disables or enables a user. Disabling also ends every
// browser session of the user and revokes every token issued to them, in
// the same transaction.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1`, id, disabled)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return identity.ErrNotFound
		}
		if !disabled {
			return nil
		}
		return signOutEverywhere(ctx, tx, id)
	})
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return errorf("postgres: disable user %s: %w", id, err)
	}
	return err
}

// SetUserPassword replaces a user's password hash and, in the same
// transaction, ends their sessions, revokes their tokens, forgets their
// trusted browsers (forgetTrustedDevices), and voids their unused
// password-reset and invitation links: a link mailed before the change
// must not undo it, nor hand the account to whoever reads the old mail.
func (s *Store) SetUserPassword(ctx context.Context, id, hash string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1`, id, hash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return identity.ErrNotFound
		}
		if _, err := tx.Exec(ctx, expireLinks, id, []string{string(account.Reset), string(account.Invite)}); err != nil {
			return err
		}
		if err := forgetTrustedDevices(ctx, tx, id); err != nil {
			return err
		}
		return signOutEverywhere(ctx, tx, id)
	})
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return errorf("postgres: set password of user %s: %w", id, err)
	}
	return err
}

// DeleteUser removes a user, whose sessions and consents go by cascade, and
// revokes the tokens issued to them.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := signOutEverywhere(ctx, tx, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return identity.ErrNotFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return errorf("postgres: delete user %s: %w", id, err)
	}
	return err
}

// SignOutEverywhere ends a user's browser sessions and revokes every token
// and unused authorization code issued to them, in one transaction.
func (s *Store) SignOutEverywhere(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return identity.ErrNotFound
		}
		return signOutEverywhere(ctx, tx, id)
	})
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return errorf("postgres: sign out user %s: %w", id, err)
	}
	return err
}

// signOutEverywhere ends a user's browser sessions, telling their apps
// (endSessions), and revokes their tokens and their unused authorization
// codes: a code issued a moment before would otherwise still be redeemed
// afterwards, and its refresh token live on. Device codes they approved
// and the device has not redeemed yet (RFC 8628) are denied, for the same
// reason.
func signOutEverywhere(ctx context.Context, tx pgx.Tx, userID string) error {
	if _, err := endSessions(ctx, tx, `b.user_id = $1`, userID); err != nil {
		return err
	}
	statements := []string{`UPDATE device_codes SET status = 'denied' WHERE user_id = $1 AND status = 'approved'`}
	for _, t := range []tokenTable{accessTokens, refreshTokens, codes} {
		statements = append(statements, t.revoke(`subject = $1`))
	}
	for _, sql := range statements {
		if _, err := tx.Exec(ctx, sql, userID); err != nil {
			return err
		}
	}
	return nil
}

func scanUser(row pgx.CollectableRow) (*identity.User, error) {
	var (
		u      identity.User
		claims []byte
		hash   *string
	)
	if err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.GivenName, &u.FamilyName,
		&claims, &hash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(claims, &u.Claims); err != nil {
		return nil, fmt.Errorf("user %s: claims: %w", u.ID, err)
	}
	if hash != nil {
		u.PasswordHash = *hash
	}
	return &u, nil
}

// claimsOrEmpty stores a user without claims as {} rather than null.
func claimsOrEmpty(b []byte) []byte {
	if string(b) == "null" {
		return []byte("{}")
	}
	return b
}
