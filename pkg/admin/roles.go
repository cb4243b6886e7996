package admin

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/roles"
)

var roleFixed = map[string]string{"created_at": "is read-only", "updated_at": "is read-only"}

func (a *API) listRoles(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "roles")
	if err != nil {
		return reply{}, err
	}
	rs, err := a.Roles.Find(r.Context(), roles.Query{After: lq.after, Limit: lq.limit + 1})
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, rs, func(r roles.Role) string { return r.Name })), nil
}

func (a *API) createRole(r *http.Request) (reply, error) {
	var role roles.Role
	if err := readJSON(r, &role, "a role", roleFixed); err != nil {
		return reply{}, err
	}
	created, err := a.Roles.Create(r.Context(), role)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: created, location: Path + "/roles/" + created.Name}, nil
}

func (a *API) getRole(r *http.Request) (reply, error) {
	role, err := a.Roles.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return reply{}, err
	}
	return ok(role), nil
}

// patchRole applies a JSON merge patch (RFC 7396) to a role: only its
// description can change, since apps know a role by its name.
func (a *API) patchRole(r *http.Request) (reply, error) {
	fixed := map[string]string{"name": "never changes: apps know the role by it; create a new role instead"}
	for k, v := range roleFixed {
		fixed[k] = v
	}
	patch, err := readPatch(r, "a role", fixed)
	if err != nil {
		return reply{}, err
	}
	current, err := a.Roles.Get(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		return reply{}, err
	}
	type description struct {
		Description string `json:"description"`
	}
	merged, err := mergePatch(description{current.Description}, patch)
	if err != nil {
		return reply{}, err
	}
	var d description
	if err := decodeStrict(merged, &d, "a role", nil); err != nil {
		return reply{}, err
	}
	role, err := a.Roles.Describe(r.Context(), current.Name, d.Description)
	if err != nil {
		return reply{}, err
	}
	return ok(role), nil
}

func (a *API) deleteRole(r *http.Request) (reply, error) {
	return noContent, a.Roles.Delete(r.Context(), chi.URLParam(r, "name"))
}
