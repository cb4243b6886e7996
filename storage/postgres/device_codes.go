package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey/pkg/devicegrant"
)

var _ devicegrant.Store = (*Store)(nil)

// deviceColumns are the columns scanDeviceCode reads, in its order.
const deviceColumns = `id, device_code_hash, user_code_hash, client_id, scopes, status, interval_seconds,
	coalesce(user_id::text, ''), session, expires_at`

func scanDeviceCode(row pgx.Row, extra ...any) (devicegrant.Code, error) {
	var d devicegrant.Code
	var secs int
	var session []byte
	err := row.Scan(append([]any{&d.ID, &d.DeviceCodeHash, &d.UserCodeHash, &d.ClientID, &d.Scopes, &d.Status, &secs,
		&d.UserID, &session, &d.ExpiresAt}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, devicegrant.ErrNotFound
	}
	d.Interval = time.Duration(secs) * time.Second
	d.Session = session
	return d, err
}

// CreateDeviceCode stores a pending device code, counting its client's
// pending codes under a transaction-scoped advisory lock on the client, so
// that a burst of requests on several nodes cannot together pass the
// limit.
func (s *Store) CreateDeviceCode(ctx context.Context, d devicegrant.Code, limit int) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if limit > 0 {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, failureLock("device-codes", []byte(d.ClientID))); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM device_codes
				WHERE client_id = $1 AND status = 'pending' AND expires_at > now()`, d.ClientID).Scan(&n); err != nil {
				return err
			}
			if n >= limit {
				return devicegrant.ErrLimit
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO device_codes (id, device_code_hash, user_code_hash, client_id, scopes,
			interval_seconds, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			d.ID, d.DeviceCodeHash, d.UserCodeHash, d.ClientID, d.Scopes, int(d.Interval/time.Second), d.ExpiresAt)
		return err
	})
	switch {
	case errors.Is(err, devicegrant.ErrLimit):
		return err
	case isUniqueViolation(err):
		return devicegrant.ErrUserCodeTaken
	case isForeignKeyViolation(err):
		// The client was deleted on another node a moment ago.
		return ErrClientGone
	case err != nil:
		return errorf("postgres: create a device code: %w", err)
	}
	return nil
}

// PollDeviceCode records a poll in one statement: the row is locked while
// its last poll is compared with the interval, so that parallel polls
// each see the one before.
func (s *Store) PollDeviceCode(ctx context.Context, deviceCodeHash []byte, clientID string, step time.Duration) (devicegrant.Poll, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var p devicegrant.Poll
	var err error
	p.Code, err = scanDeviceCode(s.db(ctx).QueryRow(ctx, `
		WITH old AS (
			SELECT id, last_polled_at IS NOT NULL
				AND clock_timestamp() < last_polled_at + make_interval(secs => interval_seconds) AS too_soon
			FROM device_codes WHERE device_code_hash = $1 AND client_id = $2 FOR UPDATE
		)
		UPDATE device_codes d SET last_polled_at = clock_timestamp(),
			interval_seconds = d.interval_seconds + CASE WHEN old.too_soon THEN $3 ELSE 0 END
		FROM old WHERE d.id = old.id
		RETURNING d.id, d.device_code_hash, d.user_code_hash, d.client_id, d.scopes, d.status, d.interval_seconds,
			coalesce(d.user_id::text, ''), d.session, d.expires_at, old.too_soon`,
		deviceCodeHash, clientID, int(step/time.Second)), &p.TooSoon)
	if err != nil && !errors.Is(err, devicegrant.ErrNotFound) {
		return p, errorf("postgres: poll a device code: %w", err)
	}
	return p, err
}

// DeviceCodeByUserCode finds a pending, live code by its user code.
func (s *Store) DeviceCodeByUserCode(ctx context.Context, userCodeHash []byte) (devicegrant.Code, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := scanDeviceCode(s.db(ctx).QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_codes
		WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > now()`, userCodeHash))
	if err != nil && !errors.Is(err, devicegrant.ErrNotFound) {
		return d, errorf("postgres: find a device code: %w", err)
	}
	return d, err
}

// DeviceCodeByID finds a code by its ID.
func (s *Store) DeviceCodeByID(ctx context.Context, id string) (devicegrant.Code, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	d, err := scanDeviceCode(s.db(ctx).QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_codes WHERE id = $1`, id))
	if err != nil && !errors.Is(err, devicegrant.ErrNotFound) {
		return d, errorf("postgres: find a device code: %w", err)
	}
	return d, err
}

// DecideDeviceCode approves or denies a pending, live code.
func (s *Store) DecideDeviceCode(ctx context.Context, id, status, userID string, session json.RawMessage) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var sess any
	if session != nil {
		sess = []byte(session)
	}
	tag, err := s.db(ctx).Exec(ctx, `UPDATE device_codes SET status = $2, user_id = $3, session = $4
		WHERE id = $1 AND status = 'pending' AND expires_at > now()`, id, status, userID, sess)
	if err != nil {
		return errorf("postgres: decide a device code: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return devicegrant.ErrNotFound
	}
	return nil
}

// SpendDeviceCode moves an approved code to used. Under a burst of polls,
// the row lock makes every UPDATE after the first see it used, so exactly
// one of them affects a row.
func (s *Store) SpendDeviceCode(ctx context.Context, id string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE device_codes SET status = 'used'
		WHERE id = $1 AND status = 'approved' AND expires_at > now()`, id)
	if err != nil {
		return errorf("postgres: spend a device code: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return devicegrant.ErrNotFound
	}
	return nil
}

// isForeignKeyViolation reports whether err is Postgres refusing a row
// whose referenced row is gone.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}
