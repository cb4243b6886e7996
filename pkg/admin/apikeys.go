package admin

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/apikey"
)

// API keys (pkg/apikey): a service client's are made, listed and revoked
// here; a user's personal keys, which only the user may make,
// are listed and revoked. The key itself is in the answer to its creation
// only. Changes are recorded as api_key.created and api_key.revoked,
// under the calling client.

// apiKeyFixed are the fields of a key the API shows but never takes. The
// values are error messages, not credentials.
var apiKeyFixed = map[string]string{ // #nosec G101 -- error messages, not credentials
	"id":             "is chosen by Latchkey",
	"key":            "is chosen by Latchkey and shown once, in the answer to the creation",
	"prefix":         "is read-only: the key's first characters",
	"client_id":      "is the client in the URL",
	"user_id":        "is read-only: only users make their own personal keys",
	"created_at":     "is read-only",
	"last_used_at":   "is read-only",
	"last_used_from": "is read-only",
}

// createdAPIKey is a new key with the key itself, shown this once.
type createdAPIKey struct {
	*apikey.Key
	Secret string `json:"key"`
}

func (a *API) listClientAPIKeys(r *http.Request) (reply, error) {
	c, err := a.Clients.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	keys, err := a.APIKeys.List(r.Context(), apikey.Client(c.ID))
	if err != nil {
		return reply{}, err
	}
	return ok(page[apikey.Key]{Items: nonNil(keys)}), nil
}

func (a *API) createClientAPIKey(r *http.Request) (reply, error) {
	id := chi.URLParam(r, "id")
	var req apikey.Request
	if err := readJSON(r, &req, "an API key", apiKeyFixed); err != nil {
		return reply{}, err
	}
	k, secret, err := a.APIKeys.Create(r.Context(), apikey.Client(id), req)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: createdAPIKey{k, secret},
		location: Path + "/clients/" + id + "/api-keys/" + k.ID}, nil
}

func (a *API) revokeClientAPIKey(r *http.Request) (reply, error) {
	c, err := a.Clients.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return noContent, a.APIKeys.Revoke(r.Context(), apikey.Client(c.ID), chi.URLParam(r, "key"))
}

func (a *API) listUserAPIKeys(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	keys, err := a.APIKeys.List(r.Context(), apikey.User(u.ID))
	if err != nil {
		return reply{}, err
	}
	return ok(page[apikey.Key]{Items: nonNil(keys)}), nil
}

func (a *API) revokeUserAPIKey(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return noContent, a.APIKeys.Revoke(r.Context(), apikey.User(u.ID), chi.URLParam(r, "key"))
}
