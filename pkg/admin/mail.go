package admin

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/mail"
)

// Outbox is the mail outbox as the API shows it and acts on it
// (pkg/mail.Manager, which the CLI uses too). What it returns never holds
// a message's body.
type Outbox interface {
	List(ctx context.Context, q mail.Query) ([]*mail.Stored, error)
	Get(ctx context.Context, id int64) (*mail.Stored, error)
	Retry(ctx context.Context, id int64) (*mail.Stored, error)
	SendTest(ctx context.Context, to string) (*mail.Stored, error)
}

// listMail lists the outbox, newest first, filtered by status: what is
// waiting, what failed for good, what went out.
func (a *API) listMail(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "mail", "status")
	if err != nil {
		return reply{}, err
	}
	status, err := mail.ParseStatus(lq.filters.Get("status"))
	if err != nil {
		return reply{}, badField("status", "%v", err)
	}
	q := mail.Query{Status: status, Limit: lq.limit + 1}
	if lq.after != "" {
		if q.BeforeID, err = strconv.ParseInt(lq.after, 10, 64); err != nil {
			return reply{}, badField("cursor", "is not a cursor of this list")
		}
	}
	ms, err := a.Mail.List(r.Context(), q)
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, ms, func(m *mail.Stored) string { return strconv.FormatInt(m.ID, 10) })), nil
}

func (a *API) getMail(r *http.Request) (reply, error) {
	id, err := mailID(r)
	if err != nil {
		return reply{}, err
	}
	m, err := a.Mail.Get(r.Context(), id)
	if err != nil {
		return reply{}, err
	}
	return ok(m), nil
}

// retryMail gives a message that failed for good a fresh run of attempts.
func (a *API) retryMail(r *http.Request) (reply, error) {
	id, err := mailID(r)
	if err != nil {
		return reply{}, err
	}
	m, err := a.Mail.Retry(r.Context(), id)
	if err != nil {
		return reply{}, err
	}
	return ok(m), nil
}

// sendTestMail writes the test message to the outbox. It answers 202: the
// message is written, not yet sent, and its URL shows how delivery goes.
func (a *API) sendTestMail(r *http.Request) (reply, error) {
	var body struct {
		To string `json:"to"`
	}
	if err := readJSON(r, &body, "a test message", nil); err != nil {
		return reply{}, err
	}
	if body.To == "" {
		return reply{}, invalidField("to", "is required: the address to send the test message to")
	}
	m, err := a.Mail.SendTest(r.Context(), body.To)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusAccepted, body: m, location: Path + "/mail/" + strconv.FormatInt(m.ID, 10)}, nil
}

// mailID reads the message ID of the URL. One that is not an ID names no
// message.
func mailID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		return 0, notFound("No message in the outbox has this ID; IDs are whole numbers, as GET /admin/mail lists them.")
	}
	return id, nil
}
