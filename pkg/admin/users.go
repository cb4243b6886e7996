package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/identity"
)

// profile is the part of a user an admin sets: what apps may learn, and,
// when creating the user, their first password, or an invitation to
// choose it.
type profile struct {
	Email         string         `json:"email"`
	EmailVerified bool           `json:"email_verified"`
	Name          string         `json:"name"`
	GivenName     string         `json:"given_name"`
	FamilyName    string         `json:"family_name"`
	Claims        map[string]any `json:"claims"`
	Password      string         `json:"password,omitempty"`
	Invite        bool           `json:"invite,omitempty"`
}

func profileOf(u *identity.User) profile {
	return profile{Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		GivenName: u.GivenName, FamilyName: u.FamilyName, Claims: u.Claims}
}

func (p profile) applyTo(u *identity.User) {
	u.Email, u.EmailVerified, u.Name, u.GivenName, u.FamilyName = p.Email, p.EmailVerified, p.Name, p.GivenName, p.FamilyName
	u.Claims = p.Claims
	if len(u.Claims) == 0 {
		u.Claims = nil
	}
}

// userFixed are the fields of a user the API shows but never takes from a
// profile.
var userFixed = map[string]string{
	"sub":        "is chosen by Latchkey and never changes",
	"disabled":   "is changed with POST /admin/users/{id}/disable and /enable",
	"created_at": "is read-only",
	"updated_at": "is read-only",
}

func (a *API) listUsers(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "users", "email_prefix")
	if err != nil {
		return reply{}, err
	}
	us, err := a.Users.Find(r.Context(), identity.Query{EmailPrefix: lq.filters.Get("email_prefix"), After: lq.after, Limit: lq.limit + 1})
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, us, func(u *identity.User) string { return strings.ToLower(u.Email) })), nil
}

func (a *API) createUser(r *http.Request) (reply, error) {
	var p profile
	if err := readJSON(r, &p, "a user", userFixed); err != nil {
		return reply{}, err
	}
	var u identity.User
	p.applyTo(&u)
	var (
		created *identity.User
		err     error
	)
	switch {
	case p.Invite && p.Password != "":
		return reply{}, invalidField("password", "must not be given with \"invite\": true; the invited user chooses their own")
	case p.Invite:
		created, err = a.Accounts.Invite(r.Context(), u, "")
	default:
		// An address not marked verified gets a verification link.
		created, err = a.Accounts.Create(r.Context(), u, p.Password)
	}
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: created, location: Path + "/users/" + created.ID}, nil
}

func (a *API) getUser(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return ok(u), nil
}

// patchUser applies a JSON merge patch (RFC 7396) to a user's profile.
// (A new email address is unverified unless the patch sets email_verified
// too: identity.Manager.Update sees to that.)
func (a *API) patchUser(r *http.Request) (reply, error) {
	fixed := map[string]string{"password": "is set with PUT /admin/users/{id}/password", // #nosec G101 -- an error message, not a credential
		"invite": "is sent with POST /admin/users/{id}/invitation"}
	for k, v := range userFixed {
		fixed[k] = v
	}
	patch, err := readPatch(r, "a user", fixed)
	if err != nil {
		return reply{}, err
	}
	// A new address not marked verified gets a verification link.
	u, err := a.Accounts.Update(r.Context(), chi.URLParam(r, "id"), func(u *identity.User) error {
		before := profileOf(u)
		merged, err := mergePatch(before, patch)
		if err != nil {
			return err
		}
		var after profile
		if err := decodeStrict(merged, &after, "a user", nil); err != nil {
			return err
		}
		after.applyTo(u)
		return nil
	})
	if err != nil {
		return reply{}, err
	}
	return ok(u), nil
}

func (a *API) deleteUser(r *http.Request) (reply, error) {
	return noContent, a.Users.Delete(r.Context(), chi.URLParam(r, "id"))
}

func (a *API) disableUser(r *http.Request) (reply, error) {
	return a.userAfter(r, a.Users.Disable)
}

func (a *API) enableUser(r *http.Request) (reply, error) {
	return a.userAfter(r, a.Users.Enable)
}

// unlockUser forgets the user's failed passwords and codes, so that an
// account paused or locked after too many failures can sign in at once.
func (a *API) unlockUser(r *http.Request) (reply, error) {
	return a.userAfter(r, a.Users.Unlock)
}

// userAfter makes a change to the user the URL names and answers with the
// user as it now is.
func (a *API) userAfter(r *http.Request, change func(ctx context.Context, id string) error) (reply, error) {
	id := chi.URLParam(r, "id")
	if err := change(r.Context(), id); err != nil {
		return reply{}, err
	}
	return a.getUser(r)
}

func (a *API) setPassword(r *http.Request) (reply, error) {
	var body struct {
		Password string `json:"password"`
	}
	if err := readJSON(r, &body, "a password change", nil); err != nil {
		return reply{}, err
	}
	if body.Password == "" {
		return reply{}, invalidField("password", "is required")
	}
	return noContent, a.Users.SetPassword(r.Context(), chi.URLParam(r, "id"), body.Password)
}

// resendInvitation mails the user a new invitation link and voids the
// ones before it.
func (a *API) resendInvitation(r *http.Request) (reply, error) {
	u, err := a.Accounts.ResendInvitation(r.Context(), chi.URLParam(r, "id"), "")
	if err != nil {
		return reply{}, err
	}
	return ok(u), nil
}

// revokeInvitation voids the user's unused invitation links.
func (a *API) revokeInvitation(r *http.Request) (reply, error) {
	return noContent, a.Accounts.RevokeInvitation(r.Context(), chi.URLParam(r, "id"))
}

// mfaStatus is what the API tells of a user's second factor.
type mfaStatus struct {
	Enabled           bool `json:"enabled"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
}

func (a *API) getMFA(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	var st mfaStatus
	if st.Enabled, err = a.MFA.Enabled(r.Context(), u.ID); err != nil {
		return reply{}, err
	}
	if st.Enabled {
		if st.RecoveryCodesLeft, err = a.MFA.RecoveryCodesLeft(r.Context(), u.ID); err != nil {
			return reply{}, err
		}
	}
	return ok(st), nil
}

func (a *API) resetMFA(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	return noContent, a.MFA.Reset(r.Context(), u.ID)
}

func (a *API) listSessions(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	sessions, err := a.Users.Sessions(r.Context(), u.ID)
	if err != nil {
		return reply{}, err
	}
	return ok(page[identity.BrowserSession]{Items: nonNil(sessions)}), nil
}

// signOutEverywhere ends all the user's sessions and revokes their tokens.
func (a *API) signOutEverywhere(r *http.Request) (reply, error) {
	return noContent, a.Users.SignOutEverywhere(r.Context(), chi.URLParam(r, "id"))
}

func (a *API) endSession(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	ended, err := a.Users.EndSession(r.Context(), u.ID, chi.URLParam(r, "sid"))
	if err != nil {
		return reply{}, err
	}
	if !ended {
		return reply{}, notFound("The user has no session with this sid.")
	}
	return noContent, nil
}

func (a *API) listConsents(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	consents, err := a.Users.Consents(r.Context(), u.ID)
	if err != nil {
		return reply{}, err
	}
	return ok(page[identity.Consent]{Items: nonNil(consents)}), nil
}

func (a *API) revokeConsent(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	revoked, err := a.Users.RevokeConsent(r.Context(), u.ID, chi.URLParam(r, "client_id"))
	if err != nil {
		return reply{}, err
	}
	if !revoked {
		return reply{}, notFound("The user has given this client no consent and it holds no tokens for them.")
	}
	return noContent, nil
}

func (a *API) listUserRoles(r *http.Request) (reply, error) {
	u, err := a.Users.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return reply{}, err
	}
	names, err := a.Roles.OfUser(r.Context(), u.ID)
	if err != nil {
		return reply{}, err
	}
	return ok(page[string]{Items: nonNil(names)}), nil
}

func (a *API) assignRole(r *http.Request) (reply, error) {
	return noContent, a.Roles.Assign(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "role"))
}

func (a *API) unassignRole(r *http.Request) (reply, error) {
	return noContent, a.Roles.Unassign(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "role"))
}

// nonNil makes an empty list encode as [], not null.
func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}
