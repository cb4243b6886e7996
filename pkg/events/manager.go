package events

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Bounds on what an admin can set up: each subscription costs every event
// a row and every node work, so their number is bounded.
const (
	// MaxSubscriptions is the most webhook subscriptions there may be.
	MaxSubscriptions = 20
	// MaxEventTypes is the most patterns one subscription may list.
	MaxEventTypes = 50
	maxURL        = 2000
	maxDesc       = 200
)

// ManagerStore is the subscriptions and their deliveries as operators see
// and change them. Its calls join the transaction ctx carries.
type ManagerStore interface {
	Webhooks(ctx context.Context) ([]*Subscription, error)
	// WebhookByID returns one subscription; ErrNotFound if none has id.
	WebhookByID(ctx context.Context, id string) (*Subscription, error)
	// InsertWebhook stores a new subscription, unless there are max
	// already (ErrTooMany), counted under a lock so that two nodes cannot
	// both add the last one.
	InsertWebhook(ctx context.Context, s *Subscription, max int) error
	// UpdateWebhook stores s's URL, description, event types and sealed
	// secret; ErrNotFound if it is gone.
	UpdateWebhook(ctx context.Context, s *Subscription) error
	// DeleteWebhook deletes a subscription and its deliveries.
	DeleteWebhook(ctx context.Context, id string) error
	// EnableWebhook enables a subscription, with its failures forgotten,
	// and makes its pending rows due at once with a fresh run of attempts.
	EnableWebhook(ctx context.Context, id string) error
	// Deliveries returns the rows q selects, newest first.
	Deliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error)
}

// Manager is webhook subscriptions as operators manage them, through the
// admin API and the CLI alike. Every change is audited in its
// transaction; a secret is returned only by Create and RotateSecret.
type Manager struct {
	store ManagerStore
	box   Sealer
	audit Auditor
}

// NewManager returns a Manager over store, sealing secrets with box.
func NewManager(store ManagerStore, box Sealer, audit Auditor) *Manager {
	return &Manager{store: store, box: box, audit: audit}
}

// Input is a subscription as an admin describes it. In an update, nil
// fields are left as they are.
type Input struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"event_types"`
}

// List returns every subscription, oldest first.
func (m *Manager) List(ctx context.Context) ([]*Subscription, error) {
	return m.store.Webhooks(ctx)
}

// Get returns one subscription; ErrNotFound if none has id.
func (m *Manager) Get(ctx context.Context, id string) (*Subscription, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound
	}
	return m.store.WebhookByID(ctx, id)
}

// Create adds a subscription, enabled, and returns it with its signing
// secret, which is never shown again. in must give a URL and event types;
// what is wrong with it is a *validation.Error, and a subscription beyond
// MaxSubscriptions is ErrTooMany.
func (m *Manager) Create(ctx context.Context, in Input) (*Subscription, string, error) {
	var problems validation.Error
	problems.Of = "webhook subscription"
	if in.URL == nil {
		problems.Add("url", "is required: where events are posted, such as https://siem.example.com/latchkey")
	}
	if in.EventTypes == nil {
		problems.Add("event_types", "is required: the events to send, such as [\"*\"] or [\"user.*\", \"login.failed\"]")
	}
	s := &Subscription{ID: uuid.NewString(), Enabled: true}
	apply(&problems, s, in)
	if err := problems.Err(); err != nil {
		return nil, "", err
	}
	secret := NewSecret()
	s.Sealed = m.box.Seal([]byte(secret), SecretAD(s.ID))
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if err := m.store.InsertWebhook(ctx, s, MaxSubscriptions); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.WebhookCreated, Target: audit.Webhook(s.ID),
			Details: map[string]any{"url": s.URL, "event_types": s.EventTypes}}, nil
	})
	if err != nil {
		return nil, "", err
	}
	created, err := m.store.WebhookByID(ctx, s.ID)
	return created, secret, err
}

// Update changes the fields in gives and returns the subscription as it
// now is.
func (m *Manager) Update(ctx context.Context, id string, in Input) (*Subscription, error) {
	err := m.change(ctx, id, func(ctx context.Context, s *Subscription) (audit.Event, error) {
		before := *s
		var problems validation.Error
		problems.Of = "webhook subscription"
		apply(&problems, s, in)
		if err := problems.Err(); err != nil {
			return audit.Event{}, err
		}
		if err := m.store.UpdateWebhook(ctx, s); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.WebhookUpdated, Target: audit.Webhook(id),
			Details: map[string]any{"changed": audit.Changed(before, *s)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return m.store.WebhookByID(ctx, id)
}

// Delete removes a subscription and every delivery still waiting for it.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.change(ctx, id, func(ctx context.Context, s *Subscription) (audit.Event, error) {
		if err := m.store.DeleteWebhook(ctx, id); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.WebhookDeleted, Target: audit.Webhook(id), Details: map[string]any{"url": s.URL}}, nil
	})
}

// Enable enables a subscription, whether a node disabled it or not, and
// its pending events are tried again at once, in order.
func (m *Manager) Enable(ctx context.Context, id string) (*Subscription, error) {
	err := m.change(ctx, id, func(ctx context.Context, s *Subscription) (audit.Event, error) {
		if err := m.store.EnableWebhook(ctx, id); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.WebhookEnabled, Target: audit.Webhook(id),
			Details: map[string]any{"was_enabled": s.Enabled, "disabled_reason": s.DisabledReason}}, nil
	})
	if err != nil {
		return nil, err
	}
	return m.store.WebhookByID(ctx, id)
}

// RotateSecret gives a subscription a new signing secret, returned here
// once; every attempt from now on is signed with it.
func (m *Manager) RotateSecret(ctx context.Context, id string) (*Subscription, string, error) {
	secret := NewSecret()
	err := m.change(ctx, id, func(ctx context.Context, s *Subscription) (audit.Event, error) {
		s.Sealed = m.box.Seal([]byte(secret), SecretAD(id))
		if err := m.store.UpdateWebhook(ctx, s); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.WebhookSecretRotated, Target: audit.Webhook(id)}, nil
	})
	if err != nil {
		return nil, "", err
	}
	s, err := m.store.WebhookByID(ctx, id)
	return s, secret, err
}

// Test records a webhook.tested event, which the outbox sends to the
// subscription whatever its event types, and returns the event's stable
// ID, by which its delivery can be found.
func (m *Manager) Test(ctx context.Context, id string) (string, error) {
	var eventID string
	err := m.change(ctx, id, func(ctx context.Context, s *Subscription) (audit.Event, error) {
		return audit.Event{Action: audit.WebhookTested, Target: audit.Webhook(id), Details: map[string]any{"url": s.URL}}, nil
	})
	if err != nil {
		return "", err
	}
	// The event's ID is known once it is recorded: the newest delivery of
	// a webhook.tested event to this subscription is it.
	ds, err := m.store.Deliveries(ctx, DeliveryQuery{WebhookID: id, Limit: 20})
	if err != nil {
		return "", err
	}
	for _, d := range ds {
		if d.EventType == audit.WebhookTested {
			eventID = EventID(d.EventID)
			break
		}
	}
	return eventID, nil
}

// Deliveries returns a subscription's deliveries q selects, newest first.
func (m *Manager) Deliveries(ctx context.Context, id string, q DeliveryQuery) ([]*Delivery, error) {
	if _, err := m.Get(ctx, id); err != nil {
		return nil, err
	}
	q.WebhookID = id
	return m.store.Deliveries(ctx, q)
}

// change runs f on the subscription id names, read in the transaction
// that records f's event.
func (m *Manager) change(ctx context.Context, id string, f func(ctx context.Context, s *Subscription) (audit.Event, error)) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		s, err := m.store.WebhookByID(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		return f(ctx, s)
	})
}

// apply sets the fields in gives on s, adding to problems what is wrong
// with them.
func apply(problems *validation.Error, s *Subscription, in Input) {
	if in.URL != nil {
		if msg := checkURL(*in.URL); msg != "" {
			problems.Add("url", "%s", msg)
		}
		s.URL = *in.URL
	}
	if in.Description != nil {
		if utf8.RuneCountInString(*in.Description) > maxDesc {
			problems.Add("description", "is longer than %d characters", maxDesc)
		}
		s.Description = *in.Description
	}
	if in.EventTypes != nil {
		types := *in.EventTypes
		switch {
		case len(types) == 0:
			problems.Add("event_types", "is empty; give \"*\" for every event")
		case len(types) > MaxEventTypes:
			problems.Add("event_types", "lists %d patterns; at most %d", len(types), MaxEventTypes)
		default:
			for _, p := range types {
				if msg := checkPattern(p); msg != "" {
					problems.Add("event_types", "%s", msg)
				}
			}
		}
		s.EventTypes = slices.Compact(slices.Sorted(slices.Values(types)))
	}
}

// checkURL says what is wrong with a webhook URL, or "". It must be https,
// or http to this machine (loopback, the rule pkg/client owns), since an
// event posted in clear text across a network can be read and forged; it
// carries no credentials (they would be shown in every listing) and no
// fragment, and names no link-local, multicast or unspecified address.
func checkURL(raw string) string {
	if len(raw) > maxURL {
		return "is longer than 2000 characters"
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "must be an absolute URL such as https://siem.example.com/latchkey"
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && client.IsLoopback(host):
	case u.Scheme == "http":
		return "must be https; plain http is allowed only to this machine (localhost, 127.0.0.1, ::1)"
	default:
		return "must be https"
	}
	if u.User != nil {
		return "must not carry a user name or password; the receiver checks the signature instead"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not have a fragment (#...)"
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() || a.IsLinkLocalMulticast() {
			return "must not name a link-local, multicast or unspecified address"
		}
	}
	return ""
}
