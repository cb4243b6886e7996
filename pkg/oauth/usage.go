// This file charges the calls of authenticated clients to their usage
// plans (pkg/usage), and answers the calls a plan refuses.

package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/usage"
)

// Meter charges calls to the usage plan of their subject: "client:ID"
// for a client's calls at the token, introspection and revocation
// endpoints (usage.ClientSubject), "key:ID" for introspections of an API
// key (usage.KeySubject). endpoint is "token", "introspect" or "revoke".
type Meter interface {
	Charge(ctx context.Context, subject, endpoint string) (usage.Verdict, error)
}

// quotaExceeded is the error of a call over one of its plan's quotas.
type quotaExceeded struct {
	over *usage.Exceeded
	// who is what used the quota: "client" or "API key".
	who string
}

func (e *quotaExceeded) Error() string { return "quota exceeded" }

// limit takes one request from the client's allowance at endpoint: the
// node's per-client limit (ClientRateLimit), then the client's usage plan.
// It sets the RateLimit-Policy and RateLimit fields of a client with a
// plan on w, for whatever the endpoint answers, and returns a
// *rateLimited or *quotaExceeded if the client is over a limit.
func (p *Provider) limit(ctx context.Context, w http.ResponseWriter, endpoint, clientID string) error {
	if ok, wait := p.clientLimit.Allow(endpoint + "\x00" + clientID); !ok {
		p.metrics.RateLimited(endpoint)
		return &rateLimited{wait, "Too many requests from this client"}
	}
	return p.Charge(ctx, w, usage.ClientSubject(clientID), endpoint)
}

// Charge charges one call at endpoint to subject's usage plan, sets the
// plan's RateLimit-Policy and RateLimit fields on w, and returns the error
// to answer with (writeError) if the call is over a limit of the plan or
// the plan cannot be read. API-key introspection charges subject
// usage.KeySubject(keyID) here.
func (p *Provider) Charge(ctx context.Context, w http.ResponseWriter, subject, endpoint string) error {
	if p.meter == nil {
		return nil
	}
	v, err := p.meter.Charge(ctx, subject, endpoint)
	if err != nil {
		return err
	}
	if v.Policy != "" {
		w.Header().Set("RateLimit-Policy", v.Policy)
		w.Header().Set("RateLimit", v.Limit)
	}
	who := "client"
	if strings.HasPrefix(subject, usage.KeySubject("")) {
		who = "API key"
	}
	switch {
	case v.Over == nil:
		return nil
	case v.Over.Kind == "quota":
		return &quotaExceeded{v.Over, who}
	default:
		return &rateLimited{v.Over.RetryAfter, "Over " + v.Over.Description() + " of this " + who + "'s plan"}
	}
}

// writeQuotaExceeded answers a call over a quota: 429, with Retry-After
// until the quota resets and, in the RFC 6749 §5.2 shape, the error
// quota_exceeded (an extension code: no registered one fits), a
// description naming the quota and when it resets, and the same as
// fields for programs: quota (the RateLimit policy name), limit and
// resets_at.
func writeQuotaExceeded(w http.ResponseWriter, e *quotaExceeded) {
	secs := int64(e.over.RetryAfter/time.Second) + 1
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	body, _ := json.Marshal(map[string]any{
		"error":             "quota_exceeded",
		"error_description": "This " + e.who + " has used " + e.over.Description() + ".",
		"quota":             e.over.Name,
		"limit":             e.over.Limit,
		"resets_at":         e.over.ResetsAt.UTC().Format(time.RFC3339),
	})
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(append(body, '\n'))
}

// asQuotaExceeded finds a *quotaExceeded in err.
func asQuotaExceeded(err error) (*quotaExceeded, bool) {
	var q *quotaExceeded
	return q, errors.As(err, &q)
}
