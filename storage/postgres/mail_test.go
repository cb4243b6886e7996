package postgres_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/mail"
)

func TestJanitorDeletesSentMailAfterAWeekAndKeepsWhatIsNotSent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := pgtest.Open(t, url)
	conn := pgtest.Conn(t, url)
	ctx := t.Context()
	for _, to := range []string{"sent-long-ago@example.com", "sent-today@example.com", "pending@example.com", "failed@example.com"} {
		if err := s.InsertMail(ctx, &mail.Stored{Template: "test", Recipient: to, Sealed: []byte("sealed")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sql := range []string{
		`UPDATE mail_outbox SET status = 'sent', sent_at = now() - interval '8 days' WHERE recipient = 'sent-long-ago@example.com'`,
		`UPDATE mail_outbox SET status = 'sent', sent_at = now() WHERE recipient = 'sent-today@example.com'`,
		`UPDATE mail_outbox SET status = 'failed', created_at = now() - interval '90 days' WHERE recipient = 'failed@example.com'`,
		`UPDATE mail_outbox SET created_at = now() - interval '90 days' WHERE recipient = 'pending@example.com'`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.Sweep(ctx, time.Now(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if deleted["mail_outbox"] != 1 {
		t.Errorf("swept %d messages, want 1", deleted["mail_outbox"])
	}
	left, err := s.Mail(ctx, mail.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, m := range left {
		kept = append(kept, m.Recipient)
	}
	if len(kept) != 3 || kept[0] != "failed@example.com" || kept[2] != "sent-today@example.com" {
		t.Fatalf("kept %v; want the failed, the pending and today's sent message", kept)
	}
}
