package postgres

import (
	"context"

	"github.com/latchkey/latchkey/pkg/mail"
)

var _ mail.Store = (*Store)(nil)

// InsertMail writes a message to the outbox, in the transaction ctx
// carries if any, as pending and due at once.
func (s *Store) InsertMail(ctx context.Context, m *mail.Stored) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO mail_outbox (template, recipient, message) VALUES ($1, $2, $3)
		RETURNING id, status, next_attempt_at, created_at`, m.Template, m.Recipient, m.Sealed,
	).Scan(&m.ID, &m.Status, &m.NextAttemptAt, &m.CreatedAt)
	if err != nil {
		return errorf("postgres: insert mail: %w", err)
	}
	return nil
}
