package admin

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/trust"
)

// The user's trusted browsers (pkg/trust): listed, and forgotten one by
// one or all at once. Forgetting is recorded as device.forgotten, under
// the calling client.

func (a *API) listTrustedDevices(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	devices, err := a.Trust.List(r.Context(), u.ID)
	if err != nil {
		return reply{}, err
	}
	return ok(page[trust.Device]{Items: nonNil(devices)}), nil
}

func (a *API) forgetTrustedDevice(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	err = a.Trust.Forget(r.Context(), u.ID, chi.URLParam(r, "device"))
	if errors.Is(err, trust.ErrNotFound) {
		return reply{}, notFound("The user has no trusted device with this ID.")
	}
	if err != nil {
		return reply{}, err
	}
	return noContent, nil
}

func (a *API) forgetTrustedDevices(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	if _, err := a.Trust.ForgetAll(r.Context(), u.ID); err != nil {
		return reply{}, err
	}
	return noContent, nil
}
