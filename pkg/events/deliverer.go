package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/outbox"
)

// DelivererStore is the event outbox as a Deliverer works through it. A
// claim is a lease: a row claimed and not marked within the lease (its
// node died) can be claimed again, by any node.
type DelivererStore interface {
	// ClaimEvent claims the oldest due row that is not claimed, whose
	// subscription (if a webhook's) is enabled, and that has no older
	// pending row of its sink and subject, counting an attempt; nil when
	// none is. Rows of the log stream are claimed only if logs.
	ClaimEvent(ctx context.Context, lease time.Duration, logs bool) (*Claimed, error)
	// MarkEventDelivered records a claimed row delivered, and its
	// subscription's failures over.
	MarkEventDelivered(ctx context.Context, c *Claimed, status int) error
	// RescheduleEvent records a failed attempt: the row is due again at
	// next, or failed for good if giveUp. For a webhook's row it counts
	// the failure on the subscription and returns since when every
	// attempt at it has failed.
	RescheduleEvent(ctx context.Context, c *Claimed, next time.Time, lastError string, status int, giveUp bool) (failingSince *time.Time, err error)
	// DisableFailingWebhook disables the subscription if it is enabled
	// and every attempt at it has failed for at least failingFor, and
	// reports whether it did.
	DisableFailingWebhook(ctx context.Context, id, reason string, failingFor time.Duration) (bool, error)
}

// Claimed is a row a Deliverer has claimed, with what sending it needs.
type Claimed struct {
	Delivery
	// Claim names this claim, so that a node whose lease ran out cannot
	// mark a row another node has claimed since.
	Claim string
	// URL and Sealed are the subscription's, for a webhook's row.
	URL    string
	Sealed []byte
}

// Sealer opens stored secrets (pkg/seal).
type Sealer interface {
	Seal(plaintext, additionalData []byte) []byte
	Open(sealed, additionalData []byte) ([]byte, error)
}

// LogWriter writes an event to the log stream: a JSON line on stdout, or
// an OpenTelemetry log record. It returns only once the event is written,
// so that a row is marked delivered only then.
type LogWriter interface {
	WriteEvent(ctx context.Context, payload []byte) error
}

// Observer is told how attempts end, for metrics: sink is "webhook" or
// "log", result "delivered", "retry" or "failed" (given up).
type Observer interface {
	EventDelivery(sink, result string)
	WebhookDisabled()
}

// Auditor records a change and its audit event in one transaction
// (pkg/audit.Log).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Defaults for a Deliverer's timings; docs/security-events.md states them.
const (
	// DefaultPoll is a fallback: deliverers are woken when events are
	// written.
	DefaultPoll         = 10 * time.Second
	DefaultTimeout      = 10 * time.Second
	DefaultBackoff      = 10 * time.Second
	DefaultMaxBackoff   = time.Hour
	DefaultGiveUpAfter  = 72 * time.Hour
	DefaultDisableAfter = 24 * time.Hour
	// maxAnswer is as much of a receiver's answer as is read: only its
	// status matters, and a receiver must not make a node read forever.
	maxAnswer = 64 << 10
)

// Deliverer delivers the event outbox. Every node runs one; the store's
// claims keep two from sending the same row at once, and its order check
// keeps a subject's events in order across all of them.
type Deliverer struct {
	Store  DelivererStore
	Box    Sealer
	Audit  Auditor
	Logger *slog.Logger
	// Log writes the log stream's rows; nil when LATCHKEY_EVENT_LOG is
	// none, and this node then leaves them to others.
	Log LogWriter
	// Client posts webhooks (NewClient); its timeout bounds an attempt.
	Client *http.Client
	// Timeout bounds one attempt; Lease, the time a claim lasts, must be
	// longer (twice it, by default).
	Timeout, Lease time.Duration
	// Poll is how often the outbox is looked at when it was empty.
	Poll time.Duration
	// Backoff is the wait after a first failed attempt; it doubles at
	// each further one up to MaxBackoff. Tests shrink both.
	Backoff, MaxBackoff time.Duration
	// GiveUpAfter is how long a row is retried before it fails for good.
	GiveUpAfter time.Duration
	// DisableAfter disables a subscription every attempt at which has
	// failed for this long.
	DisableAfter time.Duration
	// Metrics, if not nil, is told how each attempt ends.
	Metrics Observer

	loop outbox.Loop
}

// Wake makes the deliverer look at the outbox now rather than at its next
// poll. It never blocks.
func (d *Deliverer) Wake() { d.loop.Wake() }

// Run delivers due rows until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	d.loop.Run(ctx, or(d.Poll, DefaultPoll), d.DeliverOne, func(err error) {
		d.Logger.Warn("events: the outbox could not be read; trying again shortly", "err", err)
	})
}

// DeliverOne claims one due row and makes one attempt at it. It reports
// whether there was a row; an attempt that failed is recorded on the row,
// not returned.
func (d *Deliverer) DeliverOne(ctx context.Context) (bool, error) {
	timeout := or(d.Timeout, DefaultTimeout)
	c, err := d.Store.ClaimEvent(ctx, or(d.Lease, 2*timeout), d.Log != nil)
	if err != nil || c == nil {
		return false, err
	}
	kind := "webhook"
	if c.Sink == LogSink {
		kind = "log"
	}
	log := d.Logger.With("delivery_id", c.ID, "sink", c.Sink, "event_id", EventID(c.EventID), "attempt", c.Attempts)
	status, err := d.attempt(ctx, c, timeout)
	// What happened is recorded even if the node is stopping: the attempt
	// is over either way.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err == nil {
		if err := d.Store.MarkEventDelivered(rctx, c, status); err != nil {
			return true, fmt.Errorf("events: record delivery %d: %w", c.ID, err)
		}
		d.observe(kind, "delivered")
		log.Debug("event delivered")
		return true, nil
	}
	giveUp := time.Since(c.AttemptsSince) > or(d.GiveUpAfter, DefaultGiveUpAfter)
	next := time.Now().Add(d.backoff(c.Attempts))
	failingSince, rerr := d.Store.RescheduleEvent(rctx, c, next, err.Error(), status, giveUp)
	if rerr != nil {
		return true, fmt.Errorf("events: record attempt at delivery %d: %w", c.ID, rerr)
	}
	if giveUp {
		d.observe(kind, "failed")
		log.Error("event delivery failed for good; the subject's next event proceeds", "err", err)
	} else {
		d.observe(kind, "retry")
		log.Warn("event not delivered; will retry", "err", err, "next_attempt_at", next)
	}
	if failingSince != nil && time.Since(*failingSince) >= or(d.DisableAfter, DefaultDisableAfter) {
		d.disable(rctx, c.WebhookID, *failingSince, err, log)
	}
	return true, nil
}

// disable turns off a subscription whose every attempt has failed for
// DisableAfter, and audits it. Of several nodes that find it so at once,
// one disables it.
func (d *Deliverer) disable(ctx context.Context, id string, since time.Time, last error, log *slog.Logger) {
	reason := fmt.Sprintf("every delivery since %s failed; the last: %s", since.UTC().Format(time.RFC3339), last)
	if len(reason) > 500 {
		reason = reason[:500]
	}
	done := false
	err := d.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if done, err = d.Store.DisableFailingWebhook(ctx, id, reason, or(d.DisableAfter, DefaultDisableAfter)); err != nil || !done {
			return audit.Event{}, err
		}
		return audit.Event{Actor: audit.System, Action: audit.WebhookDisabled, Target: audit.Webhook(id),
			Details: map[string]any{"reason": reason}}, nil
	})
	if err != nil {
		log.Error("events: disabling a failing webhook subscription failed", "err", err)
		return
	}
	if done {
		if d.Metrics != nil {
			d.Metrics.WebhookDisabled()
		}
		log.Error("webhook subscription disabled: its deliveries keep failing; an admin can enable it again (latchkey webhooks enable)",
			"webhook_id", id, "reason", reason)
	}
}

// attempt sends the row to its sink, and returns the receiver's status
// code, if there was one.
func (d *Deliverer) attempt(ctx context.Context, c *Claimed, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.Sink == LogSink {
		return 0, d.Log.WriteEvent(ctx, c.Payload)
	}
	secret, err := d.Box.Open(c.Sealed, SecretAD(c.WebhookID))
	if err != nil {
		return 0, fmt.Errorf("the subscription's secret cannot be opened (was the secret that sealed it dropped from LATCHKEY_SECRETS?): %w", err)
	}
	id, at := EventID(c.EventID), time.Now()
	sig, err := Sign(string(secret), id, at, c.Payload)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latchkey-Webhooks/1")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	resp, err := d.client().Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the receiver answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func (d *Deliverer) client() *http.Client {
	if d.Client == nil {
		return NewClient(or(d.Timeout, DefaultTimeout))
	}
	return d.Client
}

// SecretAD binds a sealed secret to its subscription, so that a secret
// copied to another row does not open.
func SecretAD(id string) []byte { return []byte("webhook-secret:" + id) }

// NewClient is the HTTP client webhooks are posted with: it gives up
// after timeout, follows no redirect (a 3xx is a failed attempt: a
// receiver that moved is reconfigured by an admin, not followed blindly),
// and connects to no link-local, multicast or unspecified address, such
// as a cloud's metadata service at 169.254.169.254, whatever a URL's name
// resolves to.
func NewClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: refuseAddress}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// errRefusedAddress is a connection to an address webhooks never go to.
var errRefusedAddress = errors.New("events: webhooks are not sent to link-local, multicast or unspecified addresses")

// refuseAddress is the dialer's check of each address it is about to
// connect to, after name resolution.
func refuseAddress(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() {
		return errRefusedAddress
	}
	return nil
}

func (d *Deliverer) observe(sink, result string) {
	if d.Metrics != nil {
		d.Metrics.EventDelivery(sink, result)
	}
}

// backoff is the wait after the attempts-th failed attempt.
func (d *Deliverer) backoff(attempts int) time.Duration {
	return outbox.Backoff(attempts, or(d.Backoff, DefaultBackoff), or(d.MaxBackoff, DefaultMaxBackoff))
}

// or is d, or def when d is not set.
func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
