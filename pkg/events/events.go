package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// Errors the manager and stores return.
var (
	// ErrNotFound is a subscription or delivery that does not exist.
	ErrNotFound = errors.New("events: not found")
	// ErrTooMany is a subscription beyond MaxSubscriptions.
	ErrTooMany = errors.New("events: too many webhook subscriptions")
)

// Payload is an event as every sink receives it: the JSON body of a
// webhook, and one line of the log stream. Its shape follows the Standard
// Webhooks recommendation (type, timestamp, data).
type Payload struct {
	// ID is the event's stable ID, "evt_" and its audit ID: the same at
	// every attempt and in every sink, for receivers to drop repeats.
	ID   string    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"timestamp"`
	Data Data      `json:"data"`
}

// Data is what the event says, from the audit log: it never holds a
// secret (pkg/audit keeps them out).
type Data struct {
	Actor     string         `json:"actor"`
	Target    string         `json:"target,omitempty"`
	Subject   string         `json:"subject"`
	IP        string         `json:"ip,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// EventID is the stable ID of the audit event with id.
func EventID(id int64) string { return "evt_" + strconv.FormatInt(id, 10) }

// Subject is the key an event is ordered by: its Target, else its Actor.
func Subject(e audit.Event) string {
	if e.Target != "" {
		return e.Target
	}
	return e.Actor
}

// PayloadOf is the payload of e, encoded.
func PayloadOf(e audit.Event) ([]byte, error) {
	return json.Marshal(Payload{ID: EventID(e.ID), Type: e.Action, At: e.At.UTC(), Data: Data{
		Actor: e.Actor, Target: e.Target, Subject: Subject(e), IP: e.IP, RequestID: e.RequestID, Details: e.Details,
	}})
}

// Subscription is a webhook subscription: where events go, which ones,
// and whether it is enabled. Its secret is shown once, when it is made or
// rotated, and is never part of a Subscription read back.
type Subscription struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why a node disabled it (or that an admin did).
	DisabledReason string     `json:"disabled_reason,omitempty"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	// ConsecutiveFailures counts attempts failed in a row; FailingSince
	// is when the first of them was, and nil while deliveries succeed.
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since,omitempty"`
	LastSuccessAt       *time.Time `json:"last_success_at,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	// Sealed is the secret as stored (pkg/seal); never encoded.
	Sealed []byte `json:"-"`
}

// Matches reports whether the subscription wants events with action.
func (s *Subscription) Matches(action string) bool {
	return slices.ContainsFunc(s.EventTypes, func(p string) bool { return matches(p, action) })
}

// matches reports whether pattern ("*", "user.*" or "user.created")
// selects action.
func matches(pattern, action string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, ".*"); ok {
		return strings.HasPrefix(action, prefix+".")
	}
	return pattern == action
}

// checkPattern says what is wrong with an event type pattern, or "": it
// must be "*", an action pkg/audit records, or the prefix of one
// followed by ".*".
func checkPattern(p string) string {
	if p == "*" || slices.Contains(audit.Actions, p) {
		return ""
	}
	if prefix, ok := strings.CutSuffix(p, ".*"); ok && slices.ContainsFunc(audit.Actions, func(a string) bool {
		return strings.HasPrefix(a, prefix+".")
	}) {
		return ""
	}
	return fmt.Sprintf("%q is not an event type: give \"*\", an action such as user.created, or a prefix such as user.* (docs/security-events.md lists them)", p)
}

// Status is where a delivery stands.
type Status string

// The statuses of a delivery.
const (
	Pending   Status = "pending"
	Delivered Status = "delivered"
	Failed    Status = "failed"
)

// ParseStatus reads a status filter; "" is none. Its error reads after the
// filter's name.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case "", Pending, Delivered, Failed:
		return st, nil
	}
	return "", fmt.Errorf("must be pending, delivered or failed, not %q", s)
}

// LogSink is the sink name of the log stream's rows; a webhook's rows
// have WebhookSink of its ID.
const LogSink = "log"

// WebhookSink is the sink name of a subscription's rows.
func WebhookSink(id string) string { return "webhook:" + id }

// Delivery is one row of the event outbox: one event on its way to one
// sink.
type Delivery struct {
	ID int64 `json:"id"`
	// Sink is "log" or "webhook:ID".
	Sink      string `json:"sink"`
	WebhookID string `json:"webhook_id,omitempty"`
	// EventID is the audit event's ID; the webhook-id header is
	// EventID(EventID).
	EventID       int64      `json:"event_id"`
	EventType     string     `json:"event_type"`
	Subject       string     `json:"subject"`
	Status        Status     `json:"status"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	LastError     string     `json:"last_error,omitempty"`
	LastStatus    int        `json:"last_status_code,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	AttemptsSince time.Time  `json:"-"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	// Payload is the body as sent.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DeliveryQuery selects deliveries, newest first. Zero fields do not
// filter.
type DeliveryQuery struct {
	WebhookID string
	Status    Status
	// BeforeID continues a listing after the delivery with this ID.
	BeforeID int64
	Limit    int
}
