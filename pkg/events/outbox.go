package events

import (
	"context"
	"fmt"

	"github.com/latchkey/latchkey/pkg/audit"
)

// OutboxStore is the event outbox as the Outbox writes to it. Its calls
// join the transaction ctx carries (the audit event's).
type OutboxStore interface {
	// Webhooks returns every subscription, enabled or not.
	Webhooks(ctx context.Context) ([]*Subscription, error)
	// EnqueueEvents writes rows, all of one subject, under a lock on the
	// subject that lasts until the transaction ends (see the package
	// documentation), and announces them to every node's Deliverer.
	EnqueueEvents(ctx context.Context, subject string, rows []Delivery) error
}

// Outbox is the audit.Reactor that writes every event to the event
// outbox, once for each sink that wants it, in the event's transaction.
type Outbox struct {
	store OutboxStore
	// logs is whether events also go to the log stream.
	logs bool
}

var _ audit.Reactor = (*Outbox)(nil)

// NewOutbox returns an Outbox over store; logs sends every event to the
// log stream as well (LATCHKEY_EVENT_LOG is not none).
func NewOutbox(store OutboxStore, logs bool) *Outbox {
	return &Outbox{store: store, logs: logs}
}

// ReactsTo is true for every action: any may match a subscription, and
// which do is known only in the transaction, where another node's newest
// subscription is visible.
func (o *Outbox) ReactsTo(string) bool { return true }

// React writes e to the outbox for the log stream and for each
// subscription whose event types match (a disabled one too, so that
// nothing is lost while an admin mends its receiver: its rows wait). A
// webhook.tested event also goes to the subscription tested, whatever its
// event types.
func (o *Outbox) React(ctx context.Context, e audit.Event) error {
	subs, err := o.store.Webhooks(ctx)
	if err != nil {
		return err
	}
	payload, err := PayloadOf(e)
	if err != nil {
		return fmt.Errorf("events: encode event %d: %w", e.ID, err)
	}
	subject := Subject(e)
	row := func(sink, webhook string) Delivery {
		return Delivery{Sink: sink, WebhookID: webhook, EventID: e.ID, EventType: e.Action, Subject: subject, Payload: payload}
	}
	var rows []Delivery
	if o.logs {
		rows = append(rows, row(LogSink, ""))
	}
	for _, s := range subs {
		if s.Matches(e.Action) || (e.Action == audit.WebhookTested && e.Target == audit.Webhook(s.ID)) {
			rows = append(rows, row(WebhookSink(s.ID), s.ID))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	return o.store.EnqueueEvents(ctx, subject, rows)
}
