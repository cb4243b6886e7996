package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/identity"
)

var _ identity.MFAStore = (*Store)(nil)

// StartTOTP stores a new, unconfirmed factor for a user, replacing an
// unconfirmed one. It returns identity.ErrFactorExists if the user has a
// confirmed factor: that must be turned off first.
func (s *Store) StartTOTP(ctx context.Context, userID string, sealed []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO totp_factors (user_id, secret) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, last_step = 0, created_at = now()
		WHERE totp_factors.confirmed_at IS NULL`, userID, sealed)
	if err != nil {
		return errorf("postgres: start TOTP enrolment: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return identity.ErrFactorExists
	}
	return nil
}

// TOTPFactor returns a user's factor, or identity.ErrNoFactor.
func (s *Store) TOTPFactor(ctx context.Context, userID string) (identity.TOTPFactor, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var f identity.TOTPFactor
	err := s.db(ctx).QueryRow(ctx, `SELECT secret, confirmed_at IS NOT NULL, last_step FROM totp_factors WHERE user_id = $1`,
		userID).Scan(&f.Sealed, &f.Confirmed, &f.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return f, identity.ErrNoFactor
	}
	if err != nil {
		return f, errorf("postgres: read TOTP factor: %w", err)
	}
	return f, nil
}

// ConfirmTOTP makes a user's pending factor count, records the step of the
// code that confirmed it, and replaces their recovery codes, all at once
// (which forgets their trusted browsers: replaceRecoveryCodes).
func (s *Store) ConfirmTOTP(ctx context.Context, userID string, step int64, recovery [][]byte) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE totp_factors SET confirmed_at = now(), last_step = $2
			WHERE user_id = $1 AND confirmed_at IS NULL`, userID, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return identity.ErrNoFactor
		}
		return replaceRecoveryCodes(ctx, tx, userID, recovery)
	})
	if err != nil && !errors.Is(err, identity.ErrNoFactor) {
		return errorf("postgres: confirm TOTP factor: %w", err)
	}
	return err
}

// AcceptTOTPStep spends the time step of a valid code: it succeeds only if
// no code of this step or a later one was accepted before, so of two
// requests with the same code, even at once, one wins.
func (s *Store) AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE totp_factors SET last_step = $2
		WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2`, userID, step)
	if err != nil {
		return false, errorf("postgres: accept TOTP code: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// UseRecoveryCode spends a recovery code; false if it is unknown or spent.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, digest []byte) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE recovery_codes SET used_at = now()
		WHERE user_id = $1 AND digest = $2 AND used_at IS NULL`, userID, digest)
	if err != nil {
		return false, errorf("postgres: use recovery code: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecoveryCodesLeft counts a user's unused recovery codes.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int
	if err := s.db(ctx).QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`,
		userID).Scan(&n); err != nil {
		return 0, errorf("postgres: count recovery codes: %w", err)
	}
	return n, nil
}

// ReplaceRecoveryCodes gives a user with a confirmed factor a new set of
// recovery codes; the old ones stop working, and so does the trust of the
// user's browsers (replaceRecoveryCodes).
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, recovery [][]byte) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var confirmed bool
		err := tx.QueryRow(ctx, `SELECT confirmed_at IS NOT NULL FROM totp_factors WHERE user_id = $1 FOR UPDATE`, userID).Scan(&confirmed)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !confirmed) {
			return identity.ErrNoFactor
		}
		if err != nil {
			return err
		}
		return replaceRecoveryCodes(ctx, tx, userID, recovery)
	})
	if err != nil && !errors.Is(err, identity.ErrNoFactor) {
		return errorf("postgres: replace recovery codes: %w", err)
	}
	return err
}

// replaceRecoveryCodes gives the user a new set of recovery codes: a
// change of second factor, which ends the trust of their browsers
// (forgetTrustedDevices).
func replaceRecoveryCodes(ctx context.Context, tx pgx.Tx, userID string, recovery [][]byte) error {
	if err := forgetTrustedDevices(ctx, tx, userID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, digest) SELECT $1, unnest($2::bytea[])`, userID, recovery)
	return err
}

// DeleteSecondFactors removes the user's TOTP factor, recovery codes and
// passkeys, all at once, and forgets the browsers they trusted to skip
// them (forgetTrustedDevices).
func (s *Store) DeleteSecondFactors(ctx context.Context, userID string) (totp bool, passkeys int, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := forgetTrustedDevices(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM totp_factors WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		totp = tag.RowsAffected() > 0
		if _, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		tag, err = tx.Exec(ctx, `DELETE FROM passkeys WHERE user_id = $1`, userID)
		passkeys = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return false, 0, errorf("postgres: delete second factors: %w", err)
	}
	return totp, passkeys, nil
}

// DeleteTOTP removes a user's factor and recovery codes, and forgets their
// trusted browsers (forgetTrustedDevices); false if there was no factor.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) (bool, error) {
	var existed bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM totp_factors WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		existed = tag.RowsAffected() > 0
		if err := forgetTrustedDevices(ctx, tx, userID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return false, errorf("postgres: delete TOTP factor: %w", err)
	}
	return existed, nil
}
