package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/registration"
	"github.com/latchkey/latchkey/pkg/resource"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/usage"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Problem is an error answer: RFC 9457 problem details, with the request
// ID to quote to an operator and, for invalid input, one entry per field.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// FieldError is one problem with one field of the input, named by its JSON
// path ("redirect_uris", "claims.locale").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem types: what kind of failure, for code to branch on; the title
// and detail are for people.
const (
	typeBadRequest       = "urn:latchkey:problem:bad-request"
	typeTooLarge         = "urn:latchkey:problem:too-large"
	typeMediaType        = "urn:latchkey:problem:unsupported-media-type"
	typeMethodNotAllowed = "urn:latchkey:problem:method-not-allowed"
	typeUnauthorized     = "urn:latchkey:problem:unauthorized"
	typeForbidden        = "urn:latchkey:problem:forbidden"
	typeNotFound         = "urn:latchkey:problem:not-found"
	typeConflict         = "urn:latchkey:problem:conflict"
	typeInvalid          = "urn:latchkey:problem:invalid"
	typeUnavailable      = "urn:latchkey:problem:unavailable"
	typeInternal         = "urn:latchkey:problem:internal"
)

// problemError is an answer decided in the handler, carried as an error.
type problemError struct {
	status int
	typ    string
	detail string
	fields []FieldError
}

func (e *problemError) Error() string { return e.detail }

// badRequest is a 400: input that does not parse, or names what does not
// exist in the API.
func badRequest(format string, args ...any) error {
	return &problemError{status: http.StatusBadRequest, typ: typeBadRequest, detail: fmt.Sprintf(format, args...)}
}

// badField is a 400 about one field of the input.
func badField(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &problemError{status: http.StatusBadRequest, typ: typeBadRequest, detail: field + ": " + msg,
		fields: []FieldError{{field, msg}}}
}

// invalidField is a 422 about one field of the input.
func invalidField(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &problemError{status: http.StatusUnprocessableEntity, typ: typeInvalid, detail: field + ": " + msg,
		fields: []FieldError{{field, msg}}}
}

// notFound is a 404 naming what was not found.
func notFound(format string, args ...any) error {
	return &problemError{status: http.StatusNotFound, typ: typeNotFound, detail: fmt.Sprintf(format, args...)}
}

// writeProblem answers with p, as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.RequestID = server.RequestID(r.Context())
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// RefuseBody answers, as problem details, a request that the admin
// listener's body policy (server.BodyPolicy) refused before it reached the
// API: too large, or a body that broke off.
func RefuseBody(w http.ResponseWriter, r *http.Request, why server.Refusal) {
	typ := typeBadRequest
	switch why.Status {
	case http.StatusRequestEntityTooLarge:
		typ = typeTooLarge
	case http.StatusUnsupportedMediaType:
		typ = typeMediaType
	}
	writeProblem(w, r, Problem{Type: typ, Status: why.Status, Detail: why.Detail})
}

// writeError answers with the problem err stands for. Errors the domain
// packages return for bad input or missing things become 4xx answers that
// say what to fix; an unreachable database is 503; anything else is a 500
// whose cause goes to the log, not the caller.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pe        *problemError
		invalid   *validation.Error
		notFailed *mail.NotFailedError
		fail      = func(status int, typ, detail string, fields ...FieldError) {
			writeProblem(w, r, Problem{Type: typ, Status: status, Detail: detail, Errors: fields})
		}
	)
	switch {
	case errors.As(err, &pe):
		fail(pe.status, pe.typ, pe.detail, pe.fields...)
	case errors.As(err, &invalid):
		fields := make([]FieldError, len(invalid.Problems))
		for i, p := range invalid.Problems {
			fields[i] = FieldError{p.Field, p.Message}
		}
		fail(http.StatusUnprocessableEntity, typeInvalid, "The "+invalid.Of+" is not valid; see errors.", fields...)
	case errors.Is(err, identity.ErrWeakPassword):
		fail(http.StatusUnprocessableEntity, typeInvalid, err.Error(), FieldError{"password", err.Error()})
	case errors.Is(err, identity.ErrEmailTaken):
		fail(http.StatusConflict, typeConflict, "Another user already has this email, regardless of case.",
			FieldError{"email", "another user already has this email"})
	case errors.Is(err, client.ErrExists):
		fail(http.StatusConflict, typeConflict, "A client with this client_id already exists.",
			FieldError{"client_id", "is taken by another client"})
	case errors.Is(err, roles.ErrExists):
		fail(http.StatusConflict, typeConflict, "A role with this name already exists.", FieldError{"name", "is taken by another role"})
	case errors.Is(err, client.ErrNoSecret):
		fail(http.StatusConflict, typeConflict, "The client has no secret to rotate: it authenticates another way ("+err.Error()+").")
	case errors.Is(err, keys.ErrInUse):
		fail(http.StatusConflict, typeConflict, "This key signs for its algorithm now; rotate first, then retire it.")
	case errors.Is(err, client.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No client has this client_id.")
	case errors.Is(err, identity.ErrNotFound), errors.Is(err, roles.ErrUserNotFound):
		fail(http.StatusNotFound, typeNotFound, "No user has this sub.")
	case errors.Is(err, usage.ErrExists):
		fail(http.StatusConflict, typeConflict, "A plan with this name already exists.", FieldError{"name", "is taken by another plan"})
	case errors.Is(err, usage.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No plan has this name.")
	case errors.Is(err, usage.ErrBadSubject):
		fail(http.StatusBadRequest, typeBadRequest, "subject: "+err.Error(), FieldError{"subject", err.Error()})
	case errors.Is(err, usage.ErrBadRange):
		fail(http.StatusBadRequest, typeBadRequest, err.Error(), FieldError{"from", err.Error()})
	case errors.Is(err, resource.ErrExists):
		fail(http.StatusConflict, typeConflict, "A resource with this URI is already registered.", FieldError{"uri", "is taken by another resource"})
	case errors.Is(err, resource.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No resource has this URI; percent-encode it as one path segment.")
	case errors.Is(err, roles.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No role has this name.")
	case errors.Is(err, keys.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No active signing key has this kid.")
	case errors.As(err, &notFailed):
		fail(http.StatusConflict, typeConflict, notFailedDetail(notFailed.Message))
	case errors.Is(err, mail.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No message in the outbox has this ID.")
	case errors.Is(err, events.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "No webhook subscription has this ID.")
	case errors.Is(err, events.ErrTooMany):
		fail(http.StatusConflict, typeConflict, fmt.Sprintf("There are %d webhook subscriptions already, the most there may be; delete one first, or widen one's event_types.", events.MaxSubscriptions))
	case errors.Is(err, apikey.ErrTooMany):
		fail(http.StatusConflict, typeConflict, fmt.Sprintf("The owner holds %d API keys already, the most there may be; revoke one it no longer uses first.", apikey.MaxPerOwner))
	case errors.Is(err, apikey.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "The owner has no API key with this ID; list its keys to find it.")
	case errors.Is(err, registration.ErrTokenNotFound):
		fail(http.StatusNotFound, typeNotFound, "No initial access token has this ID; list them to find it.")
	case errors.Is(err, passkey.ErrNotFound):
		fail(http.StatusNotFound, typeNotFound, "The user has no passkey with this ID.")
	case errors.Is(err, identity.ErrNoFactor):
		fail(http.StatusNotFound, typeNotFound, "The user has no second factor.")
	case errors.Is(err, account.ErrHasPassword):
		fail(http.StatusConflict, typeConflict, "The user has set a password, so there is nothing to invite them to. "+
			"They can sign in, or use \"Forgot password?\" on the sign-in page.")
	case errors.Is(err, account.ErrNoInvitation):
		fail(http.StatusNotFound, typeNotFound, "The user has no unused invitation to revoke. "+
			"POST /admin/users/{id}/invitation sends a new one.")
	case server.Unavailable(err):
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, typeUnavailable, "Latchkey cannot reach its database; retry shortly.")
	default:
		a.Logger.LogAttrs(r.Context(), slog.LevelError, "admin API request failed",
			slog.String("request_id", server.RequestID(r.Context())), slog.String("err", err.Error()))
		fail(http.StatusInternalServerError, typeInternal, "Internal error; quote the request ID to the operator.")
	}
}

// notFailedDetail says why a message cannot be retried, and what to do
// instead.
func notFailedDetail(m *mail.Stored) string {
	if m.Status == mail.Sent {
		return "The message was sent; only a failed message can be retried. " +
			"To check that mail still arrives, send a test message (POST /admin/mail/test)."
	}
	return "The message is pending, not failed: a node retries it by itself, next at " +
		m.NextAttemptAt.UTC().Format(time.RFC3339) + " (see last_error). Only a failed message can be retried."
}
