package admin

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/registration"
)

// Initial access tokens for dynamic client registration
// (pkg/registration), when LATCHKEY_REGISTRATION is token: made, listed
// and revoked here. The token itself is in the answer to its creation
// only. Changes are recorded as registration_token.created and
// registration_token.revoked, under the calling client.

// registrationTokenFixed are the fields of a token the API shows but
// never takes. The values are error messages, not credentials.
var registrationTokenFixed = map[string]string{ // #nosec G101 -- error messages, not credentials
	"id":         "is chosen by Latchkey",
	"token":      "is chosen by Latchkey and shown once, in the answer to the creation",
	"prefix":     "is read-only: the token's first characters",
	"uses":       "is read-only: how many clients the token registered",
	"expires_at": "is set by expires_in, a duration such as \"24h\"",
	"created_at": "is read-only",
	"policy":     "is set by grant_types, scope and redirect_uris",
}

// createdRegistrationToken is a new token with the token itself, shown
// this once.
type createdRegistrationToken struct {
	*registration.InitialToken
	Secret string `json:"token"`
}

func (a *API) listRegistrationTokens(r *http.Request) (reply, error) {
	ts, err := a.Registrations.Tokens(r.Context())
	if err != nil {
		return reply{}, err
	}
	return ok(page[registration.InitialToken]{Items: nonNil(ts)}), nil
}

func (a *API) createRegistrationToken(r *http.Request) (reply, error) {
	var req registration.TokenRequest
	if err := readJSON(r, &req, "an initial access token", registrationTokenFixed); err != nil {
		return reply{}, err
	}
	t, secret, err := a.Registrations.CreateToken(r.Context(), req)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: createdRegistrationToken{t, secret},
		location: Path + "/registration-tokens/" + t.ID}, nil
}

func (a *API) revokeRegistrationToken(r *http.Request) (reply, error) {
	return noContent, a.Registrations.RevokeToken(r.Context(), chi.URLParam(r, "id"))
}
