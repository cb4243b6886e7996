package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/mail"
)

var _ mail.Store = (*Store)(nil)

// InsertMail writes a message to the outbox, in the transaction ctx
// carries if any, as pending and due at once, and announces it to every
// node's sender (on commit, as NOTIFY is).
func (s *Store) InsertMail(ctx context.Context, m *mail.Stored) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := announce(ctx, s.db(ctx), mailChannel, ""); err != nil {
		return errorf("postgres: insert mail: %w", err)
	}
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO mail_outbox (template, recipient, message) VALUES ($1, $2, $3)
		RETURNING id, status, next_attempt_at, created_at`, m.Template, m.Recipient, m.Sealed,
	).Scan(&m.ID, &m.Status, &m.NextAttemptAt, &m.CreatedAt)
	if err != nil {
		return errorf("postgres: insert mail: %w", err)
	}
	return nil
}

var _ mail.SenderStore = (*Store)(nil)

const mailColumns = `id, template, recipient, message, status, attempts, next_attempt_at, last_error, created_at, attempts_since, sent_at`

func scanMail(row pgx.CollectableRow) (*mail.Stored, error) {
	var m mail.Stored
	err := row.Scan(&m.ID, &m.Template, &m.Recipient, &m.Sealed, &m.Status, &m.Attempts, &m.NextAttemptAt, &m.LastError, &m.CreatedAt, &m.AttemptsSince, &m.SentAt)
	return &m, err
}

// ClaimMail claims the oldest pending message that is due and whose last
// claim, if any, has run out, for lease, and counts the attempt. The row
// is locked only while claiming (SKIP LOCKED: senders on other nodes pass
// over it to the next), and the claim outlives the transaction, so that
// no connection is held while the mail server is talked to.
func (s *Store) ClaimMail(ctx context.Context, lease time.Duration) (*mail.Claimed, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `UPDATE mail_outbox SET claimed_until = now() + $1, claim = gen_random_uuid(), attempts = attempts + 1
		WHERE id = (SELECT id FROM mail_outbox
			WHERE status = 'pending' AND next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
			ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+mailColumns+`, claim::text`, lease)
	if err != nil {
		return nil, errorf("postgres: claim mail: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*mail.Claimed, error) {
		var c mail.Claimed
		m := &c.Stored
		err := row.Scan(&m.ID, &m.Template, &m.Recipient, &m.Sealed, &m.Status, &m.Attempts, &m.NextAttemptAt, &m.LastError, &m.CreatedAt, &m.AttemptsSince, &m.SentAt, &c.Claim)
		return &c, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("postgres: claim mail: %w", err)
	}
	return c, nil
}

// MarkMailSent records a claimed message sent, and erases its body unless
// keep. A claim that has been taken over since changes nothing.
func (s *Store) MarkMailSent(ctx context.Context, c *mail.Claimed, keep bool) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `UPDATE mail_outbox SET status = 'sent', sent_at = now(), claimed_until = NULL, claim = NULL,
		last_error = '', message = CASE WHEN $3 THEN message END
		WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, keep)
	if err != nil {
		return errorf("postgres: mark mail %d sent: %w", c.ID, err)
	}
	return nil
}

// RescheduleMail records a failed attempt at a claimed message.
func (s *Store) RescheduleMail(ctx context.Context, c *mail.Claimed, next time.Time, lastError string, giveUp bool) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `UPDATE mail_outbox SET claimed_until = NULL, claim = NULL, next_attempt_at = $3, last_error = left($4, 1000),
		status = CASE WHEN $5 THEN 'failed' ELSE status END
		WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, next, lastError, giveUp)
	if err != nil {
		return errorf("postgres: reschedule mail %d: %w", c.ID, err)
	}
	return nil
}

// Mail returns the messages q selects, newest first.
func (s *Store) Mail(ctx context.Context, q mail.Query) ([]*mail.Stored, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.Status != "", "status = ?", string(q.Status))
	w.addIf(q.BeforeID != 0, "id < ?", q.BeforeID)
	rows, err := s.db(ctx).Query(ctx, `SELECT `+mailColumns+` FROM mail_outbox`+w.sql()+` ORDER BY id DESC`+w.limit(q.Limit), w.args...)
	if err != nil {
		return nil, errorf("postgres: list mail: %w", err)
	}
	ms, err := pgx.CollectRows(rows, scanMail)
	if err != nil {
		return nil, errorf("postgres: list mail: %w", err)
	}
	return ms, nil
}

var _ mail.ManagerStore = (*Store)(nil)

// MailByID returns one message; mail.ErrNotFound if none has the ID.
func (s *Store) MailByID(ctx context.Context, id int64) (*mail.Stored, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+mailColumns+` FROM mail_outbox WHERE id = $1`, id)
	if err != nil {
		return nil, errorf("postgres: mail %d: %w", id, err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, mail.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: mail %d: %w", id, err)
	}
	return m, nil
}

// RetryMail makes a failed message pending and due at once, with its
// attempts counted from zero again; mail.ErrNotFound if no failed message
// has the ID.
func (s *Store) RetryMail(ctx context.Context, id int64) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE mail_outbox SET status = 'pending', attempts = 0, next_attempt_at = now(), attempts_since = now()
		WHERE id = $1 AND status = 'failed'`, id)
	if err != nil {
		return errorf("postgres: retry mail %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return mail.ErrNotFound
	}
	return nil
}

// MailCounts returns how many messages are pending and how many failed.
func (s *Store) MailCounts(ctx context.Context) (pending, failed int64, err error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err = s.db(ctx).QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed')
		FROM mail_outbox WHERE status <> 'sent'`).Scan(&pending, &failed)
	if err != nil {
		return 0, 0, errorf("postgres: count mail: %w", err)
	}
	return pending, failed, nil
}
