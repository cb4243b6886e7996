package oauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/client"
)

// Introspect serves token introspection (RFC 7662). The caller must
// authenticate as a confidential client, by any method it is registered
// for; a bearer token is not accepted as credentials, so that holding one
// token does not let anyone probe others. Every token that is not usable
// right now (unknown, malformed, expired, revoked) gets {"active": false}
// and nothing more, and so does every token the caller may not ask about
// (mayIntrospect): the answer must not tell such a token from an unknown one.
func (p *Provider) Introspect(w http.ResponseWriter, r *http.Request) {
	p.metrics.Introspected(p.introspect(w, r))
}

// introspect answers an introspection request and says how it ended, as
// Observer.Introspected is told.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) string {
	ctx := r.Context()
	refuse := func(err error) string {
		if p.writeError(ctx, w, err) >= http.StatusInternalServerError {
			return "error"
		}
		return "rejected"
	}
	if r.Method != http.MethodPost {
		return refuse(fosite.ErrInvalidRequest.WithHint("Use POST."))
	}
	if err := r.ParseForm(); err != nil {
		return refuse(fosite.ErrInvalidRequest.WithHint("The body must be a form (application/x-www-form-urlencoded)."))
	}
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "bearer") {
		return refuse(fosite.ErrInvalidClient.WithHint("Authenticate as a client, not with a bearer token."))
	}
	caller, err := p.fosite.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil {
		err = p.limit(ctx, w, "introspect", caller.GetID())
	}
	if err != nil {
		return refuse(err)
	}
	if caller.IsPublic() {
		return refuse(fosite.ErrInvalidClient.WithHint("Only confidential clients may introspect tokens."))
	}
	token := r.PostForm.Get("token")
	if token == "" {
		return refuse(fosite.ErrInvalidRequest.WithHint("The token parameter is missing."))
	}
	if apikey.LooksLike(token) {
		return p.introspectKey(w, r, caller, token) // apikeys.go
	}

	use, ar, err := p.fosite.IntrospectToken(ctx, token, fosite.TokenUse(r.PostForm.Get("token_type_hint")), NewSession())
	switch {
	case err != nil && protocolError(err).CodeField == http.StatusServiceUnavailable:
		return refuse(err)
	case err != nil, !mayIntrospect(caller, use, ar):
		writeIntrospection(w, map[string]any{"active": false})
		return "inactive"
	}
	writeIntrospection(w, p.describe(use, ar))
	return "active"
}

// mayIntrospect reports whether caller may learn what a token is (RFC 7662
// §4 lets the server decide): a token issued to the caller itself, an
// access token whose aud names the caller's client ID (a resource server
// registered under its audience), or any access token if an admin gave the
// caller introspect_any_token. A refresh token is described only to its own
// client, which alone can use it. It decides on what is already loaded: the
// caller from client authentication, the token from its lookup.
func mayIntrospect(caller fosite.Client, use fosite.TokenUse, ar fosite.AccessRequester) bool {
	switch {
	case ar.GetClient().GetID() == caller.GetID():
		return true
	case use == fosite.RefreshToken:
		return false
	case slices.Contains(audienceOf(ar), caller.GetID()):
		return true
	}
	c, ok := caller.(*client.Client)
	return ok && c.IntrospectAnyToken
}

// describe is the RFC 7662 §2.2 answer for an active token.
func (p *Provider) describe(use fosite.TokenUse, ar fosite.AccessRequester) map[string]any {
	s := ar.GetSession()
	resp := map[string]any{
		"active":     true,
		"iss":        p.issuer,
		"client_id":  ar.GetClient().GetID(),
		"sub":        s.GetSubject(),
		"aud":        audienceOf(ar),
		"scope":      strings.Join(ar.GetGrantedScopes(), " "),
		"iat":        ar.GetRequestedAt().Unix(),
		"token_type": "Bearer",
	}
	exp := s.GetExpiresAt(fosite.AccessToken)
	if use == fosite.RefreshToken {
		// RFC 7662 §2.2's token_type is RFC 6749 §7.1's access token
		// type; a refresh token has none, and "refresh_token" there is no
		// such type (a resource server that checks for Bearer already
		// refuses it, but one that reads it as a type must not be told
		// one). So it is left out.
		delete(resp, "token_type")
		exp = s.GetExpiresAt(fosite.RefreshToken)
	}
	if !exp.IsZero() {
		resp["exp"] = exp.Unix()
	}
	for k, v := range userClaims(s) {
		resp[k] = v
	}
	return resp
}

func writeIntrospection(w http.ResponseWriter, body map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(body)
}
