package registration

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/validation"
)

// MaxBody bounds a registration request's body. The largest metadata a
// client has reason to send, an inline key set of a few public keys and a
// handful of redirect URIs, is a few kilobytes.
const MaxBody = 32 << 10

// Handler serves the registration endpoint (RFC 7591) and the client
// configuration endpoint (RFC 7592) under it.
type Handler struct {
	Manager *Manager
	// Limit bounds the requests, of every kind, each address may make to
	// the endpoints of this node; nil is no limit.
	Limit  *ratelimit.Limiter
	Logger *slog.Logger
}

// Mount adds the endpoints at path, the registration endpoint, to r.
func (h *Handler) Mount(r chi.Router, path string) {
	r.With(h.limit).Post(path, h.register)
	r.With(h.limit).Get(path+"/{client_id}", h.read)
	r.With(h.limit).Put(path+"/{client_id}", h.update)
	r.With(h.limit).Delete(path+"/{client_id}", h.delete)
}

// limit refuses requests beyond the address's allowance, before they
// cost a database round trip.
func (h *Handler) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := h.Limit.Allow(ratelimit.AddressKey(server.ClientIP(r.Context()))); !ok {
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			h.writeError(w, r, http.StatusTooManyRequests, "temporarily_unavailable",
				"Too many registration requests from this address; retry in "+strconv.Itoa(secs)+" seconds.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer is the request's bearer token (RFC 6750 §2.1), or "".
func bearer(r *http.Request) string {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// body reads a JSON request body of at most MaxBody bytes.
func (h *Handler) body(w http.ResponseWriter, r *http.Request) (Request, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		h.writeError(w, r, http.StatusBadRequest, "invalid_client_metadata", "Send the client metadata as JSON, with Content-Type: application/json (RFC 7591 §3.1).")
		return Request{}, false
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.writeError(w, r, http.StatusRequestEntityTooLarge, "invalid_client_metadata", "The client metadata is larger than "+strconv.Itoa(MaxBody)+" bytes.")
		return Request{}, false
	case err != nil:
		h.writeError(w, r, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		return Request{}, false
	}
	req, err := ParseRequest(raw)
	if err != nil {
		h.fail(w, r, err)
		return Request{}, false
	}
	return req, true
}

func (h *Handler) register(w http.ResponseWriter, r *http.Request) {
	token := bearer(r)
	if h.Manager.Mode() == Token && token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		h.writeError(w, r, http.StatusUnauthorized, "invalid_token",
			"Registration needs an initial access token from the operator, sent as Authorization: Bearer TOKEN.")
		return
	}
	req, ok := h.body(w, r)
	if !ok {
		return
	}
	resp, err := h.Manager.Register(r.Context(), token, req.Metadata, server.ClientIP(r.Context()))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", resp.RegistrationClientURI)
	writeJSON(w, http.StatusCreated, resp)
}

func (h *Handler) read(w http.ResponseWriter, r *http.Request) {
	resp, err := h.Manager.Read(r.Context(), chi.URLParam(r, "client_id"), bearer(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) update(w http.ResponseWriter, r *http.Request) {
	id, token := chi.URLParam(r, "client_id"), bearer(r)
	// The token is checked before the body is read: a stranger learns
	// nothing from how a body would have been judged.
	if _, err := h.Manager.authorize(r.Context(), id, token); err != nil {
		h.fail(w, r, err)
		return
	}
	req, ok := h.body(w, r)
	if !ok {
		return
	}
	resp, err := h.Manager.Update(r.Context(), id, token, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.Manager.Delete(r.Context(), chi.URLParam(r, "client_id"), bearer(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// fail answers with the error err stands for: RFC 7591 §3.2.2 for
// metadata, RFC 6750 §3.1 for tokens.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var invalid *validation.Error
	switch {
	case errors.As(err, &invalid):
		code, desc := describe(invalid)
		h.writeError(w, r, http.StatusBadRequest, code, desc)
	case errors.Is(err, ErrTokenRefused):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		h.writeError(w, r, http.StatusUnauthorized, "invalid_token",
			"The initial access token is unknown, expired, used up or revoked; ask the operator for another.")
	case errors.Is(err, errInvalidToken):
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		h.writeError(w, r, http.StatusUnauthorized, "invalid_token",
			"Send the registration access token this client was registered with, as Authorization: Bearer TOKEN.")
	case errors.Is(err, ErrNotFound):
		h.writeError(w, r, http.StatusNotFound, "invalid_request", "Client registration is off.")
	case errors.Is(err, errFull):
		h.writeError(w, r, http.StatusForbidden, "access_denied",
			"Open registration holds as many clients as it may ("+strconv.Itoa(h.Manager.cfg.MaxOpenClients)+"); ask the operator.")
	case errors.Is(err, errAddressLimit):
		w.Header().Set("Retry-After", "3600")
		h.writeError(w, r, http.StatusTooManyRequests, "temporarily_unavailable",
			"This address has registered "+strconv.Itoa(h.Manager.cfg.AddressLimit)+" clients in the last hour, the most it may; retry later.")
	case server.Unavailable(err):
		w.Header().Set("Retry-After", "5")
		h.writeError(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", "Latchkey cannot reach its database; retry shortly.")
	default:
		id := server.RequestID(r.Context())
		h.Logger.ErrorContext(r.Context(), "registration request failed", "request_id", id, "err", err)
		h.writeError(w, r, http.StatusInternalServerError, "server_error", "Registration failed (request ID "+id+").")
	}
}

// writeError answers with an RFC 6749 §5.2-shaped error, and logs why a
// client was refused, as the other protocol endpoints do.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	if status < http.StatusInternalServerError {
		h.Logger.InfoContext(r.Context(), "registration request refused", "request_id", server.RequestID(r.Context()),
			"status", status, "error", code, "description", desc)
	}
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
