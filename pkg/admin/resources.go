package admin

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/resource"
)

// Resources are addressed by their URI, percent-encoded as one path
// segment: /admin/resources/https%3A%2F%2Fapi.example.com.

var resourceFixed = map[string]string{"created_at": "is read-only", "updated_at": "is read-only"}

// resourceURI is the URI the {uri} path segment names, decoded.
func resourceURI(r *http.Request) (string, error) {
	uri, err := url.PathUnescape(chi.URLParam(r, "uri"))
	if err != nil {
		return "", badRequest("The resource URI in the path is not percent-encoded properly.")
	}
	return uri, nil
}

func (a *API) listResources(r *http.Request) (reply, error) {
	lq, err := a.parseList(r, "resources")
	if err != nil {
		return reply{}, err
	}
	rs, err := a.Resources.Find(r.Context(), resource.Query{After: lq.after, Limit: lq.limit + 1})
	if err != nil {
		return reply{}, err
	}
	return ok(pageOf(a, lq, rs, func(r resource.Resource) string { return r.URI })), nil
}

func (a *API) createResource(r *http.Request) (reply, error) {
	var res resource.Resource
	if err := readJSON(r, &res, "a resource", resourceFixed); err != nil {
		return reply{}, err
	}
	created, err := a.Resources.Create(r.Context(), res)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusCreated, body: created, location: Path + "/resources/" + url.PathEscape(created.URI)}, nil
}

func (a *API) getResource(r *http.Request) (reply, error) {
	uri, err := resourceURI(r)
	if err != nil {
		return reply{}, err
	}
	res, err := a.Resources.Get(r.Context(), uri)
	if err != nil {
		return reply{}, err
	}
	return ok(res), nil
}

// replaceResource replaces a resource's name and scopes; its URI, which
// tokens carry, never changes.
func (a *API) replaceResource(r *http.Request) (reply, error) {
	uri, err := resourceURI(r)
	if err != nil {
		return reply{}, err
	}
	var res resource.Resource
	if err := readJSON(r, &res, "a resource", resourceFixed); err != nil {
		return reply{}, err
	}
	if res.URI != "" && res.URI != uri {
		return reply{}, invalidField("uri", "never changes: tokens carry it; register a new resource instead")
	}
	res.URI = uri
	if _, err := a.Resources.Get(r.Context(), uri); err != nil {
		return reply{}, err
	}
	replaced, err := a.Resources.Replace(r.Context(), res)
	if err != nil {
		return reply{}, err
	}
	return ok(replaced), nil
}

func (a *API) deleteResource(r *http.Request) (reply, error) {
	uri, err := resourceURI(r)
	if err != nil {
		return reply{}, err
	}
	return noContent, a.Resources.Delete(r.Context(), uri)
}
