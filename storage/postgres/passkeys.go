package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/passkey"
)

var _ passkey.Store = (*Store)(nil)

// #nosec G101 -- column names, not a credential
const passkeyColumns = `credential_id, user_id, public_key, sign_count, transports, backup_eligible, backup_state,
	user_verified, aaguid, attestation_type, name, created_at, last_used_at`

// CreatePasskey stores a new passkey, and forgets the user's trusted
// browsers; passkey.ErrExists if its credential ID is registered already,
// to this user or another.
func (s *Store) CreatePasskey(ctx context.Context, p *passkey.Passkey) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	transports := p.Transports
	if transports == nil {
		transports = []string{}
	}
	aaguid := p.AAGUID
	if aaguid == nil {
		aaguid = []byte{}
	}
	attestation := p.AttestationType
	if attestation == "" {
		attestation = "none"
	}
	// A new factor forgets the browsers trusted to skip the old ones, as
	// every change of factor does (forgetTrustedDevices).
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO passkeys (credential_id, user_id, public_key, sign_count, transports,
				backup_eligible, backup_state, user_verified, aaguid, attestation_type, name)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`,
			p.ID, p.UserID, p.PublicKey, int64(p.SignCount), transports, p.BackupEligible, p.BackupState,
			p.UserVerified, aaguid, attestation, p.Name).Scan(&p.CreatedAt)
		if err != nil {
			return err
		}
		return forgetTrustedDevices(ctx, tx, p.UserID)
	})
	if isUniqueViolation(err) {
		return passkey.ErrExists
	}
	if err != nil {
		return errorf("postgres: create passkey: %w", err)
	}
	return nil
}

// Passkeys lists a user's passkeys, oldest first.
func (s *Store) Passkeys(ctx context.Context, userID string) ([]passkey.Passkey, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = $1
		ORDER BY created_at, credential_id`, userID)
	if err != nil {
		return nil, errorf("postgres: list passkeys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanPasskey)
	if err != nil {
		return nil, errorf("postgres: list passkeys: %w", err)
	}
	return keys, nil
}

// Passkey finds a passkey by its credential ID alone, whoever's it is
// (for a sign-in that starts from the passkey); passkey.ErrNotFound.
func (s *Store) Passkey(ctx context.Context, id []byte) (passkey.Passkey, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE credential_id = $1`, id)
	if err != nil {
		return passkey.Passkey{}, errorf("postgres: read passkey: %w", err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanPasskey)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, passkey.ErrNotFound
	}
	if err != nil {
		return p, errorf("postgres: read passkey: %w", err)
	}
	return p, nil
}

// SpendPasskeyChallenge records a passwordless ceremony's challenge, by
// its digest, as answered until expires. It returns false, and changes
// nothing, if the challenge was recorded already: of two answers to it,
// even at once, one spends it.
func (s *Store) SpendPasskeyChallenge(ctx context.Context, digest []byte, expires time.Time) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO passkey_challenges (digest, expires_at) VALUES ($1, $2)
		ON CONFLICT (digest) DO NOTHING`, digest, expires)
	if err != nil {
		return false, errorf("postgres: spend passkey challenge: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordPasskeyUse applies a verified assertion to the user's passkey: its
// counter, backup state and last use. It changes nothing, and returns
// false, unless the stored counter is still u.From: of two answers
// counted at once, one wins.
func (s *Store) RecordPasskeyUse(ctx context.Context, userID string, id []byte, u passkey.Use) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE passkeys SET sign_count = $4, backup_state = $5, last_used_at = $6
		WHERE credential_id = $1 AND user_id = $2 AND sign_count = $3`,
		id, userID, int64(u.From), int64(u.To), u.BackupState, u.At)
	if err != nil {
		return false, errorf("postgres: record passkey use: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RenamePasskey renames the user's passkey; passkey.ErrNotFound.
func (s *Store) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE passkeys SET name = $3 WHERE credential_id = $1 AND user_id = $2`, id, userID, name)
	if err != nil {
		return errorf("postgres: rename passkey: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return passkey.ErrNotFound
	}
	return nil
}

// DeletePasskey removes the user's passkey, and forgets the user's
// trusted browsers; passkey.ErrNotFound if the user has no such passkey.
func (s *Store) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM passkeys WHERE credential_id = $1 AND user_id = $2`, id, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return passkey.ErrNotFound
		}
		return forgetTrustedDevices(ctx, tx, userID)
	})
	if errors.Is(err, passkey.ErrNotFound) {
		return err
	}
	if err != nil {
		return errorf("postgres: delete passkey: %w", err)
	}
	return nil
}

func scanPasskey(row pgx.CollectableRow) (passkey.Passkey, error) {
	var p passkey.Passkey
	var count int64
	var lastUsed *time.Time
	err := row.Scan(&p.ID, &p.UserID, &p.PublicKey, &count, &p.Transports, &p.BackupEligible, &p.BackupState,
		&p.UserVerified, &p.AAGUID, &p.AttestationType, &p.Name, &p.CreatedAt, &lastUsed)
	p.SignCount = uint32(count) // #nosec G115 -- stored from a uint32
	if lastUsed != nil {
		p.LastUsedAt = *lastUsed
	}
	return p, err
}
