package logout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/outbox"
)

// Claimed is a back-channel logout a Deliverer has claimed from the
// logout outbox: which app to tell that which sign-in of whom ended.
type Claimed struct {
	ID       int64
	ClientID string
	SID      string
	Subject  string
	// JTI is the row's, the same at every attempt, so that the app can
	// drop a repeat.
	JTI       string
	Attempts  int
	CreatedAt time.Time
	// Claim names this claim, so that a node whose lease ran out cannot
	// mark a row another node has claimed since.
	Claim string
}

// Store is the logout outbox as a Deliverer works through it. A claim is a
// lease: a row claimed and not marked within it (its node died) can be
// claimed again, by any node.
type Store interface {
	// ClaimLogout claims the oldest due row that is not claimed, counting
	// an attempt; nil when none is.
	ClaimLogout(ctx context.Context, lease time.Duration) (*Claimed, error)
	MarkLogoutDelivered(ctx context.Context, c *Claimed, status int) error
	// RescheduleLogout records a failed attempt: the row is due again at
	// next, or failed for good if giveUp.
	RescheduleLogout(ctx context.Context, c *Claimed, next time.Time, lastError string, status int, giveUp bool) error
}

// Clients looks up the app a row is for, as it is now: its
// backchannel_logout_uri and ID token algorithm may have changed since the
// row was written.
type Clients interface {
	Get(ctx context.Context, id string) (*client.Client, error)
}

// Keys gives the current signing key of an algorithm (pkg/keys.Manager).
type Keys interface {
	Current(alg jose.SignatureAlgorithm) (keys.Key, error)
}

// Observer is told how attempts end, for metrics: "delivered", "retry" or
// "failed" (given up, or the app no longer takes back-channel logouts).
type Observer interface {
	LogoutDelivery(result string)
}

// Defaults for a Deliverer's timings, as pkg/events has them.
const (
	DefaultPoll        = 10 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultBackoff     = 10 * time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultGiveUpAfter = 72 * time.Hour
	// maxAnswer is as much of an app's answer as is read: only its
	// status matters.
	maxAnswer = 64 << 10
)

// Deliverer delivers the logout outbox. Every node runs one.
type Deliverer struct {
	Store   Store
	Clients Clients
	Keys    Keys
	// Issuer is the logout tokens' iss.
	Issuer string
	Logger *slog.Logger
	// Client posts logout tokens: pkg/events.NewClient, whose dialer
	// refuses what webhooks refuse.
	Client *http.Client
	// Timeout bounds one attempt; Lease, the time a claim lasts, must be
	// longer (twice it, by default).
	Timeout, Lease time.Duration
	Poll           time.Duration
	// Backoff is the wait after a first failed attempt; it doubles at
	// each further one up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	GiveUpAfter         time.Duration
	Metrics             Observer
	// Now is the clock tokens are signed by; time.Now when nil.
	Now func() time.Time

	loop outbox.Loop
}

// Wake makes the deliverer look at the outbox now rather than at its next
// poll. It never blocks.
func (d *Deliverer) Wake() { d.loop.Wake() }

// Run delivers due rows until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	d.loop.Run(ctx, or(d.Poll, DefaultPoll), d.DeliverOne, func(err error) {
		d.Logger.Warn("logout: the outbox could not be read; trying again shortly", "err", err)
	})
}

// errNoURI is a row whose app no longer takes back-channel logouts.
var errNoURI = errors.New("the app no longer has a backchannel_logout_uri")

// DeliverOne claims one due row and makes one attempt at it. It reports
// whether there was a row; a failed attempt is recorded on the row, not
// returned.
func (d *Deliverer) DeliverOne(ctx context.Context) (bool, error) {
	timeout := or(d.Timeout, DefaultTimeout)
	c, err := d.Store.ClaimLogout(ctx, or(d.Lease, 2*timeout))
	if err != nil || c == nil {
		return false, err
	}
	log := d.Logger.With("logout_id", c.ID, "client_id", c.ClientID, "attempt", c.Attempts)
	status, err := d.attempt(ctx, c, timeout)
	// What happened is recorded even if the node is stopping.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err == nil {
		if err := d.Store.MarkLogoutDelivered(rctx, c, status); err != nil {
			return true, fmt.Errorf("logout: record delivery %d: %w", c.ID, err)
		}
		d.observe("delivered")
		log.Debug("back-channel logout delivered")
		return true, nil
	}
	giveUp := errors.Is(err, errNoURI) || errors.Is(err, client.ErrNotFound) ||
		time.Since(c.CreatedAt) > or(d.GiveUpAfter, DefaultGiveUpAfter)
	next := time.Now().Add(outbox.Backoff(c.Attempts, or(d.Backoff, DefaultBackoff), or(d.MaxBackoff, DefaultMaxBackoff)))
	if rerr := d.Store.RescheduleLogout(rctx, c, next, err.Error(), status, giveUp); rerr != nil {
		return true, fmt.Errorf("logout: record attempt at %d: %w", c.ID, rerr)
	}
	switch {
	case errors.Is(err, errNoURI) || errors.Is(err, client.ErrNotFound):
		// The app was deleted, or stopped taking logouts, since: nothing
		// is lost, and nothing for an operator to mend.
		d.observe("failed")
		log.Info("back-channel logout dropped: the app no longer takes them", "err", err)
	case giveUp:
		d.observe("failed")
		log.Error("back-channel logout failed for good", "err", err)
	default:
		d.observe("retry")
		log.Warn("back-channel logout not delivered; will retry", "err", err, "next_attempt_at", next)
	}
	return true, nil
}

// attempt signs a fresh logout token and posts it to the app, and returns
// the app's status code, if there was one.
func (d *Deliverer) attempt(ctx context.Context, c *Claimed, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	app, err := d.Clients.Get(ctx, c.ClientID)
	if err != nil {
		return 0, err
	}
	if app.BackchannelLogoutURI == "" {
		return 0, errNoURI
	}
	alg := app.IDTokenSignedResponseAlg
	if alg == "" {
		alg = string(jose.RS256)
	}
	key, err := d.Keys.Current(jose.SignatureAlgorithm(alg))
	if err != nil {
		return 0, err
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	token, err := Sign(key, NewClaims(d.Issuer, c.ClientID, c.Subject, c.SID, c.JTI, now()))
	if err != nil {
		return 0, err
	}
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, app.BackchannelLogoutURI, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Latchkey-Logout/1")
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	// §2.8: 200 OK, or 400 when the app could not process the token; a
	// 400 may be a transient failure of the app's, so it is retried too.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the app answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func (d *Deliverer) observe(result string) {
	if d.Metrics != nil {
		d.Metrics.LogoutDelivery(result)
	}
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
