package admin

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/client"
)

// clientFixed are the fields of a client the API shows but never takes.
// The values are error messages, not credentials.
var clientFixed = map[string]string{ // #nosec G101 -- error messages, not credentials
	"created_at":    "is read-only",
	"updated_at":    "is read-only",
	"client_secret": "is chosen by Latchkey; rotate it with POST /admin/clients/{id}/secret",
}

// createdClient is a new client with its secret, shown this once.
type createdClient struct {
	*client.Client
	Secret string `json:"client_secret,omitempty"`
}

func (a *API) listClients(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "clients", "name_prefix")
	if err != nil {
		return reply{}, err
	}
	cs, err := a.Clients.Find(r.Context(), client.Query{NamePrefix: lq.filters.Get("name_prefix"), After: lq.after, Limit: lq.limit + 1})
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, cs, func(c *client.Client) string { return c.ID })), nil
}

func (a *API) createClient(r *http.Request) (reply, error) {
	var c client.Client
	if err := readJSON(r, &c, "a client", clientFixed); err != nil {
		return reply{}, err
	}
	created, secret, err := a.Clients.Create(r.Context(), c)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: createdClient{created, secret}, location: Path + "/clients/" + created.ID}, nil
}

func (a *API) getClient(r *http.Request) (reply, error) {
	c, err := a.Clients.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(c), nil
}

// replaceClient replaces a client's metadata with the body, as PUT does:
// fields left out take their defaults. A client that comes to need a
// secret gets one, returned here.
func (a *API) replaceClient(r *http.Request) (reply, error) {
	id := chi.URLParam(r, "id")
	var c client.Client
	if err := readJSON(r, &c, "a client", clientFixed); err != nil {
		return reply{}, err
	}
	if c.ID != "" && c.ID != id {
		return reply{}, invalidField("client_id", "is %q but the URL names %q; a client's ID cannot change", c.ID, id)
	}
	updated, secret, err := a.Clients.Update(r.Context(), id, func(stored *client.Client) error {
		*stored = c
		return nil
	})
	if err != nil {
		return reply{}, err
	}
	return ok(createdClient{updated, secret}), nil
}

// patchClient applies a JSON merge patch (RFC 7396) to a client's
// metadata: fields in the patch change, null removes, the rest stay.
func (a *API) patchClient(r *http.Request) (reply, error) {
	id := chi.URLParam(r, "id")
	patch, err := readPatch(r, "a client", clientFixed)
	if err != nil {
		return reply{}, err
	}
	updated, secret, err := a.Clients.Update(r.Context(), id, func(stored *client.Client) error {
		merged, err := mergePatch(stored, patch)
		if err != nil {
			return err
		}
		var c client.Client
		if err := decodeStrict(merged, &c, "a client", nil); err != nil {
			return err
		}
		if c.ID != id {
			return invalidField("client_id", "cannot change")
		}
		// The response types follow from the grants, as on the CLI: new
		// grants without response types get the ones they need.
		if patchSets(patch, "grant_types") && !patchSets(patch, "response_types") {
			c.ResponseTypes = nil
		}
		*stored = c
		return nil
	})
	if err != nil {
		return reply{}, err
	}
	return ok(createdClient{updated, secret}), nil
}

func (a *API) deleteClient(r *http.Request) (reply, error) {
	return noContent, a.Clients.Delete(r.Context(), chi.URLParam(r, "id"))
}

// rotatedSecret is the answer to a secret rotation. The previous secret's
// end is absent when it ended at once.
type rotatedSecret struct {
	ClientID                string     `json:"client_id"`
	Secret                  string     `json:"client_secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

func (a *API) rotateSecret(r *http.Request) (reply, error) {
	var body struct {
		// Grace is how long the old secret keeps working; the server's
		// default when absent.
		Grace *string `json:"grace"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &body, "a secret rotation", nil); err != nil {
			return reply{}, err
		}
	}
	grace := time.Duration(-1) // the Manager's default
	if body.Grace != nil {
		// The longest grace is the Manager's rule (client.MaxSecretGrace).
		d, err := time.ParseDuration(*body.Grace)
		if err != nil || d < 0 {
			return reply{}, invalidField("grace", "must be a duration of \"0s\" or more, such as \"24h\"")
		}
		grace = d
	}
	c, secret, err := a.Clients.RotateSecret(r.Context(), chi.URLParam(r, "id"), grace)
	if err != nil {
		return reply{}, err
	}
	rs := rotatedSecret{ClientID: c.ID, Secret: secret}
	if exp := c.PreviousSecretExpiresAt; exp.After(time.Now()) {
		exp = exp.UTC()
		rs.PreviousSecretExpiresAt = &exp
	}
	return ok(rs), nil
}

func (a *API) revokeClientTokens(r *http.Request) (reply, error) {
	n, err := a.Clients.RevokeTokens(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(map[string]int64{"revoked": n}), nil
}
