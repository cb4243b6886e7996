package oauth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// Token serves the token endpoint (RFC 6749 §3.2): authorization codes,
// refresh tokens and client credentials, with the client authenticated by
// client_secret_basic, client_secret_post or private_key_jwt. A code or
// refresh token is honoured only while its user may still use it
// (userStillAllows).
func (p *Provider) Token(w http.ResponseWriter, r *http.Request) {
	ctx, release := p.store.GuardTransactions(r.Context())
	defer release()

	// fosite answers a grant it has no handler for with a bare
	// invalid_request; RFC 6749 §5.2 has a code for it. A body that does not
	// parse is left to fosite to report.
	if err := r.ParseForm(); err == nil {
		if gt := r.PostForm.Get("grant_type"); gt != "" && !slices.Contains(p.grants, gt) {
			p.writeError(ctx, w, fosite.ErrUnsupportedGrantType.WithHintf("Latchkey offers the grant types %s.", strings.Join(p.grants, ", ")))
			return
		}
	}

	session := NewSession()
	ar, err := p.fosite.NewAccessRequest(ctx, r, session)
	if err == nil {
		// Counted once the client is known to be who it says, so that
		// nobody can use up another client's allowance; nothing has been
		// spent yet (a code or refresh token is spent in NewAccessResponse).
		err = p.limit(ctx, w, "token", ar.GetClient().GetID())
	}
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	// RFC 8707 resource indicators (resource.go).
	resources := r.PostForm["resource"]
	switch {
	case ar.GetGrantTypes().ExactOne(string(fosite.GrantTypeClientCredentials)):
		grantClientCredentials(ar, session)
		if len(resources) > 0 {
			if err := p.grantResources(ctx, ar, resources); err != nil {
				p.writeError(ctx, w, err)
				return
			}
		}
	case ar.GetGrantTypes().ExactOne(string(fosite.GrantTypeAuthorizationCode)),
		// An approved device code, like a code: the user may have been
		// disabled since they approved it (device.go).
		ar.GetGrantTypes().ExactOne(client.GrantDeviceCode):
		if err := p.userStillAllows(ctx, ar); err != nil {
			p.writeError(ctx, w, err)
			return
		}
		if len(resources) > 0 {
			if ctx, err = p.narrowToResources(ctx, ar, resources); err != nil {
				p.writeError(ctx, w, err)
				return
			}
		}
	case ar.GetGrantTypes().ExactOne(string(fosite.GrantTypeRefreshToken)):
		if err := p.userStillAllows(ctx, ar); err != nil {
			p.writeError(ctx, w, err)
			return
		}
		if len(resources) > 0 {
			if ctx, err = p.narrowToResources(ctx, ar, resources); err != nil {
				p.writeError(ctx, w, err)
				return
			}
		}
		// The new tokens carry the user's roles as they are now, so that a
		// role taken away is gone at the next refresh.
		if s, ok := ar.GetSession().(*Session); ok {
			if err := p.addRoles(ctx, ar, s); err != nil {
				p.writeError(ctx, w, err)
				return
			}
		}
	}
	resp, err := p.fosite.NewAccessResponse(ctx, ar)
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	p.fosite.WriteAccessResponse(ctx, w, ar, resp)
	p.metrics.TokenIssued(p.grantTypeOf(ar), accessTokenFormat(ar))
}

// grantTypeOf names the grant of a request that succeeded, for metrics:
// one of grantTypes, which is all fosite lets through.
func (p *Provider) grantTypeOf(ar fosite.AccessRequester) string {
	for _, gt := range p.grants {
		if ar.GetGrantTypes().ExactOne(gt) {
			return gt
		}
	}
	return "other"
}

// accessTokenFormat says how the strategy made the request's access token:
// "jwt" or "opaque".
func accessTokenFormat(ar fosite.AccessRequester) string {
	if _, ok := jwtClient(ar); ok {
		return "jwt"
	}
	return "opaque"
}

// grantTypes are the grants the composed handlers always serve; the
// device grant is served when it is on (Provider.grants).
var grantTypes = []string{client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantClientCredentials}

// grantClientCredentials decides what a client-credentials token is for,
// which fosite leaves to us once it has checked that the client may ask for
// what it asked. The request's scope and audience narrow the grant; left
// out, they default to everything registered for the client (RFC 6749 §3.3
// allows a registered default). The client is the subject: no user is
// involved (RFC 9068 §2.2).
func grantClientCredentials(ar fosite.AccessRequester, session *Session) {
	c := ar.GetClient()
	scopes := ar.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = c.GetScopes()
	}
	for _, s := range scopes {
		ar.GrantScope(s)
	}
	audience := ar.GetRequestedAudience()
	if len(audience) == 0 {
		audience = c.GetAudience()
	}
	for _, a := range audience {
		ar.GrantAudience(a)
	}
	session.Subject = c.GetID()
}

// userStillAllows is the rule a user's grant must pass each time it is used
// at the token endpoint, for an authorization code and for every refresh:
// the user still exists, is not disabled, and, unless the app skips consent,
// still allows the app every scope of the grant.
//
// Disabling or deleting a user, a new password, signing out everywhere and
// withdrawing consent revoke the grant's tokens and unused codes in the
// same transaction (storage/postgres). This check is what holds for a code
// issued in the moment before, and whatever else the revocation missed: a
// grant must not outlive the act that ended it. A refusal is invalid_grant,
// the code RFC 6749 §5.2 gives a grant that was revoked.
func (p *Provider) userStillAllows(ctx context.Context, ar fosite.AccessRequester) error {
	sub, ok := userOf(ar)
	if !ok {
		return fosite.ErrInvalidGrant.WithHint("The grant has no user behind it.")
	}
	user, err := p.users.Get(ctx, sub)
	switch {
	case errors.Is(err, identity.ErrNotFound) || (err == nil && user.Disabled):
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists or is disabled.")
	case err != nil:
		return err
	}
	c, ok := ar.GetClient().(*client.Client)
	if !ok {
		return fosite.ErrInvalidClient.WithHint("The client is not one Latchkey registered.")
	}
	// The authorization endpoint granted every scope requested (signInSession),
	// and a refresh grants the original scopes again: both are what the user
	// allowed.
	scopes := append(slices.Clone(ar.GetRequestedScopes()), ar.GetGrantedScopes()...)
	allowed, err := p.users.Allows(ctx, sub, c, scopes)
	if err != nil {
		return err
	}
	if !allowed {
		return fosite.ErrInvalidGrant.WithHint("The user no longer allows this app these scopes.")
	}
	return nil
}
