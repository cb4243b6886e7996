package admin

import (
	"context"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/events"
)

// Webhooks is webhook subscriptions as the API manages them
// (pkg/events.Manager, which the CLI uses too). Secrets are returned only
// by Create and RotateSecret.
type Webhooks interface {
	List(ctx context.Context) ([]*events.Subscription, error)
	Get(ctx context.Context, id string) (*events.Subscription, error)
	Create(ctx context.Context, in events.Input) (*events.Subscription, string, error)
	Update(ctx context.Context, id string, in events.Input) (*events.Subscription, error)
	Delete(ctx context.Context, id string) error
	Enable(ctx context.Context, id string) (*events.Subscription, error)
	RotateSecret(ctx context.Context, id string) (*events.Subscription, string, error)
	Test(ctx context.Context, id string) (string, error)
	Deliveries(ctx context.Context, id string, q events.DeliveryQuery) ([]*events.Delivery, error)
}

// withSecret is a subscription as created or rotated: the one answer
// that carries its signing secret.
type withSecret struct {
	*events.Subscription
	// Secret is the signing secret, whsec_ and base64, shown this once.
	Secret string `json:"secret"`
}

// listWebhooks lists every subscription: there are at most
// events.MaxSubscriptions, so the list is one page.
func (a *API) listWebhooks(r *http.Request) (reply, error) {
	subs, err := a.Webhooks.List(r.Context())
	if err != nil {
		return reply{}, err
	}
	if subs == nil {
		subs = []*events.Subscription{}
	}
	return ok(page[*events.Subscription]{Items: subs}), nil
}

func (a *API) createWebhook(r *http.Request) (reply, error) {
	var in events.Input
	if err := readJSON(r, &in, "a webhook subscription", nil); err != nil {
		return reply{}, err
	}
	s, secret, err := a.Webhooks.Create(r.Context(), in)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: withSecret{s, secret}, location: Path + "/webhooks/" + s.ID}, nil
}

func (a *API) getWebhook(r *http.Request) (reply, error) {
	s, err := a.Webhooks.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(s), nil
}

// patchWebhook changes the fields the body gives: url, description,
// event_types.
func (a *API) patchWebhook(r *http.Request) (reply, error) {
	var in events.Input
	if err := readJSON(r, &in, "a webhook subscription", nil); err != nil {
		return reply{}, err
	}
	s, err := a.Webhooks.Update(r.Context(), chi.URLParam(r, "id"), in)
	if err != nil {
		return reply{}, err
	}
	return ok(s), nil
}

func (a *API) deleteWebhook(r *http.Request) (reply, error) {
	if err := a.Webhooks.Delete(r.Context(), chi.URLParam(r, "id")); err != nil {
		return reply{}, err
	}
	return noContent, nil
}

// enableWebhook enables a subscription, such as one a node disabled
// because its deliveries kept failing; its pending events resume.
func (a *API) enableWebhook(r *http.Request) (reply, error) {
	s, err := a.Webhooks.Enable(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(s), nil
}

func (a *API) rotateWebhookSecret(r *http.Request) (reply, error) {
	s, secret, err := a.Webhooks.RotateSecret(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(withSecret{s, secret}), nil
}

// testWebhook sends a webhook.tested event to the subscription through
// the outbox. It answers 202: the event is written, not yet delivered,
// and the deliveries list shows how it goes.
func (a *API) testWebhook(r *http.Request) (reply, error) {
	id := chi.URLParam(r, "id")
	eventID, err := a.Webhooks.Test(r.Context(), id)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusAccepted, body: map[string]string{"event_id": eventID},
		location: Path + "/webhooks/" + id + "/deliveries"}, nil
}

// listWebhookDeliveries lists a subscription's deliveries, newest first,
// filtered by status: what waits (and why: last_error), what failed for
// good, what arrived.
func (a *API) listWebhookDeliveries(r *http.Request) (reply, error) {
	id := chi.URLParam(r, "id")
	lq, err := a.parseList(r, "webhook-deliveries:"+id, "status")
	if err != nil {
		return reply{}, err
	}
	status, err := events.ParseStatus(lq.filters.Get("status"))
	if err != nil {
		return reply{}, badField("status", "%v", err)
	}
	q := events.DeliveryQuery{Status: status, Limit: lq.limit + 1}
	if lq.after != "" {
		if q.BeforeID, err = strconv.ParseInt(lq.after, 10, 64); err != nil {
			return reply{}, badField("cursor", "is not a cursor of this list")
		}
	}
	ds, err := a.Webhooks.Deliveries(r.Context(), id, q)
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, ds, func(d *events.Delivery) string { return strconv.FormatInt(d.ID, 10) })), nil
}
