package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/account"
)

var _ account.Store = (*Store)(nil)

const linkColumns = `token_hash, purpose, coalesce(user_id::text, ''), email, payload, created_at, expires_at, used_at`

// InsertLink stores a new link, in the transaction ctx carries if any,
// expiring lifetime from now.
func (s *Store) InsertLink(ctx context.Context, l *account.Link, lifetime time.Duration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO email_links (token_hash, purpose, user_id, email, payload, expires_at)
		VALUES ($1, $2, NULLIF($3, '')::uuid, $4, $5, now() + $6::interval) RETURNING created_at, expires_at`,
		l.TokenHash, string(l.Purpose), l.UserID, l.Email, l.Payload, lifetime).Scan(&l.CreatedAt, &l.ExpiresAt)
	if err != nil {
		return errorf("postgres: insert %s link: %w", l.Purpose, err)
	}
	return nil
}

// LinkByHash returns the link with the token digest hash, spent or not,
// or account.ErrLinkUnknown.
func (s *Store) LinkByHash(ctx context.Context, hash []byte) (*account.Link, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+linkColumns+` FROM email_links WHERE token_hash = $1`, hash)
	if err != nil {
		return nil, errorf("postgres: get link: %w", err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, scanLink)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, account.ErrLinkUnknown
	}
	if err != nil {
		return nil, errorf("postgres: get link: %w", err)
	}
	return l, nil
}

// SpendLink marks a link used in one statement, so that of two
// transactions spending it at once the second, which waits on the first's
// row lock, finds it used. When nothing is spent it returns the stored
// link, if any, for the caller to say why.
func (s *Store) SpendLink(ctx context.Context, hash []byte, purpose account.Purpose) (*account.Link, bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `UPDATE email_links SET used_at = now()
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
		RETURNING `+linkColumns, hash, string(purpose))
	if err != nil {
		return nil, false, errorf("postgres: spend link: %w", err)
	}
	l, err := pgx.CollectExactlyOneRow(rows, scanLink)
	if err == nil {
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, errorf("postgres: spend link: %w", err)
	}
	l, err = s.LinkByHash(ctx, hash)
	if errors.Is(err, account.ErrLinkUnknown) {
		return nil, false, nil
	}
	return l, false, err
}

// ExpireLinks ends the user's unused links of the given purposes by
// moving their expiry to now: a later visit finds them expired (replaced),
// and they still count for as long as the janitor keeps them.
func (s *Store) ExpireLinks(ctx context.Context, userID string, purposes []account.Purpose) (int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	names := make([]string, len(purposes))
	for i, p := range purposes {
		names[i] = string(p)
	}
	tag, err := s.db(ctx).Exec(ctx, expireLinks, userID, names)
	if err != nil {
		return 0, errorf("postgres: expire links: %w", err)
	}
	return tag.RowsAffected(), nil
}

// LiveLinks returns the user's links of purpose that can still be
// followed, newest first.
func (s *Store) LiveLinks(ctx context.Context, userID string, purpose account.Purpose) ([]*account.Link, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+linkColumns+` FROM email_links
		WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() ORDER BY created_at DESC`, userID, string(purpose))
	if err != nil {
		return nil, errorf("postgres: live links: %w", err)
	}
	ls, err := pgx.CollectRows(rows, scanLink)
	if err != nil {
		return nil, errorf("postgres: live links: %w", err)
	}
	return ls, nil
}

// expireLinks is ExpireLinks's statement, which SetUserPassword runs too.
const expireLinks = `UPDATE email_links SET expires_at = now()
	WHERE user_id = $1 AND purpose = ANY ($2) AND used_at IS NULL AND expires_at > now()`

// ReserveMail counts the mails recorded under key within window and
// records one more if fewer than limit were, under a transaction-scoped
// advisory lock on key: requests on any node for the same key take turns,
// each seeing every mail recorded before it. Inside the caller's
// transaction the lock is held until that commits, so the count and the
// mail it admits commit together.
func (s *Store) ReserveMail(ctx context.Context, key string, limit int, window time.Duration) (bool, error) {
	var admitted bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, failureLock("mail", []byte(key))); err != nil {
			return err
		}
		var n int
		// clock_timestamp, not now(): now() is when the transaction
		// began, before the lock was granted.
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM mail_quota WHERE key = $1 AND at > clock_timestamp() - $2::interval`,
			key, window).Scan(&n); err != nil {
			return err
		}
		if admitted = n < limit; !admitted {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO mail_quota (key) VALUES ($1)`, key)
		return err
	})
	if err != nil {
		return false, errorf("postgres: count mails: %w", err)
	}
	return admitted, nil
}

func scanLink(row pgx.CollectableRow) (*account.Link, error) {
	var l account.Link
	err := row.Scan(&l.TokenHash, &l.Purpose, &l.UserID, &l.Email, &l.Payload, &l.CreatedAt, &l.ExpiresAt, &l.UsedAt)
	return &l, err
}
