package oauth

import (
	"context"
	"time"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/pkg/roles"
)

// Session is what Latchkey keeps with every grant, in one concrete type so
// that fosite always stores and loads the same shape: who the grant is for
// (the subject: a user, or the client itself for client credentials) and
// when each of its tokens expires. It embeds fosite's OpenID Connect session,
// which carries the ID token claims of sign-ins. (Sessions stored by earlier
// releases may hold a userinfo_claims member; it is ignored.)
type Session struct {
	*openid.DefaultSession `json:"oidc"`
}

var _ fosite.Session = (*Session)(nil)

// User returns the sub of the user whose sign-in the grant comes from, and
// false for a grant no user is behind. Only a sign-in (signInSession) sets
// the ID token claims' subject; client credentials set the session's
// subject to the client and never these claims. So a client whose ID
// happens to equal a user's sub still gets no user's grant.
func (s *Session) User() (string, bool) {
	if s == nil || s.DefaultSession == nil || s.Claims == nil || s.Claims.Subject == "" {
		return "", false
	}
	return s.Claims.Subject, true
}

// userOf returns the user behind a grant, as Session.User does, for any
// session fosite hands back.
func userOf(r fosite.Requester) (string, bool) {
	s, ok := r.GetSession().(*Session)
	if !ok {
		return "", false
	}
	return s.User()
}

// NewSession returns an empty session, ready for fosite to fill or to load
// a stored one into.
func NewSession() *Session {
	return &Session{DefaultSession: &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Extra: map[string]any{}},
		Headers: &jwt.Headers{Extra: map[string]any{}},
	}}
}

// Clone returns a deep copy, which fosite makes before changing a stored
// session for a new token.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(*Session)
}

// accessTokenClaims returns the claims of an RFC 9068 JWT access token for
// a grant: RFC 9068 §2.2 wants iss, exp, aud, sub, client_id, iat and jti,
// and scope as a space-separated string.
func accessTokenClaims(r fosite.Requester, issuer string, now time.Time) jwt.MapClaims {
	s := r.GetSession()
	claims := &jwt.JWTClaims{
		Subject:    s.GetSubject(),
		Issuer:     issuer,
		Audience:   audienceOf(r),
		IssuedAt:   now,
		ExpiresAt:  s.GetExpiresAt(fosite.AccessToken),
		Scope:      r.GetGrantedScopes(),
		ScopeField: jwt.JWTScopeFieldString,
		Extra:      map[string]any{"client_id": r.GetClient().GetID()},
	}
	for k, v := range userClaims(s) {
		claims.Extra[k] = v
	}
	return claims.ToMapClaims()
}

// userClaims returns what JWT access tokens and introspection say about
// the user behind a grant: how they signed in, acr and auth_time, which RFC
// 9470 §6 asks for so that a resource server can demand a stronger or
// fresher sign-in, and amr, which RFC 9068 §2.2.1 allows; and their
// roles, if the grant has the roles scope. A grant without a user (client
// credentials) has none of these.
func userClaims(s fosite.Session) map[string]any {
	out := map[string]any{}
	sess, ok := s.(*Session)
	if !ok || sess.Claims == nil {
		return out
	}
	if acr := sess.Claims.AuthenticationContextClassReference; acr != "" {
		out["acr"] = acr
	}
	if at := sess.Claims.AuthTime; !at.IsZero() {
		out["auth_time"] = at.Unix()
	}
	if amr := sess.Claims.AuthenticationMethodsReferences; len(amr) > 0 {
		out["amr"] = amr
	}
	if r, ok := sess.Claims.Extra[roles.Claim]; ok {
		out[roles.Claim] = r
	}
	return out
}

// audienceOf returns who a grant's tokens are for: the audience granted, or,
// when none was, the client itself, so that the aud an RFC 9068 token and
// introspection must carry is never empty.
func audienceOf(r fosite.Requester) []string {
	if aud := r.GetGrantedAudience(); len(aud) > 0 {
		return aud
	}
	return []string{r.GetClient().GetID()}
}

// addRoles puts the user's current roles in the session's ID token claims,
// from where JWT access tokens and introspection copy them, when the grant
// has the roles scope; without it, no roles claim at all.
func (p *Provider) addRoles(ctx context.Context, ar fosite.Requester, s *Session) error {
	if !ar.GetGrantedScopes().Has(roles.Scope) {
		delete(s.Claims.Extra, roles.Claim)
		return nil
	}
	names, err := p.roles.OfUser(ctx, s.GetSubject())
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	s.Claims.Extra[roles.Claim] = names
	return nil
}
