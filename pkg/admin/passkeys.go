package admin

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/passkey"
)

// passkeyView is a passkey as the API shows it: what an operator needs to
// tell a user's passkeys apart, never the public key.
type passkeyView struct {
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Transports     []string   `json:"transports"`
	BackupEligible bool       `json:"backup_eligible"`
	BackupState    bool       `json:"backup_state"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
}

func (a *API) listPasskeys(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	keys, err := a.Passkeys.List(r.Context(), u.ID)
	if err != nil {
		return reply{}, err
	}
	views := []passkeyView{}
	for _, k := range keys {
		v := passkeyView{ID: passkey.EncodeID(k.ID), Name: k.Name, Transports: nonNil(k.Transports),
			BackupEligible: k.BackupEligible, BackupState: k.BackupState, CreatedAt: k.CreatedAt}
		if !k.LastUsedAt.IsZero() {
			v.LastUsedAt = &k.LastUsedAt
		}
		views = append(views, v)
	}
	return ok(page[passkeyView]{Items: views}), nil
}

// removePasskey removes one of the user's passkeys, for a user who lost
// the device; DELETE /users/{id}/mfa removes them all with the TOTP
// factor.
func (a *API) removePasskey(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	id, err := passkey.DecodeID(chi.URLParam(r, "credential"))
	if err != nil {
		return reply{}, err
	}
	return noContent, a.Passkeys.Remove(r.Context(), u.ID, id)
}
