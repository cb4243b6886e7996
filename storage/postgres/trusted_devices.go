package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/trust"
)

var _ trust.Store = (*Store)(nil)

// CreateTrustedDevice stores a trusted device under the digest of its
// secret and, in the same transaction, deletes the user's device whose
// digest is replaces (the same browser trusted again).
func (s *Store) CreateTrustedDevice(ctx context.Context, d trust.Device, digest, replaces []byte) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if replaces != nil {
			if _, err := tx.Exec(ctx, `DELETE FROM trusted_devices WHERE user_id = $1 AND digest = $2`, d.UserID, replaces); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO trusted_devices (id, user_id, digest, label, created_at, last_used_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, d.ID, d.UserID, digest, d.Label, d.CreatedAt, d.LastUsedAt, d.ExpiresAt)
		return err
	})
	if err != nil {
		return errorf("postgres: trust device: %w", err)
	}
	return nil
}

// UseTrustedDevice reports whether the user has an unexpired device with
// digest, marking it used now if so. The user is part of the match, so a
// secret trusted for one account does nothing for another.
func (s *Store) UseTrustedDevice(ctx context.Context, userID string, digest []byte) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE trusted_devices SET last_used_at = now()
		WHERE user_id = $1 AND digest = $2 AND expires_at > now()`, userID, digest)
	if err != nil {
		return false, errorf("postgres: use trusted device: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// TrustedDevices lists the user's unexpired trusted devices, newest first.
func (s *Store) TrustedDevices(ctx context.Context, userID string) ([]trust.Device, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT id, user_id, label, created_at, last_used_at, expires_at
		FROM trusted_devices WHERE user_id = $1 AND expires_at > now() ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, errorf("postgres: list trusted devices: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (trust.Device, error) {
		var d trust.Device
		err := row.Scan(&d.ID, &d.UserID, &d.Label, &d.CreatedAt, &d.LastUsedAt, &d.ExpiresAt)
		return d, err
	})
	if err != nil {
		return nil, errorf("postgres: list trusted devices: %w", err)
	}
	return ds, nil
}

// DeleteTrustedDevice deletes one of the user's trusted devices; false if
// the user has none with that ID.
func (s *Store) DeleteTrustedDevice(ctx context.Context, userID, id string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM trusted_devices WHERE user_id = $1 AND id = $2`, userID, id)
	if err != nil {
		return false, errorf("postgres: forget trusted device: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteTrustedDevices deletes all the user's trusted devices and says
// how many there were.
func (s *Store) DeleteTrustedDevices(ctx context.Context, userID string) (int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM trusted_devices WHERE user_id = $1`, userID)
	if err != nil {
		return 0, errorf("postgres: forget trusted devices: %w", err)
	}
	return tag.RowsAffected(), nil
}

// forgetTrustedDevices ends the trust of every browser of the user, in tx.
// It is the one rule for what ends trust besides the user and admins: a
// trusted browser stands in for the second factor, so it must not outlive
// the password or the factor it was trusted with. SetUserPassword (every
// password change and reset), and every change of second factor
// (ConfirmTOTP, ReplaceRecoveryCodes, DeleteTOTP: enrolled, codes renewed,
// turned off or reset by an admin) call it in their own transaction.
func forgetTrustedDevices(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `DELETE FROM trusted_devices WHERE user_id = $1`, userID)
	return err
}
