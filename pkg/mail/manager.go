package mail

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/validation"
)

// TestTemplate is the message an operator sends to check that mail
// reaches people: it says who sent it and asks nothing of the reader.
const TestTemplate = "test"

// ManagerStore is the outbox as operators look at it and act on it. Its
// calls join the transaction ctx carries (pkg/audit's Store.InTx).
type ManagerStore interface {
	Store
	// Mail returns the messages q selects, newest first.
	Mail(ctx context.Context, q Query) ([]*Stored, error)
	// MailByID returns one message; ErrNotFound if none has the ID.
	MailByID(ctx context.Context, id int64) (*Stored, error)
	// RetryMail makes a failed message pending and due at once;
	// ErrNotFound if no failed message has the ID.
	RetryMail(ctx context.Context, id int64) error
}

// Auditor records a change and its audit event in one transaction
// (pkg/audit.Log).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Manager is the outbox as operators see it, through the admin API and
// the CLI alike: the messages and how their delivery goes, a retry for a
// message that failed, and a test message to check the set-up. What it
// returns never holds a message's body, which carries single-use links
// for its recipient alone; each change is audited in its transaction.
type Manager struct {
	store  ManagerStore
	outbox *Outbox
	audit  Auditor
}

// NewManager returns a Manager over store. outbox writes test messages; it
// may be nil for a Manager that sends none (it needs the secrets and the
// issuer, which listing and retrying do not).
func NewManager(store ManagerStore, outbox *Outbox, audit Auditor) *Manager {
	return &Manager{store: store, outbox: outbox, audit: audit}
}

// List returns the messages q selects, newest first, without their
// bodies.
func (m *Manager) List(ctx context.Context, q Query) ([]*Stored, error) {
	ms, err := m.store.Mail(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, s := range ms {
		s.Sealed = nil
	}
	return ms, nil
}

// Get returns one message without its body; ErrNotFound if none has the
// ID.
func (m *Manager) Get(ctx context.Context, id int64) (*Stored, error) {
	s, err := m.store.MailByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.Sealed = nil
	return s, nil
}

// Retry makes a failed message pending again, due at once, with a fresh
// run of attempts, and returns it as it now is. A message that has not
// failed is a *NotFailedError (the sender retries a pending message by
// itself; a sent one is done); one that does not exist is ErrNotFound.
func (m *Manager) Retry(ctx context.Context, id int64) (*Stored, error) {
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		s, err := m.store.MailByID(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		if s.Status != Failed {
			return audit.Event{}, &NotFailedError{Message: s}
		}
		// The update is conditional on the message's still being failed:
		// of two operators retrying at once, one retries it, and the other
		// is told what it now is.
		if err := m.store.RetryMail(ctx, id); errors.Is(err, ErrNotFound) {
			if s, err = m.store.MailByID(ctx, id); err != nil {
				return audit.Event{}, err
			}
			return audit.Event{}, &NotFailedError{Message: s}
		} else if err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.MailRetried, Target: audit.Mail(id), Details: map[string]any{
			"template": s.Template, "recipient": s.Recipient, "attempts": s.Attempts,
		}}, nil
	})
	if err != nil {
		return nil, err
	}
	return m.Get(ctx, id)
}

// SendTest writes the test message to the outbox, addressed to to, and
// returns it as stored: pending, for whichever node's sender gets to it
// first. An address that is not a bare email address is a
// *validation.Error naming the field "to".
func (m *Manager) SendTest(ctx context.Context, to string) (*Stored, error) {
	if len(to) > maxAddress || !sendable(to) {
		return nil, &validation.Error{Of: "test message", Problems: []validation.Problem{{Field: "to",
			Message: "must be one email address, such as ada@example.com, without a name or angle brackets"}}}
	}
	if m.outbox == nil {
		return nil, errors.New("mail: this manager has no outbox to write test messages to")
	}
	var sent *Stored
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		s, err := m.outbox.enqueue(ctx, Message{Template: TestTemplate, To: to})
		if err != nil {
			return audit.Event{}, err
		}
		sent = s
		return audit.Event{Action: audit.MailTestSent, Target: audit.Mail(s.ID), Details: map[string]any{"recipient": to}}, nil
	})
	if err != nil {
		return nil, err
	}
	sent.Sealed = nil
	return sent, nil
}

// maxAddress is the longest address SMTP carries (RFC 5321 §4.5.3.1.3's
// path, less its brackets).
const maxAddress = 254

// NotFailedError is the answer to a retry of a message that has not
// failed: it is pending, and the sender retries it by itself, or it was
// sent.
type NotFailedError struct {
	// Message is the message as it was found.
	Message *Stored
}

func (e *NotFailedError) Error() string {
	s := e.Message
	if s.Status == Sent && s.SentAt != nil {
		return fmt.Sprintf("mail: message %d was sent at %s; only a failed message can be retried",
			s.ID, s.SentAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("mail: message %d is %s, not failed: a node retries it by itself, next at %s; only a failed message can be retried",
		s.ID, s.Status, s.NextAttemptAt.UTC().Format(time.RFC3339))
}

// Statuses lists every status, for help and shell completion.
var Statuses = []Status{Pending, Failed, Sent}

// ParseStatus reads a status filter as an operator gives it; "" is none.
// Its error reads after the filter's name: "status must be ...".
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case "", Pending, Failed, Sent:
		return st, nil
	}
	return "", fmt.Errorf("must be pending, failed or sent, not %q", s)
}
