package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchkey/latchkey/pkg/outbox"
)

// SenderStore is the outbox as a Sender works through it. A claim is a
// lease: a message claimed and not marked within the lease (its sender
// died) can be claimed again, by any node.
type SenderStore interface {
	// ClaimMail claims the oldest message that is due and not claimed by
	// another sender, counting an attempt, or returns nil when none is.
	ClaimMail(ctx context.Context, lease time.Duration) (*Claimed, error)
	// MarkMailSent records that a claimed message was sent, erasing its
	// body unless keep.
	MarkMailSent(ctx context.Context, c *Claimed, keep bool) error
	// RescheduleMail records a failed attempt at a claimed message: it is
	// due again at next, or failed for good if giveUp.
	RescheduleMail(ctx context.Context, c *Claimed, next time.Time, lastError string, giveUp bool) error
}

// Claimed is a message a sender has claimed.
type Claimed struct {
	Stored
	// Claim names this claim, so that a sender whose lease ran out cannot
	// mark a message another sender has claimed since.
	Claim string
}

// Transport delivers a rendered message: SMTP, or in development the
// console.
type Transport interface {
	Send(ctx context.Context, e Envelope) error
}

// Envelope is one message as a Transport sends it.
type Envelope struct {
	// MessageID is the message's Message-ID, the same at every attempt,
	// so that a message sent twice (see Sender) is recognisably one.
	MessageID string
	To        string
	Rendered
}

// PermanentError is a delivery failure that retrying cannot mend, such as
// a mail server refusing the recipient (an SMTP 5xx reply).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Observer is told how deliveries end, for metrics: "sent", "retry" (a
// failed attempt that will be retried) or "failed" (given up).
type Observer interface {
	MailDelivery(result string)
}

// Sender delivers the outbox. Every node runs one; the store's claims
// keep two of them from sending the same message at once.
//
// Delivery is at least once. A message is sent again only if its sender
// cannot record that it was sent: it died, or lost the database, between
// the mail server's acceptance and the update, a window of one database
// round trip. A resent message keeps its Message-ID, by which mail systems
// recognise it. A sender that dies before the mail server accepts the
// message (while connecting or mid-transaction) has sent nothing, and the
// message goes out once when its lease runs out.
type Sender struct {
	Store     SenderStore
	Box       Sealer
	Transport Transport
	Logger    *slog.Logger
	// Domain is the right-hand side of Message-IDs: the issuer's host.
	Domain string
	// Poll is how often the outbox is looked at when it was empty.
	Poll time.Duration
	// Lease is how long a claim lasts; it must be longer than an attempt
	// can take (Timeout).
	Lease time.Duration
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// GiveUpAfter is how long after it was written a message is retried
	// before it fails for good.
	GiveUpAfter time.Duration
	// KeepSent keeps the bodies of sent messages (latchkey dev shows them
	// at /dev/mail); otherwise they are erased once sent, since they carry
	// single-use links.
	KeepSent bool
	// Metrics, if not nil, is told how each attempt ends.
	Metrics Observer

	loop outbox.Loop
}

// Wake makes the sender look at the outbox now rather than at its next
// poll: mail was written (the store announces it to every node). It never
// blocks.
func (s *Sender) Wake() { s.loop.Wake() }

// Defaults for a Sender's timings.
const (
	// DefaultPoll is a fallback: senders are woken when mail is written.
	DefaultPoll        = 10 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultLease       = 2 * time.Minute
	DefaultGiveUpAfter = 72 * time.Hour
	// maxBackoff caps the wait between attempts: after a long outage,
	// mail goes out within this long of the server's return.
	maxBackoff = 30 * time.Minute
	// firstBackoff is the wait after the first failed attempt; it doubles
	// at each further one.
	firstBackoff = 15 * time.Second
)

// Run delivers due messages until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	poll := s.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	s.loop.Run(ctx, poll, s.DeliverOne, func(err error) {
		s.Logger.Warn("mail: the outbox could not be read; trying again shortly", "err", err)
	})
}

// DeliverOne claims one due message and makes one attempt at it. It
// reports whether there was a message; an attempt that failed is
// recorded on the message, not returned.
func (s *Sender) DeliverOne(ctx context.Context) (bool, error) {
	lease, timeout := s.Lease, s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	c, err := s.Store.ClaimMail(ctx, lease)
	if err != nil || c == nil {
		return false, err
	}
	log := s.Logger.With("mail_id", c.ID, "template", c.Template, "attempt", c.Attempts)
	err = s.attempt(ctx, c, timeout)
	// What happened is recorded even if the node is stopping: the attempt
	// is over either way.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err == nil {
		if err := s.Store.MarkMailSent(rctx, c, s.KeepSent); err != nil {
			return true, fmt.Errorf("mail: record message %d sent: %w", c.ID, err)
		}
		s.observe("sent")
		log.Info("mail sent")
		return true, nil
	}
	var permanent *PermanentError
	giveUp := errors.As(err, &permanent) || time.Since(c.AttemptsSince) > s.giveUpAfter()
	next := time.Now().Add(outbox.Backoff(c.Attempts, firstBackoff, maxBackoff))
	if err := s.Store.RescheduleMail(rctx, c, next, err.Error(), giveUp); err != nil {
		return true, fmt.Errorf("mail: record attempt at message %d: %w", c.ID, err)
	}
	if giveUp {
		s.observe("failed")
		log.Error("mail failed for good; an admin can retry it (latchkey mail retry)", "err", err)
	} else {
		s.observe("retry")
		log.Warn("mail not sent; will retry", "err", err, "next_attempt_at", next)
	}
	return true, nil
}

// attempt opens the message and hands it to the transport.
func (s *Sender) attempt(ctx context.Context, c *Claimed, timeout time.Duration) error {
	r, err := Open(s.Box, &c.Stored)
	if err != nil {
		// A message sealed under a secret since dropped cannot be sent,
		// however often it is tried.
		return &PermanentError{Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.Transport.Send(ctx, Envelope{MessageID: s.messageID(c.ID), To: c.Recipient, Rendered: r})
}

// messageID is a message's Message-ID: its outbox row at this issuer.
func (s *Sender) messageID(id int64) string {
	return fmt.Sprintf("%d.outbox@%s", id, s.Domain)
}

func (s *Sender) giveUpAfter() time.Duration {
	if s.GiveUpAfter <= 0 {
		return DefaultGiveUpAfter
	}
	return s.GiveUpAfter
}

func (s *Sender) observe(result string) {
	if s.Metrics != nil {
		s.Metrics.MailDelivery(result)
	}
}
