package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/roles"
)

// Userinfo serves the UserInfo endpoint (OpenID Connect Core §5.3) by GET
// or POST. The access token comes in the Authorization header, or in a POST
// body as access_token (RFC 6750 §2.2); never in the URL, where it would
// end up in logs (RFC 9700 §4.3.2). Only a token from a user's sign-in is
// served (userinfo describes the End-User, Core §5.3): a client-credentials
// token has no user, even if its client's ID equals someone's sub. The
// answer holds the claims the token's scopes grant, read from the user's
// current profile.
func (p *Provider) Userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := bearerToken(w, r)
	if token == "" {
		// RFC 6750 §3.1: no error code when no credentials were sent.
		p.bearerChallenge(w, http.StatusUnauthorized, "", "")
		return
	}
	use, ar, err := p.fosite.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	var (
		sub    string
		isUser bool
	)
	if err == nil {
		sub, isUser = userOf(ar)
	}
	switch {
	case err != nil && protocolError(err).CodeField == http.StatusServiceUnavailable:
		p.writeError(ctx, w, err)
		return
	case err != nil, use != fosite.AccessToken:
		p.bearerChallenge(w, http.StatusUnauthorized, "invalid_token", "The access token is not valid.")
		return
	case !isUser:
		p.bearerChallenge(w, http.StatusUnauthorized, "invalid_token", "The access token was not issued for a user's sign-in.")
		return
	case !ar.GetGrantedScopes().Has("openid"):
		p.bearerChallenge(w, http.StatusForbidden, "insufficient_scope", "The access token was not granted the openid scope.")
		return
	}
	user, err := p.users.Get(ctx, sub)
	switch {
	case errors.Is(err, identity.ErrNotFound) || (err == nil && user.Disabled):
		p.bearerChallenge(w, http.StatusUnauthorized, "invalid_token", "The user of this access token no longer exists.")
		return
	case err != nil:
		p.writeError(ctx, w, err)
		return
	}
	claims := user.ClaimValues(identity.ClaimsForScopes(ar.GetGrantedScopes()))
	if ar.GetGrantedScopes().Has(roles.Scope) {
		names, err := p.roles.OfUser(ctx, user.ID)
		if err != nil {
			p.writeError(ctx, w, err)
			return
		}
		claims[roles.Claim] = append([]string{}, names...)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(claims)
}

// bearerToken returns the access token of a request, from the
// Authorization header or a form body.
func bearerToken(w http.ResponseWriter, r *http.Request) string {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
		return strings.TrimSpace(token)
	}
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err == nil {
			return r.PostForm.Get("access_token")
		}
	}
	return ""
}

// bearerChallenge answers as RFC 6750 §3 says a protected resource does.
func (p *Provider) bearerChallenge(w http.ResponseWriter, status int, code, description string) {
	challenge := `Bearer realm="` + p.issuer + `"`
	if code != "" {
		challenge += `, error="` + code + `", error_description="` + description + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}
