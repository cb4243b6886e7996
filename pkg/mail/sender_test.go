package mail_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/web"
)

// outboxScene is an outbox on a fresh database, a mail server, and a
// connection for looking at (and moving in time) the outbox's rows.
type outboxScene struct {
	url    string
	store  outboxStore
	box    *seal.Box
	outbox *mail.Outbox
	smtp   *smtptest.Server
	conn   *pgx.Conn
}

// outboxStore is what these tests use of the store.
type outboxStore interface {
	mail.Store
	mail.SenderStore
	InTx(ctx context.Context, f func(ctx context.Context) error) error
	Mail(ctx context.Context, q mail.Query) ([]*mail.Stored, error)
	RetryMail(ctx context.Context, id int64) error
	MailCounts(ctx context.Context) (pending, failed int64, err error)
}

func newOutboxScene(t *testing.T, opts ...smtptest.Option) *outboxScene {
	t.Helper()
	url := pgtest.URL(t)
	box, err := seal.New([][]byte{[]byte("a test secret of at least 32 bytes!!")})
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.LoadTemplates(web.Mail(), "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	store := pgtest.Open(t, url)
	return &outboxScene{url: url, store: store, box: box, outbox: mail.NewOutbox(store, box, templates),
		smtp: smtptest.Start(t, opts...), conn: pgtest.Conn(t, url)}
}

// sender returns a sender over store (this node's, unless another is
// given) to the scene's mail server.
func (s *outboxScene) sender(t *testing.T, store mail.SenderStore) *mail.Sender {
	t.Helper()
	if store == nil {
		store = s.store
	}
	transport, err := mail.NewSMTP(s.smtp.URL(), "Example ID <no-reply@id.example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return &mail.Sender{Store: store, Box: s.box, Transport: transport, Logger: slog.New(slog.DiscardHandler),
		Domain: "id.example.com", Poll: 50 * time.Millisecond, Timeout: 5 * time.Second, Lease: time.Minute}
}

// enqueue writes a test message to to, committed.
func (s *outboxScene) enqueue(t *testing.T, to string) {
	t.Helper()
	err := s.store.InTx(t.Context(), func(ctx context.Context) error {
		return s.outbox.Enqueue(ctx, mail.Message{Template: "test", To: to})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deliverOne makes one attempt and fails the test if nothing was due.
func deliverOne(t *testing.T, s *mail.Sender) {
	t.Helper()
	found, err := s.DeliverOne(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Fatal("no message was due")
	}
}

// row returns the one message in the outbox.
func (s *outboxScene) row(t *testing.T) *mail.Stored {
	t.Helper()
	ms, err := s.store.Mail(t.Context(), mail.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 {
		t.Fatalf("%d messages in the outbox, want 1", len(ms))
	}
	return ms[0]
}

// makeDue brings every pending message's next attempt forward to now, as
// if its backoff had passed.
func (s *outboxScene) makeDue(t *testing.T) {
	t.Helper()
	if _, err := s.conn.Exec(t.Context(), `UPDATE mail_outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
}

func TestMailIsWrittenOnlyIfItsChangeCommits(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	err := s.store.InTx(t.Context(), func(ctx context.Context) error {
		if err := s.outbox.Enqueue(ctx, mail.Message{Template: "test", To: "ada@example.com"}); err != nil {
			return err
		}
		return errors.New("the change failed after the mail was written")
	})
	if err == nil {
		t.Fatal("the change did not fail")
	}
	if ms, _ := s.store.Mail(t.Context(), mail.Query{}); len(ms) != 0 {
		t.Fatalf("a rolled-back change left %d messages in the outbox", len(ms))
	}
	s.enqueue(t, "ada@example.com")
	if m := s.row(t); m.Status != mail.Pending || m.Recipient != "ada@example.com" {
		t.Fatalf("committed message is %s to %s", m.Status, m.Recipient)
	}
}

func TestMailWrittenWhileTheServerIsDownArrivesOnceItIsBack(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	sender := s.sender(t, nil)
	s.smtp.Stop()
	s.enqueue(t, "ada@example.com")

	deliverOne(t, sender)
	m := s.row(t)
	if m.Status != mail.Pending || m.Attempts != 1 || m.LastError == "" || !m.NextAttemptAt.After(time.Now()) {
		t.Fatalf("after a failed attempt the message is %s, %d attempts, error %q, next at %s; want pending, 1, an error, later",
			m.Status, m.Attempts, m.LastError, m.NextAttemptAt)
	}
	if found, err := sender.DeliverOne(t.Context()); err != nil || found {
		t.Fatalf("the message was retried at once (found %v, err %v); it should wait its backoff", found, err)
	}

	s.smtp.Restart(t)
	s.makeDue(t)
	deliverOne(t, sender)
	got := s.smtp.Await(t, "ada@example.com")
	if got.Subject != "Test message from id.example.com" || !strings.Contains(got.Text, "test message") || !strings.Contains(got.HTML, "<p>") {
		t.Fatalf("arrived: subject %q, text %q, html %q", got.Subject, got.Text, got.HTML)
	}
	m = s.row(t)
	if m.Status != mail.Sent || m.Sealed != nil || m.SentAt == nil {
		t.Fatalf("after delivery the message is %s, body kept %v, sent at %v; want sent, erased, a time", m.Status, m.Sealed != nil, m.SentAt)
	}
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1", n)
	}
}

func TestTwoNodesOnOneDatabaseDeliverEachMessageExactlyOnce(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	const n = 40
	for i := range n {
		s.enqueue(t, fmt.Sprintf("user%d@example.com", i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	// Two nodes: two stores with pools of their own, two senders.
	for _, store := range []mail.SenderStore{s.store, pgtest.Open(t, s.url)} {
		sender := s.sender(t, store)
		wg.Go(func() { sender.Run(ctx) })
	}
	for i := range n {
		s.smtp.Await(t, fmt.Sprintf("user%d@example.com", i))
	}
	// Anything sent twice would be sent by now: both senders have looked
	// at an empty outbox several times over.
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	ids := map[string]bool{}
	for _, m := range s.smtp.Messages() {
		if ids[m.MessageID] {
			t.Errorf("message %s arrived twice", m.MessageID)
		}
		ids[m.MessageID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct messages arrived, want %d", len(ids), n)
	}
	if pending, failed, err := s.store.MailCounts(t.Context()); err != nil || pending != 0 || failed != 0 {
		t.Fatalf("outbox counts pending %d, failed %d (%v); want none", pending, failed, err)
	}
}

func TestAMessageWhoseSenderDiedIsSentOnceByAnotherWhenTheClaimRunsOut(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	s.enqueue(t, "ada@example.com")
	// A sender claims the message and dies before it sends anything.
	dead, err := s.store.ClaimMail(t.Context(), 500*time.Millisecond)
	if err != nil || dead == nil {
		t.Fatalf("claim: %v, %v", dead, err)
	}
	other := s.sender(t, pgtest.Open(t, s.url))
	if found, err := other.DeliverOne(t.Context()); err != nil || found {
		t.Fatalf("another sender took a message under a live claim (found %v, err %v)", found, err)
	}
	time.Sleep(600 * time.Millisecond)
	deliverOne(t, other)
	s.smtp.Await(t, "ada@example.com")
	// The dead sender's claim is stale: it can no longer mark the message.
	if err := s.store.RescheduleMail(t.Context(), dead, time.Now().Add(time.Hour), "late", true); err != nil {
		t.Fatal(err)
	}
	if m := s.row(t); m.Status != mail.Sent || m.Attempts != 2 {
		t.Fatalf("message is %s after %d attempts; a stale claim changed it, or it was not sent", m.Status, m.Attempts)
	}
	if n := len(s.smtp.Messages()); n != 1 {
		t.Fatalf("%d messages arrived, want 1", n)
	}
}

// forgetfulStore loses the database at the worst moment: after the mail
// server took a message, before the outbox records it.
type forgetfulStore struct {
	mail.SenderStore
}

func (forgetfulStore) MarkMailSent(context.Context, *mail.Claimed, bool) error {
	return errors.New("connection to the database lost")
}

func TestAMessageSentButNotRecordedIsSentAgainWithTheSameMessageID(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	s.enqueue(t, "ada@example.com")
	lost := s.sender(t, forgetfulStore{s.store})
	lost.Lease = 300 * time.Millisecond
	if _, err := lost.DeliverOne(t.Context()); err == nil {
		t.Fatal("the lost database went unreported")
	}
	time.Sleep(400 * time.Millisecond)
	deliverOne(t, s.sender(t, nil))
	got := s.smtp.AwaitN(t, "ada@example.com", 2)
	// At least once: the stated window. The repeat is the same message.
	if got[0].MessageID == "" || got[0].MessageID != got[1].MessageID {
		t.Fatalf("Message-IDs %q and %q; a repeat must keep its ID", got[0].MessageID, got[1].MessageID)
	}
}

func TestARefusedRecipientFailsForGoodAndAnAdminCanRetryIt(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	s.smtp.Refuse("gone@example.com")
	s.enqueue(t, "gone@example.com")
	sender := s.sender(t, nil)
	deliverOne(t, sender)
	m := s.row(t)
	if m.Status != mail.Failed || !strings.Contains(m.LastError, "no such mailbox") {
		t.Fatalf("refused message is %s with error %q; want failed, saying why", m.Status, m.LastError)
	}
	if _, failed, _ := s.store.MailCounts(t.Context()); failed != 1 {
		t.Fatalf("failed count %d, want 1", failed)
	}
	if err := s.store.RetryMail(t.Context(), m.ID+1); !errors.Is(err, mail.ErrNotFound) {
		t.Fatalf("retrying a message that does not exist: %v", err)
	}
	if err := s.store.RetryMail(t.Context(), m.ID); err != nil {
		t.Fatal(err)
	}
	if m := s.row(t); m.Status != mail.Pending || m.Attempts != 0 {
		t.Fatalf("retried message is %s with %d attempts", m.Status, m.Attempts)
	}
}

func TestAMessageWhoseServerWaitsTooLongIsRetriedAndFailsAfterDays(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	s.smtp.Stop()
	s.enqueue(t, "ada@example.com")
	// Written three days ago: the next failure is the last.
	if _, err := s.conn.Exec(t.Context(), `UPDATE mail_outbox SET attempts_since = now() - interval '73 hours'`); err != nil {
		t.Fatal(err)
	}
	deliverOne(t, s.sender(t, nil))
	if m := s.row(t); m.Status != mail.Failed {
		t.Fatalf("a message undeliverable for three days is %s, want failed", m.Status)
	}
}

func TestTheMailServersPasswordIsSentAndAWrongOneDeliversNothing(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t, smtptest.WithPassword("latchkey", "s3cret"))
	s.enqueue(t, "ada@example.com")
	wrong := s.sender(t, nil)
	wrongURL := strings.Replace(s.smtp.URL(), "s3cret", "wrong", 1)
	var err error
	if wrong.Transport, err = mail.NewSMTP(wrongURL, "no-reply@id.example.com"); err != nil {
		t.Fatal(err)
	}
	deliverOne(t, wrong)
	if m := s.row(t); m.Status != mail.Pending || !strings.Contains(m.LastError, "AUTH failed") {
		t.Fatalf("with a wrong password the message is %s with error %q", m.Status, m.LastError)
	}
	s.makeDue(t)
	deliverOne(t, s.sender(t, nil))
	s.smtp.Await(t, "ada@example.com")
}

func TestTLSIsRequiredUnlessTheURLSaysOtherwise(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t, smtptest.WithPassword("latchkey", "s3cret"))
	s.enqueue(t, "ada@example.com")
	sender := s.sender(t, nil)
	// The same server without tls=none: it offers no STARTTLS, so the
	// sender must not send the password or the message in the clear.
	var err error
	if sender.Transport, err = mail.NewSMTP(strings.TrimSuffix(s.smtp.URL(), "?tls=none"), "no-reply@id.example.com"); err != nil {
		t.Fatal(err)
	}
	deliverOne(t, sender)
	if m := s.row(t); m.Status != mail.Pending || !strings.Contains(strings.ToLower(m.LastError), "starttls") {
		t.Fatalf("without TLS the message is %s with error %q; want pending, about STARTTLS", m.Status, m.LastError)
	}
	if n := len(s.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages were sent in the clear", n)
	}
}

func TestAMessageMovedToAnotherAddressInTheDatabaseCannotBeOpened(t *testing.T) {
	t.Parallel()
	s := newOutboxScene(t)
	s.enqueue(t, "ada@example.com")
	if _, err := s.conn.Exec(t.Context(), `UPDATE mail_outbox SET recipient = 'mallory@example.com'`); err != nil {
		t.Fatal(err)
	}
	deliverOne(t, s.sender(t, nil))
	if m := s.row(t); m.Status != mail.Failed {
		t.Fatalf("a message moved to another address is %s, want failed unsent", m.Status)
	}
	if n := len(s.smtp.Messages()); n != 0 {
		t.Fatalf("%d messages sent to the new address", n)
	}
}
