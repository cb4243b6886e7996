package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/identity"
)

var _ identity.FailureStore = (*Store)(nil)

// ReserveFailure counts the failed attempts of kind on key within window,
// the last hour and the last day, and records one more if admit allows it,
// all under a transaction-scoped advisory lock on kind and key: concurrent
// reservations for the same key, from any node, take turns, so each one
// counts every reservation made before it. A reservation stands as a
// failure until ForgetFailure takes it back.
func (s *Store) ReserveFailure(ctx context.Context, kind string, key []byte, window time.Duration,
	admit func(identity.Failures) bool) (id int64, f identity.Failures, admitted bool, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, failureLock(kind, key)); err != nil {
			return err
		}
		var last *time.Time
		err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE at > now() - $3::interval),
				count(*) FILTER (WHERE at > now() - interval '1 hour'), count(*), max(at)
			FROM auth_failures WHERE kind = $1 AND key = $2 AND at > now() - interval '1 day'`,
			kind, key, window).Scan(&f.InWindow, &f.InHour, &f.InDay, &last)
		if err != nil {
			return err
		}
		if last != nil {
			f.Last = *last
		}
		if admitted = admit(f); !admitted {
			return nil
		}
		// clock_timestamp, not now(): now() is when the transaction
		// began, which may be before the lock was granted and so before
		// a failure recorded by the one that held it.
		return tx.QueryRow(ctx, `INSERT INTO auth_failures (kind, key, at) VALUES ($1, $2, clock_timestamp()) RETURNING id`,
			kind, key).Scan(&id)
	})
	if err != nil {
		return 0, f, false, errorf("postgres: reserve an attempt: %w", err)
	}
	return id, f, admitted, nil
}

// failureLock is the advisory lock key of kind and key: 64 bits of their
// digest. Two keys that share it only wait for each other.
func failureLock(kind string, key []byte) int64 {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(key)
	return int64(binary.BigEndian.Uint64(h.Sum(nil))) // #nosec G115 -- any 64 bits make a lock key
}

// ForgetFailure takes back a reservation whose attempt succeeded.
func (s *Store) ForgetFailure(ctx context.Context, id int64) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `DELETE FROM auth_failures WHERE id = $1`, id); err != nil {
		return errorf("postgres: forget a failed attempt: %w", err)
	}
	return nil
}

// ClearFailures forgets the failed attempts of kind whose key starts with
// keyPrefix, which unlocks an account.
func (s *Store) ClearFailures(ctx context.Context, kind string, keyPrefix []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `DELETE FROM auth_failures WHERE kind = $1 AND substring(key FROM 1 FOR length($2::bytea)) = $2`,
		kind, keyPrefix)
	if err != nil {
		return errorf("postgres: clear failed attempts: %w", err)
	}
	return nil
}
