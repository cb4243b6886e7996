package admin

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/keys"
)

func (a *API) listKeys(r *http.Request) (reply, error) {
	infos, err := a.Keys.List(r.Context())
	if err != nil {
		return reply{}, err
	}
	return ok(page[keys.Info]{Items: nonNil(infos)}), nil
}

// rotateKeys adds a new signing key for every algorithm; the old ones stay
// published until retired.
func (a *API) rotateKeys(r *http.Request) (reply, error) {
	infos, err := a.Keys.Rotate(r.Context())
	if err != nil {
		return reply{}, err
	}
	return ok(page[keys.Info]{Items: infos}), nil
}

func (a *API) retireKey(r *http.Request) (reply, error) {
	info, err := a.Keys.Retire(r.Context(), chi.URLParam(r, "kid"))
	if err != nil {
		return reply{}, err
	}
	return ok(info), nil
}
