package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/server"
)

// protocolError turns whatever a flow failed with into the RFC 6749 error
// to answer, correcting fosite where its choice would mislead a client.
func protocolError(err error) *fosite.RFC6749Error {
	switch {
	case server.Unavailable(err), errors.Is(err, fosite.ErrTemporarilyUnavailable):
		// fosite reports a failed client lookup as invalid_client, which
		// would tell a backend its credentials are wrong during an outage.
		return fosite.ErrTemporarilyUnavailable.WithHint("The authorization server cannot reach its database; retry shortly.")
	case says(err, storeOutcome.Raced):
		return fosite.ErrInvalidGrant.WithHint("The grant was redeemed by another request at the same moment.")
	case says(err, storeOutcome.RefreshTokenRevoked):
		// fosite's hint calls it malformed; the client should know to sign
		// the user in again rather than look for a bug.
		return fosite.ErrInvalidGrant.WithHint("The refresh token was revoked.")
	case says(err, storeOutcome.CodeRevoked):
		return fosite.ErrInvalidGrant.WithHint("The authorization code was revoked.")
	case errors.Is(err, fosite.ErrInvalidatedAuthorizeCode):
		// fosite reports a code spent between its two reads as server_error.
		return fosite.ErrInvalidGrant.WithHint("The authorization code was already used.")
	case says(err, storeOutcome.ClientGone):
		// Deleted on another node a moment ago, before this node's cache
		// heard of it: the token was not issued.
		return fosite.ErrInvalidClient.WithHint("The client no longer exists.")
	case errors.Is(err, fosite.ErrJTIKnown):
		// jti_known is not an RFC 6749 error; RFC 7523 §3.2 says invalid_client.
		return fosite.ErrInvalidClient.WithHint("The client assertion was already used; sign a new one with a fresh jti.")
	}
	return fosite.ErrorToRFC6749Error(err)
}

// rateLimited is the error of a client over a rate limit: RFC 6749 has no
// code for it, so it is temporarily_unavailable, with the 429 status and
// the Retry-After that say how long to wait (RFC 6585 §4). what says which
// limit, as the start of a sentence.
type rateLimited struct {
	retryAfter time.Duration
	what       string
}

func (e *rateLimited) Error() string { return "rate limited" }

// writeError answers with an RFC 6749 §5.2 error body: error and
// error_description, never internal details. Server errors are logged with
// the request ID, which the description carries so that an operator can
// find them. A 401 carries WWW-Authenticate, as §5.2 requires when the
// client tried HTTP authentication. It returns the status it answered.
func (p *Provider) writeError(ctx context.Context, w http.ResponseWriter, err error) int {
	if q, ok := asQuotaExceeded(err); ok {
		writeQuotaExceeded(w, q)
		return http.StatusTooManyRequests
	}
	rfc := protocolError(err)
	var limited *rateLimited
	if errors.As(err, &limited) {
		secs := int(limited.retryAfter/time.Second) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		rfc = fosite.ErrTemporarilyUnavailable.WithHintf("%s; retry in %d seconds.", limited.what, secs)
		rfc.CodeField = http.StatusTooManyRequests
	}
	desc := rfc.GetDescription()
	if rfc.CodeField >= http.StatusInternalServerError {
		id := server.RequestID(ctx)
		level := slog.LevelError
		if rfc.CodeField == http.StatusServiceUnavailable {
			level = slog.LevelWarn
		}
		p.logger.Log(ctx, level, "oauth request failed", "request_id", id, "error", rfc.ErrorField, "cause", err)
		desc += " (request ID " + id + ")"
	} else {
		// A refused client is told why; so is the operator, who otherwise
		// sees only a 4xx in the request log. The code and description
		// are what the client is told, which never hold a secret.
		// A device polling while its user decides is told
		// authorization_pending every few seconds (RFC 8628 §3.5): the
		// protocol working, not a refusal worth an operator's notice.
		level := slog.LevelInfo
		if rfc.ErrorField == "authorization_pending" {
			level = slog.LevelDebug
		}
		p.logger.Log(ctx, level, "oauth request refused", "request_id", server.RequestID(ctx),
			"status", rfc.CodeField, "error", rfc.ErrorField, "description", desc)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	switch rfc.CodeField {
	case http.StatusUnauthorized:
		h.Set("WWW-Authenticate", `Basic realm="`+p.issuer+`"`)
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "1")
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{rfc.ErrorField, desc})
	w.WriteHeader(rfc.CodeField)
	_, _ = w.Write(append(body, '\n'))
	return rfc.CodeField
}
