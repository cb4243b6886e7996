// This file is RFC 8707 resource indicators: the resource parameter at the
// authorization and token endpoints, which restricts a token to the
// registered resources (pkg/resource) the client names.

package oauth

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/resource"
	"github.com/latchkey/latchkey/pkg/roles"
)

// Resources is the registry of RFC 8707 resources (pkg/resource).
type Resources interface {
	// Get returns the resource uri names, or resource.ErrNotFound.
	Get(ctx context.Context, uri string) (*resource.Resource, error)
}

// maxResources bounds the resource parameters of one request: each costs
// a lookup.
const maxResources = 10

// errInvalidTarget is RFC 8707 §2's error, which fosite does not define.
// Use it through WithHint, which copies.
var errInvalidTarget = &fosite.RFC6749Error{
	ErrorField:       "invalid_target",
	DescriptionField: "The requested resource is invalid, missing, unknown, or malformed.",
	CodeField:        http.StatusBadRequest,
}

// ownScopes are the scopes Latchkey itself serves (the ID token, userinfo,
// refresh tokens): they mean nothing to a resource, so a request for a
// resource keeps them whatever the resource accepts.
var ownScopes = []string{"openid", "profile", "email", "address", "phone", "offline_access", "offline", roles.Scope}

// resourcesFor checks the resource indicators a request names for client
// c: each an absolute URI without a fragment (RFC 8707 §2), registered,
// and in the client's audience, which is the list of APIs it may call.
// Anything else is invalid_target, which says which and why.
func (p *Provider) resourcesFor(ctx context.Context, c fosite.Client, uris []string) ([]*resource.Resource, error) {
	uris = slices.Compact(slices.Sorted(slices.Values(uris)))
	if len(uris) > maxResources {
		return nil, errInvalidTarget.WithHintf("At most %d resources may be requested at once.", maxResources)
	}
	out := make([]*resource.Resource, 0, len(uris))
	for _, uri := range uris {
		if err := resource.ValidateURI(uri); err != nil {
			return nil, errInvalidTarget.WithHintf("The resource %.100q %v.", uri, err)
		}
		if !slices.Contains(c.GetAudience(), uri) {
			return nil, errInvalidTarget.WithHintf("The client may not request tokens for the resource %q.", uri)
		}
		if p.resources == nil {
			return nil, errInvalidTarget.WithHintf("The resource %q is not registered.", uri)
		}
		r, err := p.resources.Get(ctx, uri)
		if errors.Is(err, resource.ErrNotFound) {
			return nil, errInvalidTarget.WithHintf("The resource %q is not registered.", uri)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// uriOf lists the URIs of rs.
func urisOf(rs []*resource.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.URI
	}
	return out
}

// acceptedBy reports whether scope may go in a token for rs: Latchkey's
// own, or accepted by one of them.
func acceptedBy(scope string, rs []*resource.Resource) bool {
	return slices.Contains(ownScopes, scope) || slices.ContainsFunc(rs, func(r *resource.Resource) bool { return r.Accepts(scope) })
}

// checkScopes refuses a request whose scopes the resources it names do
// not accept, with invalid_target (RFC 8707 §2: the resource and scope
// together are not acceptable).
func checkScopes(scopes []string, rs []*resource.Resource) error {
	for _, s := range scopes {
		if !acceptedBy(s, rs) {
			return errInvalidTarget.WithHintf("No requested resource accepts the scope %q.", s)
		}
	}
	return nil
}

// narrowScopes keeps of scopes those a token for rs may carry.
func narrowScopes(scopes []string, rs []*resource.Resource) fosite.Arguments {
	out := fosite.Arguments{}
	for _, s := range scopes {
		if acceptedBy(s, rs) {
			out = append(out, s)
		}
	}
	return out
}

// requestResources applies an authorization request's resource parameters:
// checked (resourcesFor, checkScopes), they become the audience the user
// grants (signInSession), so that the code's tokens are for them alone. A
// request without them keeps the audience behaviour of before: the
// audience parameter, or the client's whole audience.
func (p *Provider) requestResources(ctx context.Context, ar fosite.AuthorizeRequester) error {
	uris := ar.GetRequestForm()["resource"]
	if len(uris) == 0 {
		return nil
	}
	if len(ar.GetRequestedAudience()) > 0 {
		return fosite.ErrInvalidRequest.WithHint("Send resource (RFC 8707) or audience, not both.")
	}
	rs, err := p.resourcesFor(ctx, ar.GetClient(), uris)
	if err != nil {
		return err
	}
	if err := checkScopes(ar.GetRequestedScopes(), rs); err != nil {
		return err
	}
	ar.SetRequestedAudience(urisOf(rs))
	return nil
}

// grantResources restricts a client-credentials token to the resources
// the request names: its audience is them, and its scopes those they
// accept. Scopes the client asked for explicitly must all be accepted
// (invalid_target otherwise); the client's default scopes are narrowed.
func (p *Provider) grantResources(ctx context.Context, ar fosite.AccessRequester, uris []string) error {
	if len(ar.GetRequestedAudience()) > 0 {
		return fosite.ErrInvalidRequest.WithHint("Send resource (RFC 8707) or audience, not both.")
	}
	rs, err := p.resourcesFor(ctx, ar.GetClient(), uris)
	if err != nil {
		return err
	}
	if err := checkScopes(ar.GetRequestedScopes(), rs); err != nil {
		return err
	}
	req, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return errors.New("oauth: an access request of an unexpected type")
	}
	req.GrantedAudience = urisOf(rs)
	req.GrantedScope = narrowScopes(req.GrantedScope, rs)
	return nil
}

// narrowing is, in the context of a code or refresh token request that
// names resources, the resources its access token is for; once the token
// is made (narrowAccessToken) it also holds what the grant had, for the
// refresh token to keep (fositeStore.CreateRefreshTokenSession).
type narrowing struct {
	resources []*resource.Resource
	// done says the access token was narrowed, and wide* hold the grant.
	done                     bool
	wideScopes, wideAudience fosite.Arguments
}

type narrowingKey struct{}

// narrowToResources prepares the access token of a code or refresh token
// request to be restricted to the resources it names, each of which the
// grant must already be for (RFC 8707 §2.2: a subset of what was
// authorized); its scopes are narrowed to those they accept. The refresh
// token issued with it keeps the whole grant, so that the client can ask
// for another resource next time. It returns the context to issue the
// tokens under.
//
// fosite grants a code's scopes and audience only as it issues the tokens,
// so the restriction itself is made then, by the strategy
// (narrowAccessToken); here the request is checked against what the grant
// is for: for a refresh token, its granted audience; for a code, the
// audience signInSession granted, which is the requested one or else the
// client's.
func (p *Provider) narrowToResources(ctx context.Context, ar fosite.AccessRequester, uris []string) (context.Context, error) {
	authorized := ar.GetGrantedAudience()
	if len(authorized) == 0 {
		authorized = ar.GetRequestedAudience()
	}
	if len(authorized) == 0 {
		authorized = ar.GetClient().GetAudience()
	}
	for _, uri := range uris {
		if !slices.Contains(authorized, uri) {
			return ctx, errInvalidTarget.WithHintf("The grant is not for the resource %.100q; ask for it at the authorization endpoint.", uri)
		}
	}
	rs, err := p.resourcesFor(ctx, ar.GetClient(), uris)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, narrowingKey{}, &narrowing{resources: rs}), nil
}

// narrowAccessToken restricts r, whose tokens are being made, to the
// resources ctx names (narrowToResources): its audience to them, as far as
// the grant is for them, and its scopes to those they accept. It remembers
// what the grant had for the refresh token.
func narrowAccessToken(ctx context.Context, r fosite.Requester) {
	n, ok := ctx.Value(narrowingKey{}).(*narrowing)
	if !ok || n.done {
		return
	}
	req, ok := r.(*fosite.AccessRequest)
	if !ok {
		return
	}
	n.done = true
	n.wideScopes, n.wideAudience = slices.Clone(req.GrantedScope), slices.Clone(req.GrantedAudience)
	aud := fosite.Arguments{}
	for _, uri := range urisOf(n.resources) {
		if slices.Contains(req.GrantedAudience, uri) {
			aud = append(aud, uri)
		}
	}
	req.GrantedAudience = aud
	req.GrantedScope = narrowScopes(req.GrantedScope, n.resources)
}

// CreateRefreshTokenSession stores a refresh token with the whole grant
// when its access token was narrowed to some resources (narrowAccessToken).
func (s *fositeStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	if n, ok := ctx.Value(narrowingKey{}).(*narrowing); ok && n.done {
		if r, ok := req.(*fosite.Request); ok {
			wide := *r
			wide.GrantedScope, wide.GrantedAudience = n.wideScopes, n.wideAudience
			req = &wide
		}
	}
	return s.Store.CreateRefreshTokenSession(ctx, signature, accessSignature, req)
}
