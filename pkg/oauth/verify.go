package oauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
)

// ErrInvalidToken means an access token is unknown, malformed, expired or
// revoked, or is not an access token at all.
var ErrInvalidToken = errors.New("the access token is not valid")

// Grant is what a valid access token allows, for Latchkey's own APIs.
type Grant struct {
	ClientID string
	Subject  string
	// Scopes are the scopes the token was granted.
	Scopes []string
	// IssuedAt is when the token was requested and issued.
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Client is the token's client as it is now, read from the database
	// for this call, so that a change made since the token was issued (a
	// scope taken away, the secret rotated) shows here at once.
	Client *client.Client
}

// VerifyAccessToken checks an access token as the resource servers of
// Latchkey's own APIs (the admin API) do: it must be an access token
// issued here, active now, in either format, and its client must still
// exist (a deleted client's tokens are deleted with it). A database
// failure is returned as is, so that the caller answers 503 rather than
// 401.
func (p *Provider) VerifyAccessToken(ctx context.Context, token string) (Grant, error) {
	use, ar, err := p.fosite.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	switch {
	case err != nil && protocolError(err).CodeField >= http.StatusInternalServerError:
		return Grant{}, err
	case err != nil, use != fosite.AccessToken:
		return Grant{}, ErrInvalidToken
	}
	// Not the client the token lookup found, which may come from this
	// node's cache: admin power is judged on the row as it is this moment.
	c, err := p.store.ClientByID(ctx, ar.GetClient().GetID())
	switch {
	case errors.Is(err, client.ErrNotFound):
		return Grant{}, ErrInvalidToken
	case err != nil:
		return Grant{}, err
	}
	return Grant{
		ClientID:  ar.GetClient().GetID(),
		Subject:   ar.GetSession().GetSubject(),
		Scopes:    ar.GetGrantedScopes(),
		IssuedAt:  ar.GetRequestedAt(),
		ExpiresAt: ar.GetSession().GetExpiresAt(fosite.AccessToken),
		Client:    c,
	}, nil
}
